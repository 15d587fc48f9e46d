"""What the default verification costs next to the load it checks (``verify="auto"`` against ``verify=False``).

    PYTHONPATH=src python benchmarks/verification_cost.py                 # 3 rounds, 1 thread and default
    PYTHONPATH=src python benchmarks/verification_cost.py --rounds 5 --cases vit_b_16

For each case the source architecture is built with random weights and saved to a temp file (no
download); each load is ``load_weights(target, path)`` into a freshly built target (the build is
not timed), once with ``verify=False`` and once verified by default, with the target's own head and
with a re-initialised 5-class head (the fine-tune case). Rounds are interleaved (every case and
variant once per round) and the medians are reported. Each thread setting runs in a fresh process.
CPU time (``process_time``) is reported beside wall time: on a shared machine it moves far less with
the other processes' load. ``--src OLD/src --src NEW/src`` measures two trees, their processes
alternating. A last, untimed-for-the-table round records where the verification's time goes (the source
architecture's build, the hyper-parameter comparison, each forward pass, and the choice among several
known architectures, which runs before the fill). Results go to
``benchmarks/results/verification_cost.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Case:
    """One load: a source architecture saved to a file, loaded into another library's model."""

    name: str
    source: tuple[str, str]  # (library, architecture)
    target: tuple[str, str]


CASES = [
    Case("vit_b_16", ("torchvision", "vit_b_16"), ("timm", "vit_base_patch16_224")),
    Case("efficientnet_b0", ("torchvision", "efficientnet_b0"), ("timm", "efficientnet_b0")),
    Case("efficientnet_b0 (timm→tv)", ("timm", "efficientnet_b0"), ("torchvision", "efficientnet_b0")),
    Case("regnet_y_400mf", ("torchvision", "regnet_y_400mf"), ("timm", "regnety_004")),
]


def build(library: str, name: str, num_classes: int = 1000) -> Any:
    if library == "torchvision":
        import torchvision

        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def _load(case: Case, path: Path, num_classes: int, verify: bool) -> dict[str, float] | str:
    """The load's times, or why it was refused."""
    import weightport
    from weightport.errors import WeightportError

    target = build(*case.target, num_classes=num_classes)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        report = weightport.load_weights(target, path, **({} if verify else {"verify": False}))
    except WeightportError as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    if verify and not (report.verification or {}).get("passed"):
        raise SystemExit(f"{case.name}: not verified ({report.verification})")
    return {"total": total, "cpu": cpu, "verify": (report.timings or {}).get("verify", 0.0)}


