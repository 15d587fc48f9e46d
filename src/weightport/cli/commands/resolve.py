"""``weightport resolve SOURCE``: what a source string means, and whether it is cached (no download)."""

from __future__ import annotations

import argparse
from typing import Any

from weightport.cli.common import add_fetch_arguments, fetch_options
from weightport.cli.errors import OK
from weightport.cli.output import Output, pairs
from weightport.cli.registry import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a source string or path")
    add_fetch_arguments(parser)


def run(args: argparse.Namespace, out: Output) -> int:
    from weightport.registry.resolve import resolve
    from weightport.registry.schemes import get_adapter

    source = resolve(args.source)
    adapter = get_adapter(source.scheme)
    cached = adapter.cached_path(source, fetch_options(args))
    data: dict[str, Any] = {
        **source.to_dict(),
        "adapter": f"{type(adapter).__module__}.{type(adapter).__qualname__}",
        "cached": cached is not None,
        "cached_path": str(cached) if cached is not None else None,
    }

    def render(console) -> None:
        rows: list[tuple[str, Any]] = [
            ("source", source.uri), ("scheme", source.scheme), ("adapter", data["adapter"]),
            ("location", source.location), ("revision", source.revision), ("file", source.filename),
            ("sha256", source.sha256), ("size", source.size), ("license", source.license),
            ("resolved by", source.resolved_by), ("layout", source.layout),
            ("classes", f"{len(source.classes)} ({', '.join(source.classes[:3])}, …)" if source.classes else None),
            ("head", source.head), ("first conv", source.first_conv),
            ("preprocessing", source.preprocessing.to_dict() if source.preprocessing else None),
            ("cached", f"yes: {cached}" if cached is not None else "no (fetched on first use)"),
        ]
        console.print(pairs(rows))

    out.emit(data, render)
    return OK


COMMAND = Command(
    name="resolve",
    help="what a source string means and whether it is cached (no download)",
    description="Resolve a source string to its adapter, location, revision, pinned sha256 and metadata, "
    "and say whether (and where) it is cached. Nothing is downloaded.",
    example="  weightport resolve resnet18\n  weightport resolve hf:timm/resnet18.a1_in1k\n"
    "  weightport --json resolve ./checkpoints/last.ckpt",
    configure=configure,
    run=run,
)
