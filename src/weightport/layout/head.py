"""Which target keys are the classification head, which may be re-initialised on purpose.

The user names them with ``reinit=[...]``; otherwise the head is the *final classification layer*:
one ``Linear`` or 1×1 convolution producing the logits. It is found inside the module named ``fc``,
``head``, ``classifier``, ``heads`` or ``last_linear`` (the outermost such module holding
parameters), or failing that it is the model's last ``nn.Linear``. A head module that is a stack
(torchvision's VGG ``classifier``: three ``Linear`` layers; timm's ConvNeXt ``head``: a norm and a
``Linear``) contributes only its last layer: the layers before it are network, not head, and are
never re-initialised without being named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from weightport.keys import matches_any

if TYPE_CHECKING:
    from torch import nn

HEAD_NAMES: frozenset[str] = frozenset({"fc", "head", "classifier", "heads", "last_linear"})

#: Names that look like a head without being one of :data:`HEAD_NAMES` (``aux_head``, ``cls_head``,
#: ``head_dist``): beside another candidate they make the choice ambiguous.
_HEADISH = re.compile(r"(^|_)(head|heads|classifier|fc)(_|$)")


def head_modules(module: nn.Module) -> list[str]:
    """Paths of the final classification layers of ``module`` (usually one)."""
    from torch import nn

    named = [(name, m) for name, m in module.named_modules() if name]
    # Named like a head first (a cheap test), then holding parameters (a walk of the module).
    candidates = [n for n, m in named
                  if n.rsplit(".", 1)[-1] in HEAD_NAMES and any(True for _ in m.parameters(recurse=True))]
    # Keep the outermost candidates only (timm's `head` holds `head.fc`): a head is one unit.
    outer = [n for n in candidates if not any(n.startswith(o + ".") for o in candidates if o != n)]
    if outer:
        chosen = outer[-1:] if len(outer) > 1 and _nested_in_backbone(outer) else outer
        layers = [_final_layer(module.get_submodule(path), path) for path in chosen]
        return [layer for layer in layers if layer is not None]
    # No module is named like a head: the model's last layer, when it is a Linear (an MLP's output).
    leaves = [(n, m) for n, m in named if any(True for _ in m.parameters(recurse=False))]
    return [leaves[-1][0]] if leaves and isinstance(leaves[-1][1], nn.Linear) else []


def _final_layer(head: nn.Module, path: str) -> str | None:
    """The last layer holding parameters inside ``head``, when it is a ``Linear`` or a 1×1 convolution."""
    leaves = [(name, m) for name, m in head.named_modules() if any(True for _ in m.parameters(recurse=False))]
    if not leaves:
        return None
    name, layer = leaves[-1]
    if not _is_classifier_layer(layer):
        return None
    return f"{path}.{name}" if name else path


def _is_classifier_layer(layer: nn.Module) -> bool:
    from torch import nn

    if isinstance(layer, nn.Linear):
        return True
    return isinstance(layer, nn.modules.conv._ConvNd) and all(k == 1 for k in layer.kernel_size)


def rival_heads(module: nn.Module) -> list[str]:
    """Two or more sibling modules that could each be the head (``aux_head`` and ``cls_head``): the
    default cannot choose between them, so a load that would re-initialise one asks for ``reinit=``.
    Empty when the head is clear."""
    from torch import nn

    # A head classifies: it is, or holds, a Linear (timm's ``conv_head`` is a convolution of the body).
    named = [n for n, m in module.named_modules()
             if n and any(isinstance(sub, nn.Linear) for sub in m.modules())]
    candidates = [n for n in named if _HEADISH.search(n.rsplit(".", 1)[-1])]
    outer = [n for n in candidates if not any(n.startswith(o + ".") for o in candidates if o != n)]
    if len(outer) < 2:
        return []
    shallowest = min(p.count(".") for p in outer)
    top = [p for p in outer if p.count(".") == shallowest]
    exact = [p for p in top if p.rsplit(".", 1)[-1] in HEAD_NAMES]
    if len(top) < 2 or len(exact) == len(top):
        return []  # one head, or heads all named as such (kept together, as before)
    return top


def _nested_in_backbone(paths: list[str]) -> bool:
    # Two heads at different depths (backbone.fc and head): the shallowest last one is the real head.
    return len({p.count(".") for p in paths}) > 1


def head_keys(module: nn.Module, target_keys: Sequence[str], *, into: str | None = None,
              reinit: Sequence[str] | None = None) -> set[str]:
    """Target keys that belong to the head: those ``reinit`` names, else those of :func:`head_modules`."""
    if reinit:
        patterns = list(reinit) + ([f"{into}.{p}" for p in reinit] if into else [])
        return {k for k in target_keys if matches_any(k, patterns)}
    heads = head_modules(module)
    return {k for k in target_keys if matches_any(k, heads)}
