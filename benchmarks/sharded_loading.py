"""Loading into a sharded (FSDP2) model: each rank reading its shards, against "load full, then shard".

    python benchmarks/sharded_loading.py                       # ViT-B/16, 1 and 2 ranks, 3 runs each
    python benchmarks/sharded_loading.py --model vit_small_patch16_224 --ranks 1 2 4 --repeat 1

Each run is a fresh ``torchrun --nproc_per_node N`` (gloo, CPU) on this file; every rank builds
the model, loads the checkpoint one way and reports its peak RSS growth during the load (the
kernel's ``VmHWM``, reset just before) and the seconds from the start of the build to a sharded
model with the weights in it. The checkpoint is written once, with random weights (nothing is
downloaded). Approaches:

- ``weightport``: build on meta, ``fully_shard`` every block and the root, ``weightport.load_weights``
  (each rank reads only its shards from the memory-mapped file);
- ``full then shard``: build normally (random init), ``load_state_dict(safetensors.torch.load_file)``,
  then ``fully_shard`` — what a training script does today.

Results: ``benchmarks/results/sharded_loading.md`` and ``.json`` (medians over runs, per rank).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
APPROACHES = ("weightport", "full then shard")


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(model_name: str, checkpoint: str, approach: str, out: str) -> None:
    """One rank of one run (started by torchrun)."""
    from datetime import timedelta

    import timm
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    import weightport

    dist.init_process_group("gloo", timeout=timedelta(seconds=600))
    torch.set_num_threads(1)
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    import safetensors.torch  # noqa: F401 - imports out of the measurement

    import weightport.loading.sharded

    dist.barrier()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _kib("VmRSS")
    t0 = time.perf_counter()
    read = None
    if approach == "weightport":
        with torch.device("meta"):
            model = timm.create_model(model_name)
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        report = weightport.load_weights(model, checkpoint)
        read = report.distributed["bytes_read"] if report.distributed else None
    else:
        from safetensors.torch import load_file

        model = timm.create_model(model_name)
        model.load_state_dict(load_file(checkpoint))
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
    seconds = time.perf_counter() - t0
    growth = _kib("VmHWM") - before
    # Resident once every local value has been read (as the first forward would): pages the load
    # unmapped from this process come back only where the rank's own shards lie.
    with torch.no_grad():
        for tensor in model.state_dict().values():
            getattr(tensor, "to_local", lambda t=tensor: t)().sum()
    touched = _kib("VmRSS") - before
    result = {"rank": dist.get_rank(), "seconds": seconds, "peak_growth_mib": growth / 1024,
              "resident_after_read_mib": touched / 1024, "bytes_read": read}
    Path(out, f"rank{dist.get_rank()}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


def run(model_name: str, checkpoint: Path, approach: str, ranks: int, work: Path) -> list[dict]:
    out = Path(tempfile.mkdtemp(dir=work))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
           __file__, "--child", model_name, str(checkpoint), approach, str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise SystemExit(f"{approach} on {ranks} rank(s) failed:\n{done.stderr[-3000:]}")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(ranks)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_base_patch16_224")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "sharded_loading")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    import timm
    import torch
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint = work / f"{args.model}.safetensors"
        torch.manual_seed(0)
        save_file({k: v.contiguous() for k, v in timm.create_model(args.model).state_dict().items()},
                  str(checkpoint))
        size_mib = checkpoint.stat().st_size / 2**20
        rows = []
        for ranks in args.ranks:
            samples: dict[str, list[list[dict]]] = {a: [] for a in APPROACHES}
            for _ in range(args.repeat):  # alternate approaches, so drift hits both alike
                for approach in APPROACHES:
                    samples[approach].append(run(args.model, checkpoint, approach, ranks, work))
            for approach in APPROACHES:
                per_rank = list(zip(*samples[approach]))
                rows.append({
                    "approach": approach, "ranks": ranks,
                    "seconds": max(statistics.median(r["seconds"] for r in runs) for runs in per_rank),
                    "peak_growth_mib": [round(statistics.median(r["peak_growth_mib"] for r in runs), 1)
                                        for runs in per_rank],
                    "resident_after_read_mib": [
                        round(statistics.median(r["resident_after_read_mib"] for r in runs), 1) for runs in per_rank],
                    "bytes_read_mib": [None if runs[0]["bytes_read"] is None
                                       else round(runs[0]["bytes_read"] / 2**20, 1) for runs in per_rank],
                })  # fmt: skip
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
               "platform": platform.platform(), "load_average": os.getloadavg()}
    result = {"model": args.model, "checkpoint_mib": round(size_mib, 1), "repeat": args.repeat,
              "machine": machine, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


def _markdown(result: dict) -> str:
    lines = [
        f"# Sharded loading: {result['model']}, {result['checkpoint_mib']} MiB safetensors",
        "",
        f"Median of {result['repeat']} runs per cell, each a fresh `torchrun` (gloo, CPU, one thread per rank). "
        "Peak RSS growth is per rank during the load (VmHWM reset just before the build); resident after reading "
        "is VmRSS growth once every local tensor has been summed (what the first forward touches); time is the "
        "slowest rank's, from the build to a sharded model holding the weights.",
        "",
        "| approach | ranks | time (s) | peak RSS growth per rank (MiB) | × checkpoint | resident after reading "
        "every shard (MiB) | × checkpoint | read per rank (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    size = result["checkpoint_mib"]
    for row in result["rows"]:
        growth = row["peak_growth_mib"]
        read = "—" if row["bytes_read_mib"][0] is None else " / ".join(f"{r:g}" for r in row["bytes_read_mib"])
        resident = row["resident_after_read_mib"]
        lines.append(f"| {row['approach']} | {row['ranks']} | {row['seconds']:.2f} | "
                     f"{' / '.join(f'{g:g}' for g in growth)} | {max(growth) / size:.2f} | "
                     f"{' / '.join(f'{g:g}' for g in resident)} | {max(resident) / size:.2f} | {read} |")
    m = result["machine"]
    lines += ["", f"Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}, torch {m['torch']}; "
              f"load average at the end {', '.join(f'{x:.1f}' for x in m['load_average'])}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
