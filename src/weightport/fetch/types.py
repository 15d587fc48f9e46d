"""The fetch stage's own types: how to fetch (:class:`FetchOptions`) and what came back (:class:`Fetched`).

Adapters (``weightport.adapters``) return :class:`Fetched` and receive :class:`FetchOptions`; both
belong to the fetch stage so that nothing in ``weightport.fetch`` imports from the adapters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FetchOptions:
    """How to fetch: cache location, network policy and progress display.

    ``None`` means "read it from the environment when needed" (``WEIGHTPORT_CACHE``,
    ``WEIGHTPORT_OFFLINE``, ``HF_HUB_OFFLINE``, ``WEIGHTPORT_LOCKFILE``), never at import time.

    Attributes:
        cache_dir: weightport's cache root (URL downloads).
        offline: Refuse network access; cached sources still load.
        progress: Show download progress bars (``None``: when stderr is a terminal).
        timeout: Seconds to wait to connect and for each read of a response body.
        lock_timeout: Seconds to wait for another process downloading the same file.
        force: Download again even when the file is cached.
        retries: Further attempts after a transient download failure (with backoff).
        lockfile: A ``weightport.lock`` to enforce; ``False`` ignores ``$WEIGHTPORT_LOCKFILE``.
        max_download_bytes: Stop a download whose body grows past this many bytes (a body without a
            pinned size; a pinned size is always the limit for its file).
        deadline: Seconds one download attempt may take in all, however steadily bytes trickle in
            (``timeout`` bounds each wait for the next byte).
    """

    cache_dir: Path | None = None
    offline: bool | None = None
    progress: bool | None = None
    timeout: float = 10.0
    lock_timeout: float = 600.0
    force: bool = False
    retries: int = 2
    lockfile: Path | str | bool | None = None
    max_download_bytes: int = 1 << 40
    deadline: float = 6 * 3600.0

    def is_offline(self) -> bool:
        """Whether to refuse network access: the option, else ``WEIGHTPORT_OFFLINE``/``HF_HUB_OFFLINE``."""
        if self.offline is not None:
            return self.offline
        return any(_truthy(os.environ.get(v)) for v in ("WEIGHTPORT_OFFLINE", "HF_HUB_OFFLINE"))


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Fetched:
    """Local files for a source.

    Attributes:
        path: The checkpoint file, or a directory holding one (or a sharded index).
        sha256: The file's full sha256 when it was computed or recorded.
        size: The file's size in bytes.
        cached: Whether it came from a cache without any download.
        meta: Metadata found while fetching (a hub ``config.json``, response headers).
    """

    path: Path
    sha256: str | None = None
    size: int | None = None
    cached: bool = True
    meta: dict[str, Any] = field(default_factory=dict)
