"""Head: keep the rows of the classes a model asks for, by name, instead of re-initialising the head.

When the source knows its class names (``Source.classes``) and the load asks for a subset
(``options["classes"] = ["tabby", "Egyptian cat"]``), the head's weight and bias rows of those
classes are kept, in the order asked. A name the source does not know is an error that lists the
closest names it does know.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from weightport.errors import UnknownClassError
from weightport.layout.fit.base import FitContext
from weightport.text import listing

if TYPE_CHECKING:
    import torch


def class_indices(
    known: tuple[str, ...] | list[str], wanted: list[str] | tuple[str, ...], *, source: str = "the checkpoint"
) -> list[int]:
    """Indices of ``wanted`` class names in ``known``.

    Raises:
        UnknownClassError: A wanted name is not known; the message suggests close matches.
    """
    index = {name: i for i, name in enumerate(known)}
    missing = [name for name in wanted if name not in index]
    if missing:
        suggestions = []
        for name in missing:
            close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
            suggestions.append(f"{name!r} (close: {', '.join(map(repr, close))})" if close else repr(name))
        raise UnknownClassError(
            f"{source} has no class named {'; '.join(suggestions)}",
            hint=f"use names from the source's {len(known)} classes (Source.classes)",
        )
    return [index[name] for name in wanted]


class ClassSubset:
    """Selects the head rows of named classes."""

    name = "classes"

    def applies(self, tensor: torch.Tensor, ctx: FitContext) -> bool:
        wanted = ctx.options.get("classes")
        known = ctx.source.classes if ctx.source is not None else None
        if not wanted or not known or not self._is_head(ctx):
            return False
        shape = tuple(tensor.shape)
        return (
            len(shape) >= 1
            and shape[0] == len(known)
            and ctx.target_shape[0] == len(wanted)
            and shape[1:] == tuple(ctx.target_shape[1:])
        )

    def adapt(self, tensor: torch.Tensor, ctx: FitContext) -> torch.Tensor:
        import torch

        source = ctx.source.uri if ctx.source is not None else "the checkpoint"
        rows = class_indices(ctx.source.classes or (), list(ctx.options["classes"]), source=source)  # type: ignore[union-attr]
        return tensor.index_select(0, torch.tensor(rows, dtype=torch.long, device=tensor.device)).clone()

    def describe(self, tensor: torch.Tensor, ctx: FitContext) -> str:
        wanted = list(ctx.options["classes"])
        shown = listing(wanted, 3)
        return f"classes {tensor.shape[0]}->{len(wanted)} by name ({shown})"

    @staticmethod
    def _is_head(ctx: FitContext) -> bool:
        return "head" in ctx.roles  # decided once, by the planner (weightport.layout.roles)
