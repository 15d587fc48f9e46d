"""Arguments and helpers several sub-commands share: fetch options, load options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weightport.fetch.types import FetchOptions


def add_global_options(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--json``, ``-v`` and ``-q``, on the top parser and (defaults suppressed) on every sub-parser."""
    # Sub-parsers get the same options with SUPPRESS defaults, so `weightport --json list` and
    # `weightport list --json` both work and neither overwrites the other.
    suppress = not top
    group = parser.add_argument_group("global options")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                       help="write one JSON document to stdout instead of tables")
    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if suppress else 0,
                       help="more log messages on stderr (-vv for debug)")
    group.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS if suppress else 0,
                       help="only errors on stderr")


def add_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    """``--offline``, ``--cache-dir``, ``--timeout`` and ``--retries``."""
    from weightport.fetch.types import FetchOptions

    group = parser.add_argument_group("fetching")
    group.add_argument("--offline", action="store_true", default=None,
                       help="never use the network; only cached sources load (also WEIGHTPORT_OFFLINE=1)")
    group.add_argument("--cache-dir", type=Path, metavar="DIR",
                       help="weightport's cache root (default: $WEIGHTPORT_CACHE, else the user cache dir)")
    group.add_argument("--timeout", type=_positive_float, default=FetchOptions.timeout, metavar="SECONDS",
                       help=f"seconds to wait to connect and for each read (default: {FetchOptions.timeout:g})")
    group.add_argument("--retries", type=_count, default=FetchOptions.retries, metavar="N",
                       help=f"further attempts after a transient network failure (default: {FetchOptions.retries})")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, got {text!r}")
    return int(text)


def fetch_options(args: argparse.Namespace, **overrides: Any) -> FetchOptions:
    """The :class:`FetchOptions` the fetch arguments ask for (``-q`` also silences the download bar)."""
    from weightport.fetch.types import FetchOptions

    chosen: dict[str, Any] = {"cache_dir": getattr(args, "cache_dir", None), "offline": getattr(args, "offline", None)}
    for name in ("timeout", "retries"):
        if getattr(args, name, None) is not None:
            chosen[name] = getattr(args, name)
    if getattr(args, "quiet", 0):
        chosen["progress"] = False
    chosen.update(overrides)
    return FetchOptions(**chosen)


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a load that change what goes where (``plan`` and ``convert --into-layout``)."""
    group = parser.add_argument_group("mapping")
    group.add_argument("--into", metavar="SUBMODULE", help="the submodule the checkpoint belongs to (e.g. backbone)")
    group.add_argument("--num-classes", type=int, metavar="N", help="build the model with num_classes=N")
    group.add_argument("--strict", action=argparse.BooleanOptionalAction, default=True,
                       help="every model weight must be loaded or re-initialised on purpose (default: strict)")
    group.add_argument("--exclude", nargs="+", default=None, metavar="PATTERN",
                       help="never load these keys or modules (globs)")
    group.add_argument("--include", nargs="+", default=None, metavar="PATTERN",
                       help="load only these keys or modules (globs)")
    group.add_argument("--reinit", nargs="+", default=None, metavar="KEY",
                       help="re-initialise these model keys or modules on purpose")
    group.add_argument("--match", choices=("auto", "exact", "structural"), default="auto",
                       help="align leftovers by structure (auto), never (exact), or everything (structural)")
    group.add_argument("--rename", metavar="RULES.json",
                       help="rename rules: a JSON file written by `weightport plan --save`")
    group.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                       help="take (or refuse) the checkpoint's EMA weights")
    group.add_argument("--allow-global", action="append", default=[], metavar="MODULE.NAME",
                       help="a class a pickle may hold that you trust (repeatable)")
    group.add_argument("--check-finite", action=argparse.BooleanOptionalAction, default=False,
                       help="also read every value and refuse NaN/Inf weights (default: not checked; a cast "
                       "that would overflow is refused either way)")


def load_options(args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for :func:`weightport.plan` from the mapping arguments."""
    options: dict[str, Any] = {
        "into": args.into, "strict": args.strict, "exclude": args.exclude, "include": args.include,
        "reinit": args.reinit, "match": args.match, "rename": args.rename, "ema": args.ema,
        "allow_globals": tuple(args.allow_global), "check_finite": args.check_finite, "fetch": fetch_options(args),
    }
    options.update(overrides)
    return options
