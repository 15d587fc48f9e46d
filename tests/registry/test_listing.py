from __future__ import annotations

from weightport.registry.listing import list_sources


def test_lists_aliases_torchvision_and_timm_in_resolution_order():
    found = list_sources("*efficientnet_lite0*")
    schemes = [s.scheme for s in found]
    assert schemes[0] == "alias" and found[0].name == "efficientnet_lite0" and found[0].num_classes == 1000
    assert "timm" in schemes
    assert schemes == sorted(schemes, key=["alias", "torchvision", "timm"].index)


def test_torchvision_entry_has_default_tag_and_classes():
    (resnet50,) = [s for s in list_sources("torchvision:resnet50") if s.scheme == "torchvision"]
    assert resnet50.default_tag == "IMAGENET1K_V2" and "IMAGENET1K_V1" in resnet50.tags
    assert resnet50.num_classes == 1000 and resnet50.uri == "torchvision:resnet50.IMAGENET1K_V2"


def test_timm_entry_has_tags_and_license():
    (entry,) = list_sources("timm:resnet50")
    assert entry.default_tag == "a1_in1k" and "a1_in1k" in entry.tags and entry.license == "apache-2.0"


def test_pattern_filters():
    assert list_sources("no-such-thing-*") == []
