"""One rank of a sharded-load test, started by ``torchrun --nproc_per_node 2`` (gloo, CPU).

``python -m torch.distributed.run --standalone --nproc_per_node 2 sharded_child.py MODE CHECKPOINT OUT``
writes ``OUT/rank<N>.json`` with what the rank saw. Modes:

- ``fsdp``: a ViT built on meta, every block and the root sharded with ``fully_shard``; loaded with a
  new head (re-initialised), a 1-channel stem (``channels`` fitter) and a larger image (``pos_embed``).
- ``tp``: tensor-parallel placements: the MLPs' ``fc1`` column-wise (``Shard(0)``), ``fc2`` row-wise
  (``Shard(1)`` weight, replicated bias), the head column-wise, the patch kernel ``Shard(0)`` and
  resized (``patch_embed`` fitter, which needs the whole tensor).
- ``mesh2d``: 2-D meshes ((1, 2) and (2, 1) on two ranks, (2, 2) on four) with a placement per mesh
  dimension on different tensor dimensions (``[Shard(0), Shard(1)]``, ``[Shard(1), Shard(0)]``, both
  on dimension 0, ``Replicate`` on one), a resized patch kernel and position embedding (fitters that
  run whole and are scattered from the mesh's origin) and a new head.
- ``fsdp1``: FSDP1 ``FullyShardedDataParallel`` (CPU, ``device_id=cpu``), blocks wrapped: the wrapper
  loads through its full state dict; a module inside it and a ``SHARDED_STATE_DICT`` are refused.
- ``fabric``: Lightning Fabric with ``ModelParallelStrategy(parallelize_fn)``: the function shards
  with ``fully_shard`` and loads; ``fabric.setup`` then finds nothing left on meta.
- ``verify``: a torchvision MobileNetV3 checkpoint (CHECKPOINT) into timm's, fully sharded: a mapping
  that one process verifies by default is refused sharded; after one single-process load with
  ``convert_cache=True`` stored the verified conversion, the sharded load reads it.
- ``failures``: with a checkpoint whose only NaN lies in rank 1's half, two loads that must fail on
  every rank with the same error: into a ViT of another width (nothing fits), and into the right ViT
  with ``check_finite=True``.

Each rank also loads the same checkpoint into an unsharded model in this process (the reference).
"""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import timedelta
from pathlib import Path

import timm
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_module, distribute_tensor
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

import weightport

#: The checkpoint's ViT; the tests write it with :func:`checkpoint_model`.
VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 192, "depth": 4, "num_heads": 3, "num_classes": 10}

