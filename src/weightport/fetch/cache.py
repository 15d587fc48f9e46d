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
import hashlib
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

SIDECAR_SUFFIX = ".sha256"
LOCK_SUFFIX = ".lock"
TEMP_SUFFIX = ".part"


def cache_root(option: Path | str | None = None) -> Path:
    """weightport's cache directory: the option, else ``$WEIGHTPORT_CACHE``, else the user cache dir."""
    if option is not None:
        return Path(option).expanduser()
    env = os.environ.get("WEIGHTPORT_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("weightport", appauthor=False))


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
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(home).expanduser() / "hub"


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


def create_exclusive(directory: Path, name: str) -> tuple[Path, int]:
    """Create a new temp file ``.<name>.<random>.part`` in ``directory`` for writing.

    ``O_CREAT | O_EXCL | O_NOFOLLOW`` with an unpredictable name: nothing another user of a shared
    cache planted (a file or a link at a guessed name) is ever opened or followed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = directory / f".{name}.{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            return tmp, os.open(tmp, flags, 0o644)
        except FileExistsError:  # astronomically unlikely: draw another name
            continue


def refuse_linked_directory(directory: Path) -> None:
    """Refuse a cache entry directory that is a symbolic link (another user could point it anywhere).

    Raises:
        CacheNotWritableError: Naming the link and its target.
    """
    if directory.is_symlink():
        from weightport.errors import CacheNotWritableError

        raise CacheNotWritableError(
            f"the cache directory {directory} is a symbolic link to {os.readlink(directory)}; "
            "weightport never writes through a link it did not make",
            hint=f"remove the link {directory} (someone else may have planted it), or use a private cache_dir",
        )


def write_sidecar(path: Path, sha256: str, size: int) -> None:
    """Record a cached file's digest and size (atomically: an exclusive temp file, then a rename)."""
    target = sidecar_path(path)
    tmp, fd = create_exclusive(target.parent, target.name)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(f"{sha256} {size}\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
