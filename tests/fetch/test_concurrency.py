"""Many processes, one download; killed downloads leave nothing final; full disks say so."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weightport.errors import LockTimeoutError
from weightport.fetch.cache import url_entry
from weightport.fetch.download_lock import entry_lock
from weightport.fetch.step import fetch_files
from weightport.fetch.types import FetchOptions
from weightport.registry import resolve

WORKER = Path(__file__).with_name("_fetch_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"
BODY = os.urandom(400_000)
SHA = hashlib.sha256(BODY).hexdigest()


HOLD_LOCK = (
    "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire();"
    " print('held', flush=True); time.sleep(30)"
)


def spawn(uri: str, cache: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), uri, str(cache), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )


def _parts(entry: Path) -> list[Path]:
    try:
        return [p for p in entry.parent.glob(".big.pth.*.part") if p.exists()]
    except FileNotFoundError:
        return []


@pytest.mark.ddp
def test_many_processes_make_exactly_one_download(file_server, tmp_path):
    url = file_server.add("/big.pth", BODY, delay=0.1)  # ~0.8 s in flight, so the processes overlap
    cache = tmp_path / "shared-cache"
    procs = [spawn(url, cache) for _ in range(4)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert file_server.count("GET") == 1
    assert {r["sha256"] for r in results} == {SHA}
    assert len({r["path"] for r in results}) == 1
    assert sorted(r["cached"] for r in results) == [False, True, True, True]
    assert Path(results[0]["path"]).read_bytes() == BODY


def test_killed_download_leaves_no_final_file_and_next_run_cleans_up(file_server, tmp_path):
    url = file_server.add("/big.pth", BODY, mode="stall", stall=30)
    cache = tmp_path / "cache"
    proc = spawn(url, cache)
    entry = url_entry(url, cache)
    deadline = time.monotonic() + 60  # a deadline, not a sleep: waits only as long as a loaded machine needs
    while time.monotonic() < deadline and not any(p.stat().st_size for p in _parts(entry)):
        time.sleep(0.05)
    assert any(p.stat().st_size for p in _parts(entry)), "the download never started writing its temp file"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(entry.parent.glob(".big.pth.*.part")), "the killed process should have left a temp file"
    assert not entry.exists()

    file_server.add("/big.pth", BODY)
    fetched = fetch_files(resolve(url), FetchOptions(cache_dir=cache, progress=False))
    assert fetched.path.read_bytes() == BODY
    assert not list(entry.parent.glob("*.part"))


def test_disk_full_is_a_clear_error_and_leaves_nothing(file_server, tmp_path):
    url = file_server.add("/big.pth", BODY)
    cache = tmp_path / "cache"
    proc = spawn(url, cache, "100000")  # RLIMIT_FSIZE: 100 kB, the file is 400 kB
    out, err = proc.communicate(timeout=60)
    result = json.loads(out)
    assert result["error"] == "DiskFullError", err
    assert str(len(BODY)) in result["message"]
    entry = url_entry(url, cache)
    assert not entry.exists() and not list(entry.parent.glob("*.part"))


def test_lock_wait_is_bounded(file_server, tmp_path):
    url = file_server.add("/m.pth", BODY)
    options = FetchOptions(cache_dir=tmp_path / "c", progress=False, lock_timeout=0.3)
    source = resolve(url)
    entry = url_entry(url, options.cache_dir)
    entry.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(entry) + ".lock"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeoutError, match="m.pth"):
            fetch_files(source, options)
        assert file_server.count() == 0
    finally:
        holder.kill()
        holder.wait()
    with entry_lock(entry, 5):  # released when the holder dies
        pass
