"""Duplicate registrations and entry-point plugins."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from weightport.adapters.base import Adapter
from weightport.errors import DuplicateRegistrationError
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry import (
    Source,
    get_adapter,
    plugins,
    register_adapter,
    register_source,
    resolve,
    schemes,
)
from weightport.registry.aliases import get_alias, unregister_source


class MemAdapter(Adapter):
    scheme = "wpmem"

    def parse(self, rest: str, uri: str) -> Source:
        return Source(uri=uri, scheme="wpmem", location=rest)

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        raise NotImplementedError


def register_plugin_alias() -> None:
    register_source("wp-plugin-alias", "wpmem:thing", override=True)


def test_duplicate_alias_raises_unless_override():
    register_source("wp-dup", "hf:a/b")
    try:
        with pytest.raises(DuplicateRegistrationError, match="override=True"):
            register_source("wp-dup", "hf:a/c")
        register_source("wp-dup", "hf:a/c", override=True)
        assert get_alias("wp-dup").target == "hf:a/c"
    finally:
        unregister_source("wp-dup")


def test_duplicate_scheme_raises_unless_override():
    with pytest.raises(DuplicateRegistrationError, match="override=True"):
        register_adapter("https")(MemAdapter)
    with pytest.raises(DuplicateRegistrationError):
        register_adapter("hf")(MemAdapter)


def test_entry_point_plugins_are_discovered(monkeypatch):
    eps = [
        EntryPoint("mem", f"{__name__}:MemAdapter", plugins.ENTRY_POINT_GROUP),
        EntryPoint("aliases", f"{__name__}:register_plugin_alias", plugins.ENTRY_POINT_GROUP),
        EntryPoint("broken", "no_such_module_wp:thing", plugins.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: eps if group == plugins.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(plugins, "_loaded", False)
    try:
        assert isinstance(get_adapter("wpmem"), MemAdapter)
        assert resolve("wpmem:x").location == "x"
        assert resolve("wp-plugin-alias").uri == "wpmem:thing"
    finally:
        schemes._ADAPTERS.pop("wpmem", None)
        unregister_source("wp-plugin-alias")
