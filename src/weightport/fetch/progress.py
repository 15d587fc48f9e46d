"""Download progress bars (tqdm): when to show them, and in the units every other size uses.

Whether a bar is drawn is decided in one place, :func:`show_progress`: an explicit ``progress=``
(``FetchOptions.progress``, the CLI's ``-q``) wins; else ``WEIGHTPORT_PROGRESS=0|1``; else
``HF_HUB_DISABLE_PROGRESS_BARS=1`` turns bars off (huggingface_hub's own switch, honoured for every
source); else a bar is drawn only when stderr is a terminal. The environment is read when a
download starts, never at import.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from weightport.units import DIVISOR

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def show_progress(enabled: bool | None) -> bool:
    """Whether to draw download bars (see the module docstring for the order of the switches)."""
    if enabled is not None:
        return enabled
    ours = os.environ.get("WEIGHTPORT_PROGRESS", "").strip().lower()
    if ours in _TRUE or ours in _FALSE:
        return ours in _TRUE
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").strip().lower() in _TRUE:
        return False
    return sys.stderr.isatty()


def progress_bar(total: int | None, desc: str, enabled: bool | None) -> Any:
    """A byte progress bar, or a silent stand-in when :func:`show_progress` says no."""
    if not show_progress(enabled):
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=DIVISOR, leave=False)
