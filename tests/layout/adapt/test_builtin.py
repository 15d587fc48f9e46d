"""The shipped adapters are registered by name, in the order they are tried."""

from __future__ import annotations

from weightport.layout.adapt.base import tensor_adapters


def test_builtin_adapters_are_registered_once_each_by_name():
    names = [a.name for a in tensor_adapters()]
    assert names[:5] == ["reshape", "channels", "pos_embed", "patch_embed", "classes"]
    assert len(names) == len(set(names))
