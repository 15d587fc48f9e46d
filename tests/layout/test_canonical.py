import pytest

from weightport.layout.canonical import canonicalise


def names(keys):
    mapping, _ = canonicalise(keys)
    return sorted(mapping)


@pytest.mark.parametrize(
    "prefix", ["module.", "_orig_mod.", "module._orig_mod.", "_orig_mod.module.", "module.module."]
)
def test_wrapper_prefixes_in_any_combination_are_stripped(prefix):
    assert names([prefix + "conv.weight", prefix + "fc.bias"]) == ["conv.weight", "fc.bias"]


def test_compile_segment_inside_an_attribute_is_dropped():
    assert names(["model._orig_mod.conv.weight", "model._orig_mod.fc.bias"]) == ["model.conv.weight", "model.fc.bias"]


def test_wrapper_inside_a_lightning_attribute_is_dropped():
    assert names(["net.module.conv.weight", "net.module.fc.bias"]) == ["net.conv.weight", "net.fc.bias"]


def test_a_real_submodule_named_module_is_kept_when_not_every_key_has_it():
    assert names(["module.conv.weight", "head.bias"]) == ["head.bias", "module.conv.weight"]


def test_ops_record_what_was_stripped_and_originals_are_kept():
    mapping, ops = canonicalise(["module._orig_mod.fc.weight"])
    assert mapping == {"fc.weight": "module._orig_mod.fc.weight"}
    assert ops["fc.weight"] == ["strip _orig_mod.", "strip module."]
