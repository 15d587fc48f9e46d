"""``weightport lock``: write the lock file, and check sources against it."""

from __future__ import annotations

import hashlib
import json

from tests.cli.conftest import run_cli


def test_lock_writes_then_check_reports_a_changed_source(ckpts, file_server, tmp_path):
    body = ckpts["safetensors"].read_bytes()
    url = file_server.add("/weights/tiny.safetensors", body)
    local = tmp_path / "local.safetensors"
    local.write_bytes(body)

    written = run_cli("--json", "lock", url, str(local), cwd=tmp_path)
    assert written.code == 0, written.err
    lock = json.loads((tmp_path / "weightport.lock").read_text())
    assert lock["sources"][url]["sha256"] == hashlib.sha256(body).hexdigest()
    # A local file is recorded relative to the lock file, so the check works from anywhere.
    assert lock["sources"]["file:local.safetensors"]["size"] == len(body)
    assert lock["sources"]["file:local.safetensors"]["location"] == "local.safetensors"
    assert written.json()["file"] == "weightport.lock"

    assert run_cli("lock", "--check", cwd=tmp_path).code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    from_elsewhere = run_cli("lock", "--check", "--file", str(tmp_path / "weightport.lock"), cwd=elsewhere)
    assert from_elsewhere.code == 0, from_elsewhere.out + from_elsewhere.err
    local.write_bytes(body + b"\0")
    checked = run_cli("--json", "lock", "--check", cwd=tmp_path)
    assert checked.code == 3
    status = {r["source"]: r for r in checked.json()["results"]}
    assert status[url]["status"] == "ok"
    assert status[f"file:{local}"]["status"] == "mismatch"
    assert "differs from the lock file" in status[f"file:{local}"]["problem"]
    assert file_server.count("GET") == 1  # the check used the cached copy


def test_lock_without_sources_or_file_is_a_usage_error(tmp_path, capsys):
    from weightport.cli import main

    assert main(["lock", "--file", str(tmp_path / "none.lock")]) == 2
    assert "no sources given" in capsys.readouterr().err
    assert main(["lock", "--check", "--file", str(tmp_path / "none.lock")]) == 4


def test_verbosity_flags_set_the_log_level(ckpts, tmp_path, capsys):
    from weightport.cli import main

    lock = str(tmp_path / "w.lock")
    assert main(["-v", "lock", "--file", lock, str(ckpts["safetensors"])]) == 0
    assert f"INFO: locked file:{ckpts['safetensors']}" in capsys.readouterr().err
    assert main(["lock", "--file", lock, str(ckpts["safetensors"])]) == 0
    assert "INFO" not in capsys.readouterr().err