#: What each mode builds (the model side of the load).
MODELS = {
    "fsdp": {**VIT, "num_classes": 5, "in_chans": 1, "img_size": 48},
    "tp": {**VIT, "num_classes": 6, "patch_size": 4},
    "mesh2d": {**VIT, "num_classes": 6, "patch_size": 4},
    "fsdp1": dict(VIT),
    "fabric": {**VIT, "num_classes": 5, "in_chans": 1, "img_size": 48},
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


#: ``mesh2d``: the placements (one per mesh dimension) of the tensors it distributes, by name suffix.
PLACEMENTS_2D = {
    "attn.qkv.weight": (Shard(0), Shard(0)),  # both mesh dimensions cut dimension 0
    "attn.qkv.bias": (Shard(0), Replicate()),
    "attn.proj.weight": (Replicate(), Shard(1)),
    "mlp.fc1.weight": (Shard(0), Shard(1)),
    "mlp.fc2.weight": (Shard(1), Shard(0)),
    "patch_embed.proj.weight": (Shard(0), Shard(1)),  # patch_embed fitter: whole at the origin, scattered
    "pos_embed": (Replicate(), Shard(2)),  # pos_embed fitter, cut along a dimension it mixes: scattered
    "head.weight": (Shard(0), Replicate()),  # re-initialised
}


def distribute_2d(model: torch.nn.Module, mesh) -> None:
    for name, param in list(model.named_parameters()):
        for suffix, placements in PLACEMENTS_2D.items():
            if name.endswith(suffix):
                owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
                owner.register_parameter(name.rpartition(".")[2], torch.nn.Parameter(
                    distribute_tensor(param, mesh, list(placements))))


def outcome(exc: Exception) -> dict:
    return {"type": type(exc).__name__, "message": str(exc), "weightport": isinstance(exc, weightport.WeightportError)}


def differ(full: dict, expected: dict) -> list[str]:
    return [k for k in expected if k not in full or not torch.equal(full[k], expected[k])]


def reference(mode: str, checkpoint: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build(mode)
    torch.manual_seed(0)
    weightport.load_weights(model, checkpoint)
    return model.state_dict()


def mesh2d(checkpoint: str, world: int) -> dict:
    expected = reference("mesh2d", checkpoint)
    results = {}
    for shape in ([(1, 2), (2, 1)] if world == 2 else [(2, world // 2)]):
        mesh = init_device_mesh("cpu", shape, mesh_dim_names=("a", "b"))
        with torch.device("meta"):
            model = build("mesh2d")
        distribute_2d(model, mesh)
        torch.manual_seed(0)
        report = weightport.load_weights(model, checkpoint)
        local = {k: tuple(v.to_local().shape) for k, v in model.state_dict().items() if isinstance(v, DTensor)}
        results["x".join(map(str, shape))] = {
            "report": report.to_dict(), "differ": differ(gathered(model), expected),
            "local_elements": sum(math.prod(s) for s in local.values()),
            "global_elements": sum(v.numel() for k, v in model.state_dict().items() if k in local),
            "coordinate": mesh.get_coordinate()}
    return results


def fsdp1(checkpoint: str) -> dict:
    from timm.models.vision_transformer import Block
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    expected = reference("fsdp1", checkpoint)

    def full(model: FSDP) -> dict:
        with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, FullStateDictConfig(rank0_only=False)):
            return {k: v.clone() for k, v in model.state_dict().items()}

    results = {}
    for orig in (False, True):
        torch.manual_seed(5)
        model = FSDP(build("fsdp1"), use_orig_params=orig, device_id=torch.device("cpu"),
                     auto_wrap_policy=ModuleWrapPolicy({Block}))
        before = full(model)
        refused = {}
        for what in ("inner", "sharded"):
            try:
                if what == "inner":  # ``self`` of a LightningModule hook under FSDPStrategy
                    weightport.load_weights(model.module, checkpoint)
                else:  # (FSDP.state_dict_type() would not restore the type after an exception)
                    FSDP.set_state_dict_type(model, StateDictType.SHARDED_STATE_DICT)
                    weightport.load_weights(model, checkpoint)
            except Exception as exc:
                refused[what] = outcome(exc)
            FSDP.set_state_dict_type(model, StateDictType.FULL_STATE_DICT)
        untouched = differ(full(model), before) == []
        torch.manual_seed(0)
        report = weightport.load_weights(model, checkpoint)
        results[f"use_orig_params={orig}"] = {"refused": refused, "untouched": untouched, "notes": report.notes,
                                              "differ": differ(full(model), expected)}
    return results


def verify(checkpoint: str, mesh) -> dict:
    def sharded() -> torch.nn.Module:
        with torch.device("meta"):
            model = timm.create_model("mobilenetv3_small_100", bn_eps=1e-3)
        fully_shard(model, mesh=mesh)
        return model

    result: dict = {}
    model = sharded()
    try:
        weightport.load_weights(model, checkpoint)
    except Exception as exc:
        result["refused"] = {**outcome(exc), "hint": getattr(exc, "hint", None),
                             "untouched": all((v.to_local() if isinstance(v, DTensor) else v).is_meta
                                              for v in model.state_dict().values())}
    if dist.get_rank() == 0:  # the hint: verify once where the model fits, storing the conversion
        single = timm.create_model("mobilenetv3_small_100", bn_eps=1e-3)
        report = weightport.load_weights(single, checkpoint, convert_cache=True)
        result["single_verified"] = bool(report.verification and report.verification["passed"])
    dist.barrier()
    expected = timm.create_model("mobilenetv3_small_100", bn_eps=1e-3)
    weightport.load_weights(expected, checkpoint)
    model = sharded()
    report = weightport.load_weights(model, checkpoint, convert_cache=True)
    result["notes"] = report.notes
    result["differ"] = differ(gathered(model), expected.state_dict())
    return result


def fabric(checkpoint: str, out: Path) -> None:
    import lightning.fabric as lf
    from lightning.fabric.strategies import ModelParallelStrategy

    reports = []

    def parallelize(model: torch.nn.Module, mesh) -> torch.nn.Module:
        dp = mesh["data_parallel"]
        for block in model.blocks:
            fully_shard(block, mesh=dp)
        fully_shard(model, mesh=dp)
        torch.manual_seed(0)
        reports.append(weightport.load_weights(model, checkpoint))  # each rank reads only its shards
        return model

    fab = lf.Fabric(accelerator="cpu", devices=2, strategy=ModelParallelStrategy(
        parallelize, data_parallel_size=2, tensor_parallel_size=1))
    fab.launch()
    torch.set_num_threads(1)
    expected = reference("fabric", checkpoint)
    with fab.init_module(empty_init=True):
        model = build("fabric")
    model = fab.setup(model)
    optimizer = fab.setup_optimizers(torch.optim.AdamW(model.parameters(), lr=1e-3))
    result = {"rank": fab.global_rank, "report": reports[0].to_dict(), "differ": differ(gathered(model), expected),
              "sharded": all(isinstance(p, DTensor) for p in model.parameters())}
    fab.backward(model(torch.randn(2, 1, 48, 48)).sum())
    optimizer.step()
    result["trained"] = True
    (out / f"rank{fab.global_rank}.json").write_text(json.dumps(result))
    fab.barrier()


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
            weightport.load_weights(model, checkpoint, check_finite=True)
        except Exception as exc:
            errors[mode] = {"type": type(exc).__name__, "message": str(exc),
                            "weightport": isinstance(exc, weightport.WeightportError),
                            "untouched": all((v.to_local() if isinstance(v, DTensor) else v).is_meta
                                             for v in model.state_dict().values())}
    return errors


def main() -> None:
    mode, checkpoint, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if mode == "fabric":  # Fabric initialises the process group itself
        fabric(checkpoint, out)
        return
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))  # a hang fails, it does not stall
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    mesh = init_device_mesh("cpu", (world,))
    if mode in ("failures", "mesh2d", "fsdp1", "verify"):
        done = {"failures": lambda: {"errors": failures(checkpoint, mesh)},
                "mesh2d": lambda: {"meshes": mesh2d(checkpoint, world)},
                "fsdp1": lambda: {"fsdp1": fsdp1(checkpoint)},
                "verify": lambda: {"verify": verify(checkpoint, mesh)}}[mode]()
        (out / f"rank{rank}.json").write_text(json.dumps({"rank": rank, **done}))
        dist.barrier()
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
