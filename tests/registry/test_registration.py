"""Duplicate registrations, built-ins that no import order can remove, and entry-point plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

from weightport.adapters.base import Adapter
from weightport.errors import DuplicateRegistrationError, InvalidSourceError
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry import (
    Source,
    get_adapter,
    plugins,
    register_adapter,
    register_source,
    resolve,
)
from weightport.registry.aliases import get_alias, unregister_source
from weightport.warnings import PluginWarning


class MemAdapter(Adapter):
    scheme = "wpmem"

    def parse(self, rest: str, uri: str) -> Source:
        return Source(uri=uri, scheme="wpmem", location=rest)

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        raise NotImplementedError


def register_plugin_alias() -> None:
    register_source("wp-plugin-alias", "wpmem:thing", override=True)


def plugin_that_raises() -> None:
    raise RuntimeError("this plugin is broken")


def test_duplicate_alias_raises_unless_override():
    register_source("wp-dup", "hf:a/b")
    with pytest.raises(DuplicateRegistrationError, match="override=True"):
        register_source("wp-dup", "hf:a/c")
    register_source("wp-dup", "hf:a/c", override=True)
    assert get_alias("wp-dup").target == "hf:a/c"
    unregister_source("wp-dup")
    assert get_alias("wp-dup") is None


def test_duplicate_scheme_raises_unless_override():
    # Built-in schemes are taken before anything was looked up: no test order makes this pass or fail.
    with pytest.raises(DuplicateRegistrationError, match="override=True"):
        register_adapter("https")(MemAdapter)
    with pytest.raises(DuplicateRegistrationError):
        register_adapter("hf")(MemAdapter)


def test_a_shipped_alias_is_taken_and_a_users_override_wins():
    with pytest.raises(DuplicateRegistrationError, match="override=True"):
        register_source("efficientnet_lite0", "hf:someone/else")
    register_source("efficientnet_lite0", "hf:someone/else", override=True)
    assert resolve("efficientnet_lite0").uri == "hf:someone/else"
    unregister_source("efficientnet_lite0")
    assert resolve("efficientnet_lite0").scheme == "pkg"


@pytest.mark.parametrize("bad", ["nothex", "ab" * 31 + "zz", "a" * 63, 123])
def test_a_bad_sha256_is_refused_at_registration(bad):
    with pytest.raises(InvalidSourceError, match="sha256"):
        register_source("wp-pinned", "hf:a/b", sha256=bad)
    assert get_alias("wp-pinned") is None


def test_user_registrations_made_before_any_lookup_win_and_keep_the_builtins():
    # A fresh process: the user registers first, before weightport has looked anything up.
    script = textwrap.dedent("""
        import weightport
        from weightport.adapters.base import Adapter
        from weightport.layout.fit.base import BUILTIN_FITTERS, register_fitter, fitters
        from weightport.layout.rules import LayoutRules, get_layout, layouts, register_layout
        from weightport.registry.schemes import get_adapter, schemes

        @weightport.register_adapter("file", override=True)
        class MyFiles(Adapter):
            scheme = "file"
            def parse(self, rest, uri): ...
            def fetch(self, source, options): ...

        class MyChannels:
            name = "channels"
            def applies(self, tensor, ctx): return False

        mine = register_fitter(MyChannels(), override=True)
        register_layout(LayoutRules("timm-vit-fuse-qkv", [("^a", "b")]), override=True)

        assert isinstance(get_adapter("file"), MyFiles)
        assert {"hf", "https", "http", "pkg", "timm", "torchvision", "file"} <= set(schemes())
        assert type(get_adapter("hf")).__name__ == "HubAdapter"
        names = [a.name for a in fitters()]
        assert names == list(BUILTIN_FITTERS), names
        assert fitters()[1] is mine
        assert get_layout("timm-vit-fuse-qkv").renames == [("^a", "b")]
        assert "torchvision-vit-to-timm" in layouts()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_entry_point_plugins_are_discovered_and_a_broken_one_is_reported(monkeypatch):
    eps = [
        EntryPoint("broken", "no_such_module_wp:thing", plugins.ENTRY_POINT_GROUP),
        EntryPoint("raises", f"{__name__}:plugin_that_raises", plugins.ENTRY_POINT_GROUP),
        EntryPoint("mem", f"{__name__}:MemAdapter", plugins.ENTRY_POINT_GROUP),
        EntryPoint("taken", f"{__name__}:MemAdapter", plugins.ENTRY_POINT_GROUP),  # same class twice: fine
        EntryPoint("aliases", f"{__name__}:register_plugin_alias", plugins.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: eps if group == plugins.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(plugins, "_declared", lambda: True)
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.setattr(plugins, "FAILED", {})
    with pytest.warns(PluginWarning) as caught:
        assert isinstance(get_adapter("wpmem"), MemAdapter)
    messages = [str(w.message) for w in caught]
    assert any("'broken'" in m and "ModuleNotFoundError" in m for m in messages)
    assert any("'raises'" in m and "this plugin is broken" in m for m in messages)
    assert set(plugins.FAILED) == {"broken", "raises"}
    assert resolve("wpmem:x").location == "x"
    assert resolve("wp-plugin-alias").uri == "wpmem:thing"
    assert type(get_adapter("file")).__name__ == "LocalAdapter"  # the built-ins are all still there


def test_the_plugin_prefilter_sees_a_distribution_that_declares_the_group(tmp_path, monkeypatch):
    info = tmp_path / "wp_fake_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wp-fake-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\nfake = wp_fake_plugin:thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert plugins._declared()
    assert [ep.name for ep in plugins.entry_points(group=plugins.ENTRY_POINT_GROUP)] == ["fake"]
