"""``weightport cache {ls,verify,rm,prune}``: what is cached, whether it is intact, and cleaning up."""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weightport.cli.common import add_global_options
from weightport.cli.errors import CHECK_FAILED, OK
from weightport.cli.output import Output, human_bytes, table
from weightport.cli.registry import Command
from weightport.errors import SourceNotFoundError, UsageError

Action = Callable[[argparse.Namespace, Output], int]


def _selected(args: argparse.Namespace, kinds: tuple[str, ...] = ("file",)) -> list[Any]:
    from weightport.cli.cache_inventory import entries

    found = [e for e in entries(args.cache_dir) if e.kind in kinds]
    patterns = getattr(args, "patterns", None)
    if patterns:
        found = [e for e in found if any(e.matches(p) for p in patterns)]
    return found


def _entry_dict(entry: Any) -> dict[str, Any]:
    return {"cache": entry.cache, "path": str(entry.path), "name": entry.path.name, "kind": entry.kind,
            "size": entry.size, "mtime": entry.mtime, "sha256": entry.recorded[0] if entry.recorded else None}


def ls(args: argparse.Namespace, out: Output) -> int:
    from weightport.cli.cache_inventory import cache_roots
    from weightport.fetch.cache import hf_hub_cache

    found = _selected(args, ("file", "temp", "quarantined"))
    roots = {name: str(path) for name, path in cache_roots(args.cache_dir).items()}
    data = {"roots": roots, "huggingface": str(hf_hub_cache()), "entries": [_entry_dict(e) for e in found],
            "total_bytes": sum(e.size for e in found)}

    def render(console) -> None:
        rows = [(e.cache, e.path.name, e.kind, human_bytes(e.size), _date(e.mtime),
                 e.recorded[0][:16] + "…" if e.recorded else None, _short_dir(e, roots)) for e in found]
        console.print(table(None, ("cache", "file", "kind", "size", "modified", "sha256", "in"), rows))
        console.print(f"{len(found)} file(s), {human_bytes(data['total_bytes'])}")
        for name, path in roots.items():
            console.print(f"{name} cache: {path}", markup=False)
        console.print(f"Hugging Face hub cache: {data['huggingface']} (see `hf cache scan`)", markup=False)

    out.emit(data, render)
    return OK


def verify(args: argparse.Namespace, out: Output) -> int:
    from weightport.fetch.integrity import file_sha256

    results = []
    for entry in _selected(args):
        digest = file_sha256(entry.path)
        if entry.recorded is None:
            status = "unrecorded"
        elif entry.recorded == (digest, entry.size):
            status = "ok"
        else:
            status = "mismatch"
        results.append({**_entry_dict(entry), "actual_sha256": digest, "status": status})
    bad = [r for r in results if r["status"] == "mismatch"]

    def render(console) -> None:
        rows = [(r["cache"], r["name"], r["status"].upper() if r["status"] == "mismatch" else r["status"],
                 human_bytes(r["size"]), r["actual_sha256"][:16] + "…") for r in results]
        console.print(table(None, ("cache", "file", "status", "size", "sha256"), rows))
        console.print(f"{len(results)} checked, {len(bad)} mismatch(es)")
        if bad:
            console.print("remove bad copies with `weightport cache rm NAME`; the next load fetches them again")

    out.emit({"results": results, "ok": not bad}, render)
    return CHECK_FAILED if bad else OK


def rm(args: argparse.Namespace, out: Output) -> int:
    from weightport.fetch.cache import lock_path, sidecar_path

    if not args.patterns and not args.all:
        raise UsageError("name what to remove", hint="give file names or globs (see `weightport cache ls`), or --all")
    found = _selected(args, ("file", "temp", "quarantined"))
    if not found:
        what = f"no cached file matches {' '.join(args.patterns)}" if args.patterns else "the caches are empty"
        raise SourceNotFoundError(what, hint="see what is cached with `weightport cache ls`")
    removed = []
    for entry in found:
        if not args.dry_run:
            for path in (entry.path, sidecar_path(entry.path), lock_path(entry.path)):
                path.unlink(missing_ok=True)
            _remove_empty_dir(entry.path.parent)
        removed.append(_entry_dict(entry))
    freed = sum(r["size"] for r in removed)

    def render(console) -> None:
        for r in removed:
            console.print(("would remove " if args.dry_run else "removed ") + r["path"], markup=False)
        console.print(f"{len(removed)} file(s), {human_bytes(freed)}" + (" (dry run)" if args.dry_run else ""))

    out.emit({"removed": removed, "bytes": freed, "dry_run": args.dry_run}, render)
    return OK


