"""The ``weightport`` command: list, resolve, inspect, plan, convert, cache, lock, bench.

``main(argv)`` parses, runs one sub-command and returns the exit code; failures become one
``error:`` line and a ``hint:`` line on stderr (see :mod:`weightport.cli.errors` for the codes).
Importing this package, and ``weightport --help``, never imports torch.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from weightport.cli.errors import USAGE, report
from weightport.cli.output import Output
from weightport.cli.parser import build_parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (``sys.argv[1:]`` by default) and return the exit code."""
    parser = build_parser()
    try:
        args, rest = parser.parse_known_args(argv)
        command = getattr(args, "command", None)
        if rest and not (command is not None and command.pass_through):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    except SystemExit as exc:  # --help, --version, usage errors: argparse already wrote the text
        return exc.code if isinstance(exc.code, int) else USAGE
    if command is None:
        parser.print_help(sys.stderr)
        return USAGE
    args.rest = rest
    _configure_logging(args.verbose - args.quiet)
    _tolerant_streams()
    try:
        return command.run(args, Output(json_mode=args.json))
    except BrokenPipeError:  # `weightport list --json | head`: the reader left; not an error
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (Exception, KeyboardInterrupt) as exc:
        return report(exc, json_stream=sys.stdout if args.json else None)


def _tolerant_streams() -> None:
    """Print what a checkpoint names even when it cannot be encoded (a key with a lone surrogate, a
    non-UTF-8 terminal): escaped, never a UnicodeEncodeError half-way through the output."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a detached or closed stream: nothing to adjust
                pass


class _StderrHandler(logging.Handler):
    """Writes log records to whatever ``sys.stderr`` is now (tests and callers may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _configure_logging(verbosity: int) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity)
    if level is None:
        level = logging.ERROR if verbosity < 0 else logging.DEBUG
    logger = logging.getLogger("weightport")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
