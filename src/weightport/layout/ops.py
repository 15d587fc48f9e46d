"""Tensor operations a layout rule set can declare: split a fused tensor, concatenate parts into one.

Each operation is a small named unit with ``apply(tensors) -> (tensors, records)``: it returns a new
ordered state dict (new keys take the place of the keys they replace) and one
:class:`LayoutRecord` per change, for the report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from weightport.errors import LayoutRuleError

if TYPE_CHECKING:
    import torch

__all__ = ["ConcatParts", "LayoutRecord", "SplitFused", "TensorOp"]


@dataclass(frozen=True)
class LayoutRecord:
    """One change a layout rule set made.

    Attributes:
        source_keys: The checkpoint keys consumed.
        target_keys: The keys produced.
        step: What was done, in words (``"rename (rule 3)"``, ``"split qkv in 3 along dim 0"``).
    """

    source_keys: tuple[str, ...]
    target_keys: tuple[str, ...]
    step: str


class TensorOp(Protocol):
    """A named operation on several tensors at once."""

    @property
    def name(self) -> str:
        """The operation's name in reports."""
        ...

    def apply(self, tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[LayoutRecord]]:
        """A new state dict with the operation applied, and what it did."""
        ...


@dataclass(frozen=True)
class SplitFused:
    """Split each tensor whose key matches ``pattern`` into equal parts along ``dim``.

    Example: ``SplitFused("qkv", r"(.*)\\.qkv\\.(weight|bias)", (r"\\1.q.\\2", r"\\1.k.\\2", r"\\1.v.\\2"))``
    turns ``blocks.0.attn.qkv.weight`` of shape ``(3D, D)`` into ``blocks.0.attn.{q,k,v}.weight``.

    Attributes:
        name: The operation's name in reports.
        pattern: A regex the whole key must match.
        replacements: One replacement template (``re`` syntax) per part, in order.
        dim: The dimension to split.
    """

    name: str
    pattern: str
    replacements: tuple[str, ...]
    dim: int = 0

    def apply(self, tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[LayoutRecord]]:
        regex = re.compile(self.pattern)
        out: dict[str, torch.Tensor] = {}
        records: list[LayoutRecord] = []
        parts = len(self.replacements)
        for key, tensor in tensors.items():
            match = regex.fullmatch(key)
            if match is None:
                out[key] = tensor
                continue
            if tensor.shape[self.dim] % parts:
                raise LayoutRuleError(
                    f"layout op {self.name!r}: {key!r} has size {tensor.shape[self.dim]} along dim {self.dim}, "
                    f"which does not split into {parts} equal parts",
                    hint="check that the rule set matches this checkpoint",
                )
            new_keys = tuple(match.expand(r) for r in self.replacements)
            for new_key, chunk in zip(new_keys, tensor.chunk(parts, dim=self.dim)):
                _put(out, new_key, chunk.contiguous(), self.name)
            records.append(LayoutRecord((key,), new_keys, f"{self.name}: split in {parts} along dim {self.dim}"))
        return out, records


@dataclass(frozen=True)
class ConcatParts:
    """Concatenate parts (e.g. ``q``, ``k``, ``v``) into one fused tensor along ``dim``.

    ``pattern`` must have a named group ``part``; keys that match and differ only in that group are
    concatenated in the order of ``parts``. Example:
    ``ConcatParts("qkv", r"(?P<m>.*)\\.(?P<part>q|k|v)_proj\\.(?P<kind>weight|bias)", ("q", "k", "v"),
    r"\\g<m>.qkv.\\g<kind>")``.

    Attributes:
        name: The operation's name in reports.
        pattern: A regex the whole key must match, with a ``part`` group.
        parts: The part names in concatenation order.
        replacement: The fused key's template (``re`` syntax, applied to the first part's match).
        dim: The dimension to concatenate along.
    """

    name: str
    pattern: str
    parts: tuple[str, ...]
    replacement: str
    dim: int = 0

    def apply(self, tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[LayoutRecord]]:
        import torch

        regex = re.compile(self.pattern)
        groups: dict[tuple, dict[str, str]] = {}
        for key in tensors:
            match = regex.fullmatch(key)
            if match is not None and match.group("part") in self.parts:
                # Keys that differ only in their ``part`` belong together.
                identity = tuple(v for k, v in sorted(match.groupdict().items()) if k != "part") + (
                    key[: match.start("part")] + key[match.end("part") :],
                )
                groups.setdefault(identity, {})[match.group("part")] = key
        order = {key: i for i, key in enumerate(tensors)}
        fused_at: dict[str, tuple[str, tuple[str, ...]]] = {}  # first part's key -> (fused key, all keys)
        consumed: set[str] = set()
        for members in groups.values():
            missing = [p for p in self.parts if p not in members]
            if missing:
                raise LayoutRuleError(
                    f"layout op {self.name!r}: {sorted(members.values())} lack part(s) {missing} to concatenate",
                    hint="check that the rule set matches this checkpoint",
                )
            keys = tuple(members[p] for p in self.parts)
            first = min(keys, key=order.__getitem__)
            fused_at[first] = (regex.fullmatch(keys[0]).expand(self.replacement), keys)  # type: ignore[union-attr]
            consumed.update(keys)
        out: dict[str, torch.Tensor] = {}
        records: list[LayoutRecord] = []
        for key, tensor in tensors.items():
            if key in fused_at:
                fused_key, keys = fused_at[key]
                _put(out, fused_key, torch.cat([tensors[k] for k in keys], dim=self.dim), self.name)
                records.append(LayoutRecord(keys, (fused_key,), f"{self.name}: concatenate along dim {self.dim}"))
            elif key not in consumed:
                _put(out, key, tensor, self.name)
        return out, records


def _put(out: dict[str, torch.Tensor], key: str, tensor: torch.Tensor, op: str) -> None:
    if key in out:
        raise LayoutRuleError(
            f"layout op {op!r} produces {key!r}, which is already in the checkpoint",
            hint="check the op's replacement templates",
        )
    out[key] = tensor
