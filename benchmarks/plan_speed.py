"""How long ``weightport.plan()`` takes on a model with 5,000 tensors (per-tensor overheads).

    python benchmarks/plan_speed.py               # 5,000 tensors, 5 runs, median
    python benchmarks/plan_speed.py --tensors 20000 --runs 3

The model is 2,500 small ``nn.Linear`` layers (a weight and a bias each) and the checkpoint a
safetensors file of the same state written to a temp directory, so the time is the plan's own work
per tensor (matching, fitting decisions, the report's records), not bytes. The result
is printed and written to ``benchmarks/results/plan_speed.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch
    from safetensors.torch import save_file
    from torch import nn

    import weightport

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tensors", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/plan_speed.md"))
    args = parser.parse_args()
    model = nn.Sequential(*[nn.Linear(8, 8) for _ in range(args.tensors // 2)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        weightport.plan(model, path)  # the first plan pays imports and the file's digest
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            plan = weightport.plan(model, path)
            times.append(time.perf_counter() - t0)
    assert len(plan.loaded) == len(model.state_dict())
    text = (f"# plan() speed\n\n`python benchmarks/plan_speed.py --tensors {args.tensors} --runs {args.runs}`: "
            f"plan() of a {len(plan.loaded)}-tensor model took {statistics.median(times):.3f} s (median; "
            f"min {min(times):.3f} s), torch threads {torch.get_num_threads()}, load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n")
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
