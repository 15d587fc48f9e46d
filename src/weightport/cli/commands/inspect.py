"""``weightport inspect SOURCE``: what is in a checkpoint — tensors, sizes, dtypes, key tree, metadata."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from weightport.cli.common import add_fetch_arguments, fetch_options
from weightport.cli.errors import OK
from weightport.cli.output import Output, human_bytes, human_count, pairs, table
from weightport.cli.registry import Command
from weightport.cli.summary import Summary, summarise_opened, summarise_safetensors_file

#: Set to 1 to read safetensors files through torch too (to measure what the header path saves).
IMPORT_TORCH_ENV = "WEIGHTPORT_INSPECT_IMPORT_TORCH"
_METADATA_WIDTH = 300


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a source string or path")
    parser.add_argument("--keys", action="store_true", help="list every key with its dtype and shape")
    parser.add_argument("--allow-global", action="append", default=[], metavar="MODULE.NAME",
                        help="a class a pickle may hold that you trust (repeatable)")
    add_fetch_arguments(parser)


def summarise(args: argparse.Namespace) -> Summary:
    """The summary of ``args.source``, from the header alone when it is a local safetensors file."""
    from weightport.formats import sniff_format
    from weightport.registry.resolve import resolve

    source = resolve(args.source)
    path = Path(source.location)
    header_only = os.environ.get(IMPORT_TORCH_ENV, "").strip() not in {"1", "true", "yes"}
    if header_only and source.scheme == "file" and path.is_file() and sniff_format(path) == "safetensors":
        return summarise_safetensors_file(path, source.uri)
    from weightport.loading.options import LoadOptions
    from weightport.loading.source_io import open_source

    options = LoadOptions(fetch=fetch_options(args), allow_globals=tuple(args.allow_global))
    return summarise_opened(open_source(source, options))


def run(args: argparse.Namespace, out: Output) -> int:
    summary = summarise(args)

    def render(console) -> None:
        dtypes = ", ".join(f"{d} ×{n}" for d, n in summary.dtypes().items())
        console.print(pairs([
            ("source", summary.source), ("path", summary.path), ("format", summary.format),
            ("tensors", len(summary.tensors)),
            ("parameters", f"{human_count(summary.parameters)} ({summary.parameters:,} elements)"),
            ("tensor bytes", human_bytes(summary.tensor_bytes)), ("file size", human_bytes(summary.file_bytes)),
            ("dtypes", dtypes), ("container", summary.container),
            ("dropped", ", ".join(summary.dropped[:12]) + (" …" if len(summary.dropped) > 12 else "")),
            ("key rules", ", ".join(f"{r} ({n} keys)" for r, n in summary.key_rules.items())),
            ("top level", ", ".join(f"{k} ({n})" for k, n in summary.top_level().items())),
        ]))
        console.print("\n[bold]keys[/bold] (folded)")
        for line in summary.tree():
            console.print(f"  {line}", markup=False, soft_wrap=True)
        if summary.metadata:
            console.print("\n[bold]metadata[/bold]")
            for name, value in summary.metadata.items():
                text = json.dumps(value, default=str)
                text = text if len(text) <= _METADATA_WIDTH else text[:_METADATA_WIDTH] + " …"
                console.print(f"  {name}: {text}", markup=False, soft_wrap=True)
        for note in summary.notes:
            console.print(f"note: {note}", markup=False)
        if args.keys:
            console.print()
            console.print(table("all keys", ("key", "dtype", "shape"),
                                ((t.key, t.dtype, tuple(t.shape)) for t in summary.tensors)))

    out.emit(summary.to_dict(keys=args.keys), render)
    return OK


COMMAND = Command(
    name="inspect",
    help="what a checkpoint holds: tensors, parameters, dtypes, key tree, metadata",
    description="Show a checkpoint's format, tensor and parameter counts, sizes, dtypes, its keys folded by "
    "module, the container and wrapper prefixes found, and its metadata (Lightning hyper-parameters, hub "
    "config, torchvision meta). A local .safetensors file is read from its header only, without torch.",
    example="  weightport inspect model.safetensors\n  weightport inspect last.ckpt --keys\n"
    "  weightport --json inspect torchvision:resnet18",
    configure=configure,
    run=run,
)
