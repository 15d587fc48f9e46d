from __future__ import annotations

import os
import time

from weightport.fetch.cache import cache_root, torch_hub_checkpoints, url_entry
from weightport.fetch.sweep import sweep_dir


def test_cache_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("WEIGHTPORT_CACHE", str(tmp_path / "env"))
    assert cache_root(tmp_path / "opt") == tmp_path / "opt"
    assert cache_root() == tmp_path / "env"
    monkeypatch.delenv("WEIGHTPORT_CACHE")
    assert cache_root().name == "weightport"


def test_url_entry_never_escapes_its_directory(tmp_path):
    path = url_entry("https://h/a/..%2F..%2Fetc%2Fpasswd", tmp_path)
    assert path.parent.parent == tmp_path / "url"
    assert url_entry("https://h/", tmp_path).name == "download"


def test_torch_hub_dir_follows_torch_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert torch_hub_checkpoints() == tmp_path / "th" / "hub" / "checkpoints"


def test_sweep_dir_removes_only_old_temp_files(tmp_path):
    old = tmp_path / "k" / ".m.pth.123.abcd.part"
    new = tmp_path / "k" / ".m.pth.456.ef01.part"
    keep = tmp_path / "k" / "m.pth"
    old.parent.mkdir()
    for p in (old, new, keep):
        p.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    assert sweep_dir(tmp_path) == 1
    assert not old.exists() and new.exists() and keep.exists()
