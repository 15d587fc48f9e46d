"""``load_weights`` into a module built on the meta device (as ``configure_model`` does): the
checkpoint's tensors are assigned, never copied into meta tensors (a silent no-op in torch)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightport
from tests.helpers.models import TinyNet


def test_a_meta_module_gets_the_weights_and_a_normally_initialised_head(tmp_path):
    torch.manual_seed(0)
    source = TinyNet(num_classes=10)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    with torch.device("meta"):
        model = TinyNet(num_classes=4)
    report = weightport.load_weights(model, tmp_path / "w.pth")
    assert report.path == "assign"
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert [r.key for r in report.reinitialized] == ["fc.weight", "fc.bias"]
    assert model.fc.weight.abs().sum() > 0  # initialised, not left empty


class NoInit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))


class Holder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.extra = NoInit()


def test_a_meta_module_that_cannot_be_filled_is_refused_untouched(tmp_path):
    torch.save({"a.weight": torch.ones(2, 2), "a.bias": torch.ones(2)}, tmp_path / "w.pth")
    with torch.device("meta"):
        model = Holder()
    with pytest.raises(weightport.WeightportError, match="meta device") as info:
        weightport.load_weights(model, tmp_path / "w.pth", strict=False)
    assert "reset_parameters" in str(info.value)
    assert all(t.is_meta for t in model.parameters())
