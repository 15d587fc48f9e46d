"""``weightport cache``: list, verify, remove and prune what the fetch layer stored."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from tests.cli.conftest import run_cli


@pytest.fixture
def populated(ckpts, file_server, tmp_path, monkeypatch) -> dict[str, Path]:
    """A URL fetched into weightport's cache, and a torch.hub file placed the way the fetch layer places it."""
    from weightport.fetch.cache import torch_hub_checkpoints, write_sidecar
    from weightport.fetch.step import fetch_files
    from weightport.fetch.types import FetchOptions
    from weightport.registry.resolve import resolve

    monkeypatch.setenv("WEIGHTPORT_CACHE", str(tmp_path / "wp-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = file_server.add("/weights/tiny.safetensors", ckpts["safetensors"].read_bytes())
    source = resolve(url)
    fetched = fetch_files(source, FetchOptions(progress=False))
    hub = torch_hub_checkpoints() / "tinynet-0123abcd.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(ckpts["ddp"].read_bytes())
    write_sidecar(hub, hashlib.sha256(hub.read_bytes()).hexdigest(), hub.stat().st_size)
    return {"url": Path(fetched.path), "hub": hub}


def test_ls_lists_both_caches_with_recorded_digests(populated, ckpts):
    result = run_cli("--json", "cache", "ls")
    assert result.code == 0, result.err
    data = result.json()
    by_name = {e["name"]: e for e in data["entries"]}
    assert set(by_name) == {"tiny.safetensors", "tinynet-0123abcd.pth"}
    assert by_name["tiny.safetensors"]["cache"] == "weightport"
    assert by_name["tiny.safetensors"]["sha256"] == hashlib.sha256(ckpts["safetensors"].read_bytes()).hexdigest()
    assert by_name["tinynet-0123abcd.pth"]["cache"] == "torch-hub"
    assert data["total_bytes"] == populated["url"].stat().st_size + populated["hub"].stat().st_size
    assert data["huggingface"].endswith("hub")


def test_verify_passes_then_catches_a_changed_file(populated):
    ok = run_cli("--json", "cache", "verify")
    assert ok.code == 0 and {r["status"] for r in ok.json()["results"]} == {"ok"}
    data = bytearray(populated["url"].read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes: only the hash can tell
    populated["url"].write_bytes(bytes(data))
    bad = run_cli("cache", "verify")
    assert bad.code == 3
    assert "MISMATCH" in bad.out and "1 mismatch(es)" in bad.out
    only_hub = run_cli("--json", "cache", "verify", "tinynet-*")
    assert only_hub.code == 0 and [r["name"] for r in only_hub.json()["results"]] == ["tinynet-0123abcd.pth"]


def test_prune_removes_only_stale_temp_files_and_rm_removes_an_entry(populated, capsys):
    from weightport.cli import main

    folder = populated["url"].parent
    stale, fresh = folder / ".tiny.safetensors.111.aaaa.part", folder / ".tiny.safetensors.222.bbbb.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    two_days_ago = time.time() - 48 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    quarantined = populated["hub"].with_name(populated["hub"].name + ".corrupt-123")
    quarantined.write_bytes(b"bad")

    result = run_cli("--json", "cache", "prune", "--corrupt")
    assert result.code == 0, result.err
    assert result.json()["temp_files"] == 1 and result.json()["quarantined"] == [str(quarantined)]
    assert not stale.exists() and fresh.exists() and not quarantined.exists()

    assert main(["cache", "rm", "tiny.safetensors"]) == 0
    assert not populated["url"].exists() and not populated["url"].with_name("tiny.safetensors.sha256").exists()
    assert populated["hub"].exists()
    capsys.readouterr()
    assert main(["cache", "rm", "tiny.safetensors"]) == 4
    assert capsys.readouterr().err.startswith("error: no cached file matches tiny.safetensors")
    assert main(["cache", "rm"]) == 2


def test_cache_rm_help_says_what_it_needs_and_the_refusal_agrees():
    help_text = run_cli("cache", "rm", "--help").out
    assert "required unless --all" in help_text and "default: all" not in help_text
    refused = run_cli("cache", "rm")
    assert refused.code == 2 and "--all" in refused.err
