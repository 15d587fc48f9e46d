"""Light descriptions of tensors, used by the mapping stages without touching tensor data."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's key, shape and dtype (a string such as ``float32``)."""

    key: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @classmethod
    def of(cls, key: str, tensor: Any) -> TensorSpec:
        """Describe a torch tensor (or anything with ``shape`` and ``dtype``)."""
        return cls(key, tuple(int(d) for d in tensor.shape), str(tensor.dtype).removeprefix("torch."))


def specs_of(tensors: Mapping[str, Any]) -> list[TensorSpec]:
    """Describe every tensor of a state dict, in its order."""
    return [TensorSpec.of(k, v) for k, v in tensors.items()]
