"""Trust faults (issue 13): every load is exactly right or refused, for each class of bad input.

Each case goes through the public API (``load_weights``, ``plan``, ``read_state_dict``, the CLI)
and asserts, with :meth:`tests.test_fault_suite.Harness.fails`: the error class and its built-in,
the message's words and a hint, the model bit-equal to before, no marker file, and nothing bad
under a final cache name. Cases whose danger is memory or time run in a child process under
``RLIMIT_AS`` (``tests/faults/test_bounded.py``), and this whole file runs once more in a child under
an address-space limit (``tests/faults/test_corpus_rlimit.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

import weightport
from tests.faults import crafted as C
from tests.test_fault_suite import assert_cache_clean, good_state_dict, harness, same_state, snapshot, st_bytes
from weightport import errors as E
from weightport.fetch.cache import url_entry

__all__ = ["harness"]

CALLS = {
    "load": lambda h, src, **kw: weightport.load_weights(h.model, src, **kw),
    "plan": lambda h, src, **kw: weightport.plan(h.model, src, **kw),
}


def write(h, name: str, data: bytes) -> Path:
    path = h.tmp / name
    path.write_bytes(data)
    return path


# --- 1. zip members torch would map raw ----------------------------------------------------------


def _good() -> bytes:
    return C.torch_bytes(good_state_dict())


def _overlap(data: bytes) -> bytes:
    first, second = C.member_offset(data, "data/0"), C.member_offset(data, "data/1")
    info = next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if i.filename.endswith("data/0"))
    grow = second - first + 16
    return C.patch_central(data, "data/0", csize=info.file_size + grow, usize=info.file_size + grow)


ZIPS = {
    # id: (bytes builder, error, words)
    "deflated-storage": (lambda: C.rezip(_good(), method=zipfile.ZIP_DEFLATED), E.UnsupportedFormatError,
                         ["data/0", "compressed", "method 8"]),
    "deflated-data.pkl": (lambda: C.rezip(_good(), method=zipfile.ZIP_DEFLATED, which="data.pkl"),
                          E.UnsupportedFormatError, ["data.pkl", "compressed"]),
    "bzip2-storage": (lambda: C.rezip(_good(), method=zipfile.ZIP_BZIP2), E.UnsupportedFormatError, ["method 12"]),
    "lzma-storage": (lambda: C.rezip(_good(), method=zipfile.ZIP_LZMA), E.UnsupportedFormatError, ["method 14"]),
    "encrypted-flag": (lambda: C.patch_central(_good(), "data/0", flags=0x809), E.UnsupportedFormatError,
                       ["encrypted"]),
    "duplicate-member": (lambda: C.rezip(_good(), duplicate=True), E.CorruptCheckpointError, ["twice"]),
    "header-offset-outside-file": (lambda: C.patch_central(_good(), "data/0", offset=10**8),
                                   E.CorruptCheckpointError, ["no local header", "100000000"]),
    "local-name-differs": (lambda: C.patch_central(_good(), "data/0", local_name=1), E.CorruptCheckpointError,
                           ["disagrees with the central directory"]),
    "record-past-end": (lambda: C.patch_central(_good(), "data/0", csize=10**7, usize=10**7),
                        E.CorruptCheckpointError, ["reaches past the end"]),
    "overlapping-records": (lambda: _overlap(_good()), E.CorruptCheckpointError, ["overlap"]),
    "sizes-disagree": (lambda: C.patch_central(_good(), "data/0", usize=4), E.CorruptCheckpointError,
                       ["stored bytes"]),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("case", list(ZIPS))
def test_zip_member_torch_would_misread(harness, case, call):
    build, error, words = ZIPS[case]
    path = write(harness, "z.pth", build())
    harness.fails(path, error, ValueError, "z.pth", *words, call=lambda: CALLS[call](harness, path))


def test_storage_record_shorter_than_its_dtype_needs(harness):
    data = C.torch_bytes({**good_state_dict(), "fc.bias": torch.zeros(10, dtype=torch.float64)})
    info = next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if "/data/" in i.filename and i.file_size == 80)
    short = C.patch_central(data, info.filename, csize=72, usize=72)
    path = write(harness, "dt.pth", short)
    harness.fails(path, E.CorruptCheckpointError, ValueError, "dt.pth", "80 bytes", "72 bytes", "shorter than declared")


# --- 2. tensors that are not plain dense strided CPU tensors ------------------------------------


class AttrTensor(torch.Tensor):
    """A tensor subclass (pickles through torch._tensor._rebuild_from_type_v2)."""


def _with_attr() -> torch.Tensor:
    t = torch.zeros(10)
    t.note = "an attribute"  # type: ignore[attr-defined]
    return t


def _param_with_attr() -> torch.nn.Parameter:
    p = torch.nn.Parameter(torch.zeros(10))
    p.no_decay = True  # type: ignore[attr-defined]
    return p


def _eye() -> torch.Tensor:
    return torch.eye(4)


KINDS = {
    # id: (fc.bias replacement, words)
    "sparse-coo": (lambda: torch.zeros(10).to_sparse(), ["sparse"]),
    "sparse-csr": (lambda: _eye().to_sparse_csr(), ["sparse"]),
    "sparse-csc": (lambda: _eye().to_sparse_csc(), ["sparse"]),
    "sparse-bsr": (lambda: _eye().to_sparse_bsr((2, 2)), ["sparse"]),
    "sparse-bsc": (lambda: _eye().to_sparse_bsc((2, 2)), ["sparse"]),
    "meta": (lambda: torch.empty(10, device="meta"), ["meta"]),
    "quantized-per-tensor": (lambda: torch.quantize_per_tensor(torch.zeros(10), 0.1, 0, torch.qint8), ["quantized"]),
    "quantized-per-channel": (lambda: torch.quantize_per_channel(
        torch.zeros(2, 5), torch.ones(2), torch.zeros(2, dtype=torch.long), 0, torch.qint8), ["quantized"]),
    "nested": (lambda: torch.nested.nested_tensor([torch.zeros(3), torch.zeros(7)]), ["nested"]),
    "subclass": (lambda: torch.zeros(10).as_subclass(AttrTensor), ["subclass"]),
    "tensor-with-attributes": (_with_attr, ["attributes"]),
    "parameter-with-attributes": (_param_with_attr, ["attributes"]),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_non_dense_tensor_is_refused_before_the_model_is_touched(harness, kind, call):
    make, words = KINDS[kind]
    state = {**good_state_dict(), "fc.bias": make()}
    path = write(harness, "k.pth", C.torch_bytes(state))
    exc = harness.fails(path, E.UnsupportedTensorError, ValueError, "k.pth", "dense", *words,
                        call=lambda: CALLS[call](harness, path))
    assert "dense" in (exc.hint or "") or "to_dense" in (exc.hint or "")
    assert not any(p.layout != torch.strided for p in harness.model.parameters())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sparse_tensor_deep_in_training_state_is_refused(harness):
    ckpt = {"state_dict": good_state_dict(), "optimizer": {"state": {0: {"momentum": torch.eye(3).to_sparse()}}}}
    path = write(harness, "opt.pth", C.torch_bytes(ckpt))
    harness.fails(path, E.UnsupportedTensorError, ValueError, "opt.pth", "sparse")


LEGACY_ALLOCATORS = {
    "torch.FloatTensor(n)": ("torch", "FloatTensor"),
    "torch.Tensor(n)": ("torch", "Tensor"),
    "torch.cuda.FloatTensor(n)": ("torch.cuda", "FloatTensor"),
    "torch.sparse.FloatTensor(n)": ("torch.sparse", "FloatTensor"),
}


@pytest.mark.parametrize("case", list(LEGACY_ALLOCATORS))
def test_legacy_tensor_constructor_is_refused_before_torch_calls_it(harness, case):
    module, name = LEGACY_ALLOCATORS[case]
    pickled = C.checkpoint(C.call(module, name, C.i(1 << 36)))
    path = write(harness, "alloc.pth", C.with_pickle(good_state_dict(), pickled))
    harness.fails(path, E.WeightportError, ValueError, "alloc.pth", f"{module}.{name}")


def test_complex_weights_into_a_real_model(harness):
    state = {**good_state_dict(), "fc.bias": torch.complex(torch.ones(10), torch.ones(10))}
    path = write(harness, "c.safetensors", st_bytes(state))
    harness.fails(path, E.DtypeError, TypeError, "fc.bias", "complex64", "imaginary",
                  call=lambda: CALLS["load"](harness, path))
    # The plan says what the load would refuse: not ok, with the same error.
    the_plan = CALLS["plan"](harness, path)
    assert not the_plan.ok
    problem = the_plan.problem()
    assert isinstance(problem, E.DtypeError) and isinstance(problem, TypeError)
    assert all(w in str(problem) for w in ("fc.bias", "complex64", "imaginary"))
    assert the_plan.to_dict()["uncastable"][0]["source_key"] == "fc.bias"


# --- tensor size limits count every tensor, at any depth ----------------------------------------


def _giant() -> torch.Tensor:
    return torch.zeros(1).expand(1 << 28)  # 1 GiB logical from a 4-byte storage (torch.save keeps the view)


def _deep(value: object, depth: int) -> object:
    for _ in range(depth):
        value = {"x": value}
    return value


HIDDEN = {
    "in-a-set": lambda: {"hp": {_giant()}},
    "as-a-dict-key": lambda: {"hp": {(_giant(),): 1}},
    "in-a-namespace": lambda: {"hp": argparse.Namespace(t=_giant())},
    "at-depth-60": lambda: {"hp": _deep(_giant(), 60)},
    "in-a-list-in-a-tuple": lambda: {"hp": ([1, (2, _giant())],)},
    "shared-with-a-weight": lambda: {"hp": [_giant()], "other": {"g": _giant()}},
}


@pytest.mark.parametrize("where", list(HIDDEN))
def test_expanded_tensor_anywhere_in_the_file_is_refused(harness, where):
    ckpt = {"state_dict": good_state_dict(), **HIDDEN[where]()}
    path = write(harness, "hidden.pth", C.torch_bytes(ckpt))
    harness.fails(path, E.ResourceLimitError, ValueError, "hidden.pth", "1073741824", "storage holds only 4",
                  allow_globals=["argparse.Namespace"])


# --- 3. the one globals rule --------------------------------------------------------------------


GLOBALS = {
    # id: (pickled extra value, error, words)
    "bytearray(n)": (C.call("builtins", "bytearray", C.i(1 << 33)), E.UnsafeCheckpointError, ["builtins.bytearray"]),
    "numpy-void-dtype": (C.call("numpy", "dtype", C.s("V536870912"), b"\x89\x88"), E.UnsafeCheckpointError,
                         ["numpy dtype", "V536870912"]),
    "numpy-void-scalar": (C.call("numpy.core.multiarray", "scalar",
                                 C.call("numpy", "dtype", C.s("V8"), b"\x89\x88"), C.s("")),
                          E.UnsafeCheckpointError, ["numpy dtype"]),
    "numpy-object-dtype": (C.call("numpy", "dtype", C.s("O"), b"\x89\x88"), E.UnsafeCheckpointError, ["numpy"]),
    "numpy-scalar-short-bytes": (C.call("numpy._core.multiarray", "scalar",
                                        C.call("numpy", "dtype", C.s("f8"), b"\x89\x88"),
                                        C.call("_codecs", "encode", C.s("ab"), C.s("latin1"))),
                                 E.UnsafeCheckpointError, ["scalar", "2 bytes"]),
    "rebuild_from_type_v2(bytearray)": (C.call("torch._tensor", "_rebuild_from_type_v2",
                                               C.g("builtins", "bytearray"), C.g("torch", "Tensor"),
                                               b"(" + C.i(1 << 33) + b"t", b"}"),
                                        E.WeightportError, ["_rebuild_from_type_v2"]),
    "builtins.getattr": (C.call("builtins", "getattr", C.s("x"), C.s("y")), E.UnsafeCheckpointError, ["getattr"]),
    "builtins.frozenset": (C.call("builtins", "frozenset", b"]"), E.UnsafeCheckpointError, ["frozenset"]),
    "torch.serialization._get_layout": (C.call("torch.serialization", "_get_layout", C.s("torch.sparse_coo")),
                                        E.UnsupportedTensorError, ["layout"]),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("case", list(GLOBALS))
def test_pickle_global_outside_the_rule_is_refused(harness, case, call):
    value, error, words = GLOBALS[case]
    path = write(harness, "g.pth", C.with_pickle(good_state_dict(), C.checkpoint(value)))
    harness.fails(path, error, ValueError, "g.pth", *words, call=lambda: CALLS[call](harness, path))


def test_small_numeric_numpy_values_and_sets_still_load(harness):
    import numpy as np

    ckpt = {"state_dict": good_state_dict(), "hyper_parameters": {"lr": np.float64(0.1), "n": np.int32(3),
                                                                    "tags": {"a", "b"}, "z": 1 + 2j}}
    path = write(harness, "ok.ckpt", C.torch_bytes(ckpt))
    weightport.load_weights(harness.model, path)
    assert same_state(harness.model, good_state_dict())


# --- 4. walks over file-controlled structure: linear, depth-bounded ------------------------------


STRUCTURES = {
    "memo-bomb-40-levels": (lambda: C.memo_bomb(40), ["memo-reference bomb", "max_objects"]),
    "3000-nested-dicts": (lambda: C.nested(3000), ["nested deeper", "max_depth=100"]),
    "3000-nested-lists": (lambda: C.nested(3000, b"]"), ["nested deeper"]),
    "list-containing-itself": (C.self_list, ["contains itself"]),
    "dict-containing-itself": (C.self_dict, ["contains itself"]),
}


def _structure_file(h, case: str) -> Path:
    body = STRUCTURES[case][0]()  # a whole pickle: its value goes in as the checkpoint's "extra"
    return write(h, "s.pth", C.with_pickle(good_state_dict(), C.checkpoint(body[2:-1])))


ENTRY_POINTS = {
    "load": lambda h, p: weightport.load_weights(h.model, p),
    "plan": lambda h, p: weightport.plan(h.model, p),
    "read_state_dict": lambda h, p: weightport.read_state_dict(p),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("case", list(STRUCTURES))
def test_structure_bombs_are_refused_with_a_typed_error(harness, case, entry):
    path = _structure_file(harness, case)
    harness.fails(path, E.ResourceLimitError, ValueError, "s.pth", *STRUCTURES[case][1],
                  call=lambda: ENTRY_POINTS[entry](harness, path))


@pytest.mark.parametrize("command", ["inspect", "plan"])
@pytest.mark.parametrize("case", ["memo-bomb-40-levels", "3000-nested-dicts"])
def test_structure_bombs_in_the_cli_print_one_line(harness, capsys, case, command):
    from weightport.cli import main

    path = _structure_file(harness, case)
    argv = [command, str(path)] + (["--model", "tests.helpers.models:TinyNet"] if command == "plan" else [])
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("error: ") and "unexpected" not in err and "Traceback" not in err
    assert STRUCTURES[case][1][0] in err and "hint:" in err


# --- downloads: pinned size, hard cap, overall deadline ------------------------------------------


def _lock(h, url: str, **entry: object) -> Path:
    lock = h.tmp / "weightport.lock"
    lock.write_text(json.dumps({"version": 1, "sources": {url: {"location": url, **entry}}}))
    return lock


def test_endless_body_stops_at_the_pinned_size(harness):
    body = st_bytes(good_state_dict())
    url = harness.server.add("/endless.safetensors", body, mode="endless")
    lock = _lock(harness, url, size=len(body))
    harness.fails(url, E.IntegrityError, ValueError, "endless.safetensors", f"pinned size is {len(body)}",
                  "stopped", fetch={"lockfile": lock, "retries": 0})
    assert not url_entry(url).exists()


def test_endless_body_stops_at_the_hard_cap(harness):
    url = harness.server.add("/endless.safetensors", b"\0" * 65536, mode="endless")
    harness.fails(url, E.ResourceLimitError, ValueError, "endless.safetensors", "max_download_bytes=1000000",
                  fetch={"max_download_bytes": 1_000_000, "retries": 0})
    assert not url_entry(url).exists()


def test_announced_length_beyond_the_pin_is_refused_before_the_body(harness):
    body = st_bytes(good_state_dict())
    url = harness.server.add("/big.safetensors", body + b"\0" * 100)
    lock = _lock(harness, url, size=len(body))
    harness.fails(url, E.IntegrityError, ValueError, "big.safetensors", "announces", fetch={"lockfile": lock})


def test_trickling_server_meets_the_overall_deadline(harness):
    url = harness.server.add("/slow.safetensors", st_bytes(good_state_dict()), mode="trickle", delay=0.05)
    harness.fails(url, E.DownloadTimeoutError, TimeoutError, "slow.safetensors", "deadline=1s",
                  fetch={"deadline": 1.0, "retries": 0, "timeout": 5})
    assert not url_entry(url).exists()


# Hub files come through the same bounded downloader as URLs (a hostile or broken HF_ENDPOINT).

HUB_CALLS = {
    **CALLS,
    "read": lambda h, src, **kw: weightport.read_state_dict(src, **kw),
}


def _hub_stored(repo_id: str) -> list[Path]:
    """Every file or link kept for ``repo_id`` in the hub cache (blobs, snapshots, refs)."""
    storage = Path(os.environ["HF_HOME"]) / "hub" / f"models--{repo_id.replace('/', '--')}"
    return [p for p in storage.rglob("*") if p.is_symlink() or not p.is_dir()] if storage.exists() else []


@pytest.mark.parametrize("call", list(HUB_CALLS))
def test_hub_endless_body_stops_at_the_hard_cap(harness, call):
    repo = harness.hub.add_repo("org/endless", {"model.safetensors": b"\0" * 65536})
    repo.modes["model.safetensors"] = "endless"  # no size announced at all
    harness.fails("hf:org/endless", E.ResourceLimitError, ValueError, "model.safetensors",
                  "max_download_bytes=1000000", "stopped",
                  call=lambda: HUB_CALLS[call](harness, "hf:org/endless",
                                               fetch={"max_download_bytes": 1_000_000, "retries": 0}))
    assert _hub_stored("org/endless") == []


def test_hub_endless_body_stops_at_the_pinned_size(harness):
    body = st_bytes(good_state_dict())
    repo = harness.hub.add_repo("org/endless", {"model.safetensors": body})
    repo.modes["model.safetensors"] = "endless"
    lock = harness.tmp / "weightport.lock"
    lock.write_text(json.dumps({"version": 1, "sources": {"hf:org/endless": {"location": "org/endless",
                                                                            "size": len(body)}}}))
    harness.fails("hf:org/endless", E.IntegrityError, ValueError, f"pinned size is {len(body)}", "stopped",
                  fetch={"lockfile": lock, "retries": 0})
    assert _hub_stored("org/endless") == []


def test_hub_endless_body_past_its_announced_size_is_not_the_announced_file(harness):
    body = st_bytes(good_state_dict())
    repo = harness.hub.add_repo("org/endless", {"model.safetensors": body})
    repo.modes["model.safetensors"] = "endless_announced"  # announces the real size, then never stops
    harness.fails("hf:org/endless", E.IntegrityError, ValueError, "not the file the hub announced",
                  f"the size the hub announced is {len(body)}", fetch={"retries": 0})
    assert harness.hub.count("GET", "/org/endless/resolve/main/model.safetensors") == 2  # once more, then refused
    assert _hub_stored("org/endless") == []


def test_hub_oversize_file_is_refused_before_its_body(harness):
    repo = harness.hub.add_repo("org/huge", {"model.safetensors": st_bytes(good_state_dict())})
    repo.modes["model.safetensors"] = "oversize"
    harness.fails("hf:org/huge", E.ResourceLimitError, ValueError, "hf:org/huge", str(1 << 50),
                  "max_download_bytes", fetch={"retries": 0})
    assert harness.hub.count("GET") == 0 and _hub_stored("org/huge") == []


def test_hub_file_announced_beyond_its_pin_is_refused_before_its_body(harness):
    body = st_bytes(good_state_dict())
    harness.hub.add_repo("org/grown", {"model.safetensors": body + b"\0" * 64})
    lock = harness.tmp / "weightport.lock"
    lock.write_text(json.dumps({"version": 1, "sources": {"hf:org/grown": {"location": "org/grown",
                                                                          "size": len(body)}}}))
    harness.fails("hf:org/grown", E.IntegrityError, ValueError, "announces", f"pinned size is {len(body)}",
                  fetch={"lockfile": lock, "retries": 0})
    assert harness.hub.count("GET") == 0 and _hub_stored("org/grown") == []


def test_hub_trickling_server_meets_the_overall_deadline(harness):
    repo = harness.hub.add_repo("org/slow", {"model.safetensors": st_bytes(good_state_dict())})
    repo.modes["model.safetensors"] = "trickle"
    harness.fails("hf:org/slow", E.DownloadTimeoutError, TimeoutError, "model.safetensors", "deadline=1s",
                  fetch={"deadline": 1.0, "retries": 0, "timeout": 5})
    assert _hub_stored("org/slow") == []


def test_hub_trickling_headers_meet_the_overall_deadline(harness):
    # huggingface_hub's metadata HEAD has only a per-read timeout: headers arriving a byte at a time
    # would outlast any deadline. The HEAD is held to the download's deadline like the body.
    repo = harness.hub.add_repo("org/slowhead", {"model.safetensors": st_bytes(good_state_dict())})
    repo.modes["model.safetensors"] = "trickle_headers"
    repo.delay = 0.02
    harness.fails("hf:org/slowhead", E.DownloadTimeoutError, TimeoutError, "org/slowhead", "deadline=0.5s",
                  fetch={"deadline": 0.5, "retries": 0, "timeout": 5})
    assert harness.hub.count("GET") == 0 and _hub_stored("org/slowhead") == []


def test_hub_stalled_body_meets_the_idle_timeout(harness):
    repo = harness.hub.add_repo("org/stall", {"model.safetensors": st_bytes(good_state_dict())})
    repo.modes["model.safetensors"] = "stall"
    harness.fails("hf:org/stall", E.DownloadTimeoutError, TimeoutError, "model.safetensors", "stopped sending",
                  fetch={"timeout": 0.5, "retries": 0})
    assert _hub_stored("org/stall") == []


def test_timm_weights_from_the_hub_are_bounded_too(harness):
    pytest.importorskip("timm")
    repo = harness.hub.add_repo("timm/resnet18.a1_in1k", {"model.safetensors": b"\0" * 65536})
    repo.modes["model.safetensors"] = "endless"
    harness.fails("timm:resnet18.a1_in1k", E.ResourceLimitError, ValueError, "max_download_bytes=1000000",
                  call=lambda: weightport.read_state_dict("timm:resnet18.a1_in1k",
                                                          fetch={"max_download_bytes": 1_000_000, "retries": 0}))
    assert _hub_stored("timm/resnet18.a1_in1k") == []


@pytest.mark.parametrize("header", ["X-Linked-Etag", "X-Repo-Commit"])
def test_hub_answer_that_would_name_a_path_is_refused(harness, header):
    repo = harness.hub.add_repo("org/names", {"model.safetensors": st_bytes(good_state_dict())})
    repo.headers["model.safetensors"] = {header: '"../../../../escaped"'}
    harness.fails("hf:org/names", E.DownloadError, OSError, "hf:org/names", "escaped", fetch={"retries": 0})
    assert not list(harness.tmp.rglob("escaped")) and harness.hub.count("GET") == 0


# --- 5. the cache certifies only what it verified ------------------------------------------------


def test_entry_without_its_sidecar_is_refetched_not_trusted(harness):
    good = st_bytes(good_state_dict())
    url = harness.server.add("/m.safetensors", good)
    weightport.read_state_dict(url)
    entry = url_entry(url)
    entry.with_name(entry.name + ".sha256").unlink()
    evil = st_bytes(good_state_dict(seed=9))
    os.replace(write(harness, "evil.safetensors", evil), entry)  # content replaced, no record
    weightport.load_weights(harness.model, url)
    assert same_state(harness.model, good_state_dict())
    assert harness.server.count("GET") == 2 and entry.read_bytes() == good
    assert_cache_clean()


def test_link_at_the_old_predictable_sidecar_temp_name_is_never_followed(harness):
    url = harness.server.add("/m.safetensors", st_bytes(good_state_dict()))
    entry = url_entry(url)
    entry.parent.mkdir(parents=True)
    victim = harness.tmp / "victim.txt"
    victim.write_text("precious")
    for pid in range(os.getpid() - 2, os.getpid() + 3):
        (entry.parent / f".{entry.name}.sha256.{pid}.part").symlink_to(victim)
    weightport.load_weights(harness.model, url)
    assert victim.read_text() == "precious" and same_state(harness.model, good_state_dict())


def test_entry_directory_replaced_by_a_link_is_refused(harness):
    url = harness.server.add("/m.safetensors", st_bytes(good_state_dict()))
    entry = url_entry(url)
    elsewhere = harness.tmp / "attacker-dir"
    elsewhere.mkdir()
    entry.parent.parent.mkdir(parents=True)
    entry.parent.symlink_to(elsewhere)
    harness.fails(url, E.CacheNotWritableError, PermissionError, "symbolic link", str(elsewhere))
    assert list(elsewhere.iterdir()) == [] and harness.server.count() == 0


@pytest.mark.parametrize("level", [1, 2])  # <cache>/url/<key> is the entry: <cache>/url (2), <key> is level 1
def test_a_directory_between_the_cache_root_and_the_entry_replaced_by_a_link_is_refused(harness, level):
    url = harness.server.add("/m.safetensors", st_bytes(good_state_dict()))
    entry = url_entry(url)
    linked = entry.parents[level - 1]
    elsewhere = harness.tmp / "attacker-dir"
    elsewhere.mkdir()
    linked.parent.mkdir(parents=True, exist_ok=True)
    linked.symlink_to(elsewhere)
    harness.fails(url, E.CacheNotWritableError, PermissionError, "symbolic link", str(elsewhere))
    assert list(elsewhere.rglob("*")) == [] and harness.server.count() == 0


def test_the_conversions_directory_replaced_by_a_link_is_refused(harness):
    import weightport.fetch.cache as cache

    src = write(harness, "ddp.pth", C.torch_bytes({f"module.{k}": v for k, v in good_state_dict().items()}))
    elsewhere = harness.tmp / "attacker-dir"
    elsewhere.mkdir()
    cache.cache_root().mkdir(parents=True, exist_ok=True)
    (cache.cache_root() / "converted").symlink_to(elsewhere)
    harness.fails(src, E.CacheNotWritableError, PermissionError, "symbolic link", convert_cache=True)
    assert list(elsewhere.rglob("*")) == []


def test_a_hub_repo_folder_replaced_by_a_link_is_refused(harness):
    harness.hub.add_repo("org/linked", {"model.safetensors": st_bytes(good_state_dict())})
    storage = Path(os.environ["HF_HOME"]) / "hub" / "models--org--linked"
    elsewhere = harness.tmp / "attacker-dir"
    elsewhere.mkdir()
    storage.parent.mkdir(parents=True, exist_ok=True)
    storage.symlink_to(elsewhere)
    harness.fails("hf:org/linked", E.CacheNotWritableError, PermissionError, "symbolic link", fetch={"retries": 0})
    assert [p for p in elsewhere.rglob("*") if not p.name.endswith(".lock")] == []


def _swapping(directory: Path, attacker: Path, held: Path) -> type:
    """An ``EntryDir`` that, right after it opened ``directory``, moves it to ``held`` and plants a link
    to ``attacker`` in its place: a racing writer winning the window between the check and the write."""
    from weightport.fetch.cache import EntryDir

    class Swapping(EntryDir):
        def __init__(self, path: Path) -> None:
            super().__init__(path)
            if path == directory and not path.is_symlink():
                os.rename(path, held)
                path.symlink_to(attacker)

    return Swapping


def test_entry_directory_swapped_for_a_link_while_downloading_receives_nothing(harness, monkeypatch):
    import weightport.fetch.download as download

    url = harness.server.add("/m.safetensors", st_bytes(good_state_dict()))
    entry = url_entry(url)
    attacker, held = harness.tmp / "attacker-dir", harness.tmp / "held"
    attacker.mkdir()
    monkeypatch.setattr(download, "EntryDir", _swapping(entry.parent, attacker, held))
    harness.fails(url, E.CacheNotWritableError, PermissionError, "swapped", str(attacker), fetch={"retries": 0})
    assert list(attacker.iterdir()) == []  # nothing was written through the link
    assert (held / entry.name).read_bytes() == st_bytes(good_state_dict())  # it went into the directory held open
    assert not [p for p in held.iterdir() if p.name.endswith(".part")]


def test_conversion_directory_swapped_for_a_link_while_storing_receives_nothing(harness, monkeypatch):
    import weightport.fetch.cache as cache

    src = write(harness, "ddp.pth", C.torch_bytes({f"module.{k}": v for k, v in good_state_dict().items()}))
    converted = cache.cache_root() / "converted"
    converted.mkdir(parents=True)
    attacker, held = harness.tmp / "attacker-dir", harness.tmp / "held"
    attacker.mkdir()
    monkeypatch.setattr(cache, "EntryDir", _swapping(converted, attacker, held))
    harness.fails(src, E.CacheNotWritableError, PermissionError, "swapped", str(attacker), convert_cache=True)
    assert list(attacker.iterdir()) == []
    assert not [p for p in held.iterdir() if p.name.endswith(".part")]


def _converted(h) -> tuple[Path, Path]:
    state = {f"module.{k}": v for k, v in good_state_dict().items()}  # needs mapping: worth converting
    src = write(h, "ddp.pth", C.torch_bytes(state))
    weightport.load_weights(h.model, src, convert_cache=True)
    (conv,) = (weightport.fetch.cache.cache_root() / "converted").glob("*.safetensors")
    return src, conv


CONVERSIONS = {
    "tampered": lambda conv: conv.write_bytes(st_bytes({k: v + 1 if v.is_floating_point() else v
                                                        for k, v in good_state_dict().items()})),
    "truncated": lambda conv: conv.write_bytes(conv.read_bytes()[:-100]),
    "sidecar-missing": lambda conv: conv.with_name(conv.name + ".sha256").unlink(),
    "replaced-by-a-link": lambda conv: (conv.unlink(), conv.symlink_to(conv.parent.parent / "elsewhere")),
}


@pytest.mark.parametrize("damage", list(CONVERSIONS))
def test_bad_cached_conversion_is_quarantined_and_rebuilt(harness, damage):
    src, conv = _converted(harness)
    harness.model.fc.bias.data.zero_()
    CONVERSIONS[damage](conv)
    report = weightport.load_weights(harness.model, src, convert_cache=True)
    assert same_state(harness.model, good_state_dict())
    assert any("stored a cached conversion" in n for n in report.notes)
    assert list(conv.parent.glob("*.corrupt-*")) and conv.with_name(conv.name + ".sha256").exists()
    digest, size = conv.with_name(conv.name + ".sha256").read_text().split()
    assert (hashlib.sha256(conv.read_bytes()).hexdigest(), conv.stat().st_size) == (digest, int(size))


def test_cached_conversion_store_on_a_full_disk_leaves_the_model_as_it_was(harness, monkeypatch):
    import weightport.fetch.cache as cache

    src = write(harness, "ddp.pth", C.torch_bytes({f"module.{k}": v for k, v in good_state_dict().items()}))
    real = cache.EntryDir.create_exclusive
    made: list[Path] = []

    def full(entry, name: str):
        tmp, fd = real(entry, name)
        os.close(fd)
        made.append(entry.path / tmp)
        return tmp, os.open("/dev/full", os.O_WRONLY)

    monkeypatch.setattr(cache.EntryDir, "create_exclusive", full)
    harness.fails(src, E.DiskFullError, OSError, "cached conversion", "not changed", convert_cache=True)
    assert made and not any(p.exists() for p in made)
    assert not list((cache.cache_root() / "converted").glob("*.safetensors"))


# --- 6. reads outside where a source may read ----------------------------------------------------


def _dist(site: Path, name: str, package: str | None, record: list[str]) -> None:
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in record))
    if package:
        (site / package).mkdir()
        (site / package / "__init__.py").write_text("")


def test_pkg_record_listing_outside_paths_stays_in_its_package(harness, monkeypatch):
    site = harness.tmp / "site"
    _dist(site, "wp-trust-dist", "wp_trust_pkg", ["wp_trust_pkg/__init__.py", "../../bin/x"])
    (site / "victim_pkg").mkdir()
    (site / "victim_pkg" / "w.safetensors").write_bytes(st_bytes(good_state_dict()))
    monkeypatch.syspath_prepend(str(site))
    harness.fails("pkg:wp-trust-dist/victim_pkg/w.safetensors", E.SourceNotFoundError, FileNotFoundError,
                  "wp_trust_pkg")


def test_pkg_single_file_module_has_no_directory_to_read(harness, monkeypatch):
    site = harness.tmp / "site"
    site.mkdir()
    (site / "wp_trust_single.py").write_text("")
    (site / "w.safetensors").write_bytes(st_bytes(good_state_dict()))
    monkeypatch.syspath_prepend(str(site))
    harness.fails("pkg:wp_trust_single/w.safetensors", E.InvalidSourceError, ValueError, "single-file module")


def test_sharded_hub_snapshot_with_symlinked_shards_loads(harness):
    state = good_state_dict()
    keys = sorted(state)
    half = len(keys) // 2
    shards = {"model-1.safetensors": {k: state[k] for k in keys[:half]},
              "model-2.safetensors": {k: state[k] for k in keys[half:]}}
    files = {n: st_bytes(s) for n, s in shards.items()}
    files["model.safetensors.index.json"] = json.dumps(
        {"weight_map": {k: n for n, s in shards.items() for k in s}}).encode()
    harness.hub.add_repo("org/sharded", files)
    weightport.load_weights(harness.model, "hf:org/sharded")
    assert same_state(harness.model, state)
    links = [p for p in Path(os.environ["HF_HOME"]).rglob("model-*.safetensors") if p.is_symlink()]
    assert links, "the hub cache keeps shards as links into blobs; this test proves they load"


# --- 7. untyped errors become typed ones ---------------------------------------------------------


LOCKS = {
    "entry-not-an-object": (b'{"version":1,"sources":{"%s":"x"}}', ["is a str"]),
    "files-a-string": (b'{"version":1,"sources":{"%s":{"location":"x","files":"abc"}}}', ["files"]),
    "file-entry-not-an-object": (b'{"version":1,"sources":{"%s":{"files":{"a":3}}}}', ["files['a']"]),
    "size-a-string": (b'{"version":1,"sources":{"%s":{"size":"12"}}}', ["size"]),
    "sha256-not-hex": (b'{"version":1,"sources":{"%s":{"sha256":"zz"}}}', ["sha256"]),
    "not-utf8": (b'{"version":1,"sources":{"\xff\xfe":{}}}', ["UTF-8"]),
    "not-json": (b"{version 1", ["JSON"]),
    "no-sources": (b"[]", ["no 'sources'"]),
}


@pytest.mark.parametrize("case", list(LOCKS))
def test_malformed_lock_file_is_a_typed_error(harness, case):
    template, words = LOCKS[case]
    source = write(harness, "w.safetensors", st_bytes(good_state_dict()))
    lock = harness.tmp / "weightport.lock"
    lock.write_bytes(template.replace(b"%s", f"file:{source}".encode()) if b"%s" in template else template)
    harness.fails(source, E.InvalidSourceError, ValueError, "weightport.lock", *words, fetch={"lockfile": lock})


def test_shard_name_longer_than_a_file_name_may_be(harness):
    repo = harness.tmp / "repo"
    repo.mkdir()
    index = {"weight_map": {k: "s" * 300 + ".safetensors" for k in good_state_dict()}}
    (repo / "model.safetensors.index.json").write_text(json.dumps(index))
    harness.fails(repo, E.PathTraversalError, ValueError, "312 bytes", "255")


def test_hub_shard_name_longer_than_a_file_name_may_be(harness):
    index = {"weight_map": {"fc.weight": "s" * 300 + ".safetensors"}}
    harness.hub.add_repo("org/long", {"model.safetensors.index.json": json.dumps(index).encode()})
    harness.fails("hf:org/long", E.PathTraversalError, ValueError, "longer than a file name")


@pytest.mark.parametrize("name", ["m%00.safetensors", "m%0a%0d.safetensors", "%2e%2e", "x" * 300 + ".safetensors"])
def test_odd_url_file_names_load(harness, name):
    from urllib.parse import unquote

    url = harness.server.base + f"/{name}"
    harness.server.add(unquote(f"/{name}"), st_bytes(good_state_dict()))
    weightport.load_weights(harness.model, url)
    assert same_state(harness.model, good_state_dict())
    entry = url_entry(url)
    assert entry.exists() and "\x00" not in entry.name and len(entry.name.encode()) <= 200
    assert_cache_clean()


def test_cli_on_a_key_with_a_lone_surrogate(harness, capsys):
    from weightport.cli import main

    path = harness.tmp / "s.pth"
    torch.save({"w\udc80": torch.zeros(3), **good_state_dict()}, path)
    code = main(["inspect", str(path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "unexpected" not in captured.err and "\\udc80" in captured.out


def test_cli_plan_exits_3_for_a_checkpoint_that_cannot_load(harness, capsys):
    from weightport.cli import main

    state = good_state_dict()
    state["conv1.weight"][0, 0, 0, 0] = float("nan")
    path = write(harness, "nan.safetensors", st_bytes(state))
    before = snapshot(harness.model)
    assert not weightport.plan(harness.model, path, check_finite=True).ok and same_state(harness.model, before)
    code = main(["plan", str(path), "--model", "tests.helpers.models:TinyNet", "--check-finite"])
    out = capsys.readouterr()
    assert code == 3, out
    assert "would fail" in out.out and "unexpected" not in out.err


def test_plan_flags_a_cast_that_would_overflow(harness):
    harness.model.half()
    state = good_state_dict()
    state["fc.weight"][0, 0] = 1e6  # finite in float32, infinite in float16
    path = write(harness, "big.safetensors", st_bytes(state))
    plan = weightport.plan(harness.model, path)
    assert not plan.ok and plan.nonfinite == ["fc.weight"]
    harness.fails(path, E.NonFiniteWeightsError, ValueError, "fc.weight", "overflow", lossy_cast="allow")


def test_the_limit_hint_works_when_followed(harness):
    path = write(harness, "deep.pth", C.torch_bytes({"state_dict": good_state_dict(), "extra": _deep(1, 150)}))
    exc = harness.fails(path, E.ResourceLimitError, ValueError, "max_depth=100")
    assert "read_limits={'max_depth'" in exc.hint
    weightport.load_weights(harness.model, path, read_limits={"max_depth": 200})
    assert same_state(harness.model, good_state_dict())
    with pytest.raises(E.InvalidOptionError, match="max_dept"):
        weightport.load_weights(harness.model, path, read_limits={"max_dept": 200})
