"""Position-embedding resampling and patch-kernel resizing for ViTs at another size."""

from __future__ import annotations

import pytest
import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

from weightport.errors import AdaptError
from weightport.layout.fit.base import FitContext
from weightport.layout.fit.patchembed import PatchEmbedResize
from weightport.layout.fit.posembed import PosEmbedResample


def _vit(img_size, **kw) -> VisionTransformer:
    return VisionTransformer(
        img_size=img_size, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=5, **kw
    ).eval()


def _load(source: torch.nn.Module, target: torch.nn.Module, **options) -> list[str]:
    fitter, described, new = PosEmbedResample(), [], {}
    target_state = target.state_dict()
    for key, tensor in source.state_dict().items():
        ctx = FitContext(key, key, tuple(target_state[key].shape), module=target, options=options)
        if fitter.applies(tensor, ctx):
            described.append(fitter.describe(tensor, ctx))
            tensor = fitter.adapt(tensor, ctx)
        new[key] = tensor
    target.load_state_dict(new)
    return described


def test_square_grid_without_a_module_keeps_the_class_token_and_matches_timm():
    embedding = torch.randn(1, 1 + 14 * 14, 16)
    ctx = FitContext("pos_embed", "pos_embed", (1, 1 + 24 * 24, 16))
    fitter = PosEmbedResample()
    assert fitter.applies(embedding, ctx)
    out = fitter.adapt(embedding, ctx)
    assert torch.equal(out[:, :1], embedding[:, :1])
    expected = resample_abs_pos_embed(embedding, new_size=[24, 24], num_prefix_tokens=1, antialias=False)
    torch.testing.assert_close(out, expected)
    assert fitter.describe(embedding, ctx) == "pos_embed 14x14->24x24 (bicubic, 1 prefix token(s) kept)"


def test_timm_vit_at_another_image_size_matches_timms_own_loading():
    torch.manual_seed(0)
    source = _vit(32)
    with torch.no_grad():
        source.pos_embed.normal_(0, 0.5)
    ours, theirs = _vit(48), _vit(48)
    assert _load(source, ours) == ["pos_embed 4x4->6x6 (bicubic, 1 prefix token(s) kept)"]
    # timm's default antialias=True switches bicubic to a softer kernel even when upsampling; the
    # fitter keeps plain bicubic (antialias off), which timm gives with antialias=False.
    theirs.load_state_dict(checkpoint_filter_fn(source.state_dict(), theirs, antialias=False))
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours.pos_embed[:, 0], source.pos_embed[:, 0])


def test_prefix_tokens_and_non_square_grid_come_from_the_target_module():
    torch.manual_seed(0)
    source, target = _vit((16, 24), reg_tokens=4), _vit((32, 48), reg_tokens=4)
    with pytest.raises(AdaptError, match="source_grid"):
        _load(source, target)  # 2x3 grid: not square, and the checkpoint cannot say
    assert _load(source, target, source_grid=(2, 3)) == ["pos_embed 2x3->4x6 (bicubic, 5 prefix token(s) kept)"]
    torch.testing.assert_close(target.pos_embed[:, :5], source.pos_embed[:, :5])
    expected = resample_abs_pos_embed(
        source.pos_embed, new_size=[4, 6], old_size=[2, 3], num_prefix_tokens=5, antialias=False
    )
    torch.testing.assert_close(target.pos_embed, expected)


def test_position_adapter_ignores_other_tensors():
    fitter = PosEmbedResample()
    assert not fitter.applies(torch.randn(1, 17, 8), FitContext("blocks.0.w", "blocks.0.w", (1, 37, 8)))
    assert not fitter.applies(torch.randn(1, 17, 8), FitContext("pos_embed", "pos_embed", (1, 17, 8)))
    assert not fitter.applies(torch.randn(1, 17, 8), FitContext("pos_embed", "pos_embed", (1, 37, 16)))
    assert fitter.applies(torch.randn(1, 17, 8), FitContext("x", "y", (1, 37, 8), roles=frozenset({"pos_embed"})))


def test_patch_kernel_resized_keeps_outputs_on_enlarged_patches():
    torch.manual_seed(0)
    kernel = torch.randn(6, 3, 4, 4)
    ctx = FitContext("patch_embed.proj.weight", "patch_embed.proj.weight", (6, 3, 8, 8))
    fitter = PatchEmbedResize()
    assert fitter.applies(kernel, ctx)
    assert fitter.describe(kernel, ctx) == "patch kernel 4x4->8x8 (pseudo-inverse of bilinear resize)"
    big = fitter.adapt(kernel, ctx)
    patches = torch.randn(5, 3, 4, 4)
    enlarged = torch.nn.functional.interpolate(
        patches, size=(8, 8), mode="bilinear", antialias=False, align_corners=False
    )
    torch.testing.assert_close(
        torch.nn.functional.conv2d(enlarged, big, stride=8),
        torch.nn.functional.conv2d(patches, kernel, stride=4),
        rtol=1e-4,
        atol=1e-4,
    )
    assert not fitter.applies(kernel, FitContext("blocks.0.conv.weight", "blocks.0.conv.weight", (6, 3, 8, 8)))
