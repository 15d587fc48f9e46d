"""One rank of a sharded-load test, started by ``torchrun --nproc_per_node 2`` (gloo, CPU).

``python -m torch.distributed.run --standalone --nproc_per_node 2 sharded_child.py MODE CHECKPOINT OUT``
writes ``OUT/rank<N>.json`` with what the rank saw. Modes:

- ``fsdp``: a ViT built on meta, every block and the root sharded with ``fully_shard``; loaded with a
  new head (re-initialised), a 1-channel stem (``channels`` fitter) and a larger image (``pos_embed``).
- ``tp``: tensor-parallel placements: the MLPs' ``fc1`` column-wise (``Shard(0)``), ``fc2`` row-wise
  (``Shard(1)`` weight, replicated bias), the head column-wise, the patch kernel ``Shard(0)`` and
  resized (``patch_embed`` fitter, which needs the whole tensor).
- ``failures``: with a checkpoint whose only NaN lies in rank 1's half, two loads that must fail on
  every rank with the same error: into a ViT of another width (nothing fits), and into the right ViT.

Each rank also loads the same checkpoint into an unsharded model in this process (the reference).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path

import timm
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, Shard, distribute_module, distribute_tensor
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

import weightport

#: The checkpoint's ViT; the tests write it with :func:`checkpoint_model`.
VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 192, "depth": 4, "num_heads": 3, "num_classes": 10}

#: What each mode builds (the model side of the load).
MODELS = {
    "fsdp": {**VIT, "num_classes": 5, "in_chans": 1, "img_size": 48},
    "tp": {**VIT, "num_classes": 6, "patch_size": 4},
    "wrong": {**VIT, "embed_dim": 96},
    "failures": dict(VIT),
}


def checkpoint_model() -> torch.nn.Module:
    torch.manual_seed(1)
    return timm.create_model("vit_tiny_patch16_224", **VIT)


def build(mode: str) -> torch.nn.Module:
    return timm.create_model("vit_tiny_patch16_224", **MODELS[mode])


def shard(mode: str, model: torch.nn.Module, mesh) -> None:
    if mode == "tp":
        for block in model.blocks:
            parallelize_module(block.mlp, mesh, {"fc1": ColwiseParallel(), "fc2": RowwiseParallel()})
        parallelize_module(model, mesh, {"head": ColwiseParallel()})

        def rows(name, module, device_mesh):
            for key, param in list(module.named_parameters(recurse=False)):
                module.register_parameter(key, torch.nn.Parameter(distribute_tensor(param, device_mesh, [Shard(0)])))

        distribute_module(model.patch_embed.proj, mesh, rows)
        return
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def gathered(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in model.state_dict().items()}


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    try:  # Linux: writing 5 resets VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def failures(checkpoint: str, mesh) -> dict:
    errors = {}
    for mode in ("wrong", "failures"):
        with torch.device("meta"):
            model = build(mode)
        shard(mode, model, mesh)
        try:
            weightport.load_weights(model, checkpoint)
        except Exception as exc:
            errors[mode] = {"type": type(exc).__name__, "message": str(exc),
                            "weightport": isinstance(exc, weightport.WeightportError),
                            "untouched": all((v.to_local() if isinstance(v, DTensor) else v).is_meta
                                             for v in model.state_dict().values())}
    return errors


def main() -> None:
    mode, checkpoint, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))  # a hang fails, it does not stall
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    mesh = init_device_mesh("cpu", (world,))
    if mode == "failures":
        (out / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "errors": failures(checkpoint, mesh)}))
        dist.destroy_process_group()
        return
    with torch.device("meta"):
        model = build(mode)
    shard(mode, model, mesh)
    result: dict = {"rank": rank}
    expected = None
    if mode in ("fsdp", "tp"):  # the reference first: it also warms the imports out of the measurement
        torch.manual_seed(0)
        reference = build(mode)
        torch.manual_seed(0)
        weightport.load_weights(reference, checkpoint)
        expected = reference.state_dict()
    torch.manual_seed(0)
    peak_reset = reset_peak()
    before = rss_kib("VmRSS")
    t0 = time.perf_counter()
    try:
        report = weightport.load_weights(model, checkpoint)
    except Exception as exc:
        result["error"] = {"type": type(exc).__name__, "message": str(exc),
                           "weightport": isinstance(exc, weightport.WeightportError)}
    else:
        result["seconds"] = time.perf_counter() - t0
        result["peak_rss_growth_kib"] = rss_kib("VmHWM") - before if peak_reset else None
        result["report"] = report.to_dict()
        result["meta_left"] = [k for k, v in model.state_dict().items()
                               if (v.to_local() if isinstance(v, DTensor) else v).is_meta]
        full = gathered(model)
        assert expected is not None
        result["keys_equal"] = sorted(full) == sorted(expected)
        result["differ"] = [k for k in expected if k not in full or not torch.equal(full[k], expected[k])]
        if mode == "fsdp":  # the sharded model trains: one step forward and backward
            model(torch.randn(2, 1, 48, 48)).sum().backward()
            result["trained"] = True
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
