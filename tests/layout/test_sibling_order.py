"""The one rule that says whether module paths prove the pairing of same-shaped modules."""

from __future__ import annotations

from weightport.layout.sibling_order import index_paths, order_proof


def _proof(source: list[str], target: list[str], all_source: list[str] | None = None,
           all_target: list[str] | None = None):
    return order_proof(source, target, index_paths(all_source or source), index_paths(all_target or target))


def test_blocks_of_a_sequence_pair_by_position():
    proof = _proof(["encoder.layers.encoder_layer_0.mlp", "encoder.layers.encoder_layer_1.mlp"],
                   ["blocks.0.mlp.fc", "blocks.1.mlp.fc"])
    assert proof is not None and proof.kind == "position"
    assert proof.pairs["encoder.layers.encoder_layer_1.mlp"] == "blocks.1.mlp.fc"


def test_siblings_registered_in_another_order_are_ambiguous():
    tv = ["trunk.block1-0.proj.0", "trunk.block1-0.f.a.0"]
    timm = ["s1.b1.conv1.conv", "s1.b1.downsample.conv"]
    assert _proof(tv, timm, all_target=[*timm, "s1.b1.conv2.conv", "s1.b1.conv3.conv"]) is None
    assert _proof(["block.shortcut", "block.main"], ["block.conv", "block.downsample"]) is None


def test_names_that_correspond_pair_whatever_the_order():
    proof = _proof(["attn.q_proj", "attn.k_proj", "attn.v_proj"], ["attn.value", "attn.query", "attn.key"])
    assert proof is not None and proof.kind == "names"
    assert proof.pairs == {"attn.q_proj": "attn.query", "attn.k_proj": "attn.key", "attn.v_proj": "attn.value"}


def test_numbers_in_names_are_ordinals_counted_from_0_or_1():
    source = ["blocks.0._bn0", "blocks.0._bn1", "blocks.1._bn0", "blocks.1._bn1", "head"]
    target = ["stages.0.bn1", "stages.0.bn2", "stages.1.bn1", "stages.1.bn2", "norm"]
    proof = _proof(source, target, [*source, "blocks.0._conv", "blocks.1._conv"],
                   [*target, "stages.0.conv", "stages.1.conv"])
    assert proof is not None
    assert proof.pairs["blocks.1._bn0"] == "stages.1.bn1" and proof.pairs["head"] == "norm"
    assert proof.confidence < 1.0
