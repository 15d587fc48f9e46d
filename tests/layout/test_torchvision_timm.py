"""torchvision ↔ timm: structural alignment finds the correspondence; outputs equal after loading."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

from weightport.errors import ArchitectureMismatchError
from weightport.layout.spec import specs_of
from weightport.layout.structural import align

# (name, torchvision builder, timm builder). MobileNetV3: torchvision's batch norms use eps=1e-3,
# timm's default 1e-5, so the faithful timm target is built with bn_eps=1e-3 (see the test below).
FAMILIES = {
    "resnet50": (lambda: torchvision.models.resnet50(), lambda: timm.create_model("resnet50")),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(), lambda: timm.create_model("efficientnet_b0")),
    "mobilenet_v3_large": (
        lambda: torchvision.models.mobilenet_v3_large(),
        lambda: timm.create_model("mobilenetv3_large_100", bn_eps=1e-3),
    ),
}


@pytest.mark.parametrize("direction", ["torchvision->timm", "timm->torchvision"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_outputs_equal_after_structural_load(family, direction, load_aligned, randomise_norm_statistics):
    torch.manual_seed(0)
    tv, tm = (build().eval() for build in FAMILIES[family])
    source, target = (tv, tm) if direction == "torchvision->timm" else (tm, tv)
    randomise_norm_statistics(source)
    result, adapted = load_aligned(source.state_dict(), target)
    assert not result.unmatched_source and not result.unmatched_target
    assert min(p.confidence for p in result.pairs) >= 0.75
    if family == "mobilenet_v3_large":
        # timm's conv_head is a 1x1 convolution where torchvision has a Linear: only size-1 dims differ.
        assert any("reshape (1280, 960" in line or "reshape (1280, 960)" in line for line in adapted)
    else:
        assert not adapted
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=1e-4, atol=1e-5)


def test_mobilenet_v3_with_timms_default_eps_is_paired_but_not_equal(load_aligned, randomise_norm_statistics):
    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v3_large().eval()
    tm = timm.create_model("mobilenetv3_large_100").eval()  # batch-norm eps 1e-5 instead of 1e-3
    randomise_norm_statistics(tv)
    load_aligned(tv.state_dict(), tm)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (tm(x) - tv(x)).abs().max() > 1e-6  # same weights, different normalisation epsilon


def test_resnet18_weights_into_resnet34_are_refused():
    result = align(
        specs_of(torchvision.models.resnet18().state_dict()), specs_of(torchvision.models.resnet34().state_dict())
    )
    assert not result.same_architecture
    with pytest.raises(ArchitectureMismatchError) as info:
        result.raise_for_divergence()
    message = str(info.value)
    assert "4 checkpoint module(s) with tensors weight[64, 64, 3, 3]" in message and "against 6 in the model" in message
    assert "layer1.0.conv1.weight" in result.unmatched_source  # nothing in the divergent part is guessed


def test_resnet50_weights_into_efficientnet_b0_are_refused():
    result = align(
        specs_of(torchvision.models.resnet50().state_dict()),
        specs_of(timm.create_model("efficientnet_b0").state_dict()),
    )
    assert not result.same_architecture
    assert len(result.pairs) < 0.05 * len(result.unmatched_target)
    with pytest.raises(ArchitectureMismatchError, match="not the same architecture"):
        result.raise_for_divergence()