@contextmanager
def _stage_timers(into: dict[str, list[float]]) -> Iterator[None]:
    """Time the verification's stages (by wrapping them) while the block runs."""
    from weightport.loading import equivalence

    def timed(name: Callable[[tuple[Any, ...]], str] | str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            label = name(args) if callable(name) else name
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            except Exception:
                label += " (raised)"
                raise
            finally:
                into[label].append(time.perf_counter() - t0)
        return wrapper

    patched = {
        "auto_verification": "decide the source architecture (before the fill)",
        "_on_meta": "  of which: build a candidate to choose among several",
        "_closest": "  of which: choose the closest of several (before 2c6267a)",
        "_reference": "build the source architecture and give it the checkpoint",
        "hyperparameter_differences": "compare hyper-parameters",
        "_without": "set the heads aside",
    }
    saved = {n: getattr(equivalence, n) for n in [*patched, "_run_both"] if hasattr(equivalence, n)}
    try:
        for n, label in patched.items():
            if n in saved:
                setattr(equivalence, n, timed(label, saved[n]))
        equivalence._run_both = timed(lambda a: f"forward both on {tuple(a[2])}", saved["_run_both"])
        yield
    finally:
        for n, fn in saved.items():
            setattr(equivalence, n, fn)


def child(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cases = [c for c in CASES if not args.cases or c.name in args.cases]
    variants = [(c, n, v) for c in cases for n in (1000, 5) for v in (False, True)]
    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    refused: dict[str, str] = {}
    stages: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="verification-cost-") as tmp:
        paths = {}
        for c in cases:
            torch.manual_seed(0)
            paths[c.name] = Path(tmp) / f"{c.source[0]}-{c.source[1]}.pth"
            torch.save(build(*c.source).state_dict(), paths[c.name])
        for c, n, v in variants:  # warm-up: imports, first calls, page cache
            got = _load(c, paths[c.name], n, v)
            if isinstance(got, str):
                refused[f"{c.name}|{n}"] = got
        variants = [(c, n, v) for c, n, v in variants if f"{c.name}|{n}" not in refused]
        for _ in range(args.rounds):
            for c, n, v in variants:
                got = _load(c, paths[c.name], n, v)
                key = f"{c.name}|{n}|{'auto' if v else 'off'}"
                if isinstance(got, str):
                    raise SystemExit(f"{key}: refused after loading in the warm-up: {got}")
                for k, t in got.items():
                    times[key][k].append(t)
        for c in cases:
            for n in (1000, 5):
                if f"{c.name}|{n}" in refused:
                    continue
                spent: dict[str, list[float]] = defaultdict(list)
                with _stage_timers(spent):
                    _load(c, paths[c.name], n, True)
                stages[f"{c.name}|{n}"] = {k: v for k, v in spent.items()}
    return {"threads": torch.get_num_threads(), "rounds": args.rounds,
            "load_average": os.getloadavg(), "torch": torch.__version__,
            "times": {k: {s: statistics.median(v) for s, v in d.items()} for k, d in times.items()},
            "extra": _paired(times),
            "stages": {k: {s: sum(v) for s, v in d.items()} for k, d in stages.items()},
            "refused": refused, "cases": [c.name for c in cases]}


def _paired(times: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Per case: the verified load minus the unverified one of the same round (they run one after the other),
    as the median and the minimum over the rounds, in wall and CPU time."""
    out = {}
    for key in times:
        if key.endswith("|auto"):
            off = times[key[: -len("auto")] + "off"]
            on = times[key]
            wall = [a - b for a, b in zip(on["total"], off["total"])]
            cpu = [a - b for a, b in zip(on["cpu"], off["cpu"])]
            out[key[: -len("|auto")]] = {"wall": statistics.median(wall), "wall_min": min(wall),
                                         "cpu": statistics.median(cpu), "cpu_min": min(cpu),
                                         "off_min": min(off["total"])}
    return out


def table(run: dict[str, Any]) -> list[str]:
    lines = [f"### {run.get('label', 'this tree')}: {run['threads']} thread(s), median of {run['rounds']} interleaved "
             f"rounds, load average {run['load_average'][0]:.1f} at the end", "",
             "| case | head | load, verify=False | load, verified | verification (report) "
             "| extra over verify=False, median (min) | extra CPU time, median (min) |",
             "|---|---|---|---|---|---|---|"]
    for name in run["cases"]:
        for n in (1000, 5):
            head = "own (1000)" if n == 1000 else "re-initialised (5)"
            if f"{name}|{n}" in run["refused"]:
                lines.append(f"| {name} | {head} | refused: {run['refused'][f'{name}|{n}']} | | | | |")
                continue
            off, on = run["times"][f"{name}|{n}|off"], run["times"][f"{name}|{n}|auto"]
            paired = run["extra"][f"{name}|{n}"]
            extra, cpu = paired["wall"], paired["cpu"]
            lines.append(f"| {name} | {head} | {off['total']:.3f} s | {on['total']:.3f} s | {on['verify']:.3f} s | "
                         f"{extra:+.3f} s ({extra / off['total']:+.0%}) ({paired['wall_min']:+.3f} s) | "
                         f"{cpu:+.3f} s ({cpu / off['cpu']:+.0%}) ({paired['cpu_min']:+.3f} s) |")
    lines += ["", "Where a verified load's extra time goes (one load, stages summed):", ""]
    for key, spent in run["stages"].items():
        name, n = key.split("|")
        parts = ", ".join(f"{k} {v:.3f} s" for k, v in spent.items())
        lines.append(f"- {name}, {'own head' if n == '1000' else 're-initialised head'}: {parts}")
    return lines + [""]


def _label(src: Path) -> str:
    """The commit a src folder's checkout is at (or the folder)."""
    try:
        head = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = ""
    return f"weightport at {head}" if head else f"weightport in {src}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, action="append",
                        help="torch threads (repeatable; 0 = torch's default); default: 1 and 0")
    parser.add_argument("--cases", action="append", help="only this case (repeatable): " +
                        ", ".join(c.name for c in CASES))
    parser.add_argument("--src", action="append", type=Path,
                        help="measure the weightport in this src folder instead (repeatable: before/after, "
                        "their children alternate)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "verification_cost.md")
    args = parser.parse_args(argv)
    if args.child:
        args.threads = args.threads[0] if args.threads else 0
        print(json.dumps(child(args)))
        return 0
    runs = []
    for threads in args.threads or [1, 0]:
        for src in args.src or [ROOT / "src"]:
            command = [sys.executable, __file__, "--child", "--threads", str(threads), "--rounds", str(args.rounds),
                       *(a for c in args.cases or [] for a in ("--cases", c))]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src.resolve()), str(ROOT / "benchmarks")])}
            out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
            runs.append({**json.loads(out.strip().splitlines()[-1]), "label": _label(src)})
            print("\n".join(table(runs[-1])))
    shown = " ".join(a for a in (argv if argv is not None else sys.argv[1:]))
    text = ["# What verification costs", "",
            f"`python benchmarks/verification_cost.py {shown}`".replace(" `", "`"),
            f" on {os.cpu_count()} cores, torch {runs[0]['torch']}. Each load is `load_weights(target, file)` into "
            "a freshly built target (build not timed); \"extra\" is the verified load's time minus the "
            "unverified one's in the same round (it includes choosing the source architecture, which runs before "
            "the fill, and the copy of the model's weights kept to restore it if the verification fails).", ""]
    for run in runs:
        text += table(run)
    args.out.write_text("\n".join(text))
    args.out.with_suffix(".json").write_text(json.dumps(runs, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
