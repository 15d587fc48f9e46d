"""Builders for the checkpoints the reader tests need, good and malicious, all written to tmp_path."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch


class Payload:
    """Pickles as a call to ``func(*args)``: what a malicious checkpoint does on a normal unpickle."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> Any:
        return (self.func, self.args)


def touch_payload(marker: Path) -> Payload:
    """``os.system("touch marker")`` — the classic."""
    return Payload(os.system, f"touch {marker}")


def exec_payload(marker: Path) -> Payload:
    return Payload(exec, f"open({str(marker)!r}, 'w').close()")


def spawn_payload(marker: Path) -> Payload:
    """A gadget outside common scanner denylists."""
    import multiprocessing.util

    return Payload(multiprocessing.util.spawnv_passfds, b"/usr/bin/touch", [b"touch", str(marker).encode()], ())


def small_state_dict() -> dict[str, torch.Tensor]:
    return {"fc.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "fc.bias": torch.tensor([0.5, -0.5])}


def safetensors_bytes(header: Any, data: bytes, *, raw_header: bytes | None = None) -> bytes:
    """A safetensors file from a header object (or raw header bytes) and a data buffer."""
    blob = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class _StoragePickler(pickle.Pickler):
    """Pickles :class:`FakeStorage` objects as torch persistent storage ids."""

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, FakeStorage):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


class FakeStorage:
    def __init__(self, key: str, numel: int, storage_type: Any = torch.FloatStorage) -> None:
        self.key, self.numel, self.storage_type = key, numel, storage_type


class FakeTensor:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` with any geometry."""

    def __init__(self, storage: FakeStorage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self) -> Any:
        return (
            torch._utils._rebuild_tensor_v2,
            (self.storage, self.offset, self.size, self.stride, False, OrderedDict()),
        )


class FakeQuantizedTensor(FakeTensor):
    """Pickles as ``torch._utils._rebuild_qtensor`` (int8, per-tensor affine) with any geometry."""

    def __reduce__(self) -> Any:
        params = (torch.per_tensor_affine, 0.1, 0)
        return (
            torch._utils._rebuild_qtensor,
            (self.storage, self.offset, self.size, self.stride, params, False, OrderedDict()),
        )


def torch_zip(path: Path, obj: Any, records: dict[str, bytes]) -> Path:
    """A zip-format torch checkpoint whose data.pkl pickles ``obj`` and whose data/ holds ``records``."""
    buf = io.BytesIO()
    _StoragePickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", buf.getvalue())
        archive.writestr("archive/byteorder", "little")
        for key, data in records.items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")
    return path


def rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes]) -> Path:
    """Copy a zip archive, replacing the members named in ``replace`` (by suffix)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            data = old.read(info)
            for suffix, repl in replace.items():
                if info.filename.endswith(suffix):
                    data = repl
            new.writestr(info.filename, data)
    return dst


def lightning_ckpt(state_dict: dict[str, torch.Tensor], hparams: Any) -> dict[str, Any]:
    """The dict Lightning's Trainer writes, with the entries the reader cares about."""
    return {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": state_dict,
        "loops": {},
        "callbacks": {},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": hparams,
    }
