"""torchvision ↔ timm pairs that used to be refused (or crash), loaded exactly: both sides built with
random, moved-off-init weights and randomised BatchNorm statistics, eval outputs compared."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn

import weightport
from tests.helpers.models import moved_off_init


def _build(spec: str, **kwargs) -> nn.Module:
    library, name = spec.split(":")
    if library == "tv":
        return getattr(torchvision.models, name)(**kwargs)
    return timm.create_model(name, pretrained=False, **kwargs)




def _load_and_compare(tmp_path, source_spec: str, target_spec: str, size: int, target_kwargs=None):
    source = moved_off_init(_build(source_spec))
    torch.save(source.state_dict(), tmp_path / "ckpt.pth")
    target = _build(target_spec, **(target_kwargs or {})).eval()
    report = weightport.load_weights(target, tmp_path / "ckpt.pth")
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = source(x), target(x)
    return report, expected, got


PAIRS = [
    # ConvNeXt: layer scale `layer_scale (C, 1, 1)` (torchvision) is `gamma (C,)` (timm).
    ("tv:convnext_tiny", "timm:convnext_tiny", 64),
    ("timm:convnext_tiny", "tv:convnext_tiny", 64),
    # Swin: torchvision keeps relative_position_index persistent, timm recomputes it.
    ("tv:swin_t", "timm:swin_tiny_patch4_window7_224", 224),
    ("timm:swin_tiny_patch4_window7_224", "tv:swin_t", 224),
    # Swin V2: and a fused qkv bias against q_bias / v_bias.
    ("tv:swin_v2_t", "timm:swinv2_tiny_window8_256", 256),
    ("timm:swinv2_tiny_window8_256", "tv:swin_v2_t", 256),
]


@pytest.mark.parametrize(("source", "target", "size"), PAIRS, ids=[f"{s}->{t}" for s, t, _ in PAIRS])
def test_pair_loads_exactly(tmp_path, source, target, size):
    report, expected, got = _load_and_compare(tmp_path, source, target, size)
    _assert_exact(report, expected, got)
    assert report.coverage == 1.0


def test_swin_reports_the_derived_buffers_both_ways(tmp_path):
    report, _, _ = _load_and_compare(tmp_path, "tv:swin_t", "timm:swin_tiny_patch4_window7_224", 224)
    assert any("recomputes" in n and "relative_position_index" in n for n in report.notes)
    report, _, _ = _load_and_compare(tmp_path, "timm:swin_tiny_patch4_window7_224", "tv:swin_t", 224)
    assert any("own values" in n and "relative_position_index" in n for n in report.notes)


def test_swin_v2_qkv_bias_is_split_and_fused_in_the_report(tmp_path):
    report, _, _ = _load_and_compare(tmp_path, "tv:swin_v2_t", "timm:swinv2_tiny_window8_256", 256)
    q = next(r for r in report.loaded if r.target_key == "layers.0.blocks.0.attn.q_bias")
    assert q.source_key == "features.1.0.attn.qkv.bias" and any("split" in op for op in q.ops)
    report, _, _ = _load_and_compare(tmp_path, "timm:swinv2_tiny_window8_256", "tv:swin_v2_t", 256)
    fused = next(r for r in report.loaded if r.target_key == "features.1.0.attn.qkv.bias")
    assert fused.source_key == "layers.0.blocks.0.attn.q_bias" and any("fuse" in op for op in fused.ops)


def _assert_exact(report, expected, got):
    assert report.missing == [] and report.unexpected == [] and report.reinitialized == []
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_vgg_linear_classifier_against_a_7x7_conv_both_ways(tmp_path):
    """torchvision's ``Linear(512*7*7, 4096)`` is timm's 7x7 ``Conv2d``: timm's own filter one way, the
    ``flatten`` fitter back (one test: VGG's 500 MB checkpoints are the slow part)."""
    report, expected, got = _load_and_compare(tmp_path, "tv:vgg11", "timm:vgg11", 32)
    _assert_exact(report, expected, got)
    assert any("timm.models.vgg._filter_fn" in n for n in report.notes)
    report, expected, got = _load_and_compare(tmp_path, "timm:vgg11", "tv:vgg11", 32)
    _assert_exact(report, expected, got)
    record = next(r for r in report.loaded if r.target_key == "classifier.0.weight")
    assert record.source_key == "pre_logits.fc1.weight"
    assert record.source_shape == (4096, 512, 7, 7) and record.target_shape == (4096, 25088)
    assert any(op.startswith("flatten conv->linear") for op in record.ops)


@pytest.mark.parametrize("direction", ["tv->timm", "timm->tv"])
def test_vit_into_and_out_of_a_headless_timm_model(tmp_path, direction):
    tv, headless = "tv:vit_b_16", "timm:vit_base_patch16_224"
    if direction == "tv->timm":
        source = moved_off_init(_build(tv))
        target = _build(headless, num_classes=0).eval()
    else:
        source = moved_off_init(_build(headless, num_classes=0))
        target = _build(tv).eval()
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    report = weightport.load_weights(target, tmp_path / "vit.pth")
    assert report.missing == [] and report.unexpected == []
    _assert_same_vit_features(source, target)
    if direction == "tv->timm":
        assert "heads.head" in str(report)  # the checkpoint's classifier, left out and said so
    else:
        assert {r.key for r in report.reinitialized} == {"heads.head.weight", "heads.head.bias"}


@pytest.mark.parametrize("direction", ["tv->timm", "timm->tv"])
def test_vit_into_a_new_five_class_head_loads_the_body_exactly_and_reinitialises_only_the_head(tmp_path, direction):
    # The class token and position embedding sit in other modules in the two libraries (regrouped), and the
    # one module left on each side is the classifier with another number of classes: the gap rule's pair, which
    # the head rule re-initialises (it used to be refused as "not the same architecture").
    if direction == "tv->timm":
        source, target = moved_off_init(_build("tv:vit_b_16")), _build("timm:vit_base_patch16_224", num_classes=5)
        heads = {"head.weight", "head.bias"}
    else:
        source, target = moved_off_init(_build("timm:vit_base_patch16_224")), _build("tv:vit_b_16", num_classes=5)
        heads = {"heads.head.weight", "heads.head.bias"}
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    report = weightport.load_weights(target.eval(), tmp_path / "vit.pth")
    assert {r.key for r in report.reinitialized} == heads
    assert report.missing == [] and report.unexpected == [] and report.verification["passed"]
    _assert_same_vit_features(source, target)


def _assert_same_vit_features(source: nn.Module, target: nn.Module) -> None:
    """Both ViTs' features (heads removed: torchvision's `heads`, timm's classifier) on one image agree."""
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    features = []
    with torch.no_grad():
        for model in (source, target):
            if isinstance(model, torchvision.models.VisionTransformer):
                model.heads = nn.Identity()
            else:
                model.reset_classifier(0)
            features.append(model(x))
    torch.testing.assert_close(features[1], features[0], rtol=1e-4, atol=1e-4)
