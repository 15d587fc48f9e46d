"""A checkpoint whose key layout fits several known architectures (timm's ``mobilenetv3_small_100`` and
``tf_mobilenetv3_small_100`` hold the same keys): a refused verification names the one it compared with
and what each of the others would need, and the hint for the architecture the file really came from,
followed as written, loads exactly."""

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


def test_the_refusal_names_every_architecture_the_layout_fits_and_the_right_hint_loads_exactly(tmp_path):
    torch.manual_seed(0)
    source = randomize_bn(timm.create_model("mobilenetv3_small_100")).eval()  # eps 1e-5, symmetric padding
    path = save(source.state_dict(), tmp_path / "mobilenetv3_small_100.pth")
    model = torchvision.models.mobilenet_v3_small()  # eps 1e-3, symmetric padding
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(VerificationError) as info:
        weightport.load_weights(model, path)
    message, hint = str(info.value), info.value.hint
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    # Both candidates are named, each with what differs from the model.
    assert "timm:tf_mobilenetv3_small_100" in message and "timm:mobilenetv3_small_100" in message
    assert "BatchNorm eps: 1e-05 in the source, 0.001 in the model" in message
    # The hint for the file's true source, followed as written.
    call = re.search(r"if from timm:mobilenetv3_small_100: build the model as (torchvision\.models\.\w+\([^;]*?\)\))",
                     hint)
    assert call, hint
    rebuilt = eval(call.group(1), {"torchvision": torchvision, "partial": partial, "nn": nn})
    report = weightport.load_weights(rebuilt, path)
    assert report.verification["passed"]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), source(x), rtol=0, atol=0)
