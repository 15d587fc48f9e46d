"""A fused q/k/v bias against separate q and v biases (no k bias): torchvision ↔ timm Swin V2, BEiT-style.

torchvision's Swin V2 keeps one ``attn.qkv.bias`` of ``3·C`` and zeroes its k third in every forward;
timm's keeps ``attn.q_bias`` and ``attn.v_bias`` of ``C`` (its k bias is a constant zero buffer).
When the model uses one convention and the checkpoint the other, the checkpoint is rewritten into the
model's before alignment: split (the k third is dropped — it is what the source ignores, and a k bias
adds the same value to every logit of a query, which softmax cancels) or fuse (q, zeros, v).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_FUSED = ".qkv.bias"
_Q, _V = ".q_bias", ".v_bias"


@dataclass
class BiasRewrite:
    """The rewritten tensors and, per new key, the checkpoint key it comes from and what was done."""

    tensors: dict[str, Any]
    origin: dict[str, str]
    step: dict[str, str] = field(default_factory=dict)
    dropped_k_max: float = 0.0


def _has(keys: Iterable[str], suffix: str) -> bool:
    return any(k.endswith(suffix) for k in keys)


def harmonise_qkv_bias(tensors: Mapping[str, Any], target_keys: Iterable[str]) -> BiasRewrite | None:
    """The checkpoint with its q/k/v biases in the model's convention, or ``None`` when they already agree."""
    target = list(target_keys)
    split_model = _has(target, _Q) and _has(target, _V) and not _has(target, _FUSED)
    fused_model = _has(target, _FUSED) and not _has(target, _Q)
    if split_model and _has(tensors, _FUSED) and not _has(tensors, _Q):
        return _split(tensors)
    if fused_model and _has(tensors, _Q) and _has(tensors, _V) and not _has(tensors, _FUSED):
        return _fuse(tensors)
    return None


def _split(tensors: Mapping[str, Any]) -> BiasRewrite | None:
    out = BiasRewrite({}, {})
    for key, value in tensors.items():
        if not key.endswith(_FUSED) or value.dim() != 1 or value.shape[0] % 3:
            out.tensors[key], out.origin[key] = value, key
            continue
        c = value.shape[0] // 3
        owner = key[: -len(_FUSED)]
        for new, part in ((owner + _Q, value[:c]), (owner + _V, value[2 * c:])):
            out.tensors[new], out.origin[new] = part, key
            out.step[new] = f"layout split {key.rpartition('.')[0].rpartition('.')[2]}.bias into q_bias, v_bias " \
                            "(k third dropped)"
        out.dropped_k_max = max(out.dropped_k_max, float(value[c: 2 * c].abs().max()) if c else 0.0)
    return out if out.step else None


def _fuse(tensors: Mapping[str, Any]) -> BiasRewrite | None:
    import torch

    out = BiasRewrite({}, {})
    for key, value in tensors.items():
        if key.endswith(_V) and key[: -len(_V)] + _Q in tensors:
            continue  # consumed with its q_bias
        if key.endswith(_Q) and key[: -len(_Q)] + _V in tensors:
            v = tensors[key[: -len(_Q)] + _V]
            if v.shape != value.shape:
                return None
            new = key[: -len(_Q)] + _FUSED
            out.tensors[new] = torch.cat([value, torch.zeros_like(value), v])
            out.origin[new] = key
            out.step[new] = "layout fuse q_bias, 0, v_bias into qkv.bias"
            continue
        out.tensors[key], out.origin[key] = value, key
    return out if out.step else None
