"""How the command reports a failure: one line, a hint, and an exit code that says what kind.

Exit codes (also shown in ``weightport --help``):

==== ==========================================================================================
0    success
1    an error (the message says which)
2    wrong usage: an unknown option, a bad argument, an option the library refuses
3    a check failed: the plan would not load (missing weights, another architecture, an ambiguous
     mapping, outputs that differ), a cached file or the lock file does not match
4    the source does not exist: no such file, name, or cached copy offline
5    refused as unsafe: a pickle that would run code
130  interrupted (Ctrl-C)
==== ==========================================================================================

A full traceback is printed only when ``WEIGHTPORT_DEBUG=1``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import dataclass
from typing import TextIO

from weightport import errors as wp
from weightport.cli.spelling import cli_hint

OK = 0
ERROR = 1
USAGE = 2
CHECK_FAILED = 3
NOT_FOUND = 4
UNSAFE = 5
INTERRUPTED = 130

#: Exit code per error class; the first class in an exception's MRO found here wins.
EXIT_CODES: dict[type[BaseException], int] = {
    wp.UnsafeCheckpointError: UNSAFE,
    wp.SourceNotFoundError: NOT_FOUND,
    wp.UnknownSourceError: NOT_FOUND,
    wp.OfflineCacheMissError: NOT_FOUND,
    wp.StrictLoadError: CHECK_FAILED,
    wp.ArchitectureMismatchError: CHECK_FAILED,
    wp.AmbiguousMappingError: CHECK_FAILED,
    wp.VerificationError: CHECK_FAILED,
    wp.ShapeMismatchError: CHECK_FAILED,
    wp.IntegrityError: CHECK_FAILED,
    wp.UsageError: USAGE,
    wp.InvalidSourceError: USAGE,
    wp.WeightportError: ERROR,
    KeyboardInterrupt: INTERRUPTED,
}

#: What the help text says about each code.
EXIT_CODE_HELP: tuple[tuple[int, str], ...] = (
    (OK, "success"),
    (ERROR, "error"),
    (USAGE, "wrong usage"),
    (CHECK_FAILED, "check failed: the plan would not load, a cached file or lock entry does not match"),
    (NOT_FOUND, "source not found (no such file or name, or not cached while offline)"),
    (UNSAFE, "refused as unsafe (a pickle that would run code)"),
    (INTERRUPTED, "interrupted"),
)

DEBUG_ENV = "WEIGHTPORT_DEBUG"


@dataclass(frozen=True)
class Failure:
    """A failure as the command shows it."""

    message: str
    hint: str | None
    code: int


def exit_code(exc: BaseException) -> int:
    """The exit code for ``exc`` (:data:`ERROR` for anything not in :data:`EXIT_CODES`)."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return ERROR


def describe(exc: BaseException) -> Failure:
    """The one-line message, the hint and the exit code for ``exc``."""
    code = exit_code(exc)
    if isinstance(exc, wp.WeightportError):
        return Failure(_first_line(exc.message), cli_hint(exc.hint), code)
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", None, code)
    if isinstance(exc, OSError) and exc.filename is not None:
        # A plain OS error (an output directory that does not exist, a read-only disk) is the
        # user's to fix, not a bug: say which file and why.
        return Failure(f"{exc.strerror or exc}: {exc.filename}", "check the path and its permissions", code)
    return Failure(
        f"unexpected {type(exc).__name__}: {_first_line(str(exc))}",
        f"this may be a bug in weightport; run again with {DEBUG_ENV}=1 for the full traceback and report it",
        code,
    )


def report(exc: BaseException, stream: TextIO | None = None, *, json_stream: TextIO | None = None) -> int:
    """Print ``exc`` as ``error: ...`` and ``hint: ...`` lines and return its exit code.

    With ``WEIGHTPORT_DEBUG=1`` the full traceback comes first. With ``json_stream`` (``--json``) the
    same failure is also written there as one JSON document,
    ``{"error": {"type": ..., "message": ..., "hint": ..., "exit_code": ...}}``, so a script reading
    stdout always gets JSON; the exit code is the same.
    """
    stream = stream if stream is not None else sys.stderr
    failure = describe(exc)
    if debug_enabled():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=stream)
    print(f"error: {failure.message}", file=stream)
    if failure.hint:
        print(f"hint: {failure.hint}", file=stream)
    elif not debug_enabled() and failure.code == ERROR:
        print(f"hint: run again with {DEBUG_ENV}=1 for the full traceback", file=stream)
    if json_stream is not None:
        document = {"error": {"type": type(exc).__name__, "message": failure.message, "hint": failure.hint,
                              "exit_code": failure.code}}
        json_stream.write(json.dumps(document, indent=2) + "\n")
        json_stream.flush()
    return failure.code


def debug_enabled() -> bool:
    """Whether ``WEIGHTPORT_DEBUG`` asks for tracebacks (read now, never at import)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _first_line(text: str) -> str:
    """The first line; when it only introduces a list (ends with ``:``), with the list's first item."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}" + (" …" if len(lines) > 2 else "")
    return lines[0]
