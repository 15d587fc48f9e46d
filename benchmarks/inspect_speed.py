"""How fast `weightport inspect` answers on a safetensors file, with and without importing torch.

    python benchmarks/inspect_speed.py                 # resnet50-sized file, 7 runs of each way
    python benchmarks/inspect_speed.py --runs 3 --model resnet18

Each way runs in a fresh process (so import time counts, as it does for a user at a shell), the ways
alternate, and the median wall time is reported:

- ``weightport inspect`` (header only): reads the safetensors header in pure Python, never imports torch;
- ``weightport inspect`` with ``WEIGHTPORT_INSPECT_IMPORT_TORCH=1``: the full pipeline (torch, mmapped tensors);
- the usual way: ``import torch; safetensors.torch.load_file(path)`` and count the elements.

The checkpoint is a torchvision model built with random weights (nothing is downloaded), written to a
temp directory. Results go to ``benchmarks/results/inspect.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "inspect.md"
SRC = Path(__file__).resolve().parents[1] / "src"

USUAL = (
    "import sys, torch\nfrom safetensors.torch import load_file\n"
    "sd = load_file(sys.argv[1])\nprint(len(sd), sum(t.numel() for t in sd.values()))"
)


def make_checkpoint(model: str, folder: Path) -> Path:
    """Write a torchvision model's randomly initialised weights as safetensors."""
    import torch
    from safetensors.torch import save_file
    from torchvision import models

    torch.manual_seed(0)
    path = folder / f"{model}.safetensors"
    save_file({k: v.contiguous() for k, v in models.get_model(model, weights=None).state_dict().items()}, str(path))
    return path


def ways(path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each way's command line and extra environment."""
    inspect = [sys.executable, "-m", "weightport.cli", "--json", "inspect", str(path)]
    return {
        "weightport inspect (header only, no torch)": (inspect, {}),
        "weightport inspect, WEIGHTPORT_INSPECT_IMPORT_TORCH=1": (inspect, {"WEIGHTPORT_INSPECT_IMPORT_TORCH": "1"}),
        "import torch; safetensors.torch.load_file": ([sys.executable, "-c", USUAL, str(path)], {}),
    }


def time_once(cmd: list[str], extra_env: dict[str, str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **extra_env}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run(model: str, runs: int) -> str:
    """Time each way ``runs`` times (alternating) and return the Markdown report."""
    with tempfile.TemporaryDirectory() as tmp:
        path = make_checkpoint(model, Path(tmp))
        size = path.stat().st_size
        commands = ways(path)
        for cmd, env in commands.values():  # warm the page cache and .pyc files; not counted
            time_once(cmd, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, (cmd, env) in commands.items():
                times[name].append(time_once(cmd, env))
    base = statistics.median(times[next(iter(times))])
    rows = [
        f"| {name} | {statistics.median(t) * 1000:.0f} ms | {min(t) * 1000:.0f} ms | {max(t) * 1000:.0f} ms | "
        f"{statistics.median(t) / base:.1f}× |"
        for name, t in times.items()
    ]
    import torch

    return "\n".join([
        "# `weightport inspect` on a safetensors file",
        "",
        f"File: torchvision `{model}` (random weights), {size / 1e6:.1f} MB, safetensors. Each way runs in a "
        f"fresh process, {runs} runs, alternating, after one warm-up run each (page cache warm).",
        "",
        "| way | median | min | max | vs header only |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs), "
        f"Python {platform.python_version()}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.",
        "",
        "Reproduce: `python benchmarks/inspect_speed.py"
        + ("" if (model, runs) == ("resnet50", 7) else f" --model {model} --runs {runs}") + "`.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50", help="torchvision model whose weights to write")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each way")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the Markdown report")
    args = parser.parse_args(argv)
    report = run(args.model, args.runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
