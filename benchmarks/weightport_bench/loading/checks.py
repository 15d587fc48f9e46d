"""What each approach's child checks at the end, so that a broken approach cannot look fast.

A check has two steps: ``touch`` makes the loaded weights resident (a lazy, mmapped load pays for
reading the file here, not later where the benchmark cannot see it) and is timed; ``verify``
compares the result with what the fixture wrote, and raises
:class:`~weightport.errors.VerificationError` when it differs.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightport.errors import VerificationError

if TYPE_CHECKING:
    import torch
    from torch import nn

PAGE = 4096
EDGE_BYTES = 1 << 20


def tensor_checksum(tensor: torch.Tensor) -> float:
    """A float64 sum of about a thousand elements spread over ``tensor`` (every element when small)."""
    flat = tensor.detach().reshape(-1)
    step = max(1, flat.numel() // 1024)
    return float(flat[::step].double().sum().item())


def state_checksums(state: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """:func:`tensor_checksum` of every tensor of a state dict, by key."""
    return {key: tensor_checksum(value) for key, value in state.items()}


def edge_crc(data: bytes | bytearray | memoryview | Path) -> int:
    """CRC-32 of the first and last MiB of a file's bytes (cheap, and catches a truncated read)."""
    if isinstance(data, Path):
        size = data.stat().st_size
        with data.open("rb") as f:
            head = f.read(EDGE_BYTES)
            f.seek(max(0, size - EDGE_BYTES))
            tail = f.read(EDGE_BYTES)
    else:
        view = memoryview(data)
        head, tail = bytes(view[:EDGE_BYTES]), bytes(view[-EDGE_BYTES:])
    return zlib.crc32(tail, zlib.crc32(head))


def _touch_model(model: nn.Module) -> None:
    import torch

    # One byte per page is enough to make the kernel bring every page of every tensor in.
    for tensor in model.state_dict().values():
        if tensor.device.type != "cpu" or tensor.numel() == 0:
            continue
        raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
        raw[::PAGE].sum()


def _verify_model(model: nn.Module, expected: Mapping[str, Any]) -> None:
    want: dict[str, float] = expected["checksums"]
    got = model.state_dict()
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing or extra:
        raise VerificationError(f"keys differ from the checkpoint: missing {missing[:3]}, unexpected {extra[:3]}")
    for key, value in want.items():
        tensor = got[key]
        if tensor.device.type != "cpu":
            raise VerificationError(f"{key} is on {tensor.device}, not cpu")
        if str(tensor.dtype) != expected["dtypes"][key]:
            raise VerificationError(f"{key} has dtype {tensor.dtype}, the checkpoint {expected['dtypes'][key]}")
        actual = tensor_checksum(tensor)
        if not math.isclose(actual, value, rel_tol=1e-9, abs_tol=1e-12):
            raise VerificationError(f"{key} differs from the checkpoint (checksum {actual!r} != {value!r})")


def _touch_nothing(result: Any) -> None:
    """Floors hold no lazy state: nothing to bring in."""


def _verify_bytes(result: Any, expected: Mapping[str, Any]) -> None:
    if len(result) != expected["bytes"]:
        raise VerificationError(f"read {len(result)} bytes, the file has {expected['bytes']}")
    if edge_crc(result) != expected["edge_crc"]:
        raise VerificationError("the bytes read differ from the file's")


def _verify_meta(model: nn.Module, expected: Mapping[str, Any]) -> None:
    params = list(model.parameters())
    if any(p.device.type != "meta" for p in params):
        raise VerificationError("meta build left parameters off the meta device")
    numel = sum(p.numel() for p in params)
    if numel != expected["parameters"]:
        raise VerificationError(f"meta build has {numel} parameters, the checkpoint's model {expected['parameters']}")


@dataclass(frozen=True)
class Check:
    """How a child makes an approach's result resident and verifies it."""

    touch: Callable[[Any], None]
    verify: Callable[[Any, Mapping[str, Any]], None]


CHECKS: dict[str, Check] = {
    "model": Check(_touch_model, _verify_model),
    "bytes": Check(_touch_nothing, _verify_bytes),
    "meta": Check(_touch_nothing, _verify_meta),
}
