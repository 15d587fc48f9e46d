"""``weightport list [PATTERN]``: the sources weightport knows by name."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections import defaultdict
from typing import Any

from weightport.cli.errors import OK
from weightport.cli.output import Output, table
from weightport.cli.registry import Command

#: Rows shown unless --limit says otherwise (0: all).
DEFAULT_LIMIT = 50
_PREFIX = re.compile(r"^(?:tf_|timm_)")
_SIZE = re.compile(r"(?<!v)\d+[a-z]?$")  # resnet18, resnet10t: sizes; mobilenetv3: a version


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", help="glob on the name or scheme:name (e.g. 'resnet*', 'timm:vit_*'); "
                        "without one, the families are listed")
    parser.add_argument("--scheme", choices=("alias", "torchvision", "timm"), help="only names from this table")
    parser.add_argument("--tags", action="store_true", help="show every weights tag, not only the default")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                        help=f"show at most N rows (default {DEFAULT_LIMIT}; 0: all)")
    parser.add_argument("--names", action="store_true", help="list names even without a pattern (not families)")


def family(name: str) -> str:
    """``resnet18`` → ``resnet``, ``vit_base_patch16_224`` → ``vit``, ``convnextv2_atto`` → ``convnextv2``."""
    prefix = _PREFIX.match(name)
    head = prefix.group(0) if prefix else ""
    token = name[len(head):].split("_", 1)[0]
    return head + (_SIZE.sub("", token) or token)


def run(args: argparse.Namespace, out: Output) -> int:
    from weightport.cli.list_index import indexed_sources

    found = [s for s in indexed_sources(args.pattern) if args.scheme is None or s.scheme == args.scheme]
    grouped = args.pattern is None and not args.names
    if grouped:
        columns: tuple[str, ...] = ("family", "scheme", "names", "e.g.")
        families: dict[tuple[str, str], list[str]] = defaultdict(list)
        for s in found:
            families[(family(s.name), s.scheme)].append(s.name)
        rows: list[tuple[Any, ...]] = [(f, scheme, len(names), ", ".join(names[:3]) + (", …" if len(names) > 3 else ""))
                                       for (f, scheme), names in families.items()]
        data: Any = [{"family": r[0], "scheme": r[1], "count": r[2], "names": families[(r[0], r[1])]} for r in rows]
    else:
        columns = ("name", "scheme", "tags" if args.tags else "default tag", "license", "classes", "source")
        rows = [(s.name, s.scheme, ", ".join(s.tags) if args.tags and s.tags else s.default_tag, s.license,
                 s.num_classes, s.uri) for s in found]
        data = [dataclasses.asdict(s) for s in found]
    shown = rows if args.limit <= 0 else rows[:args.limit]

    def render(console) -> None:
        if out.stream.isatty():
            console.print(table(None, columns, shown))
        else:  # plain columns for pipes and files: no box characters, one line per row
            out.stream.write(_plain(columns, shown))
        what = f"{len(rows)} famil{'y' if len(rows) == 1 else 'ies'} of {len(found)} source(s)" if grouped else \
            f"{len(found)} source(s)" + (f" matching {args.pattern!r}" if args.pattern else "")
        more = (f"; showing {len(shown)} (--limit 0 for all" + (", a pattern for names)" if grouped else ")")
                if len(shown) < len(rows) else "")
        console.print(what + more, markup=False, highlight=False)

    out.emit(data, render)
    return OK


def _plain(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    cells = [list(columns)] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in cells)


COMMAND = Command(
    name="list",
    help="known sources: aliases, torchvision and timm weights (families, or the names a pattern matches)",
    description="List the named sources: registered aliases, then torchvision weights, then timm weights "
    "(the order a bare name is resolved in). Without a pattern, one row per family (resnet, vit, …); with "
    "one, each name with its scheme, default tag, licence and class count. The libraries' names are read "
    "once per installed version and kept in weightport's cache, so listing imports neither library.",
    example="  weightport list\n  weightport list 'resnet1*'\n  weightport list --scheme timm 'vit_base*' --tags\n"
    "  weightport --json list efficientnet_lite0",
    configure=configure,
    run=run,
)
