"""Hyper-parameters a state dict does not hold, compared between the source architecture and the model.

Two implementations can hold the same tensors and compute different functions: torchvision's
EfficientNet-B5 normalises with ``eps=1e-3`` where timm's default is ``1e-5``, timm's ``tf_`` models
pad like TensorFlow, one library uses SiLU where another uses ReLU. After a load, each module of the
model is compared with the source module its tensors came from, on the attributes that change the
computation (norm ``eps``; convolution stride, padding, dilation, groups, padding mode, and
"same" padding), and the activation functions of both models are compared as a whole (they hold no
tensors, so they pair with nothing). Every difference is named, grouped, with an example module.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

#: Attributes compared on a pair of modules, when both have them.
COMPARED = ("eps", "stride", "padding", "dilation", "groups", "padding_mode")


@dataclass(frozen=True)
class Difference:
    """One hyper-parameter that differs between a source module and the model module loaded from it."""

    kind: str  # "BatchNorm2d eps", "Conv2d padding", "activations"
    source_value: str
    target_value: str
    source_module: str
    target_module: str


def _value(module: nn.Module, name: str) -> Any:
    value = getattr(module, name, None)
    if isinstance(value, list):
        value = tuple(value)
    return value


def _same_padding(module: nn.Module) -> bool:
    """Whether a convolution pads like TensorFlow's ``"same"`` at run time (timm's ``Conv2dSame``)."""
    if _is_static(module):
        return False
    return "same" in type(module).__name__.lower() or _value(module, "padding") == "same"


def _is_static(module: nn.Module) -> bool:
    """A convolution whose TensorFlow "same" padding was fixed when it was built, for the input size it was
    built for (a ``static_padding`` module, as in ``efficientnet_pytorch``'s ``Conv2dStaticSamePadding``)."""
    return getattr(module, "static_padding", None) is not None and isinstance(_value(module, "padding"), tuple)


def _padding(module: nn.Module) -> Any:
    """The padding a convolution applies: its own, plus a static padding module's (per spatial dim when both
    sides are equal, else the raw ``(left, right, top, bottom)`` amounts)."""
    own = _value(module, "padding")
    if not _is_static(module):
        return own
    amounts = getattr(module.static_padding, "padding", (0,) * (2 * len(own)))  # nn.ZeroPad2d; none: Identity
    if not isinstance(amounts, tuple) or len(amounts) != 2 * len(own):
        return ("static", amounts)
    pairs = [amounts[2 * i: 2 * i + 2] for i in range(len(own))][::-1]  # conv order: (height, width)
    if any(a != b for a, b in pairs):
        return ("static", amounts)
    return tuple(o + a for o, (a, _) in zip(own, pairs))


def _padding_differs(a: nn.Module, b: nn.Module) -> bool:
    if (_is_static(a) and _same_padding(b)) or (_is_static(b) and _same_padding(a)):
        return False  # both pad like TensorFlow's "same"; one has it fixed for the size it was built for
    if _same_padding(a) != _same_padding(b):
        return True
    return not _same_padding(a) and _padding(a) != _padding(b)


def _norm_kind(module: nn.Module) -> str:
    from torch import nn

    for base in (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm):
        if isinstance(module, base):
            return base.__name__.lstrip("_")
    return type(module).__name__


def hyperparameter_differences(reference: nn.Module, target: nn.Module,
                               pairs: Mapping[str, str]) -> list[Difference]:
    """Differences between each paired module (``pairs``: source path → target path) and of the activations."""
    from torch import nn

    found: list[Difference] = []
    for source_path, target_path in pairs.items():
        try:
            a = reference.get_submodule(source_path) if source_path else reference
            b = target.get_submodule(target_path) if target_path else target
        except AttributeError:
            continue
        conv = isinstance(a, nn.modules.conv._ConvNd) and isinstance(b, nn.modules.conv._ConvNd)
        kind = type(a).__name__ if conv else _norm_kind(a)
        for name in COMPARED:
            if name == "padding" and conv:
                if _padding_differs(a, b):
                    found.append(Difference(f"{kind} padding", _pad(a), _pad(b), source_path, target_path))
                continue
            va, vb = _value(a, name), _value(b, name)
            if va is None or vb is None or va == vb:
                continue
            if name == "eps" and isinstance(va, float) and isinstance(vb, float) and abs(va - vb) <= 1e-12:
                continue
            found.append(Difference(f"{kind} {name}", str(va), str(vb), source_path, target_path))
    acts_a, acts_b = _activations(reference), _activations(target)
    if set(acts_a) != set(acts_b):
        found.append(Difference("activations", _count(acts_a), _count(acts_b), "", ""))
    return found


def hyperparameter_distance(reference: nn.Module, target: nn.Module) -> int:
    """How many modules' hyper-parameters the two models do not share, without pairing any module.

    Each model is counted as a multiset of what :func:`hyperparameter_differences` compares (per norm
    kind its ``eps``, per convolution its padding and the other compared attributes, the activations);
    the distance is the size of the multisets' symmetric difference. It needs no pairing, so it can
    choose among architectures of one key layout before a load is planned.
    """
    a, b = _profile(reference), _profile(target)
    return sum(((a - b) + (b - a)).values())


def _profile(model: nn.Module) -> Counter[tuple[Any, ...]]:
    from torch import nn

    counts: Counter[tuple[Any, ...]] = Counter()
    for m in model.modules():
        eps = getattr(m, "eps", None)
        if isinstance(m, nn.modules.conv._ConvNd):
            counts[("conv", _pad(m), tuple(_value(m, n) for n in COMPARED if n not in ("eps", "padding")))] += 1
        elif isinstance(eps, float):
            counts[(_norm_kind(m), round(eps, 12))] += 1
    counts.update(("activation", k) for k in _activations(model).elements())
    return counts


def _pad(module: nn.Module) -> str:
    if _same_padding(module):
        return "TensorFlow 'same' (asymmetric)"
    padding = _padding(module)
    return f"fixed {padding[1]} (left, right, top, bottom)" if padding[0] == "static" else f"symmetric {padding}"


_ACTIVATIONS = ("ReLU", "ReLU6", "SiLU", "Swish", "GELU", "Hardswish", "HardSwish", "Hardsigmoid", "HardSigmoid",
                "Sigmoid", "Tanh", "LeakyReLU", "ELU", "Mish", "PReLU", "QuickGELU", "GELUTanh", "SELU", "Softplus")


def _activations(model: nn.Module) -> Counter[str]:
    """Activation modules by kind; timm's norm+activation layers count their activation."""
    counts: Counter[str] = Counter()
    for m in model.modules():
        name = type(m).__name__
        if name in _ACTIVATIONS:
            lowered = name.lower()
            counts["silu" if lowered == "swish" else lowered] += 1
    return counts


def _count(counts: Counter[str]) -> str:
    return ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())) or "none"


def describe_differences(differences: list[Difference], limit: int = 6) -> list[str]:
    """One line per kind of difference: the two values, how many modules, and an example pair."""
    groups: dict[tuple[str, str, str], list[Difference]] = defaultdict(list)
    for d in differences:
        groups[(d.kind, d.source_value, d.target_value)].append(d)
    lines = []
    for (kind, source_value, target_value), items in list(groups.items())[:limit]:
        where = (f" in {len(items)} module(s), e.g. {items[0].source_module or '<root>'} → "
                 f"{items[0].target_module or '<root>'}") if items[0].source_module or items[0].target_module else ""
        lines.append(f"{kind}: {source_value} in the source, {target_value} in the model{where}")
    if len(groups) > limit:
        lines.append(f"… and {len(groups) - limit} more kinds of difference")
    return lines
