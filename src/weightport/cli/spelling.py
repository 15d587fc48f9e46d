"""Hints in the command's own spelling.

The library's errors name Python options (``strict=False``, ``reinit=[...]``, ``verify=<a function>``);
on the command line the same advice is a flag. :func:`cli_hint` rewrites a hint once, where the
command prints it, with one table of equivalences, so every hint the library gains is translated
the same way. Options the command does not have stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def _list_flag(flag: str, placeholder: str) -> Callable[[re.Match[str]], str]:
    """``reinit=['fc', 'head']`` → ``--reinit fc head``; ``reinit=[...]`` → ``--reinit KEY ...``."""

    def spell(match: re.Match[str]) -> str:
        items = [i.strip().strip("'\"") for i in match.group(1).split(",") if i.strip()]
        if not items or items == ["..."]:
            return f"{flag} {placeholder} ..."
        return " ".join([flag, *items])

    return spell


#: (Python spelling, command-line spelling), applied in order.
SPELLINGS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\bstrict=False\b", "--no-strict"),
        (r"\bcheck_finite=False\b", "--no-check-finite"),
        (r"\bcheck_finite=True\b", "--check-finite"),
        (r"\breinit=\[([^\]]*)\]", _list_flag("--reinit", "KEY")),
        (r"\bexclude=\[([^\]]*)\]", _list_flag("--exclude", "PATTERN")),
        (r"\binclude=\[([^\]]*)\]", _list_flag("--include", "PATTERN")),
        (r"\bema=True\b", "--ema"),
        (r"\bema=False\b", "--no-ema"),
        (r"\bverify=<[^>]*>(, e\.g\. verify=lambda: \w+\(\))?", "--verify MODULE:CALLABLE"),
        (r"\binto='[^']*'", "--into SUBMODULE"),
        (r"\bmatch=\"(auto|exact|structural)\"", r"--match \1"),
        (r"\btimeout= \(FetchOptions\.timeout\)", "--timeout SECONDS"),
        (r"\bcache_dir=", "--cache-dir"),
        (r"\bReadOptions\(allow_globals=\(\.\.\.\)\)", "--allow-global MODULE.NAME"),
        (r"\bnum_classes=N\b", "--num-classes N"),
    )
)


def cli_hint(hint: str | None) -> str | None:
    """``hint`` with every Python option the command has a flag for written as that flag."""
    if hint is None:
        return None
    for pattern, replacement in SPELLINGS:
        hint = pattern.sub(replacement, hint)
    return hint
