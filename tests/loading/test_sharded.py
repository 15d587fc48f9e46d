"""Loads into sharded models (FSDP2 ``fully_shard``, tensor parallel): two CPU ranks on gloo.

Each test starts ``torchrun --nproc_per_node 2`` on ``sharded_child.py``, which writes what each rank
saw. The peak RSS growth of each rank during the load is printed (``-s`` shows it), not asserted:
``benchmarks/sharded_loading.py`` measures memory and time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("sharded_child.py")
ROOT = Path(__file__).resolve().parents[2]


def run_ranks(mode: str, checkpoint: Path, out: Path, nproc: int = 2, **env_extra: str) -> list[dict]:
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1", **env_extra}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
         str(CHILD), mode, str(checkpoint), str(out)],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(nproc)]
    for r in ranks:
        if "peak_rss_growth_kib" in r:
            total = r["report"]["distributed"]["bytes_total"]
            print(f"rank {r['rank']}: peak RSS growth {r['peak_rss_growth_kib']} KiB during the load of a "
                  f"{total / 1024:.0f} KiB checkpoint ({r['seconds']:.2f}s)")
    return ranks


@pytest.fixture(scope="module")
def vit_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import save_file

    sys.path.insert(0, str(CHILD.parent))
    try:
        from sharded_child import checkpoint_model
    finally:
        sys.path.pop(0)
    path = tmp_path_factory.mktemp("sharded") / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in checkpoint_model().state_dict().items()}, str(path))
    return path


@pytest.mark.ddp
def test_fully_sharded_vit_gets_exactly_what_one_process_loads(tmp_path: Path, vit_checkpoint: Path) -> None:
    ranks = run_ranks("fsdp", vit_checkpoint, tmp_path / "out")
    for r in ranks:
        assert "error" not in r, r.get("error")
        assert r["keys_equal"] and r["differ"] == []  # gathered shards == a single-process load, bit for bit
        assert r["meta_left"] == [] and r["trained"]
        report = r["report"]
        assert report["path"] == "sharded" and report["distributed"]["world_size"] == 2
        assert sorted(report["reinitialized"]) == ["head.bias", "head.weight"]
        how = report["distributed"]["how"]
        assert how["adapted on the slice (channels)"] == 1 and how["adapted on the slice (pos_embed)"] == 1
    # The same plan and the same file on both ranks, and each rank read only its own half of it.
    assert ranks[0]["report"]["source"]["sha256"] == ranks[1]["report"]["source"]["sha256"]
    assert ranks[0]["report"]["loaded"] == ranks[1]["report"]["loaded"]
    read = [r["report"]["distributed"]["bytes_read"] for r in ranks]
    total = ranks[0]["report"]["distributed"]["bytes_total"]
    assert sum(read) == total and all(0.4 * total < n < 0.6 * total for n in read)


@pytest.mark.ddp
def test_tensor_parallel_placements_and_a_fitter_that_needs_the_whole_tensor(tmp_path: Path,
                                                                             vit_checkpoint: Path) -> None:
    import torch
    from safetensors.torch import load_file

    pth = tmp_path / "vit.pth"  # a torch zip this time: slices of its memory-mapped storages
    torch.save({"state_dict": load_file(str(vit_checkpoint))}, pth)
    ranks = run_ranks("tp", pth, tmp_path / "out")
    for r in ranks:
        assert "error" not in r, r.get("error")
        assert r["keys_equal"] and r["differ"] == [] and r["meta_left"] == []
        how = r["report"]["distributed"]["how"]
        # Per block fc1's weight and bias (Shard(0)), fc2's weight (Shard(1)) and bias (Replicate); the patch bias.
        assert how["sliced"] == 4 * 4 + 1
        assert how["adapted whole on rank 0, scattered (patch_embed)"] == 1
        assert how["re-initialised whole from rank 0's RNG state, sharded"] == 2
        assert how["loaded whole (not sharded)"] > 0  # what tensor parallelism leaves plain
        assert r["report"]["source"]["format"] == "torch"
    read = [r["report"]["distributed"]["bytes_read"] for r in ranks]
    assert read[0] < ranks[0]["report"]["distributed"]["bytes_total"]


@pytest.mark.ddp
def test_a_failure_on_any_rank_is_the_same_typed_error_on_every_rank(tmp_path: Path, vit_checkpoint: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(vit_checkpoint))
    tensors["blocks.0.mlp.fc1.weight"][-1, 0] = float("nan")  # the last row: only rank 1's shard holds it
    checkpoint = tmp_path / "nan.safetensors"
    save_file(tensors, str(checkpoint))
    ranks = run_ranks("failures", checkpoint, tmp_path / "out")
    wrong, nan = ([r["errors"][mode] for r in ranks] for mode in ("wrong", "failures"))
    sys.path.insert(0, str(CHILD.parent))
    try:
        from sharded_child import build
    finally:
        sys.path.pop(0)
    import weightport

    with pytest.raises(weightport.WeightportError) as single:  # what one process says about the wrong width
        weightport.load_weights(build("wrong"), checkpoint)
    for errors, expected in ((wrong, type(single.value).__name__), (nan, "NonFiniteWeightsError")):
        assert errors[0] == errors[1]  # same type, same message, on both ranks
        assert errors[0]["type"] == expected and errors[0]["weightport"] and errors[0]["untouched"]
    assert "blocks.0.mlp.fc1.weight" in nan[0]["message"] and "on rank 1 of 2" in nan[0]["message"]


def check_2d_meshes(ranks: list[dict], shapes: list[str]) -> None:
    for shape in shapes:
        meshes = [r["meshes"][shape] for r in ranks]
        for m in meshes:
            assert m["differ"] == []  # gathered shards == a single-process load, bit for bit
            how = m["report"]["distributed"]["how"]
            assert how["sliced"] == 4 * 5  # qkv weight and bias, proj, fc1 and fc2 weights of each block
            assert how["adapted whole on rank 0, scattered (patch_embed)"] == 1
            assert how["adapted whole on rank 0, scattered (pos_embed)"] == 1
            assert how["re-initialised whole from rank 0's RNG state, sharded"] == 2
            assert 0 < m["local_elements"] < m["global_elements"]  # each rank holds only its shards
            assert m["report"]["distributed"]["bytes_read"] < 0.6 * m["report"]["distributed"]["bytes_total"]
        assert len({json.dumps(m["report"]["loaded"]) for m in meshes}) == 1  # one plan on every rank
        # The ranks hold different regions that together make each tensor (checked by the gather above).
        assert len({tuple(m["coordinate"]) for m in meshes}) == len(ranks)


@pytest.mark.ddp
def test_two_dimensional_meshes_with_a_placement_per_mesh_dimension(tmp_path: Path, vit_checkpoint: Path) -> None:
    check_2d_meshes(run_ranks("mesh2d", vit_checkpoint, tmp_path / "out"), ["1x2", "2x1"])


@pytest.mark.slow
@pytest.mark.ddp
@pytest.mark.skipif(os.environ.get("WEIGHTPORT_DDP_SLOW") != "1", reason="four ranks on a 2-core machine: set "
                    "WEIGHTPORT_DDP_SLOW=1")
def test_a_two_by_two_mesh_on_four_ranks(tmp_path: Path, vit_checkpoint: Path) -> None:
    check_2d_meshes(run_ranks("mesh2d", vit_checkpoint, tmp_path / "out", nproc=4), ["2x2"])


@pytest.mark.ddp
def test_fsdp1_loads_through_its_full_state_dict_and_refuses_what_it_cannot_fill(tmp_path: Path,
                                                                                  vit_checkpoint: Path) -> None:
    ranks = run_ranks("fsdp1", vit_checkpoint, tmp_path / "out")
    for variant in ("use_orig_params=False", "use_orig_params=True"):
        seen = [r["fsdp1"][variant] for r in ranks]
        for v in seen:
            assert v["differ"] == [] and any(n.startswith("FSDP1") for n in v["notes"])
            assert v["untouched"]  # the refused loads changed nothing
            assert {what: e["type"] for what, e in v["refused"].items()} == {"inner": "ShardingError",
                                                                          "sharded": "ShardingError"}
            assert "SHARDED_STATE_DICT" in v["refused"]["sharded"]["message"]
        assert seen[0]["refused"] == seen[1]["refused"]  # the same error, word for word, on both ranks


@pytest.mark.ddp
def test_fabric_parallelize_fn_shards_and_loads(tmp_path: Path, vit_checkpoint: Path) -> None:
    ranks = run_ranks("fabric", vit_checkpoint, tmp_path / "out")
    for r in ranks:
        assert r["sharded"] and r["differ"] == [] and r["trained"]
        how = r["report"]["distributed"]["how"]
        assert how["adapted on the slice (channels)"] == 1 and sorted(r["report"]["reinitialized"]) == [
            "head.bias", "head.weight"]
    read = [r["report"]["distributed"]["bytes_read"] for r in ranks]
    total = ranks[0]["report"]["distributed"]["bytes_total"]
    assert sum(read) == total and all(0.4 * total < n < 0.6 * total for n in read)


@pytest.mark.ddp
def test_a_mapping_one_process_verifies_is_refused_sharded_until_its_verified_conversion_is_stored(
        tmp_path: Path) -> None:
    import torch
    import torchvision

    sys.path.insert(0, str(ROOT))
    try:
        from tests.conftest import save
        from tests.helpers.models import randomize_bn
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    source = randomize_bn(torchvision.models.mobilenet_v3_small()).eval()
    path = save(source.state_dict(), tmp_path / "mobilenet_v3_small.pth")
    ranks = run_ranks("verify", path, tmp_path / "out", WEIGHTPORT_CACHE=str(tmp_path / "cache"))
    seen = [r["verify"] for r in ranks]
    for v in seen:
        refused = v["refused"]
        assert refused["type"] == "ShardingError" and refused["untouched"]
        assert "verifies by default against torchvision:mobilenet_v3_small" in refused["message"]
        assert "convert_cache=True" in refused["hint"] and "verify=False" in refused["hint"]
        assert v["differ"] == [] and any(n.startswith("read from the cached conversion") for n in v["notes"])
    assert seen[0]["refused"] == seen[1]["refused"] and seen[0]["single_verified"]
