"""Structural alignment on synthetic state-dict descriptions (no tensors needed)."""

from __future__ import annotations

import ast
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightport.errors import AmbiguousMappingError, ArchitectureMismatchError
from weightport.layout.spec import TensorSpec
from weightport.layout.structural import align, alignment_to_rules, role_of


def spec(key: str, *shape: int) -> TensorSpec:
    return TensorSpec(key, tuple(shape), "float32")


def conv(prefix: str, out: int, inp: int, k: int = 3) -> list[TensorSpec]:
    return [spec(f"{prefix}.weight", out, inp, k, k)]


def bn(prefix: str, c: int, *, tracked: bool = True, names=("weight", "bias", "running_mean", "running_var")):
    specs = [spec(f"{prefix}.{n}", c) for n in names]
    return specs + ([spec(f"{prefix}.num_batches_tracked")] if tracked else [])


def rules(alignment) -> dict[str, str]:
    return alignment_to_rules(alignment)


def test_renamed_network_is_fully_paired_in_order():
    source = conv("stem", 8, 3) + bn("stem_bn", 8) + conv("b.0.c", 8, 8) + bn("b.0.n", 8) + conv("b.1.c", 16, 8)
    target = conv("conv1", 8, 3) + bn("bn1", 8) + conv("layer.0.conv", 8, 8) + bn("layer.0.bn", 8)
    target += conv("layer.1.conv", 16, 8)
    result = align(source, target)
    assert result.same_architecture
    assert not result.unmatched_source and not result.unmatched_target
    assert rules(result) == {
        "stem.weight": "conv1.weight",
        "stem_bn.weight": "bn1.weight",
        "stem_bn.bias": "bn1.bias",
        "stem_bn.running_mean": "bn1.running_mean",
        "stem_bn.running_var": "bn1.running_var",
        "stem_bn.num_batches_tracked": "bn1.num_batches_tracked",
        "b.0.c.weight": "layer.0.conv.weight",
        "b.0.n.weight": "layer.0.bn.weight",
        "b.0.n.bias": "layer.0.bn.bias",
        "b.0.n.running_mean": "layer.0.bn.running_mean",
        "b.0.n.running_var": "layer.0.bn.running_var",
        "b.0.n.num_batches_tracked": "layer.0.bn.num_batches_tracked",
        "b.1.c.weight": "layer.1.conv.weight",
    }
    assert [p.target_key for p in result.pairs] == [t.key for t in target]  # reported in model order
    assert all(0 < p.confidence <= 1 and p.reason for p in result.pairs)


def test_repeated_blocks_pair_by_rank_not_by_first_fit():
    source, target = [], []
    for i in range(4):
        source += conv(f"s.{i}.conv", 8, 8) + bn(f"s.{i}.bn", 8)
        target += conv(f"t.{i}.c", 8, 8) + bn(f"t.{i}.n", 8)
    mapping = rules(align(source, target))
    for i in range(4):
        assert mapping[f"s.{i}.conv.weight"] == f"t.{i}.c.weight"
        assert mapping[f"s.{i}.bn.running_var"] == f"t.{i}.n.running_var"


def test_norm_registered_before_its_conv_in_one_library():
    source, target = [], []
    widths = [8, 16, 16, 32]
    prev = 3
    for i, w in enumerate(widths):
        source += conv(f"a.{i}.conv", w, prev) + bn(f"a.{i}.bn", w)
        target += bn(f"b.{i}.norm", w) + conv(f"b.{i}.proj", w, prev)  # norm first here
        prev = w
    result = align(source, target)
    assert result.same_architecture and not result.unmatched_source and not result.unmatched_target
    mapping = rules(result)
    for i in range(4):
        assert mapping[f"a.{i}.conv.weight"] == f"b.{i}.proj.weight"
        assert mapping[f"a.{i}.bn.weight"] == f"b.{i}.norm.weight"


