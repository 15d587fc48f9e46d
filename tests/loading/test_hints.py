"""A refused verification's hint, followed as written, loads exactly (random weights, files in tmp)."""

import re
from functools import partial

import pytest
import timm
import torch
import torchvision
from torch import nn

import weightport
from tests.conftest import save
from tests.helpers.models import randomize_bn
from weightport.errors import VerificationError


def _source_file(model: nn.Module, path):
    torch.manual_seed(0)
    return randomize_bn(model).eval(), save(model.state_dict(), path)


def _refused_hint(model: nn.Module, path) -> str:
    with pytest.raises(VerificationError) as info:
        weightport.load_weights(model, path)
    return info.value.hint


def _loads_exactly(model: nn.Module, path, source: nn.Module) -> None:
    report = weightport.load_weights(model, path)
    assert report.verification["passed"] and report.verification["max_abs_diff"] == 0.0
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), source(x), rtol=0, atol=0)


def test_torchvision_mobilenet_v3_into_timm_the_hinted_create_model_call_loads_exactly(tmp_path):
    source, path = _source_file(torchvision.models.mobilenet_v3_small(), tmp_path / "mobilenet_v3_small.pth")
    hint = _refused_hint(timm.create_model("mobilenetv3_small_100"), path)
    call = re.search(r"timm\.create_model\([^)]*\)", hint).group(0)
    assert call == "timm.create_model('mobilenetv3_small_100', bn_eps=0.001)"
    _loads_exactly(eval(call, {"timm": timm}), path, source)


def test_timm_regnet_into_torchvision_the_hinted_norm_layer_loads_exactly(tmp_path):
    source, path = _source_file(timm.create_model("regnety_004"), tmp_path / "regnety_004.pth")
    model = torchvision.models.regnet_y_400mf(norm_layer=partial(nn.BatchNorm2d, eps=1e-3))  # not timm's eps
    hint = _refused_hint(model, path)
    call = re.search(r"torchvision\.models\.\w+\(norm_layer=partial\([^)]*\)\)", hint).group(0)
    assert call == "torchvision.models.regnet_y_400mf(norm_layer=partial(nn.BatchNorm2d, eps=1e-05))"
    _loads_exactly(eval(call, {"torchvision": torchvision, "partial": partial, "nn": nn}), path, source)


def test_where_no_builder_argument_does_it_the_hint_sets_eps_on_the_built_model(tmp_path):
    # timm's RegNet takes no bn_eps: the hint says what to set on the model, and that works too
    source, path = _source_file(torchvision.models.regnet_y_400mf(), tmp_path / "regnet_y_400mf.pth")
    model = timm.create_model("regnety_004", norm_layer=partial(nn.BatchNorm2d, eps=1e-3))
    hint = _refused_hint(model, path)
    assert "timm.create_model" not in hint
    statement = re.search(r"for m in model\.modules\(\): isinstance\([^)]*\) and setattr\([^)]*\)", hint).group(0)
    exec(statement, {"model": model, "nn": nn})
    _loads_exactly(model, path, source)


def test_a_difference_no_argument_removes_keeps_the_general_hint(tmp_path):
    _, path = _source_file(timm.create_model("mobilenetv3_small_100"), tmp_path / "mobilenetv3_small_100.pth")
    # The layout fits timm's mobilenetv3_small_100 and tf_mobilenetv3_small_100; the closest to the model,
    # tf_ (eps 1e-3 like torchvision's), pads like TensorFlow, which no torchvision argument gives.
    hint = _refused_hint(torchvision.models.mobilenet_v3_small(), path)
    assert hint.startswith("if the checkpoint comes from timm:tf_mobilenetv3_small_100: "
                           "build the model with the source's values named above;")
