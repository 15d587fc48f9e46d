"""Where weightport keeps what it downloads.

The cache root is, in order: the ``cache_dir`` option, ``$WEIGHTPORT_CACHE``, then
``platformdirs.user_cache_dir()/weightport``. The environment is read when a path is needed,
never at import time.

Layout::

    <cache>/url/<sha256 of the URL>/<filename>          a downloaded file, under its final name
    <cache>/url/<sha256 of the URL>/<filename>.sha256   its sidecar: "<hex sha256> <size in bytes>"
    <cache>/url/<sha256 of the URL>/<filename>.lock     the file lock writers take
    <cache>/url/<sha256 of the URL>/.<filename>.<random>.part   a download in progress
    <cache>/url/<sha256 of the URL>/<filename>.corrupt-<time>          a quarantined bad copy

Files from torchvision and timm URLs live in torch.hub's cache instead
(``$TORCH_HOME/hub/checkpoints/<basename of the URL>``, with the same sidecar, lock and temp names),
and Hugging Face repositories in huggingface_hub's own cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``).
A file under its final name is only ever created by an atomic rename, so readers that mmap it
never see it change.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

T = TypeVar("T")

SIDECAR_SUFFIX = ".sha256"
LOCK_SUFFIX = ".lock"
TEMP_SUFFIX = ".part"


#: The cache roots this process has used (weightport's and huggingface_hub's). A root is the user's
#: choice and may itself be reached through links; every directory below it is weightport's (or the
#: hub's) own, so :class:`EntryDir` opens those one by one and refuses a link at any of them.
_ROOTS: set[str] = set()


def _root(path: Path) -> Path:
    _ROOTS.add(os.path.abspath(path))
    return path


def cache_root(option: Path | str | None = None) -> Path:
    """weightport's cache directory: the option, else ``$WEIGHTPORT_CACHE``, else the user cache dir."""
    if option is not None:
        return _root(Path(option).expanduser())
    env = os.environ.get("WEIGHTPORT_CACHE")
    if env:
        return _root(Path(env).expanduser())
    import platformdirs

    return _root(Path(platformdirs.user_cache_dir("weightport", appauthor=False)))


def url_filename(url: str) -> str:
    """The file name a URL's path ends with (``download`` when it ends with ``/``)."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    # A URL path could carry separators, NULs or control characters once unquoted, or be longer
    # than a file name may be; keep a plain, printable file name (the entry directory is already
    # keyed by the whole URL, so shortening loses nothing).
    name = "".join(c if c.isprintable() and c not in "\\/" else "_" for c in name)
    if len(name.encode()) > 200:
        _stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext.encode()) <= 16 else ""
        name = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32] + (f".{ext}" if ext else "")
    return name if name not in {"", ".", ".."} else "download"


def url_entry(url: str, option: Path | str | None = None) -> Path:
    """The final cache path of a URL: ``<cache>/url/<sha256 of url>/<filename>``."""
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return cache_root(option) / "url" / key / url_filename(url)


def torch_hub_checkpoints() -> Path:
    """torch.hub's checkpoint directory, as ``torch.hub.load_state_dict_from_url`` would use it.

    When torch is already imported its ``get_dir()`` is asked (it honours ``torch.hub.set_dir``);
    otherwise the same rule is applied without importing torch: ``$TORCH_HOME``, else
    ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``; then ``hub/checkpoints``.
    """
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        return Path(hub.get_dir()) / "checkpoints"
    home = os.environ.get("TORCH_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(xdg, "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def hf_hub_cache() -> Path:
    """huggingface_hub's cache, read from the environment now (``HF_HUB_CACHE``, ``HF_HOME``)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return _root(Path(explicit).expanduser())
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(xdg, "huggingface")
    return _root(Path(home).expanduser() / "hub")


