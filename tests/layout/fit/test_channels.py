"""Input-channel fitter: a 3-channel stem in a 1-, 2-, 4- or 5-channel model."""

from __future__ import annotations

import pytest
import timm
import torch

from weightport.layout.fit.base import FitContext
from weightport.layout.fit.channels import InputChannels
from weightport.layout.roles import find_roles, first_conv_key
from weightport.registry.source import Source


def _load_with_fitter(source: torch.nn.Module, target: torch.nn.Module) -> list[str]:
    fitter, described = InputChannels(), []
    target_state = target.state_dict()
    roles = find_roles(target, [(k, k) for k in target_state], heads=())
    new = {}
    for key, tensor in source.state_dict().items():
        ctx = FitContext(key, key, tuple(target_state[key].shape), module=target, roles=roles.of(key))
        if fitter.applies(tensor, ctx):
            described.append(f"{key}: {fitter.describe(tensor, ctx)}")
            tensor = fitter.adapt(tensor, ctx)
        new[key] = tensor
    target.load_state_dict(new)
    return described


@pytest.fixture(scope="module")
def rgb_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("resnet18", num_classes=5).eval()


@pytest.mark.parametrize("channels", [1, 6])
def test_model_on_repeated_grey_channels_computes_what_the_rgb_model_computes(rgb_model, channels):
    target = timm.create_model("resnet18", num_classes=5, in_chans=channels).eval()
    described = _load_with_fitter(rgb_model, target)
    how = "sum" if channels == 1 else "repeat, x3/6"
    assert described == [f"conv1.weight: channels 3->{channels} ({how})"]
    grey = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(
            target(grey.repeat(1, channels, 1, 1)), rgb_model(grey.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize(
    ("channels", "order", "how"), [(2, [0, 1], "first"), (4, [0, 1, 2, 0], "repeat"), (5, [0, 1, 2, 0, 1], "repeat")]
)
def test_other_channel_counts_cycle_the_rgb_filters_and_keep_the_scale(rgb_model, channels, order, how):
    target = timm.create_model("resnet18", num_classes=5, in_chans=channels).eval()
    assert _load_with_fitter(rgb_model, target) == [f"conv1.weight: channels 3->{channels} ({how}, x3/{channels})"]
    rgb = rgb_model.conv1.weight
    torch.testing.assert_close(target.conv1.weight, rgb[:, order] * 3 / channels)
    # Filters summed over input channels keep the RGB filters' overall magnitude.
    ratio = target.conv1.weight.sum(1).abs().sum() / rgb.sum(1).abs().sum()
    assert 0.7 < ratio.item() < 1.3


def test_only_the_first_convolution_is_adapted():
    fitter = InputChannels()
    target = timm.create_model("resnet18", in_chans=1)
    assert first_conv_key(target) == "conv1.weight"
    weight = torch.randn(64, 3, 3, 3)
    inner = FitContext("layer1.0.conv1.weight", "layer1.0.conv1.weight", (64, 1, 3, 3), module=target)
    assert not fitter.applies(weight, inner)
    assert fitter.applies(weight, FitContext("a.weight", "b.weight", (64, 1, 3, 3), roles=frozenset({"first_conv"})))
    first = FitContext("conv1.weight", "conv1.weight", (32, 1, 3, 3), roles=frozenset({"first_conv"}))
    assert not fitter.applies(weight, first)  # the output channels differ: not a channel change


def test_the_first_convolution_is_the_sources_declared_one_else_the_models_first():
    target = timm.create_model("resnet18", in_chans=1)
    pairs = [("stem.conv.weight", "layer1.0.conv1.weight"), ("conv1.weight", "conv1.weight")]
    declared = Source(uri="file:/x.pt", scheme="file", location="/x.pt", first_conv="stem.conv")
    roles = find_roles(target, pairs, heads=(), declared_first_conv=declared.first_conv)
    assert roles.first_conv == "layer1.0.conv1.weight" and roles.of("conv1.weight") == frozenset()
    assert find_roles(target, pairs, heads=()).first_conv == "conv1.weight"


def test_dtype_is_kept():
    weight = torch.randn(8, 3, 3, 3, dtype=torch.float16)
    ctx = FitContext("w", "w", (8, 1, 3, 3), roles=frozenset({"first_conv"}))
    out = InputChannels().adapt(weight, ctx)
    assert out.dtype == torch.float16 and out.shape == (8, 1, 3, 3)
