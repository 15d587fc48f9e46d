"""Find the weights inside a checkpoint's containers and flatten them to ``{key: tensor}``.

Checkpoints wrap their tensors: Lightning under ``state_dict``, training scripts under ``model`` or
``model_state_dict`` next to ``optimizer`` and ``epoch``, timm under ``state_dict`` with an EMA copy
under ``state_dict_ema``. This stage picks the container, flattens nested dicts of tensors with
dotted keys, and records what it dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from weightport.errors import UnsupportedFormatError

#: Containers that hold the model's weights, in order of preference.
WEIGHT_CONTAINERS: tuple[str, ...] = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights")
#: Containers that hold an exponential-moving-average copy of the weights.
EMA_CONTAINERS: tuple[str, ...] = ("state_dict_ema", "model_ema", "ema_state_dict", "ema", "model_ema_state_dict")
#: Entries that are training state, never weights.
TRAINING_STATE: frozenset[str] = frozenset(
    {"optimizer", "optimizer_states", "optimizer_state_dict", "lr_schedulers", "scheduler", "lr_scheduler",
     "epoch", "global_step", "step", "loops", "callbacks", "amp_scaler", "scaler", "hyper_parameters",
     "hparams", "pytorch-lightning_version", "args", "config", "arch", "best_acc1", "metric"}
)


@dataclass
class Extracted:
    """The flat state dict found in a checkpoint, and how it was found."""

    tensors: dict[str, Any]
    container: str | None
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _is_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def flatten(obj: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """Flatten nested mappings of tensors to dotted keys; non-tensor leaves are returned as dropped."""
    tensors: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if _is_tensor(value):
            tensors[name] = value
        elif isinstance(value, Mapping):
            sub, sub_dropped = flatten(value, name + ".")
            tensors.update(sub)
            dropped.extend(sub_dropped)
        else:
            dropped.append(name)
    return tensors, dropped


def _tensor_count(obj: Any) -> int:
    if not isinstance(obj, Mapping):
        return 0
    return sum(1 if _is_tensor(v) else _tensor_count(v) for v in obj.values())


def extract_state_dict(obj: Any, *, ema: bool | None = None) -> Extracted:
    """Find and flatten the weights in a loaded checkpoint object.

    Args:
        obj: What the checkpoint file holds.
        ema: ``True`` to take the EMA weights (error if there are none), ``False`` to refuse them,
            ``None`` to take the regular weights and fall back to EMA weights only if there are no others.

    Raises:
        UnsupportedFormatError: No tensors anywhere in the checkpoint, or ``ema=True`` without EMA weights.
    """
    if not isinstance(obj, Mapping):
        raise UnsupportedFormatError(
            f"the checkpoint holds a {type(obj).__name__}, not a dict of tensors",
            hint="save the model's state_dict() (or use safetensors), not the model object",
        )
    chosen = _choose_container(obj, ema)
    notes: list[str] = []
    if chosen is None:
        tensors, dropped = flatten({k: v for k, v in obj.items() if k not in TRAINING_STATE})
        dropped += [k for k in obj if k in TRAINING_STATE]
    else:
        path, inner = chosen
        tensors, dropped = flatten(inner)
        dropped += [k for k in obj if k != path]
        others = [k for k in EMA_CONTAINERS if k in obj and k != path and _tensor_count(obj[k])]
        if others and ema is None:
            notes.append(f"the checkpoint also holds EMA weights under {others[0]!r} (pass ema=True to load them)")
    if not tensors:
        raise UnsupportedFormatError(
            "no tensors found in the checkpoint; top-level entries: " + ", ".join(map(str, list(obj)[:15])),
            hint="is this a weights file? weightport reads state dicts, optionally inside containers such as "
            + ", ".join(WEIGHT_CONTAINERS),
        )
    return Extracted(tensors=tensors, container=None if chosen is None else chosen[0], dropped=dropped, notes=notes)


def _choose_container(obj: Mapping[str, Any], ema: bool | None) -> tuple[str, Mapping[str, Any]] | None:
    regular = [k for k in WEIGHT_CONTAINERS if isinstance(obj.get(k), Mapping) and _tensor_count(obj[k])]
    averaged = [k for k in EMA_CONTAINERS if isinstance(obj.get(k), Mapping) and _tensor_count(obj[k])]
    if ema:
        if not averaged:
            raise UnsupportedFormatError(
                "ema=True but the checkpoint holds no EMA weights; top-level entries: " + ", ".join(map(str, obj)),
                hint="drop ema=True to load the regular weights",
            )
        return averaged[0], obj[averaged[0]]
    top_level = sum(1 for v in obj.values() if _is_tensor(v))
    if regular and top_level == 0:
        return regular[0], obj[regular[0]]
    if not regular and not top_level and averaged and ema is None:
        return averaged[0], obj[averaged[0]]
    return None
