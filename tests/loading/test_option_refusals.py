"""Options that cannot be misread: every wrong name or value is refused at the call, with a hint that works."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import weightport
from tests.conftest import save
from tests.helpers.models import TinyNet
from weightport.errors import (
    AmbiguousMappingError,
    ArchitectureMismatchError,
    InvalidOptionError,
    ShapeMismatchError,
    StrictLoadError,
)


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    net = TinyNet(num_classes=10)
    return net, save(net.state_dict(), tmp_path / "tiny.safetensors")


class Holder(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.backbone = TinyNet(num_classes=num_classes)


def unchanged(module: nn.Module):
    before = {k: v.clone() for k, v in module.state_dict().items()}
    return lambda: all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_into_a_name_that_is_not_a_submodule_is_refused_with_close_matches(tiny):
    _, path = tiny
    model = Holder()
    same = unchanged(model)
    with pytest.raises(InvalidOptionError, match="not a submodule") as info:
        weightport.load_weights(model, path, into="backbon")
    assert "did you mean 'backbone'" in str(info.value)
    with pytest.raises(InvalidOptionError, match="nothing.here"):
        weightport.plan(model, path, into="nothing.here")
    assert same()
    assert weightport.load_weights(model, path, into="backbone").into == "backbone"


@pytest.mark.parametrize("options,names", [
    ({"strict": "no"}, "strict"),
    ({"lossy_cast": "maybe"}, "lossy_cast"),
    ({"match": "fuzzy"}, "match"),
    ({"min_coverage": 80}, "min_coverage"),
    ({"check_finite": "yes"}, "check_finite"),
    ({"reinit": [3]}, "reinit"),
])
def test_values_an_option_cannot_take_are_refused_at_the_call(tiny, options, names):
    _, path = tiny
    with pytest.raises(InvalidOptionError, match=names) as info:
        weightport.load_weights(TinyNet(), path, **options)
    assert isinstance(info.value, ValueError) and info.value.hint
    with pytest.raises(InvalidOptionError):
        weightport.LoadOptions(**options)


def test_a_misspelt_option_names_the_one_meant(tiny):
    _, path = tiny
    with pytest.raises(InvalidOptionError, match="'stirct' is not a weightport option; did you mean 'strict'"):
        weightport.load_weights(TinyNet(), path, stirct=False)
    with pytest.raises(InvalidOptionError, match="did you mean 'reinit'"):
        weightport.plan(TinyNet(), path, options={"reinti": ["fc"]})


def test_reinit_that_matches_nothing_is_an_error(tiny):
    _, path = tiny
    model = TinyNet(num_classes=3)
    same = unchanged(model)
    with pytest.raises(InvalidOptionError, match="'fcc' matches no key or module") as info:
        weightport.load_weights(model, path, reinit=["fcc"])
    assert "did you mean 'fc'" in str(info.value)
    assert same()
    report = weightport.load_weights(model, path, reinit=["fc"])
    assert {r.key for r in report.reinitialized} == {"fc.weight", "fc.bias"}


@pytest.mark.parametrize("options", [{"include": ["nothing*"]}, {"exclude": ["*"]}])
def test_include_exclude_that_leave_out_everything_say_so(tiny, options):
    _, path = tiny
    with pytest.raises(StrictLoadError, match="include/exclude left out every one of the 14 tensors") as info:
        weightport.load_weights(TinyNet(), path, strict=False, **options)
    assert "architecture" not in str(info.value)


class TwoHeads(nn.Module):
    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.aux_head = nn.Linear(8, num_classes)
        self.cls_head = nn.Linear(8, num_classes)


def test_two_candidate_heads_are_not_guessed(tmp_path):
    path = save(TwoHeads(5).state_dict(), tmp_path / "two.safetensors")
    model = TwoHeads(3)
    same = unchanged(model)
    with pytest.raises(AmbiguousMappingError, match="aux_head, cls_head") as info:
        weightport.load_weights(model, path)
    assert "reinit=['aux_head', 'cls_head']" in str(info.value)
    assert same()
    report = weightport.load_weights(model, path, reinit=["aux_head", "cls_head"])
    assert len(report.reinitialized) == 4
    assert weightport.load_weights(TwoHeads(5), path).reinitialized == []  # nothing to re-initialise: no question


def test_the_shape_mismatch_hint_works_when_followed(tmp_path):
    source = TinyNet(num_classes=10, width=8)
    path = save(source.state_dict(), tmp_path / "w.safetensors")
    model = TinyNet(num_classes=4, width=8)
    model.conv2 = nn.Conv2d(8, 16, 5, padding=2, bias=False)  # one layer changed on purpose
    with pytest.raises(ShapeMismatchError) as info:
        weightport.load_weights(model, path)
    hint = info.value.hint
    assert "reinit=['conv2', 'fc']" in hint and "strict=False does not" in hint
    report = weightport.load_weights(model, path, reinit=["conv2", "fc"])  # exactly what the hint says
    assert {r.key for r in report.reinitialized} == {"conv2.weight", "fc.weight", "fc.bias"}
    assert torch.equal(model.conv1.weight, source.conv1.weight)


def test_a_resnet50_file_into_a_resnet18_is_another_architecture(tmp_path):
    path = save(torchvision.models.resnet50().state_dict(), tmp_path / "r50.safetensors")
    model = torchvision.models.resnet18()
    same = unchanged(model)
    with pytest.raises(ArchitectureMismatchError, match="another architecture") as info:
        weightport.load_weights(model, path)
    assert "layer1.0.conv1.weight" in str(info.value) and "reinit" not in str(info.value)
    assert same()
    with pytest.raises(ArchitectureMismatchError):
        weightport.load_weights(model, path, strict=False)
    assert not weightport.plan(model, path).ok
