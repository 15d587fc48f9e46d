"""Faults whose danger is memory or time, run in one child process under ``RLIMIT_AS``.

Each file below asks for far more memory than the child may have (the child proves its limit bites
first) or for exponential or unbounded work; each must come back as the typed error weightport
promises, with the model unchanged. One child runs the whole batch (children are costly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.faults import crafted as C
from tests.helpers.servers import FileServer
from tests.test_fault_suite import ROOT, SRC, good_state_dict, st_bytes


class _Batch:
    def __init__(self, tmp: Path, server: FileServer) -> None:
        self.tmp, self.server = tmp, server


def _cases(h: _Batch) -> dict[str, tuple[dict, str, list[str]]]:
    """id -> (case for the child, expected error class, message words)."""
    sd = good_state_dict()
    files = {
        "bytearray-8GiB": C.with_pickle(sd, C.checkpoint(C.call("builtins", "bytearray", C.i(1 << 33)))),
        "numpy-void-512MiB": C.with_pickle(sd, C.checkpoint(C.call(
            "numpy.core.multiarray", "scalar", C.call("numpy", "dtype", C.s("V536870912"), b"\x89\x88"), C.s("")))),
        "FloatTensor-256GiB": C.with_pickle(sd, C.checkpoint(C.call("torch", "FloatTensor", C.i(1 << 36)))),
        "memo-bomb-60": C.with_pickle(sd, C.checkpoint(C.memo_bomb(60)[2:-1])),
        "nested-5000": C.with_pickle(sd, C.checkpoint(C.nested(5000)[2:-1])),
        "stride0-64GiB-in-a-set": C.torch_bytes({"state_dict": sd, "hp": {torch.zeros(1).expand(1 << 34)}}),
        "sparse-1T-elements": C.torch_bytes({"w": torch.sparse_coo_tensor(torch.zeros(2, 1, dtype=torch.long),
                                                                          torch.ones(1), (1 << 20, 1 << 20))}),
    }
    expect = {
        "bytearray-8GiB": ("UnsafeCheckpointError", ["builtins.bytearray"]),
        "numpy-void-512MiB": ("UnsafeCheckpointError", ["V536870912"]),
        "FloatTensor-256GiB": ("UnsafeCheckpointError", ["torch.FloatTensor"]),
        "memo-bomb-60": ("ResourceLimitError", ["memo-reference bomb"]),
        "nested-5000": ("ResourceLimitError", ["max_depth"]),
        "stride0-64GiB-in-a-set": ("ResourceLimitError", ["68719476736"]),
        "sparse-1T-elements": ("UnsupportedTensorError", ["sparse"]),
    }
    cases = {}
    for name, data in files.items():
        path = h.tmp / f"{name}.pth"
        path.write_bytes(data)
        for call in ("load", "plan", "read"):
            cases[f"{name}/{call}"] = ({"id": f"{name}/{call}", "call": call, "source": str(path)}, *expect[name])
        code = "5" if expect[name][0] == "UnsafeCheckpointError" else "1"  # the CLI's exit codes
        cases[f"{name}/cli-inspect"] = ({"id": f"{name}/cli-inspect", "call": "inspect", "source": str(path)},
                                        "exit", [code])
    body = st_bytes(sd)
    endless = h.server.add("/endless.safetensors", body, mode="endless")
    lock = h.tmp / "weightport.lock"
    lock.write_text(json.dumps({"version": 1, "sources": {endless: {"location": endless, "size": len(body)}}}))
    cases["endless-pinned/load"] = ({"id": "endless-pinned/load", "call": "load", "source": endless,
                                     "kwargs": {"fetch": {"lockfile": str(lock), "retries": 0}}},
                                    "IntegrityError", ["pinned size"])
    capped = h.server.add("/capped.safetensors", b"\0" * 65536, mode="endless")
    cases["endless-capped/load"] = ({"id": "endless-capped/load", "call": "load", "source": capped,
                                     "kwargs": {"fetch": {"max_download_bytes": 1 << 20, "retries": 0}}},
                                    "ResourceLimitError", ["max_download_bytes"])
    slow = h.server.add("/slow.safetensors", body, mode="trickle", delay=0.05)
    cases["trickle/load"] = ({"id": "trickle/load", "call": "load", "source": slow,
                              "kwargs": {"fetch": {"deadline": 1.0, "retries": 0}}},
                             "DownloadTimeoutError", ["deadline"])
    return cases


CASE_IDS = [f"{n}/{c}" for n in ("bytearray-8GiB", "numpy-void-512MiB", "FloatTensor-256GiB", "memo-bomb-60",
                                  "nested-5000", "stride0-64GiB-in-a-set", "sparse-1T-elements")
            for c in ("load", "plan", "read", "cli-inspect")] + ["endless-pinned/load", "endless-capped/load",
                                                                 "trickle/load"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory):
    """One child runs every case; each test below checks one result."""
    server = FileServer()
    try:
        tmp = tmp_path_factory.mktemp("bounded")
        cases = _cases(_Batch(tmp, server))
        assert sorted(cases) == sorted(CASE_IDS)
        spec = tmp / "cases.json"
        spec.write_text(json.dumps([c for c, _, _ in cases.values()]))
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1",
               "WEIGHTPORT_CACHE": str(tmp / "cache")}
        proc = subprocess.run([sys.executable, "-m", "tests.faults.bounded_child", str(spec)], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=300)  # a hang guard, not a measurement
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        assert lines and lines[0]["id"] == "limit" and lines[0]["bites"], (proc.stdout, proc.stderr[-2000:])
        yield cases, {r["id"]: r for r in lines[1:]}, tmp, proc.stderr
    finally:
        server.close()


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_memory_and_time_bombs_are_refused_within_bounds(batch, case_id):
    cases, results, tmp, stderr = batch
    assert case_id in results, stderr[-2000:]
    got, (_, error, words) = results[case_id], cases[case_id]
    assert got["same"], f"{case_id}: the model changed"
    if error == "exit":  # the CLI: one line, the exit code of the error class, no traceback
        assert str(got.get("exit")) == words[0] and "error" not in got, f"{case_id}: {got}"
        return
    assert got.get("error") == error, f"{case_id}: {got}"
    builtin = "TimeoutError" if error == "DownloadTimeoutError" else "ValueError"
    assert "WeightportError" in got["mro"] and builtin in got["mro"], got
    for word in words:
        assert word in got["message"], f"{case_id}: {word!r} not in {got['message']}"
    assert "hint:" in got["message"], got
    cache = tmp / "cache" / "url"
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