def test_position_embedding_before_or_after_the_patch_projection():
    source = [spec("cls_token", 1, 1, 32), spec("pos_embed", 1, 17, 32)] + conv("patch_embed.proj", 32, 3, 4)
    source += [spec("patch_embed.proj.bias", 32), spec("norm.weight", 32), spec("norm.bias", 32)]
    target = conv("embeddings.patch", 32, 3, 4) + [spec("embeddings.patch.bias", 32)]
    target += [spec("embeddings.class_token", 1, 1, 32), spec("embeddings.position_embeddings", 1, 17, 32)]
    target += [spec("ln.gamma", 32), spec("ln.beta", 32)]
    mapping = rules(align(source, target))
    assert mapping == {
        "cls_token": "embeddings.class_token",
        "pos_embed": "embeddings.position_embeddings",
        "patch_embed.proj.weight": "embeddings.patch.weight",
        "patch_embed.proj.bias": "embeddings.patch.bias",
        "norm.weight": "ln.gamma",
        "norm.bias": "ln.beta",
    }


def test_roles_normalised_across_libraries_and_missing_batch_counter():
    source = conv("c", 4, 3) + bn("n", 4, tracked=False, names=("gamma", "beta", "moving_mean", "moving_variance"))
    target = conv("conv", 4, 3) + bn("norm", 4)
    result = align(source, target)
    assert rules(result)["n.moving_variance"] == "norm.running_var"
    assert rules(result)["n.gamma"] == "norm.weight"
    assert result.unmatched_target == ["norm.num_batches_tracked"]
    assert result.same_architecture
    assert role_of("x.beta") == "bias" and role_of("x.q_bias") == "param"


def test_shapes_that_differ_only_by_singleton_dims_pair_with_lower_confidence():
    source = conv("features.0", 8, 3) + [spec("head.fc.weight", 10, 8), spec("head.fc.bias", 10)]
    target = conv("stem", 8, 3) + [spec("classifier.weight", 10, 8, 1, 1), spec("classifier.bias", 10)]
    result = align(source, target)
    by_source = {p.source_key: p for p in result.pairs}
    assert by_source["head.fc.weight"].target_key == "classifier.weight"
    assert by_source["head.fc.weight"].confidence < by_source["head.fc.bias"].confidence


def test_head_with_another_class_count_pairs_at_low_confidence_and_can_be_dropped():
    body = conv("c1", 8, 3) + bn("n1", 8)
    tbody = conv("conv", 8, 3) + bn("bn", 8)
    source = body + [spec("fc.weight", 1000, 8), spec("fc.bias", 1000)]
    target = tbody + [spec("classifier.weight", 10, 8), spec("classifier.bias", 10)]
    result = align(source, target)
    head = [p for p in result.pairs if p.source_key.startswith("fc.")]
    assert [p.target_key for p in head] == ["classifier.weight", "classifier.bias"]
    assert all(p.confidence < 0.9 for p in head) and result.same_architecture
    strict = align(source, target, min_confidence=0.9)
    assert "fc.weight" in strict.unmatched_source and "classifier.weight" in strict.unmatched_target


def test_tokens_grouped_into_other_modules_and_a_head_of_another_class_count_pair_the_head_at_low_confidence():
    # torchvision's ViT: class_token at the root, pos_embedding in `encoder`, `heads.head`; timm's: both tokens
    # at the root, `head`. Tokens pair one by one; the one module left on each side pairs as the gap's head.
    body = conv("conv_proj", 8, 3, 4)
    source = [spec("class_token", 1, 1, 8), *body, spec("encoder.pos_embedding", 1, 5, 8),
              spec("heads.head.weight", 1000, 8), spec("heads.head.bias", 1000)]
    target = [spec("cls_token", 1, 1, 8), spec("pos_embed", 1, 5, 8), *conv("patch_embed.proj", 8, 3, 4),
              spec("head.weight", 5, 8), spec("head.bias", 5)]
    result = align(source, target)
    assert result.same_architecture
    got = {p.source_key: (p.target_key, p.confidence) for p in result.pairs}
    assert got["class_token"][0] == "cls_token" and got["encoder.pos_embedding"][0] == "pos_embed"
    assert got["heads.head.weight"][0] == "head.weight" and got["heads.head.bias"][0] == "head.bias"
    assert got["heads.head.weight"][1] < 0.9  # the gap's confidence: the head rule decides


