"""Which target keys play which role in a load: the head, the first convolution, position embeddings.

Computed once, by the planner (:func:`find_roles`), and handed to everything that needs them: the
fitters read ``FitContext.roles`` (``channels`` acts on the first convolution, ``classes`` on the
head), the planner re-initialises a head that does not fit, and ``verify=`` compares features
before the heads the plan re-initialised. None of them decides a role again.

- **head**: the keys ``reinit=[...]`` names; otherwise the model's head (:func:`~weightport.layout.head.head_keys`)
  and the targets of the keys a source declares as its head (``Source.head``, checkpoint key prefixes).
- **first_conv**: the target of the source's declared first convolution (``Source.first_conv``),
  else the model's first convolution (registration order).
- **pos_embed**: keys named like a position embedding (``pos_embed``, ``position_embeddings``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

POS_EMBED_NAMES: frozenset[str] = frozenset({"pos_embed", "position_embeddings", "pos_embedding"})


@dataclass(frozen=True)
class Roles:
    """The roles of a load's target keys.

    Attributes:
        head: Target keys of the classification head.
        first_conv: The target key of the first convolution's weight, if there is one.
    """

    head: frozenset[str]
    first_conv: str | None

    def of(self, target_key: str) -> frozenset[str]:
        """The roles of one target key (``"head"``, ``"first_conv"``, ``"pos_embed"``)."""
        roles = set()
        if target_key in self.head:
            roles.add("head")
        if target_key == self.first_conv:
            roles.add("first_conv")
        if target_key.rsplit(".", 1)[-1] in POS_EMBED_NAMES:
            roles.add("pos_embed")
        return frozenset(roles)


def find_roles(module: nn.Module, pairs: Iterable[tuple[str, str]], heads: Iterable[str], *,
               declared_head: Sequence[str] | None = None, declared_first_conv: str | None = None,
               user_named_head: bool = False) -> Roles:
    """The roles of ``module``'s keys for a load pairing ``(source key, target key)`` as in ``pairs``.

    Args:
        module: The target module.
        pairs: Each checkpoint key with the target key it goes to.
        heads: The model's head keys (:func:`~weightport.layout.head.head_keys`).
        declared_head: Checkpoint key prefixes the source declares as its head.
        declared_first_conv: The checkpoint module the source declares as its first convolution.
        user_named_head: ``heads`` is what the user named with ``reinit=``: the source's own
            declaration does not add to it.
    """
    pairs = list(pairs)
    head = set(heads)
    if declared_head and not user_named_head:
        head |= {t for s, t in pairs if any(s == p or s.startswith(p + ".") for p in declared_head)}
    first_conv = None
    if declared_first_conv:
        first_conv = next((t for s, t in pairs if s in (declared_first_conv, f"{declared_first_conv}.weight")), None)
    if first_conv is None:
        first_conv = first_conv_key(module)
    return Roles(frozenset(head), first_conv)


def first_conv_key(module: nn.Module) -> str | None:
    """The state-dict key of the first convolution's weight in ``module`` (registration order)."""
    from torch import nn

    for name, sub in module.named_modules():
        if isinstance(sub, nn.modules.conv._ConvNd):
            return f"{name}.weight" if name else "weight"
    return None