def prune(args: argparse.Namespace, out: Output) -> int:
    from weightport.cli.cache_inventory import cache_roots, entries, orphan_sidecars
    from weightport.fetch.sweep import sweep_dir

    removed_temp = sum(sweep_dir(root, args.max_age * 3600) for root in cache_roots(args.cache_dir).values()
                       if root.is_dir())
    quarantined = []
    if args.corrupt:
        for entry in entries(args.cache_dir):
            if entry.kind == "quarantined":
                entry.path.unlink(missing_ok=True)
                quarantined.append(str(entry.path))
    orphans = orphan_sidecars(args.cache_dir)
    for path in orphans:
        path.unlink(missing_ok=True)
    data = {"temp_files": removed_temp, "quarantined": quarantined, "orphan_sidecars": [str(p) for p in orphans]}

    def render(console) -> None:
        console.print(f"removed {removed_temp} stale temp file(s) older than {args.max_age:g} h, "
                      f"{len(quarantined)} quarantined copy(ies), {len(orphans)} orphaned sidecar(s)")

    out.emit(data, render)
    return OK


def _short_dir(entry: Any, roots: dict[str, str]) -> str:
    """The entry's folder under its cache root, long hash names cut (the full path is in --json)."""
    try:
        parts = entry.path.parent.relative_to(roots[entry.cache]).parts
    except ValueError:
        return str(entry.path.parent)
    return "/".join(p if len(p) <= 16 else p[:12] + "…" for p in parts) or "."


def _remove_empty_dir(directory: Path) -> None:
    try:
        directory.rmdir()  # only succeeds when empty: a URL's key directory with nothing left
    except OSError:
        pass


def _date(mtime: float) -> str:
    return datetime.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")


#: The cache actions, by name.
ACTIONS: dict[str, tuple[Action, str]] = {
    "ls": (ls, "list cached files with sizes and recorded sha256"),
    "verify": (verify, "re-hash cached files against their recorded sha256 (exit 3 on a mismatch)"),
    "rm": (rm, "remove cached files by name or glob"),
    "prune": (prune, "remove stale temp files, orphaned sidecars and (with --corrupt) quarantined copies"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, metavar="DIR", help="weightport's cache root (default: "
                        "$WEIGHTPORT_CACHE, else the user cache dir); torch.hub's follows $TORCH_HOME")
    sub = parser.add_subparsers(title="actions", dest="cache_action", metavar="ACTION", required=True)
    for name, (_, text) in ACTIONS.items():
        p = sub.add_parser(name, help=text, description=text)
        add_global_options(p)
        if name in ("verify", "ls"):
            p.add_argument("patterns", nargs="*", metavar="PATTERN", help="file names or globs (default: all)")
        if name == "rm":
            p.add_argument("patterns", nargs="*", metavar="PATTERN",
                           help="file names or globs to remove (required unless --all)")
            p.add_argument("--all", action="store_true", help="remove everything in the caches")
            p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
        if name == "prune":
            p.add_argument("--max-age", type=float, default=24.0, metavar="HOURS",
                           help="remove temp files older than this (default 24; 0: all, stop downloads first)")
            p.add_argument("--corrupt", action="store_true", help="also delete quarantined bad copies")


def run(args: argparse.Namespace, out: Output) -> int:
    action, _ = ACTIONS[args.cache_action]
    return action(args, out)


COMMAND = Command(
    name="cache",
    help="cached files: ls, verify, rm, prune",
    description="Manage the files weightport downloaded: its own cache (URL downloads) and torch.hub's "
    "checkpoint directory (torchvision and timm URLs). Hugging Face repositories stay in huggingface_hub's "
    "cache (see `hf cache scan`).",
    example="  weightport cache ls\n  weightport cache verify\n  weightport cache rm 'resnet18-*.pth'\n"
    "  weightport cache prune --max-age 1",
    configure=configure,
    run=run,
)
