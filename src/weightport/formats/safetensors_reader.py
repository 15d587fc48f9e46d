"""Read a single safetensors file: header validated in pure Python, tensors mmapped by safetensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weightport.errors import CorruptCheckpointError, UnsupportedFormatError
from weightport.formats.base import RawCheckpoint, ReadOptions
from weightport.formats.limits import check_size
from weightport.formats.safetensors_header import read_safetensors_header

#: safetensors dtypes torch has no type for.
_NO_TORCH_DTYPE = frozenset({"F4", "F6_E2M3", "F6_E3M2"})


def load_safetensors(path: Path, options: ReadOptions) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate ``path``'s header, then map every tensor from the file (no copy).

    The validated header proves what :func:`~weightport.formats.limits.check_tensor` checks of a
    pickle's tensors after reading: each tensor is a dense, contiguous CPU view of exactly the bytes
    its shape and dtype need, and the views tile the data buffer. So the size limit is applied to the
    declared bytes before anything is mapped, and the tensors are not walked again.

    Returns:
        ``(tensors in header order, __metadata__)``.
    """
    metadata, entries = read_safetensors_header(path, max_header_bytes=options.max_header_bytes)
    odd = sorted({dtype for dtype, _, _ in entries.values()} & _NO_TORCH_DTYPE)
    if odd:
        raise UnsupportedFormatError(
            f"{path}: tensors of dtype {', '.join(odd)}, which torch cannot represent",
            hint="convert the file to a dtype torch supports",
        )
    for key, (_, shape, (start, end)) in entries.items():
        check_size(path, key, shape, end - start, options)
    from safetensors import SafetensorError, safe_open

    tensors: dict[str, Any] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as reader:
            for key in entries:
                tensors[key] = reader.get_tensor(key)
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError) as exc:
        raise CorruptCheckpointError(
            f"{path}: safetensors could not read the file although its header is valid ({exc})",
            hint="the file is damaged or unsupported by the installed safetensors; fetch it again",
        ) from exc
    return tensors, metadata


def read_safetensors(path: Path, options: ReadOptions) -> RawCheckpoint:
    """Read one ``.safetensors`` file into a flat ``{key: tensor}`` dict."""
    tensors, metadata = load_safetensors(path, options)
    return RawCheckpoint(tensors, "safetensors", path, [path], {"safetensors": metadata} if metadata else {})
