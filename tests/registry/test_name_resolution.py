"""Bare names: aliases, then torchvision, then timm; unknown names list close matches."""

from __future__ import annotations

import pytest

from weightport.errors import UnknownSourceError
from weightport.registry import register_source, resolve
from weightport.registry.aliases import unregister_source


def test_torchvision_before_timm():
    source = resolve("resnet18")
    assert source.scheme == "torchvision" and source.uri == "torchvision:resnet18.IMAGENET1K_V1"
    assert "torchvision" in source.resolved_by and "default" in source.resolved_by


def test_timm_when_torchvision_lacks_the_tag():
    source = resolve("resnet50.a1_in1k")
    assert source.scheme == "timm"
    assert "not in torchvision" in source.resolved_by


def test_timm_only_architecture():
    assert resolve("tf_efficientnet_lite0").uri == "timm:tf_efficientnet_lite0.in1k"


def test_alias_wins_over_libraries(tmp_path):
    register_source("resnet18", "hf:someone/resnet18", license="mit")
    try:
        source = resolve("resnet18")
        assert source.scheme == "hf" and source.license == "mit"
        assert source.resolved_by.startswith("alias 'resnet18'")
    finally:
        unregister_source("resnet18")


def test_unknown_name_lists_close_matches_once():
    with pytest.raises(UnknownSourceError) as info:
        resolve("resnet181")
    message = str(info.value)
    matches = message.split("close matches: ", 1)[1].split("\n", 1)[0].split(", ")
    assert matches[0] == "resnet18" and matches.count("resnet18") == 1
    assert "weightport list" in message