def test_leftovers_that_are_not_one_whole_module_each_side_still_diverge():
    source = [spec("class_token", 1, 1, 8), spec("encoder.pos_embedding", 1, 5, 8),
              spec("a.weight", 7, 8), spec("b.weight", 6, 8)]
    target = [spec("cls_token", 1, 1, 8), spec("pos_embed", 1, 5, 8), spec("head.weight", 5, 8)]
    result = align(source, target)
    assert not result.same_architecture
    assert "a.weight" in result.unmatched_source and "head.weight" in result.unmatched_target


def test_extra_modules_on_one_side_stay_unmatched_without_divergence():
    source = conv("c", 8, 3) + bn("n", 8)
    target = conv("conv", 8, 3) + bn("bn", 8) + [spec("extra.weight", 5, 8), spec("extra.bias", 5)]
    result = align(source, target)
    assert result.same_architecture
    assert result.unmatched_target == ["extra.weight", "extra.bias"]


def test_different_depths_are_reported_as_divergence_not_guessed():
    def net(depth: int, name: str) -> list[TensorSpec]:
        specs = conv(f"{name}.stem", 8, 3) + bn(f"{name}.stem_bn", 8)
        for i in range(depth):
            specs += conv(f"{name}.blocks.{i}.conv", 8, 8) + bn(f"{name}.blocks.{i}.bn", 8)
        return specs + conv(f"{name}.out", 16, 8)

    result = align(net(2, "a"), net(3, "b"))
    assert not result.same_architecture
    assert any("2 checkpoint module(s)" in d.detail and "3 in the model" in d.detail for d in result.divergences)
    assert "a.blocks.0.conv.weight" in result.unmatched_source  # not paired on a guess
    with pytest.raises(ArchitectureMismatchError, match="not the same architecture") as info:
        result.raise_for_divergence()
    assert info.value.hint and isinstance(info.value, ValueError)


def test_unrelated_architectures_diverge():
    source = conv("a", 64, 3, 7) + bn("b", 64) + conv("c", 128, 64) + bn("d", 128)
    target = conv("x", 32, 3, 3) + bn("y", 32) + conv("z", 96, 32) + bn("w", 96)
    result = align(source, target)
    assert not result.pairs
    assert not result.same_architecture


def test_equally_plausible_pairings_are_refused_with_both_candidates():
    source = conv("block.proj", 8, 8) + [spec("block.scale_a", 8), spec("block.scale_b", 8)]
    target = conv("blk.conv", 8, 8) + [spec("blk.p", 8), spec("blk.q", 8)]
    with pytest.raises(AmbiguousMappingError) as info:
        align(source, target)
    message = str(info.value)
    assert "block.scale_a" in message and "'blk.p'" in message and "'blk.q'" in message
    assert "rename=" in info.value.hint


def test_name_similarity_breaks_ties_between_same_shaped_tensors():
    source = conv("attn.qkv", 24, 8, 1) + [spec("attn.q_bias", 8), spec("attn.v_bias", 8)]
    target = conv("attention.in_proj", 24, 8, 1) + [spec("attention.bias_v", 8), spec("attention.bias_q", 8)]
    mapping = rules(align(source, target))
    assert mapping["attn.q_bias"] == "attention.bias_q"
    assert mapping["attn.v_bias"] == "attention.bias_v"


def test_rules_round_trip_through_json_and_reapply(tmp_path):
    source = conv("stem", 8, 3) + bn("stem_bn", 8)
    target = conv("conv1", 8, 3) + bn("bn1", 8)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules(align(source, target))))
    table = json.loads(path.read_text())
    renamed = sorted(table[s.key] for s in source)
    assert renamed == sorted(t.key for t in target)


def test_rules_as_regex_rename_exactly_one_key_each():
    import re

    source = conv("stem.0", 8, 3) + bn("stem.1", 8)
    target = conv("conv1", 8, 3) + bn("bn1", 8)
    table = alignment_to_rules(align(source, target), regex=True)
    assert table["^stem\\.0\\.weight$"] == "conv1.weight"
    renamed = []
    for s in source:
        hits = [re.sub(p, r, s.key) for p, r in table.items() if re.search(p, s.key)]
        assert len(hits) == 1
        renamed.append(hits[0])
    assert renamed == [t.key for t in target]
    assert not re.search("^stem\\.0\\.weight$", "stemX0.weight")  # dots are escaped


