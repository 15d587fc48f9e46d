"""``weightport list [PATTERN]``: the sources weightport knows by name."""

from __future__ import annotations

import argparse
import dataclasses

from weightport.cli.errors import OK
from weightport.cli.output import Output, table
from weightport.cli.registry import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", help="glob on the name or scheme:name (e.g. 'resnet*', 'timm:vit_*')")
    parser.add_argument("--scheme", choices=("alias", "torchvision", "timm"), help="only names from this table")
    parser.add_argument("--tags", action="store_true", help="show every weights tag, not only the default")


def run(args: argparse.Namespace, out: Output) -> int:
    from weightport.registry.listing import list_sources

    found = [s for s in list_sources(args.pattern) if args.scheme is None or s.scheme == args.scheme]
    data = [dataclasses.asdict(s) for s in found]

    def render(console) -> None:
        rows = [
            (s.name, s.scheme, ", ".join(s.tags) if args.tags and s.tags else s.default_tag, s.license,
             s.num_classes, s.uri)
            for s in found
        ]
        console.print(table(None, ("name", "scheme", "tags" if args.tags else "default tag", "license",
                                   "classes", "source"), rows))
        console.print(f"{len(found)} source(s)" + (f" matching {args.pattern!r}" if args.pattern else ""))

    out.emit(data, render)
    return OK


COMMAND = Command(
    name="list",
    help="known sources: aliases, torchvision and timm weights",
    description="List the named sources: registered aliases, then torchvision weights, then timm weights "
    "(the order a bare name is resolved in), with scheme, default tag, licence and class count.",
    example="  weightport list 'resnet1*'\n  weightport list --scheme timm 'vit_base*' --tags\n"
    "  weightport --json list efficientnet_lite0",
    configure=configure,
    run=run,
)
