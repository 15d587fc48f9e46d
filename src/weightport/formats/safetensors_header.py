"""Parse and validate a safetensors header in pure Python (no torch, no safetensors package).

The header is read and checked completely before any tensor is touched, so a malformed file is a
:class:`~weightport.errors.CorruptCheckpointError` naming what is wrong, never a crash, and so that
duplicate keys (which JSON parsers, including safetensors', silently resolve "last wins") are refused.
Format: 8 bytes little-endian header length ``N``, ``N`` bytes of UTF-8 JSON, then the data buffer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from weightport.errors import CorruptCheckpointError, ResourceLimitError, SourceNotFoundError
from weightport.formats.base import limit_hint

#: Bits per element of every dtype safetensors defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

#: The torch dtype (its name in the ``torch`` namespace) of every safetensors dtype torch can represent;
#: the sub-byte floats (F4, F6_*) have none.
TORCH_DTYPE_NAMES: dict[str, str] = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16", "F16": "float16",
    "BF16": "bfloat16", "I32": "int32", "U32": "uint32", "F32": "float32", "F64": "float64", "I64": "int64",
    "U64": "uint64", "C64": "complex64", "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3fn",
    "F8_E8M0": "float8_e8m0fnu",
}  # fmt: skip

#: The same limit the safetensors library applies; a larger header is refused before it is read.
DEFAULT_MAX_HEADER_BYTES = 100 << 20

TensorEntry = tuple[str, tuple[int, ...], tuple[int, int]]

_HINT = "the file is damaged or was not written by a safetensors writer; download or export it again"


def read_safetensors_header(
    path: Path | str, *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> tuple[dict[str, str], dict[str, TensorEntry]]:
    """Read and validate the header of a safetensors file, without importing torch.

    Args:
        path: The ``.safetensors`` file.
        max_header_bytes: Refuse a header longer than this (the safetensors library's own limit by default).

    Returns:
        ``(metadata, tensors)``: the ``__metadata__`` string map (empty if absent), and for each tensor
        in header order ``(dtype, shape, (start, end))`` with offsets relative to the data buffer.

    Raises:
        CorruptCheckpointError: The header is truncated, not UTF-8 JSON, has duplicate keys, an unknown
            dtype, a bad shape, or offsets that overlap, leave gaps or do not match the file size.
        ResourceLimitError: The header declares a length above ``max_header_bytes``.
        SourceNotFoundError: ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"{path}: no such safetensors file", hint="check the path")
    size = path.stat().st_size
    with path.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise _corrupt(path, f"only {size} bytes, too short for the 8-byte header length")
        length = int.from_bytes(prefix, "little")
        if length > size - 8:
            raise _corrupt(path, f"header length {length} is larger than the rest of the file ({size - 8} bytes)")
        if length > max_header_bytes:
            raise ResourceLimitError(
                f"{path}: safetensors header declares {length} bytes, above the {max_header_bytes}-byte limit",
                hint=limit_hint("max_header_bytes"),
            )
        raw = fh.read(length)
    header = _decode(path, raw)
    metadata = _metadata(path, header.pop("__metadata__", None))
    tensors = {key: _entry(path, key, value) for key, value in header.items()}
    _check_coverage(path, tensors, size - 8 - length)
    return metadata, tensors


def _corrupt(path: Path, what: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(f"{path}: invalid safetensors header: {what}", hint=_HINT)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _decode(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _corrupt(path, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not text.startswith("{"):
        raise _corrupt(path, "expected a JSON object starting with '{'")
    try:
        header = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except _DuplicateKey as exc:
        raise _corrupt(path, f"duplicate key {exc.key!r} (refused: readers disagree on which one wins)") from None
    except (ValueError, RecursionError) as exc:
        raise _corrupt(path, f"not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _corrupt(path, f"expected a JSON object, found {type(header).__name__}")
    return header


def _metadata(path: Path, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _corrupt(path, "__metadata__ must map strings to strings")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(path: Path, key: str, value: Any) -> TensorEntry:
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise _corrupt(path, f"tensor {key!r} must be an object with exactly dtype, shape and data_offsets")
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if dtype not in DTYPE_BITS:
        raise _corrupt(path, f"tensor {key!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _corrupt(path, f"tensor {key!r} has shape {shape!r}; expected a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
        raise _corrupt(path, f"tensor {key!r} has data_offsets {offsets!r}; expected [start, end] with 0 <= start")
    start, end = offsets
    if end < start:
        raise _corrupt(path, f"tensor {key!r} has data_offsets [{start}, {end}] ending before they start")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - start:
        raise _corrupt(
            path,
            f"tensor {key!r}: shape {shape} of {dtype} needs {bits / 8:g} bytes but data_offsets span {end - start}",
        )
    return dtype, tuple(shape), (start, end)


def _check_coverage(path: Path, tensors: dict[str, TensorEntry], data_bytes: int) -> None:
    """The tensors must tile the data buffer exactly: no overlap, no gap, nothing missing or left over."""
    position = 0
    for key, (_, _, (start, end)) in sorted(tensors.items(), key=lambda kv: kv[1][2]):
        if start < position:
            raise _corrupt(
                path, f"tensor {key!r} at [{start}, {end}] overlaps the tensor before it (ends at {position})"
            )
        if start > position:
            raise _corrupt(path, f"gap of {start - position} bytes before tensor {key!r} at offset {start}")
        position = end
    if position != data_bytes:
        found = "truncated" if position > data_bytes else "trailing bytes"
        raise _corrupt(
            path, f"size mismatch ({found}): tensors declare {position} data bytes, the file holds {data_bytes}"
        )
