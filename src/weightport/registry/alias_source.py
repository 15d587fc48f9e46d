"""Turning a registered :class:`Alias` into the :class:`Source` it stands for."""

from __future__ import annotations

from typing import Any

from weightport.registry.aliases import Alias
from weightport.registry.source import Preprocessing, Source

_PREPROCESSING_KEYS = ("mean", "std", "input_size", "interpolation", "crop_pct")


def source_from_alias(alias: Alias) -> Source:
    """Resolve the alias target and lay the alias's pins and metadata over it."""
    from weightport.registry.resolve import resolve

    base = resolve(alias.target)
    meta: dict[str, Any] = dict(alias.metadata)
    changes: dict[str, Any] = {"resolved_by": f"alias {alias.name!r} -> {alias.target}"}
    if alias.sha256:
        changes["sha256"] = alias.sha256.lower()
    for key in ("license", "first_conv", "layout", "revision", "size"):
        if key in meta:
            changes[key] = meta.pop(key)
    if "classes" in meta:
        changes["classes"] = tuple(meta.pop("classes"))
    if "head" in meta:
        head = meta.pop("head")
        changes["head"] = (head,) if isinstance(head, str) else tuple(head)
    pre = {k: meta.pop(k) for k in _PREPROCESSING_KEYS if k in meta}
    if pre:
        changes["preprocessing"] = Preprocessing(
            **{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in pre.items()}  # type: ignore[arg-type]
        )
    changes["meta"] = {**dict(base.meta), **meta, "alias": alias.name}
    return base.replace(**changes)
