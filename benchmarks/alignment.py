"""Does the memory alignment of mapped weights matter? Forward and training-step speed, and results.

A model loaded on the fast path computes with tensors that live in the checkpoint file's pages.
Where each tensor starts depends on the file: the reference safetensors writer aligns tensor data
to its element size only, weightport's writer (``save_pretrained``, ``convert``, the conversion
cache) to 64 bytes. This script loads the same weights three ways, into the same architecture:

- ``mapped, reference writer``: a file from ``safetensors.torch.save_file`` (how foreign files are),
- ``mapped, weightport writer``: the same tensors from ``weightport.formats.safetensors_writer``,
- ``owned copy``: the tensors cloned into fresh (allocator-aligned) memory, the slow path's state,

and measures, in interleaved rounds, a forward pass (eval, no grad) and a training step (forward,
backward, SGD step) with 1 and 2 threads, and whether the outputs are bit-equal to the owned copy's.

    python benchmarks/alignment.py [--models efficientnet_b0 resnet50] [--rounds 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import timm
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from weightport.formats.safetensors_writer import write_safetensors

VARIANTS = ("mapped, reference writer", "mapped, weightport writer", "owned copy")


def _mapped(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as reader:
        return {k: reader.get_tensor(k) for k in reader.keys()}


def _build(arch: str, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False)
    model.load_state_dict(state, assign=True, strict=True)
    return model


def _misaligned_bytes(state: dict[str, torch.Tensor]) -> float:
    total = sum(t.nbytes for t in state.values())
    return sum(t.nbytes for t in state.values() if t.data_ptr() % 64) / total


def _time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(arch: str, image: int, batch: int, rounds: int, repeat: int, workdir: Path) -> list[dict]:
    torch.manual_seed(0)
    reference = timm.create_model(arch, pretrained=False).state_dict()
    files = {VARIANTS[0]: workdir / f"{arch}.reference.safetensors",
             VARIANTS[1]: workdir / f"{arch}.aligned.safetensors"}
    save_file({k: v.contiguous() for k, v in reference.items()}, str(files[VARIANTS[0]]))
    write_safetensors(reference, files[VARIANTS[1]])
    x = torch.randn(batch, 3, image, image, generator=torch.Generator().manual_seed(1))
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        states = {v: _mapped(p) for v, p in files.items()}
        states[VARIANTS[2]] = {k: v.clone() for k, v in reference.items()}
        models = {v: _build(arch, s).eval() for v, s in states.items()}
        with torch.no_grad():
            outputs = {v: m(x) for v, m in models.items()}
        forward: dict[str, list[float]] = {v: [] for v in VARIANTS}
        step: dict[str, list[float]] = {v: [] for v in VARIANTS}
        trained = {v: _build(arch, _fresh(v, files, reference)) for v in VARIANTS}  # trained apart from `models`
        optimisers = {v: torch.optim.SGD(m.parameters(), lr=1e-4) for v, m in trained.items()}
        for v, m in trained.items():  # the first step copies the mapped pages it writes: not timed
            _train_step(m, optimisers[v], x)
        for _ in range(rounds):  # interleaved, so load on the machine hits every variant alike
            for v in VARIANTS:
                with torch.no_grad():
                    forward[v].append(_time(lambda m=models[v]: m(x), repeat))
                step[v].append(_time(lambda m=trained[v], o=optimisers[v]: _train_step(m, o, x), repeat))
        base_f, base_s = statistics.median(forward[VARIANTS[2]]), statistics.median(step[VARIANTS[2]])
        for v in VARIANTS:
            f, s = statistics.median(forward[v]), statistics.median(step[v])
            diff = (outputs[v] - outputs[VARIANTS[2]]).abs().max().item()
            rows.append({"model": arch, "threads": threads, "variant": v,
                         "misaligned_bytes": round(_misaligned_bytes(states[v]), 4),
                         "forward_s": round(f, 4), "forward_ratio": round(f / base_f, 3),
                         "train_step_s": round(s, 4), "train_step_ratio": round(s / base_s, 3),
                         "max_abs_diff_vs_owned": diff, "bit_equal": diff == 0.0})
    return rows


def _fresh(variant: str, files: dict[str, Path], reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return _mapped(files[variant]) if variant in files else {k: v.clone() for k, v in reference.items()}


def _train_step(model: torch.nn.Module, optimiser: torch.optim.Optimizer, x: torch.Tensor) -> None:
    model.train()
    optimiser.zero_grad(set_to_none=True)
    model(x).float().logsumexp(dim=1).mean().backward()
    optimiser.step()


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Mapped weights: does their memory alignment matter?",
        "",
        f"`python benchmarks/alignment.py` on {_cpu()}, "
        f"{torch.get_num_threads()} threads max, torch {torch.__version__}; batch {args.batch} at {args.image} px, "
        f"{args.rounds} interleaved rounds × {args.repeat} runs, medians. Ratios are to the owned copy.",
        "",
        "| model | threads | weights | misaligned bytes | forward s (ratio) | train step s (ratio) "
        "| max abs diff vs owned | bit-equal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['threads']} | {r['variant']} | {100 * r['misaligned_bytes']:.1f}% "
                     f"| {r['forward_s']:.4f} ({r['forward_ratio']:.2f}×) "
                     f"| {r['train_step_s']:.4f} ({r['train_step_ratio']:.2f}×) "
                     f"| {r['max_abs_diff_vs_owned']:.1e} | {'yes' if r['bit_equal'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", nargs="+", default=["efficientnet_b0", "mobilenetv3_small_100", "resnet50"])
    parser.add_argument("--image", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for arch in args.models for r in measure(arch, args.image, args.batch, args.rounds, args.repeat,
                                                           Path(tmp))]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "alignment.json").write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in
                                                                                 vars(args).items()}}, indent=2))
    (args.out / "alignment.md").write_text(markdown(rows, args))
    print(markdown(rows, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
