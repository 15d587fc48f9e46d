"""download(): atomic, counted, hashed, with typed errors and no leftovers."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from weightport.errors import (
    DownloadError,
    DownloadTimeoutError,
    IncompleteDownloadError,
    IntegrityError,
    InvalidSourceError,
)
from weightport.fetch.cache import read_sidecar
from weightport.fetch.download import download

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_stores_file_and_sidecar(file_server, tmp_path):
    url = file_server.add("/w/model.pth", BODY)
    dest = tmp_path / "c" / "model.pth"
    result = download(url, dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == BODY
    assert (result.sha256, result.size) == (SHA, len(BODY))
    assert read_sidecar(dest) == (SHA, len(BODY))
    assert leftovers(dest.parent) == ["model.pth", "model.pth.sha256"]


@pytest.mark.parametrize("mode", ["cut", "cut_chunked"])
def test_cut_body_raises_and_leaves_nothing(file_server, tmp_path, mode):
    url = file_server.add("/w/cut.pth", BODY, mode=mode)
    dest = tmp_path / "c" / "cut.pth"
    with pytest.raises(IncompleteDownloadError, match="cut.pth"):
        download(url, dest, retries=1, backoff=0.01, progress=False)
    assert leftovers(dest.parent) == []
    assert file_server.count("GET") == 2  # retried once


def test_close_delimited_body_cut_is_caught_by_the_pin(file_server, tmp_path):
    # No Content-Length: only a pin can tell a short body from a complete one.
    url = file_server.add("/w/short.pth", BODY[:1000], mode="no_length")
    with pytest.raises(IntegrityError):
        download(url, tmp_path / "short.pth", sha256=SHA, retries=0, progress=False)
    assert leftovers(tmp_path) == []


def test_wrong_bytes_raise_with_expected_and_actual(file_server, tmp_path):
    wrong = bytes(len(BODY))
    url = file_server.add("/w/m.pth", wrong)
    with pytest.raises(IntegrityError) as info:
        download(url, tmp_path / "m.pth", sha256=SHA, progress=False)
    assert SHA in str(info.value) and hashlib.sha256(wrong).hexdigest() in str(info.value)
    assert leftovers(tmp_path) == []


def test_hash_prefix_checked(file_server, tmp_path):
    url = file_server.add("/w/m-deadbeef.pth", BODY)
    with pytest.raises(IntegrityError, match="deadbeef"):
        download(url, tmp_path / "m-deadbeef.pth", hash_prefix="deadbeef", progress=False)
    download(url, tmp_path / "ok.pth", hash_prefix=SHA[:8], progress=False)
    assert (tmp_path / "ok.pth").read_bytes() == BODY


def test_stall_times_out(file_server, tmp_path):
    url = file_server.add("/w/slow.pth", BODY, mode="stall", stall=5.0)
    with pytest.raises(DownloadTimeoutError, match="stopped sending"):
        download(url, tmp_path / "slow.pth", timeout=1.0, retries=0, progress=False)
    assert leftovers(tmp_path) == []


def test_http_404_is_not_retried(file_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(file_server.base + "/missing.pth", tmp_path / "x.pth", retries=3, backoff=0.01, progress=False)
    assert file_server.count("GET") == 1


def test_http_503_is_retried_then_reported(file_server, tmp_path):
    url = file_server.add("/busy.pth", b"", mode="status", status=503)
    with pytest.raises(DownloadError, match="503"):
        download(url, tmp_path / "x.pth", retries=2, backoff=0.01, progress=False)
    assert file_server.count("GET") == 3


def test_unreachable_server(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot reach") as info:
        download(f"http://127.0.0.1:{port}/x.pth", tmp_path / "x.pth", retries=0, progress=False)
    assert "WEIGHTPORT_MIRROR" in str(info.value)


def test_only_http_urls(tmp_path):
    with pytest.raises(InvalidSourceError):
        download("file:///etc/passwd", tmp_path / "passwd")


def test_https_to_http_redirect_is_refused():
    import urllib.request

    from weightport.fetch.download import _NoDowngrade

    request = urllib.request.Request("https://weights.example/m.pth")
    with pytest.raises(DownloadError, match="non-https"):
        _NoDowngrade().redirect_request(request, None, 302, "Found", {}, "http://evil.example/m.pth")
    same = _NoDowngrade().redirect_request(request, None, 302, "Found", {}, "https://cdn.example/m.pth")
    assert same.full_url == "https://cdn.example/m.pth"


def test_redirects_are_followed(file_server, tmp_path):
    file_server.add("/real.pth", BODY)
    url = file_server.add("/moved.pth", b"", mode="status", status=302, headers={"Location": "/real.pth"})
    download(url, tmp_path / "m.pth", progress=False)
    assert (tmp_path / "m.pth").read_bytes() == BODY


def test_progress_bar_shown_only_when_asked(file_server, tmp_path, capsys):
    url = file_server.add("/w/model.pth", BODY)
    download(url, tmp_path / "quiet.pth", progress=False)
    assert capsys.readouterr().err == ""
    download(url, tmp_path / "shown.pth", progress=True)
    assert "shown.pth" in capsys.readouterr().err


def test_a_name_that_does_not_resolve_logs_one_line_per_retry_and_the_hint_once(tmp_path, monkeypatch, caplog):
    import socket

    def no_dns(*args, **kwargs):  # what an offline machine's resolver answers
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with caplog.at_level("WARNING"), pytest.raises(DownloadError, match="name resolution") as info:
        download("https://weights.example/m.pth", tmp_path / "m.pth", retries=2, backoff=0.01, progress=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "weightport"]
    assert len(lines) == 2 and all("\n" not in line and "hint" not in line for line in lines)
    assert "retry 1/2" in lines[0] and "retry 2/2" in lines[1]
    assert "WEIGHTPORT_OFFLINE=1" in info.value.hint  # the hint, once, with the error
    assert leftovers(tmp_path) == []


def test_authorization_goes_to_the_url_host_only_never_across_a_redirect(tmp_path):
    """The hub's token is sent to the hub; a redirect to another host (a CDN) drops it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    seen: dict[str, str | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen[self.headers["Host"].split(":")[0] + self.path] = self.headers.get("Authorization")
            if self.path == "/start":  # to the same port, under another host name: another host
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/file")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"data")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/start"
        download(url, tmp_path / "f", headers={"authorization": "Bearer secret"}, retries=0)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == {"127.0.0.1/start": "Bearer secret", "localhost/file": None}
    assert (tmp_path / "f").read_bytes() == b"data"
