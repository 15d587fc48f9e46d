"""Download progress bars (tqdm), quiet when stderr is not a terminal or when asked."""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int | None, desc: str, enabled: bool | None) -> Any:
    """A byte progress bar; ``enabled=None`` shows it only when stderr is a terminal."""
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
