"""The shipped fitters are registered by name, in the order they are tried."""

from __future__ import annotations

from weightport.layout.fit.base import fitters


def test_builtin_adapters_are_registered_once_each_by_name():
    names = [a.name for a in fitters()]
    assert names[:5] == ["reshape", "channels", "pos_embed", "patch_embed", "classes"]
    assert len(names) == len(set(names))
