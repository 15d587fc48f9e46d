"""Modules whose ``_load_from_state_dict`` reads the state dict's version metadata (torchvision's
MNASNet refuses a state dict without it; others migrate old layouts by it) load like any other."""

from __future__ import annotations

import timm
import torch
import torchvision
from torch import nn

import weightport
from tests.helpers.models import moved_off_init
from weightport.loading.api import build_and_load


def test_timm_mnasnet_into_torchvision_mnasnet_is_exact(tmp_path):
    source = moved_off_init(timm.create_model("mnasnet_050", pretrained=False), 1)
    torch.save(source.state_dict(), tmp_path / "mnasnet.pth")
    target = torchvision.models.mnasnet0_5().eval()
    report = weightport.load_weights(target, tmp_path / "mnasnet.pth")
    assert report.missing == [] and report.unexpected == []
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=1e-5, atol=1e-5)


def test_torchvision_mnasnet_file_round_trips_and_verifies(tmp_path):
    source = moved_off_init(torchvision.models.mnasnet0_5(), 2)
    torch.save(source.state_dict(), tmp_path / "tv.pth")
    model, report = build_and_load(torchvision.models.mnasnet0_5, tmp_path / "tv.pth",
                                   verify=torchvision.models.mnasnet0_5)
    assert report.path == "assign" and report.verification["passed"] and report.unexpected == []
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


class Migrating(nn.Module):
    """Version 2 renamed ``w`` to ``weight``; it migrates version-1 state dicts when they load."""

    _version = 2

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3))
        self.w_seen_as_old: bool | None = None

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        version = local_metadata.get("version")
        self.w_seen_as_old = version is None or version < 2
        if self.w_seen_as_old and prefix + "w" in state_dict:
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)


def test_tensors_in_the_models_layout_are_loaded_as_its_current_version(tmp_path):
    torch.save({"inner.weight": torch.arange(3.0)}, tmp_path / "v2.pth")
    model = nn.Sequential()
    model.add_module("inner", Migrating())
    weightport.load_weights(model, tmp_path / "v2.pth")
    assert model.inner.w_seen_as_old is False
    assert torch.equal(model.inner.weight.detach(), torch.arange(3.0))
