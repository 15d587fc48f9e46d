"""How weightport writes sizes for people: one unit system everywhere (decimal SI, as the report).

The load report, ``weightport inspect``/``cache``/``lock``/``convert`` and the download bar all say
``44.8 MB`` for 44,774,412 bytes (1 MB = 1,000,000 bytes); JSON output keeps exact byte counts.
"""

from __future__ import annotations

#: The progress bar's divisor, so it counts in the same units as every other size shown.
DIVISOR = 1000
_UNITS = ("B", "kB", "MB", "GB", "TB")


def format_bytes(n: int | float) -> str:
    """``44774412`` → ``"44.8 MB"``; below 1 kB, exact bytes."""
    size = float(n)
    for unit in _UNITS:
        if abs(size) < DIVISOR or unit == _UNITS[-1]:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= DIVISOR
    raise AssertionError("unreachable")  # pragma: no cover
