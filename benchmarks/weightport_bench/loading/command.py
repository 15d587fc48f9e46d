"""The command line of the loading benchmark: ``weightport bench load`` or ``benchmarks/loading.py``."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weightport_bench.loading.approaches import APPROACHES, FORMATS

logger = logging.getLogger("weightport.bench")

DEFAULT_MODELS: tuple[str, ...] = ("resnet50", "vit_base_patch16_224", "convnext_base", "vit_large_patch16_224")
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "weightport-bench-loading"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The benchmark's arguments, added to ``parser`` (a CLI sub-command's) or to a new parser."""
    parser = parser or argparse.ArgumentParser(
        prog="weightport bench load",
        description="Time and measure the memory of loading checkpoints, each approach in its own fresh process.",
    )
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="ARCH",
                        help="timm architectures (random weights are written once; default: %(default)s)")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS,
                        help="checkpoint formats (default: all)")
    parser.add_argument("--approaches", nargs="+", default=list(APPROACHES), choices=list(APPROACHES),
                        metavar="NAME", help=f"approaches to run (default: all: {', '.join(APPROACHES)})")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each approach; medians are reported")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="start another round of runs only if it should end within this many seconds "
                        "(the first round always runs)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="where the checkpoints are written and reused (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"),
                        help="where <name>.md and <name>.json go (default: %(default)s)")
    parser.add_argument("--name", default="loading", help="file name stem of the results (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="OMP/MKL threads of each child (default: unset)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run counts as failed")
    parser.add_argument("--inline", action="store_true",
                        help="run every approach in this process instead of fresh ones: a quick check that "
                        "they all work; the numbers mean nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return parser


def _progress(done: int, total: int, job: Any, record: dict[str, Any]) -> None:
    after = record.get("after_imports_s")
    timing = f"{record.get('wall_s', 0):.2f} s whole, {after:.3f} s after imports" if after is not None else ""
    first_line = (record.get("error") or "").strip().split("\n", 1)[0]
    status = record["status"] if record["status"] == "ok" else f"{record['status']}: {first_line}"
    logger.info("[%d/%d] %s %s %s", done, total, job.key, timing, status)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Write the fixtures, run every job, write the results; return the results document."""
    from weightport_bench.loading.fixtures import ensure_fixture
    from weightport_bench.loading.machine import describe_machine
    from weightport_bench.loading.report import build_document, write_results
    from weightport_bench.loading.runner import Launch, child_env, plan_jobs, run_jobs

    machine = describe_machine()
    fixtures = {arch: ensure_fixture(arch, args.workdir) for arch in args.models}
    jobs = plan_jobs(args.models, args.formats, args.approaches)
    launcher = "inline" if args.inline else "subprocess"
    results = run_jobs(jobs, fixtures, repeat=args.repeat, launch=Launch(child_env(args.threads), args.timeout),
                       launcher=launcher, time_budget=args.time_budget, progress=None if args.quiet else _progress)
    settings = {"models": args.models, "formats": args.formats, "approaches": args.approaches,
                "repeat": args.repeat, "rounds_run": max((len(r.runs) for r in results), default=0),
                "time_budget_s": args.time_budget, "threads": args.threads, "workdir": str(args.workdir),
                "launcher": launcher}
    document = build_document(results, fixtures, machine=machine, settings=settings)
    md, js = write_results(document, args.out_dir, args.name)
    document["written"] = [str(md), str(js)]
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """Run the loading benchmark; returns 1 when weightport or a floor failed to load the right weights.

    Another approach's failure (timm cannot read a Lightning checkpoint, say) is a finding: it is in
    the table and does not change the exit code.
    """
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    document = run(args)
    sys.stdout.write("".join(f"wrote {path}\n" for path in document["written"]))
    failed = [row for t in document["tables"] for row in t["rows"]
              if row["status"] != "ok" and row["group"] in ("weightport", "floor")]
    return 1 if failed else 0
