"""Seeds, mutations and the property shared by the fuzz tests and ``scripts/fuzz_formats.py``.

Property: on any bytes, under any checkpoint extension, ``sniff_format``,
``read_safetensors_header`` and ``read_checkpoint`` either succeed or raise a
:class:`~weightport.errors.WeightportError` — never another exception, a crash or a hang.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_save

from weightport.errors import WeightportError
from weightport.formats import ReadOptions, read_checkpoint, read_safetensors_header, sniff_format

from .helpers import lightning_ckpt, small_state_dict

EXTENSIONS = [".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".npz", ".safetensors.index.json", ""]
#: Small budgets so a mutated size field cannot make a fuzz example allocate much.
OPTIONS = ReadOptions(max_tensor_bytes=1 << 24, max_header_bytes=1 << 20)


def _torch_bytes(obj, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


@lru_cache(maxsize=1)
def seeds() -> tuple[bytes, ...]:
    """One small valid file of every format."""
    sd = small_state_dict()
    npz = io.BytesIO()
    np.savez(npz, a=np.arange(4, dtype=np.float32))
    return (
        safetensors_save(sd, metadata={"format": "pt"}),
        _torch_bytes(sd),
        _torch_bytes(sd, legacy=True),
        _torch_bytes(lightning_ckpt(sd, {"lr": 0.1, "name": "x"})),
        npz.getvalue(),
        json.dumps({"metadata": {}, "weight_map": {"a": "x.safetensors"}}).encode(),
        pickle.dumps({"a": [1, 2, 3]}, protocol=2),
        struct.pack("<Q", 2) + b"{}",
    )


@st.composite
def mutated(draw) -> bytes:
    """A seed with a few random byte edits, truncations or insertions; or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord("{"), ord("."), draw(st.integers(0, 255))]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


def check(data: bytes, extension: str) -> str:
    """Run the three entry points on ``data`` saved with ``extension``; return ``read_checkpoint``'s
    outcome (``"ok"`` or the WeightportError class name).

    Raises:
        AssertionError: An exception that is not a ``WeightportError`` escaped.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{extension}"
        path.write_bytes(data)
        for call in (sniff_format, read_safetensors_header, lambda p: read_checkpoint(p, OPTIONS)):
            outcome = "ok"
            try:
                call(path)
            except WeightportError as exc:
                outcome = type(exc).__name__
            # the property under test
            except Exception as exc:
                raise AssertionError(
                    f"untyped {type(exc).__name__}: {exc} for {len(data)} bytes {extension!r}"
                ) from exc
        return outcome


def silence() -> None:
    """Quiet torch's per-load warnings during long runs."""
    import warnings

    warnings.simplefilter("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    torch.set_num_threads(1)


__all__ = ["EXTENSIONS", "check", "mutated", "seeds", "silence", "zipfile"]
