"""Write safetensors files whose tensors start on 64-byte boundaries, wherever the format allows it.

A tensor mapped from a safetensors file starts at ``8 + header length + its offset``. The reference
writer pads the header to a multiple of 8 and orders tensors by dtype, so their data is aligned to the
element size only; on CPUs whose vector kernels take another code path on data that is not 64-byte
aligned, a model mapped from such a file computes results that differ in the last bits from the same
model in freshly allocated memory. The format lets the header be padded with trailing spaces, but
not the data (the tensors must tile the buffer with no holes), so this writer

- pads the header so that the data starts at a multiple of :data:`ALIGNMENT` in the file, and
- orders the tensors so that every tensor whose size is a multiple of :data:`ALIGNMENT` (nearly all
  of a network's bytes) starts on an aligned offset, and the few others are paired so that alignment
  is restored as often as possible.

Every file it writes is an ordinary safetensors file: the reference reader and weightport's own
read it, and each tensor still starts at a multiple of its element size.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from weightport.errors import UnsupportedFormatError
from weightport.formats.safetensors_header import TORCH_DTYPE_NAMES

if TYPE_CHECKING:
    import torch

#: The alignment, in bytes, of the data section and of every tensor that can be aligned.
ALIGNMENT = 64

_DTYPE_NAMES = {name: code for code, name in TORCH_DTYPE_NAMES.items()}


@dataclass(frozen=True)
class _Item:
    name: str
    nbytes: int
    itemsize: int


def aligned_order(items: list[tuple[str, int, int]], alignment: int = ALIGNMENT) -> list[str]:
    """An order of ``(name, nbytes, itemsize)`` items that puts as many as possible on aligned offsets.

    Items whose size is a multiple of ``alignment`` come first (each then starts aligned). The rest
    follow by decreasing element size, so each still starts at a multiple of its own element size.
    Within one element size the largest goes where the offset is aligned; where it is not, the
    smallest item that brings the offset back in line is taken (else the smallest), so few bytes
    sit misaligned and the next large item starts on a boundary.
    """
    whole = [_Item(*i) for i in items if i[1] % alignment == 0]
    rest = [_Item(*i) for i in items if i[1] % alignment]
    order = [i.name for i in sorted(whole, key=lambda i: (-i.nbytes, i.name))]
    offset = 0
    for size in sorted({i.itemsize for i in rest}, reverse=True):
        pending = sorted((i for i in rest if i.itemsize == size), key=lambda i: (-i.nbytes, i.name))
        while pending:
            gap = (-offset) % alignment
            if not gap:  # aligned here: the largest goes first
                pick = pending[0]
            else:  # misaligned anyway: the smallest that restores alignment, else simply the smallest
                restoring = [i for i in pending if i.nbytes % alignment == gap]
                pick = min(restoring or pending, key=lambda i: i.nbytes)
            pending.remove(pick)
            order.append(pick.name)
            offset += pick.nbytes
    return order


def _dtype_name(key: str, tensor: torch.Tensor) -> str:
    name = _DTYPE_NAMES.get(str(tensor.dtype).removeprefix("torch."))
    if name is None:
        raise UnsupportedFormatError(
            f"tensor {key!r} has dtype {tensor.dtype}, which safetensors cannot store",
            hint="cast it to a supported dtype (float32, float16, bfloat16, an integer type) first",
        )
    return name


def _flat_bytes(tensor: torch.Tensor) -> torch.Tensor:
    import torch

    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8) if flat.numel() else torch.empty(0, dtype=torch.uint8)


def safetensors_bytes_layout(
    tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> tuple[bytes, list[str]]:
    """The padded header of the file :func:`write_safetensors` writes, and the order of the data."""
    items = [(k, t.numel() * t.element_size(), t.element_size()) for k, t in tensors.items()]
    order = aligned_order(items)
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    sizes = {name: nbytes for name, nbytes, _ in items}
    for name in order:
        tensor = tensors[name]
        header[name] = {"dtype": _dtype_name(name, tensor), "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + sizes[name]]}
        offset += sizes[name]
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % ALIGNMENT)
    return len(text).to_bytes(8, "little") + text, order


def safetensors_bytes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """The whole file :func:`write_safetensors` would write, in memory."""
    head, order = safetensors_bytes_layout(tensors, metadata)
    return b"".join([head, *(_flat_bytes(tensors[name]).numpy().tobytes() for name in order)])


def write_safetensors(
    tensors: Mapping[str, torch.Tensor], path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``tensors`` to ``path`` as safetensors with 64-byte aligned data, atomically.

    The file appears under its name only when complete (a temp file in the same directory, then a
    rename), so a reader never maps a half-written file. Tensors that share memory are written
    as separate copies.

    Args:
        tensors: Name to tensor (any device; written in row-major order, little-endian).
        path: The file to write (replaced if it exists).
        metadata: The string-to-string ``__metadata__`` of the file.

    Returns:
        ``path``.

    Raises:
        UnsupportedFormatError: A tensor has a dtype safetensors cannot store.
    """
    path = Path(path)
    head, order = safetensors_bytes_layout(tensors, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(head)
            for name in order:
                out.write(_flat_bytes(tensors[name]).numpy().data)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
