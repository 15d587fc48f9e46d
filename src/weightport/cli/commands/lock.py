"""``weightport lock [SOURCES…]`` / ``weightport lock --check``: write and verify ``weightport.lock``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from weightport.cli.common import add_fetch_arguments, fetch_options
from weightport.cli.errors import CHECK_FAILED, OK
from weightport.cli.output import Output, human_bytes, table
from weightport.cli.registry import Command
from weightport.errors import IntegrityError, UsageError, WeightportError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="sources to fetch and record (default: re-record every source already in the file)")
    parser.add_argument("--file", type=Path, default=Path("weightport.lock"), metavar="PATH",
                        help="the lock file (default: ./weightport.lock)")
    parser.add_argument("--check", action="store_true",
                        help="verify every locked source against the file instead of writing it (exit 3 on a "
                        "difference)")
    add_fetch_arguments(parser)


def write(args: argparse.Namespace, out: Output) -> int:
    from weightport.fetch.weightport_lock import LockFile
    from weightport.lock import lock_sources

    sources = list(args.sources)
    if not sources:
        if not args.file.exists():
            raise UsageError(f"no sources given and {args.file} does not exist",
                             hint="name the sources to lock: weightport lock resnet18 hf:org/repo")
        sources = list(LockFile.load(args.file).sources)
    lock = lock_sources(sources, args.file, options=fetch_options(args))
    entries = {uri: lock.sources[uri].to_dict() for uri in lock.sources}

    def render(console) -> None:
        rows = [(uri, e.get("revision"), human_bytes(e.get("size")), (e.get("sha256") or "")[:16] + "…")
                for uri, e in entries.items()]
        console.print(table(None, ("source", "revision", "size", "sha256"), rows))
        console.print(f"wrote {args.file} ({len(entries)} source(s))", markup=False)

    out.emit({"file": str(args.file), "sources": entries}, render)
    return OK


def check(args: argparse.Namespace, out: Output) -> int:
    from weightport.fetch.step import fetch_files
    from weightport.fetch.weightport_lock import LockFile, check_locked
    from weightport.registry.resolve import resolve

    lock = LockFile.load(args.file)
    wanted = args.sources or list(lock.sources)
    # Fetch without the lock in force (a differing cached copy must be reported, not replaced), then compare.
    options = dataclasses.replace(fetch_options(args), lockfile=False)
    results: list[dict[str, Any]] = []
    for uri in wanted:
        entry = lock.get(uri)
        if entry is None:
            results.append({"source": uri, "status": "not locked", "problem": f"{uri} has no entry in {args.file}"})
            continue
        try:
            source = resolve(uri)
            check_locked(source, fetch_files(source, options), entry)
            results.append({"source": uri, "status": "ok", "problem": None})
        except IntegrityError as exc:
            results.append({"source": uri, "status": "mismatch", "problem": exc.message})
        except WeightportError as exc:
            results.append({"source": uri, "status": "error", "problem": exc.message.splitlines()[0]})
    failed = [r for r in results if r["status"] != "ok"]

    def render(console) -> None:
        console.print(table(None, ("source", "status", "problem"),
                            ((r["source"], r["status"], r["problem"]) for r in results)))
        console.print(f"{len(results) - len(failed)} of {len(results)} source(s) match {args.file}", markup=False)

    out.emit({"file": str(args.file), "ok": not failed, "results": results}, render)
    return CHECK_FAILED if failed else OK


def run(args: argparse.Namespace, out: Output) -> int:
    return check(args, out) if args.check else write(args, out)


COMMAND = Command(
    name="lock",
    help="write or check weightport.lock (what each source resolved to: sha256, size, revision)",
    description="Fetch each source and record its sha256, size and revision in the lock file, so a later run "
    "gets the same bytes (WEIGHTPORT_LOCKFILE=weightport.lock enforces it). With --check, fetch every locked "
    "source and compare instead; exit 3 when one differs.",
    example="  weightport lock resnet18 hf:timm/resnet50.a1_in1k\n  weightport lock --check\n"
    "  weightport lock --file ci/weights.lock https://example.org/model.safetensors",
    configure=configure,
    run=run,
)