class _CountingSpec:
    """A TensorSpec look-alike that counts how often the aligner reads a shape."""

    reads = 0

    def __init__(self, key: str, shape: tuple[int, ...]) -> None:
        self.key = key
        self._shape = shape
        self.dtype = "float32"

    @property
    def shape(self) -> tuple[int, ...]:
        _CountingSpec.reads += 1
        return self._shape


def _big(n_blocks: int, prefix: str, swap: bool) -> list[_CountingSpec]:
    specs = []
    for i in range(n_blocks):
        width = 8 * (1 + i % 7)
        c = [_CountingSpec(f"{prefix}.{i}.conv.weight", (width, width, 3, 3))]
        n = [_CountingSpec(f"{prefix}.{i}.bn.{r}", (width,)) for r in ("weight", "bias", "running_mean", "running_var")]
        specs += (n + c) if swap and i % 3 == 0 else (c + n)
    return specs


def test_thousands_of_tensors_align_correctly_in_near_linear_work():
    reads = []
    for n_blocks in (250, 1000):  # 1,250 and 5,000 tensors
        _CountingSpec.reads = 0
        result = align(_big(n_blocks, "src", swap=False), _big(n_blocks, "tgt", swap=True))  # type: ignore[arg-type]
        reads.append(_CountingSpec.reads)
        assert len(result.pairs) == 5 * n_blocks
        assert all(p.source_key.split(".", 1)[1] == p.target_key.split(".", 1)[1] for p in result.pairs)
    # Four times the tensors: linear work reads shapes ~4x as often, quadratic work 16x.
    assert reads[1] < 5 * reads[0]


# --- property: any network written by "another library" is recovered exactly ---------------------

_block = st.tuples(st.sampled_from([4, 8, 16]), st.sampled_from([1, 3]), st.booleans())


@settings(max_examples=60, deadline=None)
@given(blocks=st.lists(_block, min_size=1, max_size=30), drop_counter=st.booleans())
def test_any_renamed_and_locally_reordered_network_is_recovered_exactly(blocks, drop_counter):
    """Source: conv then norm per block. Target: other names, some blocks register the norm first,
    and perhaps no ``num_batches_tracked``. Alignment must give exactly the true correspondence."""
    source, target, truth = [], [], {}
    width = 3
    for i, (out, k, norm_first) in enumerate(blocks):
        s_conv, s_bn = conv(f"features.{i}.0", out, width, k), bn(f"features.{i}.1", out)
        t_conv = conv(f"stages.{i}.conv", out, width, k)
        t_bn = bn(
            f"stages.{i}.norm", out, tracked=not drop_counter, names=("gamma", "beta", "moving_mean", "moving_var")
        )
        source += s_conv + s_bn
        target += (t_bn + t_conv) if norm_first else (t_conv + t_bn)
        truth[s_conv[0].key] = t_conv[0].key
        for s, t in zip(s_bn, t_bn):
            truth[s.key] = t.key
        width = out
    result = align(source, target)
    assert result.same_architecture
    assert alignment_to_rules(result) == truth


def test_the_hint_for_an_ambiguous_pairing_works_when_followed(tmp_path):
    import torch
    from torch import nn

    import weightport

    def net(block: str, conv: str, a: str, b: str) -> nn.Module:
        inner = nn.Module()
        inner.add_module(conv, nn.Conv2d(8, 8, 3))
        inner.register_parameter(a, nn.Parameter(torch.randn(8)))
        inner.register_parameter(b, nn.Parameter(torch.randn(8)))
        outer = nn.Module()
        outer.add_module(block, inner)
        return outer

    source, target = net("block", "proj", "scale_a", "scale_b"), net("blk", "conv", "p", "q")
    torch.save(source.state_dict(), tmp_path / "w.pt")
    with pytest.raises(AmbiguousMappingError) as info:
        weightport.load_weights(target, tmp_path / "w.pt")
    rename = ast.literal_eval(info.value.hint.split("e.g. rename=")[1].split(" (rules")[0])  # as shown
    report = weightport.load_weights(target, tmp_path / "w.pt", rename=rename)
    assert torch.equal(target.blk.p, source.block.scale_a) and torch.equal(target.blk.q, source.block.scale_b)
    assert report.counts()["loaded"] == 4
