"""``weightport convert SOURCE OUT.safetensors``: rewrite any readable checkpoint as safetensors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from weightport.cli.common import add_fetch_arguments, add_load_arguments, load_options
from weightport.cli.errors import OK
from weightport.cli.output import Output, human_bytes, pairs
from weightport.cli.registry import Command
from weightport.errors import UsageError
from weightport.formats.safetensors_writer import write_safetensors

#: Prefix of the string metadata weightport writes into the safetensors header.
META_PREFIX = "weightport."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a source string or path")
    parser.add_argument("output", type=Path, help="the .safetensors file to write")
    parser.add_argument("--into-layout", metavar="MODULE:CALLABLE",
                        help="map the keys to this model's state-dict layout first (through a plan), so later "
                        "loads are exact")
    parser.add_argument("--keep-keys", action="store_true",
                        help="keep keys as stored (default: wrapper prefixes such as module. are stripped)")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    add_load_arguments(parser)
    add_fetch_arguments(parser)


def _check_output(args: argparse.Namespace) -> None:
    if args.output.suffix != ".safetensors":
        raise UsageError(f"output {args.output} does not end with .safetensors",
                         hint="name the output file something.safetensors")
    if args.output.exists() and not args.force:
        raise UsageError(f"output {args.output} exists", hint="pass --force to overwrite it")


def _tensors_and_info(args: argparse.Namespace) -> tuple[dict[str, Any], Any, dict[str, str]]:
    """The tensors to write, the source provenance, and extra metadata."""
    from weightport.loading.options import LoadOptions
    from weightport.loading.source_io import open_source

    options = LoadOptions.build(**load_options(args))
    opened = open_source(args.source, options)
    extra: dict[str, str] = {}
    if args.into_layout:
        from weightport.cli.modelspec import build_model
        from weightport.loading.apply import produce_tensors
        from weightport.loading.planner import build_plan

        model = build_model(args.into_layout, num_classes=args.num_classes)
        planned = build_plan(model, opened, options)
        planned.plan.check()
        tensors = produce_tensors(planned, check_finite=options.check_finite)
        extra["layout"] = args.into_layout
        extra["plan_counts"] = json.dumps(planned.plan.counts())
    elif args.keep_keys:
        tensors = dict(opened.extracted.tensors)
    else:
        tensors = dict(opened.tensors)
    return tensors, opened.info(), extra


def _metadata(info: Any, extra: dict[str, str], keep: dict[str, str]) -> dict[str, str]:
    meta = {"format": "pt", **keep}
    fields = {"source": info.uri, "sha256": info.sha256, "source_format": info.format, "container": info.container}
    meta.update({META_PREFIX + k: str(v) for k, v in fields.items() if v is not None})
    if info.meta.get("checkpoint"):
        meta[META_PREFIX + "checkpoint_metadata"] = json.dumps(info.meta["checkpoint"], default=str)
    provenance = {k: v for k, v in info.meta.items() if k != "checkpoint"}
    if provenance:
        meta[META_PREFIX + "provenance"] = json.dumps(provenance, default=str)
    meta.update({META_PREFIX + k: v for k, v in extra.items()})
    return meta


def run(args: argparse.Namespace, out: Output) -> int:
    _check_output(args)
    tensors, info, extra = _tensors_and_info(args)
    keep = dict(info.meta.get("checkpoint", {}).get("safetensors", {}) or {})
    metadata = _metadata(info, extra, {k: str(v) for k, v in keep.items()})
    write_safetensors(tensors, args.output, metadata)
    size = args.output.stat().st_size
    data = {"source": info.uri, "output": str(args.output), "tensors": len(tensors), "bytes": size,
            "layout": args.into_layout, "metadata": metadata}

    def render(console) -> None:
        console.print(pairs([("source", info.uri), ("written", str(args.output)), ("tensors", len(tensors)),
                             ("size", human_bytes(size)), ("layout", args.into_layout)]))

    out.emit(data, render)
    return OK


COMMAND = Command(
    name="convert",
    help="rewrite any readable checkpoint as safetensors (optionally in a model's key layout)",
    description="Read SOURCE (pickle, Lightning .ckpt, .npz, sharded, hub or URL) and write its weights to "
    "OUTPUT.safetensors: contiguous, 64-byte aligned, shared storage written as copies, the source's uri, sha256 "
    "and format kept as string metadata. With --into-layout the keys are first mapped into the model's layout through "
    "a plan (renamed, adapted; the plan must succeed), so loading the result is an exact, memory-mapped load.",
    example="  weightport convert last.ckpt model.safetensors\n"
    "  weightport convert timm:resnet18.a1_in1k r18.safetensors --into-layout torchvision:resnet18",
    configure=configure,
    run=run,
)
