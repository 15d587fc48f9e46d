"""A checkpoint that fits two places of the model equally is refused, and the hint settles it.

The prefix search (:mod:`weightport.layout.match`) used to break such ties by the length of the
prefix: a checkpoint went into ``net.*`` rather than ``net_ema.*`` because ``net`` is shorter.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightport
from weightport.errors import AmbiguousMappingError


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


class StudentTeacher(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _net()
        self.net_ema = _net()


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = _net()


def _moved(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(v.shape, generator=g) + 0.5 for k, v in module.state_dict().items() if v.is_floating_point()}


def test_a_checkpoint_fitting_two_submodules_is_refused_and_into_settles_it(tmp_path):
    source = _moved(_net(), 0)
    path = tmp_path / "net.pth"
    torch.save(source, path)
    model = StudentTeacher()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(AmbiguousMappingError) as info:
        weightport.load_weights(model, str(path))
    assert "'net'" in info.value.message and "'net_ema'" in info.value.message
    assert "into=" in info.value.hint
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    weightport.load_weights(model, str(path), into="net_ema", strict=False)  # the teacher stays as it is
    assert all(torch.equal(model.net_ema.state_dict()[k], v) for k, v in source.items())
    assert all(torch.equal(model.net.state_dict()[k], before["net." + k]) for k in source)


def test_two_checkpoint_parts_fitting_one_submodule_are_refused_and_exclude_settles_it(tmp_path):
    live, ema = _moved(_net(), 1), _moved(_net(), 2)
    path = tmp_path / "both.pth"
    torch.save({**{"model." + k: v for k, v in live.items()}, **{"ema." + k: v for k, v in ema.items()}}, path)
    model = Plain()
    with pytest.raises(AmbiguousMappingError) as info:
        weightport.load_weights(model, str(path))
    assert "exclude=" in info.value.hint
    weightport.load_weights(model, str(path), exclude=["ema"])
    assert all(torch.equal(model.backbone.state_dict()[k], v) for k, v in live.items())
