"""HTTP servers on 127.0.0.1 for fetch tests: a file server with fault modes, and a tiny hub.

Both count requests per ``(method, path)`` so tests can assert how many downloads happened.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Route:
    """What the file server answers for one path.

    Modes: ``ok``; ``cut`` (announce the full length, send half, close); ``cut_chunked`` (chunked, no
    Content-Length, send half, close); ``no_length`` (no Content-Length, close-delimited body);
    ``stall`` (send half, then sleep ``stall`` seconds); ``status`` (answer ``status`` with no body);
    ``endless`` (no Content-Length, ``body`` repeated until the client hangs up); ``trickle`` (the body
    one byte every ``delay`` seconds).
    ``delay`` sleeps between chunks (to keep a download in flight).
    """

    body: bytes
    mode: str = "ok"
    status: int = 200
    stall: float = 5.0
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Base:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(n for (m, p), n in self.requests.items() if (method in (None, m)) and (path in (None, p)))

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests[(method, path)] += 1

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner._record("GET", unquote(urlsplit(self.path).path))
                owner.handle(self, head=False)

            def do_HEAD(self) -> None:
                owner._record("HEAD", unquote(urlsplit(self.path).path))
                owner.handle(self, head=True)

        return Handler

    def handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class FileServer(_Base):
    """Serves registered routes with the fault modes of :class:`Route`."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        super().__init__()

    def add(self, path: str, body: bytes, **kwargs: object) -> str:
        self.routes[path] = Route(body, **kwargs)  # type: ignore[arg-type]
        return self.base + path

    def handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        route = self.routes.get(unquote(urlsplit(h.path).path))
        if route is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if route.mode == "status":
            h.send_response(route.status)
            h.send_header("Content-Length", "0")
            for k, v in route.headers.items():
                h.send_header(k, v)
            h.end_headers()
            return
        body = route.body
        half = body[: len(body) // 2]
        h.send_response(200)
        for k, v in route.headers.items():
            h.send_header(k, v)
        if route.mode == "cut_chunked":
            h.send_header("Transfer-Encoding", "chunked")
        elif route.mode in ("no_length", "endless"):
            h.send_header("Connection", "close")
        else:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if head:
            return
        if route.mode == "endless":
            try:
                while True:
                    h.wfile.write(body)
            except OSError:  # the client stopped reading
                h.close_connection = True
        elif route.mode == "trickle":
            try:
                for i in range(len(body)):
                    h.wfile.write(body[i : i + 1])
                    h.wfile.flush()
                    time.sleep(route.delay)
            except OSError:
                h.close_connection = True
        elif route.mode == "cut":
            h.wfile.write(half)
            h.close_connection = True
        elif route.mode == "cut_chunked":
            h.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
            h.close_connection = True
        elif route.mode == "stall":
            h.wfile.write(half)
            h.wfile.flush()
            time.sleep(route.stall)
            h.close_connection = True
        else:
            step = max(1, len(body) // 8) if route.delay else len(body) or 1
            for i in range(0, len(body), step):
                h.wfile.write(body[i : i + step])
                h.wfile.flush()
                if route.delay:
                    time.sleep(route.delay)
            if route.mode == "no_length":
                h.close_connection = True


@dataclass
class HubRepo:
    """One hub repository: its files at its current commit.

    ``tampered`` names files whose body is sent with its last byte flipped while the headers
    (size, ``X-Linked-Etag`` sha256) still describe the real file: a man in the middle, or a bad CDN.
    ``modes`` gives a file a fault of a hostile or broken endpoint (``HF_ENDPOINT``): ``endless`` (no
    size announced, the body repeated until the client hangs up), ``endless_announced`` (the real
    size announced, the body repeated anyway), ``oversize`` (``X-Linked-Size`` of 2**50 bytes),
    ``trickle`` (one byte every ``delay`` seconds),
    ``trickle_headers`` (the answer's headers so), ``stall`` (half the body, then silence for
    ``stall`` seconds); ``headers`` overrides response headers (an ``ETag`` that is a path).
    """

    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    tampered: set[str] = field(default_factory=set)
    modes: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    delay: float = 0.05
    stall: float = 5.0


class HubServer(_Base):
    """Answers the endpoints ``hf_hub_download`` uses: HEAD and GET ``/{repo}/resolve/{revision}/{file}``.

    Headers as the real hub sends them: ``X-Repo-Commit``, ``ETag`` and, for large (LFS) files,
    ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``; 404s carry ``X-Error-Code``.
    """

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        super().__init__()

    def add_repo(self, repo_id: str, files: dict[str, bytes], commit: str | None = None) -> HubRepo:
        repo = HubRepo(files, commit or hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest())
        self.repos[repo_id] = repo
        return repo

    def handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(h.path).path).lstrip("/")
        parts = path.split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(h, 404, "RepoNotFound", None)
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(h, 404, "RepoNotFound", None)
        if revision not in ("main", repo.commit):
            return self._error(h, 404, "RevisionNotFound", None)
        body = repo.files.get(filename)
        if body is None:
            return self._error(h, 404, "EntryNotFound", repo.commit)
        mode = repo.modes.get(filename, "ok")
        if mode == "trickle_headers":  # the answer's headers, a byte at a time: never a whole response
            try:
                h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
                for _ in range(200):
                    h.wfile.write(b"a")
                    h.wfile.flush()
                    time.sleep(repo.delay)
            except OSError:
                pass
            h.close_connection = True
            return
        h.send_response(200)
        sha = hashlib.sha256(body).hexdigest()
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{hashlib.sha1(body).hexdigest()}"'}
        if filename.endswith((".safetensors", ".bin", ".pth")) and mode != "endless":  # LFS files
            headers.update({"X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(body))})
        if mode == "oversize":
            headers["X-Linked-Size"] = str(1 << 50)
        if mode in ("endless", "endless_announced"):
            headers["Connection"] = "close"
        else:
            headers["Content-Length"] = str(len(body))
        headers.update(repo.headers.get(filename, {}))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if head:
            return
        try:
            if mode in ("endless", "endless_announced"):
                while True:
                    h.wfile.write(body)
            elif mode == "trickle":
                for i in range(len(body)):
                    h.wfile.write(body[i : i + 1])
                    h.wfile.flush()
                    time.sleep(repo.delay)
            elif mode == "stall":
                h.wfile.write(body[: len(body) // 2])
                h.wfile.flush()
                time.sleep(repo.stall)
                h.close_connection = True
            else:
                h.wfile.write(body[:-1] + bytes([body[-1] ^ 1]) if filename in repo.tampered and body else body)
        except OSError:  # the client stopped reading
            h.close_connection = True

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, commit: str | None) -> None:
        h.send_response(status)
        h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", code)
        if commit:
            h.send_header("X-Repo-Commit", commit)
        h.send_header("Content-Length", "0")
        h.end_headers()
