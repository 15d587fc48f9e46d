"""``weightport convert``: any readable checkpoint to safetensors, optionally in a model's layout."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.cli.conftest import run_cli


def test_lightning_checkpoint_round_trips_through_safetensors(ckpts, tmp_path):
    out = tmp_path / "converted.safetensors"
    result = run_cli("--json", "convert", str(ckpts["ckpt"]), str(out))
    assert result.code == 0, result.err
    assert result.json()["tensors"] == 14
    converted = load_file(str(out))
    original = torch.load(ckpts["ckpt"], weights_only=True)["state_dict"]
    assert set(converted) == set(original)
    assert all(torch.equal(converted[k], original[k]) for k in original)
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["weightport.source"] == f"file:{ckpts['ckpt']}" and meta["weightport.source_format"] == "lightning"
    assert len(meta["weightport.sha256"]) == 64
    assert json.loads(meta["weightport.checkpoint_metadata"])["hyper_parameters"]["lr"] == 0.1
    assert not list(tmp_path.glob(".*.part"))  # the temp file was renamed, not left behind
    from tests.formats.test_safetensors_writer import assert_aligned

    assert_aligned(out)


def test_into_layout_writes_the_models_keys_so_a_later_load_is_exact(ckpts, tmp_path):
    out = tmp_path / "mapped.safetensors"
    result = run_cli("convert", str(ckpts["ddp"]), str(out), "--into-layout", f"{ckpts['models']}:TinyNet")
    assert result.code == 0, result.err
    from tests.helpers.models import TinyNet
    from weightport import plan

    model = TinyNet()
    assert set(load_file(str(out))) == set(model.state_dict())
    again = plan(model, out)
    assert again.ok and {r.how for r in again.loaded} == {"exact"}
    original = torch.load(ckpts["ddp"], weights_only=True)
    assert torch.equal(load_file(str(out))["fc.weight"], original["module.fc.weight"])


def test_shared_storage_is_written_as_copies_and_existing_output_is_kept(tmp_path, capsys):
    from weightport.cli import main

    shared = torch.randn(4, 4)
    torch.save({"encoder.weight": shared, "decoder.weight": shared, "half": shared[:2]}, tmp_path / "tied.pt")
    out = tmp_path / "tied.safetensors"
    assert main(["convert", str(tmp_path / "tied.pt"), str(out)]) == 0
    loaded = load_file(str(out))
    assert torch.equal(loaded["encoder.weight"], shared) and torch.equal(loaded["decoder.weight"], shared)
    assert torch.equal(loaded["half"], shared[:2])
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "tied.pt"), str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: output {out} exists", "hint: pass --force to overwrite it"]
    assert main(["convert", str(tmp_path / "tied.pt"), str(tmp_path / "x.pt")]) == 2
