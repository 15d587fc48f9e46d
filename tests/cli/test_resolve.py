"""``weightport resolve``: what a source string means, with no download."""

from __future__ import annotations

from tests.cli.conftest import run_cli


def test_resolve_a_local_file_and_a_url_without_downloading(ckpts, file_server):
    url = file_server.add("/w/tiny.safetensors", ckpts["safetensors"].read_bytes())
    result = run_cli("--json", "resolve", str(ckpts["ckpt"]))
    assert result.code == 0, result.err
    data = result.json()
    assert data["scheme"] == "file" and data["cached"] is True and data["cached_path"] == str(ckpts["ckpt"])
    assert data["adapter"] == "weightport.adapters.local.LocalAdapter"

    remote = run_cli("--json", "resolve", url + "#sha256=" + "ab" * 32)
    assert remote.code == 0, remote.err
    data = remote.json()
    assert data["scheme"] == "http" and data["location"] == url and data["sha256"] == "ab" * 32
    assert data["cached"] is False and data["cached_path"] is None
    assert file_server.count() == 0


def test_unknown_scheme_and_bad_fragment():
    unknown = run_cli("resolve", "nosuchscheme:thing")
    assert unknown.code == 4
    assert unknown.error_lines[0] == "error: unknown scheme 'nosuchscheme' in source 'nosuchscheme:thing'"
    bad = run_cli("resolve", "https://example.org/x.pt#md5=00")
    assert bad.code == 2 and bad.error_lines[1] == "hint: the only fragment understood is #sha256=<64 hex digits>"
