"""Refuse tensors that declare far more data than the file stores, before anything copies them.

A pickle can describe a tensor as a stride-0 view of a few bytes (``torch.empty(1).expand(2**34)``):
the file is tiny, loading it is instant, and the first ``.clone()`` or ``load_state_dict`` allocates
the full logical size. These checks run right after deserialisation (tensors are still views of the
mmapped file) and before the layout stage ever touches a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weightport.errors import CorruptCheckpointError, ResourceLimitError, UnsupportedTensorError
from weightport.formats.base import ReadOptions, limit_hint
from weightport.formats.walk import walk

#: Expanded tensors smaller than this are never refused (small broadcast buffers are legitimate).
EXPANSION_FLOOR_BYTES = 1 << 20


def iter_tensors(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted path, tensor)`` for every tensor anywhere inside ``obj``: at any depth, inside
    dicts, lists, tuples, sets, namespaces and placeholders (:func:`weightport.formats.walk.walk`)."""
    import torch

    for where, value in walk(obj, path):
        if isinstance(value, torch.Tensor):
            yield where, value


def _kind(tensor: Any) -> str | None:
    """What makes a tensor other than a plain dense strided CPU tensor, or ``None``."""
    import torch

    if not isinstance(tensor, torch.Tensor):  # a stand-in with the tensor protocol (unit tests)
        return None
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        return f"a {type(tensor).__name__} tensor subclass"
    if tensor.layout != torch.strided:
        return f"a {str(tensor.layout).removeprefix('torch.')} tensor"
    if tensor.is_quantized:
        return "a quantized tensor"
    if tensor.is_nested:
        return "a nested tensor"
    if tensor.device.type != "cpu":
        return f"a tensor on {tensor.device.type}"
    return None


def check_tensor(file: Path, key: str, tensor: Any, options: ReadOptions) -> None:
    """Refuse one tensor whose logical size is over budget or far beyond its storage.

    Raises:
        UnsupportedTensorError: Not a plain dense strided CPU tensor (sparse, quantized, nested, meta...).
        ResourceLimitError: Naming the file, the key, the logical and the stored bytes.
        CorruptCheckpointError: The view reaches past the end of its storage.
    """
    kind = _kind(tensor)
    if kind is not None:
        raise UnsupportedTensorError(
            f"{file}: {key!r} is {kind}, not a plain dense CPU tensor; expected dense tensors",
            hint="convert it where it was made (t.to_dense(), t.dequantize(), t.cpu()) and save a state dict, "
            "ideally as safetensors",
        )
    logical = tensor.numel() * tensor.element_size()
    check_size(file, key, tuple(tensor.shape), logical, options)
    stored = _storage_bytes(tensor)
    reach = _reach_bytes(tensor)
    if reach > stored:
        # torch checks this when it builds the view; kept as a second line of defence against
        # out-of-bounds reads (a quantised-tensor variant slipped past torch 2.12).
        raise CorruptCheckpointError(
            f"{file}: tensor {key!r} (shape {tuple(tensor.shape)}, strides {tuple(tensor.stride())}, offset "
            f"{tensor.storage_offset()}) reaches {reach} bytes into a storage of {stored}",
            hint="the file is damaged or crafted; do not use it",
        )
    if logical > EXPANSION_FLOOR_BYTES and logical > options.max_expansion * max(stored, 1):
        raise ResourceLimitError(
            f"{file}: tensor {key!r} declares {logical} bytes (shape {tuple(tensor.shape)}, strides "
            f"{tuple(tensor.stride())}) but its storage holds only {stored}: an expanded/stride-0 tensor "
            "that would allocate the full size on first copy",
            hint="save the checkpoint with .contiguous() tensors; " + limit_hint("max_expansion"),
        )


def check_size(file: Path, key: str, shape: tuple[int, ...], logical: int, options: ReadOptions) -> None:
    """Refuse one tensor of ``logical`` bytes over ``options.max_tensor_bytes``.

    Raises:
        ResourceLimitError: Naming the file, the key, the shape and the bytes.
    """
    if logical > options.max_tensor_bytes:
        raise ResourceLimitError(
            f"{file}: tensor {key!r} of shape {shape} is {logical} bytes, "
            f"above ReadOptions.max_tensor_bytes={options.max_tensor_bytes}",
            hint=limit_hint("max_tensor_bytes"),
        )


def check_tensors(file: Path, obj: Any, options: ReadOptions) -> None:
    """Apply :func:`check_tensor` to every tensor inside ``obj``."""
    for key, tensor in iter_tensors(obj):
        check_tensor(file, key, tensor, options)


def _reach_bytes(tensor: Any) -> int:
    """Bytes of storage the view touches: one past its furthest element."""
    if tensor.numel() == 0:
        return 0
    last = tensor.storage_offset() + sum((n - 1) * abs(s) for n, s in zip(tensor.shape, tensor.stride()))
    return (last + 1) * tensor.element_size()


def _storage_bytes(tensor: Any) -> int:
    try:
        return int(tensor.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError):  # tensors without storage (meta, some subclasses)
        return 0
