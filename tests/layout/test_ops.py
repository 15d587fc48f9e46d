"""Split and concatenate fused tensors."""

from __future__ import annotations

import pytest
import torch

from weightport.errors import LayoutRuleError
from weightport.layout.ops import ConcatParts, SplitFused

SPLIT = SplitFused(
    "split-qkv",
    r"(?P<m>.*)\.qkv\.(?P<kind>weight|bias)",
    (r"\g<m>.q.\g<kind>", r"\g<m>.k.\g<kind>", r"\g<m>.v.\g<kind>"),
)
CONCAT = ConcatParts(
    "fuse-qkv", r"(?P<m>.*)\.(?P<part>q|k|v)\.(?P<kind>weight|bias)", ("q", "k", "v"), r"\g<m>.qkv.\g<kind>"
)


def test_split_gives_equal_parts_in_place_and_records_it():
    qkv = torch.arange(24.0).reshape(6, 4)
    state = {"a.weight": torch.zeros(1), "attn.qkv.weight": qkv, "attn.qkv.bias": torch.arange(6.0), "z": torch.ones(1)}
    out, records = SPLIT.apply(state)
    assert list(out) == [
        "a.weight",
        "attn.q.weight",
        "attn.k.weight",
        "attn.v.weight",
        "attn.q.bias",
        "attn.k.bias",
        "attn.v.bias",
        "z",
    ]
    assert torch.equal(out["attn.k.weight"], qkv[2:4])
    assert torch.equal(out["attn.v.bias"], torch.tensor([4.0, 5.0]))
    assert records[0].source_keys == ("attn.qkv.weight",) and len(records[0].target_keys) == 3
    assert "attn.qkv.weight" in state  # the input is left alone


def test_concat_is_the_inverse_of_split_whatever_the_part_order():
    state = {"x.qkv.weight": torch.randn(9, 3), "x.qkv.bias": torch.randn(9)}
    parts, _ = SPLIT.apply(state)
    shuffled = {k: parts[k] for k in ["x.v.weight", "x.q.weight", "x.k.weight", "x.q.bias", "x.k.bias", "x.v.bias"]}
    fused, records = CONCAT.apply(shuffled)
    assert set(fused) == {"x.qkv.weight", "x.qkv.bias"}
    assert torch.equal(fused["x.qkv.weight"], state["x.qkv.weight"])
    assert torch.equal(fused["x.qkv.bias"], state["x.qkv.bias"])
    assert records[0].source_keys == ("x.q.weight", "x.k.weight", "x.v.weight")


def test_concat_refuses_a_missing_part():
    with pytest.raises(LayoutRuleError, match="lack part"):
        CONCAT.apply({"x.q.weight": torch.zeros(2, 2), "x.k.weight": torch.zeros(2, 2)})


def test_split_refuses_a_size_that_does_not_divide():
    with pytest.raises(LayoutRuleError, match="does not split into 3"):
        SPLIT.apply({"x.qkv.weight": torch.zeros(4, 2)})


class SeparateQKV(torch.nn.Module):
    """Self-attention with separate q/k/v projections (the layout of many research repositories)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (torch.nn.Linear(dim, dim) for _ in range(3))
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (f(x).reshape(b, n, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def test_split_timm_attention_into_a_separate_qkv_module_gives_the_same_output():
    from timm.models.vision_transformer import Attention

    torch.manual_seed(0)
    fused = Attention(16, num_heads=2, qkv_bias=True).eval()
    separate = SeparateQKV(16, heads=2).eval()
    state = {f"attn.{k}": v for k, v in fused.state_dict().items()}
    split_state, _ = SPLIT.apply(state)
    separate.load_state_dict({k.removeprefix("attn."): v for k, v in split_state.items()})
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(separate(x), fused(x))
