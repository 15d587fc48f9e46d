"""Registered layout rule sets: registry, renames, and the shipped ViT layouts on real models."""

from __future__ import annotations

import pytest
import torch

from weightport.errors import DuplicateRegistrationError, LayoutRuleError, UnknownLayoutError
from weightport.layout.ops import SplitFused
from weightport.layout.rules import LayoutRules, apply_layout, get_layout, layouts, register_layout
from weightport.layout.spec import specs_of
from weightport.layout.structural import align


def test_register_get_and_refuse_duplicates():
    rules = register_layout(LayoutRules("test-rules-a", [(r"^old\.", "new.")]), override=True)
    assert get_layout("test-rules-a") is rules and "test-rules-a" in layouts()
    with pytest.raises(DuplicateRegistrationError, match="override=True"):
        register_layout(LayoutRules("test-rules-a"))
    with pytest.raises(UnknownLayoutError) as info:
        get_layout("test-rules-b")
    assert "test-rules-a" in str(info.value)
    with pytest.raises(LayoutRuleError, match="bad rename pattern"):
        register_layout(LayoutRules("test-rules-bad", [("(unclosed", "x")]))


def test_renames_run_in_order_then_ops_and_everything_is_recorded():
    rules = LayoutRules(
        "test-rules-c",
        renames=[(r"^encoder\.", "body."), (r"^body\.attn_in\.", "body.qkv.")],
        ops=[SplitFused("split", r"body\.qkv\.weight", ("body.q.weight", "body.k.weight"))],
    )
    state = {"encoder.attn_in.weight": torch.arange(4.0).reshape(4, 1), "head.bias": torch.zeros(2)}
    out, records = apply_layout(rules, state)
    assert list(out) == ["body.q.weight", "body.k.weight", "head.bias"]
    assert [r.step for r in records] == ["test-rules-c: rename", "split: split in 2 along dim 0"]
    assert records[0].source_keys == ("encoder.attn_in.weight",) and records[0].target_keys == ("body.qkv.weight",)


def test_two_keys_renamed_onto_one_are_refused():
    rules = LayoutRules("test-rules-d", renames=[(r"^(a|b)\.", "c.")])
    with pytest.raises(LayoutRuleError, match="test-rules-d'?: both 'a.w' and 'b.w' become 'c.w'"):
        apply_layout(rules, {"a.w": torch.zeros(1), "b.w": torch.zeros(1)})


def _tiny_vits():
    from timm.models.vision_transformer import VisionTransformer as TimmViT
    from torchvision.models.vision_transformer import VisionTransformer as TorchvisionViT

    tv = TorchvisionViT(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
    )
    tm = TimmViT(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, num_classes=10)
    return tv.eval(), tm.eval()


@pytest.mark.parametrize("direction", ["torchvision-vit-to-timm", "timm-vit-to-torchvision"])
def test_shipped_vit_layouts_give_the_same_outputs(direction):
    torch.manual_seed(0)
    tv, tm = _tiny_vits()
    source, target = (tv, tm) if direction.startswith("torchvision") else (tm, tv)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # non-trivial cls token / pos embed
    renamed, records = apply_layout(direction, source.state_dict())
    target.load_state_dict(renamed, strict=True)
    assert records and all(r.step == f"{direction}: rename" for r in records)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x))


def test_structural_alignment_finds_the_same_vit_correspondence_as_the_rules():
    tv, tm = _tiny_vits()
    _, records = apply_layout("torchvision-vit-to-timm", tv.state_dict())
    by_rules = {r.source_keys[0]: r.target_keys[0] for r in records}
    result = align(specs_of(tv.state_dict()), specs_of(tm.state_dict()))
    assert result.same_architecture and not result.unmatched_source and not result.unmatched_target
    assert {p.source_key: p.target_key for p in result.pairs} == by_rules
