"""File-system fault helpers shared by the fetch tests and the fault suite."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest


def deny_creates_under(monkeypatch: pytest.MonkeyPatch, root: Path, code: int = errno.EACCES) -> None:
    """Simulate a read-only directory even for root (which ignores permission bits).

    Every ``os.open`` with ``O_CREAT`` below ``root`` fails with ``code``: ``EACCES`` (a
    ``PermissionError``) as for an unprivileged user, or ``EROFS`` as on a read-only mount.
    """
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(os.fspath(path)).resolve().is_relative_to(root.resolve()):
            raise OSError(code, os.strerror(code), os.fspath(path))  # OSError picks the subclass
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)