def sidecar_path(path: Path) -> Path:
    """The digest sidecar next to a cached file."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def lock_path(path: Path) -> Path:
    """The lock file writers of ``path`` take."""
    return path.with_name(path.name + LOCK_SUFFIX)


def read_sidecar(path: Path) -> tuple[str, int] | None:
    """The ``(sha256, size)`` recorded for a cached file, or ``None`` when absent or unreadable."""
    try:
        digest, size = sidecar_path(path).read_text().split()[:2]
        return digest.lower(), int(size)
    except (OSError, ValueError):
        return None


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
#: Whether directories can be held open and files made relative to them (POSIX; ``os.replace`` takes
#: the same ``dir_fd`` arguments as ``os.rename``): else by path.
_DIR_FD = os.open in os.supports_dir_fd and os.rename in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")


class EntryDir:
    """A cache entry directory, held open: every file weightport makes in it is made through that handle.

    The directory is created if missing and opened with ``O_DIRECTORY | O_NOFOLLOW``: a symbolic
    link in its place is refused, and because temp files, sidecars, renames and removals are then
    made relative to the open directory (``dir_fd=``), the directory checked is the one written,
    even when someone swaps the path for a link in between. Use as a context manager.

    Raises:
        CacheNotWritableError: The directory is a symbolic link (or not a directory).
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory
        self.fd: int | None = None
        if not _DIR_FD:  # pragma: no cover - Windows: by path
            directory.mkdir(parents=True, exist_ok=True)
            refuse_linked_directory(directory)
            return
        root, below = _under_root(directory)
        if root is None:  # not under a cache root: only the entry directory itself is weightport's
            directory.parent.mkdir(parents=True, exist_ok=True)
            self.fd = _open_child(None, str(directory), directory)
            return
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))  # the root may be a link: the user's choice
        try:
            where = root
            for name in below:  # each directory below the root opened from its parent's handle
                where = where / name
                parent, fd = fd, _open_child(fd, name, where)
                os.close(parent)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __enter__(self) -> EntryDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _at(self, name: str) -> dict[str, Any]:
        return {"path": name, "dir_fd": self.fd} if self.fd is not None else {"path": str(self.path / name)}

    def create_exclusive(self, name: str) -> tuple[str, int]:
        """A new temp file ``.<name>.<random>.part`` here, opened for writing: ``(its name, fd)``.

        ``O_CREAT | O_EXCL | O_NOFOLLOW`` with an unpredictable name: nothing another user of a
        shared cache planted (a file or a link at a guessed name) is ever opened or followed.
        """
        return self._exclusive(name, lambda tmp: os.open(flags=_TEMP_FLAGS, mode=0o644, **self._at(tmp)))

    def _exclusive(self, name: str, make: Callable[[str], T]) -> tuple[str, T]:
        """``make`` a new entry at an unpredictable temp name for ``name``: ``(that name, what make returned)``."""
        while True:
            tmp = f".{name}.{secrets.token_hex(8)}{TEMP_SUFFIX}"
            try:
                return tmp, make(tmp)
            except FileExistsError:  # astronomically unlikely: draw another name
                continue

    def _put(self, tmp: str, name: str) -> None:
        """Rename the temp entry ``tmp`` to ``name``; remove it when that fails."""
        try:
            self.replace(tmp, name)
        except BaseException:
            with contextlib.suppress(OSError):
                self.unlink(tmp)
            raise

    def replace(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst``, both in this directory."""
        if self.fd is None:  # pragma: no cover - Windows
            os.replace(self.path / src, self.path / dst)
        else:
            os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        os.unlink(**self._at(name))

    def names(self) -> list[str]:
        """The names in this directory (the open one, not whatever the path names now)."""
        return os.listdir(self.fd if self.fd is not None else self.path)

    def link(self, target: str, name: str) -> None:
        """Point ``name`` here at ``target`` (the hub's snapshot pointers): a link at a temp name, renamed."""
        if self.fd is None:  # pragma: no cover - Windows
            tmp, _ = self._exclusive(name, lambda t: os.symlink(target, self.path / t))
        else:
            tmp, _ = self._exclusive(name, lambda t: os.symlink(target, t, dir_fd=self.fd))
        self._put(tmp, name)

    def fsync(self) -> None:
        if self.fd is None:  # pragma: no cover - Windows
            return
        with contextlib.suppress(OSError):
            os.fsync(self.fd)

    def write_text(self, name: str, text: str) -> None:
        """Write the small file ``name`` here whole or not at all (an exclusive temp file, then a rename)."""
        tmp, fd = self.create_exclusive(name)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(text)
        except BaseException:
            with contextlib.suppress(OSError):
                self.unlink(tmp)
            raise
        self._put(tmp, name)

    def write_sidecar(self, name: str, sha256: str, size: int) -> None:
        """Record the digest and size of the file ``name`` here."""
        self.write_text(name + SIDECAR_SUFFIX, f"{sha256} {size}\n")

    def check_still_here(self) -> None:
        """Refuse when the path no longer names the directory held open (swapped while writing).

        What was written went into the held directory, never through the link; this tells the
        caller not to read the path, which now leads elsewhere.

        Raises:
            CacheNotWritableError: The path is now a link or another directory.
        """
        if self.fd is None:  # pragma: no cover - Windows
            return
        held = os.fstat(self.fd)
        try:
            now = os.lstat(self.path)
        except OSError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            raise _linked(self.path, swapped=True)


def _under_root(directory: Path) -> tuple[Path | None, list[str]]:
    """The deepest cache root holding ``directory`` and the names below it (``(None, [])``: none)."""
    absolute = os.path.abspath(directory)
    roots = [r for r in _ROOTS if absolute == r or absolute.startswith(r.rstrip(os.sep) + os.sep)]
    if not roots:
        return None, []
    root = max(roots, key=len)
    rest = absolute[len(root):].strip(os.sep)
    return Path(root), [n for n in rest.split(os.sep) if n]


def _open_child(dir_fd: int | None, name: str, shown: Path) -> int:
    """Make (if missing) and open the directory ``name`` (relative to ``dir_fd``), refusing a link."""
    try:
        os.mkdir(name, dir_fd=dir_fd) if dir_fd is not None else os.mkdir(name)
    except FileExistsError:  # already there, or a link or a file: the open decides
        pass
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd) if dir_fd is not None else os.open(name, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _linked(shown) from exc
        raise


def _linked(directory: Path, *, swapped: bool = False) -> Exception:
    from weightport.errors import CacheNotWritableError

    try:
        target = f"a symbolic link to {os.readlink(directory)}"
    except OSError:
        target = "not the directory weightport opened" if swapped else "not a directory"
    when = " (it was swapped while weightport wrote into it)" if swapped else ""
    return CacheNotWritableError(
        f"the cache directory {directory} is {target}{when}; weightport never writes through a link it did not make",
        hint=f"remove the link {directory} (someone else may have planted it), or use a private cache_dir",
    )


def refuse_linked_directory(directory: Path) -> None:
    """Refuse a cache entry directory that is a symbolic link (another user could point it anywhere).

    Raises:
        CacheNotWritableError: Naming the link and its target.
    """
    if directory.is_symlink():
        raise _linked(directory)


def write_sidecar(path: Path, sha256: str, size: int) -> None:
    """Record a cached file's digest and size (atomically: an exclusive temp file, then a rename)."""
    with EntryDir(path.parent) as entry:
        entry.write_sidecar(path.name, sha256, size)
