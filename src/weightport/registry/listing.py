"""``list_sources()``: what weightport knows by name — aliases, torchvision weights, timm tags."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from weightport.registry.aliases import list_aliases


@dataclass(frozen=True)
class SourceInfo:
    """One named source.

    Attributes:
        name: What to write (bare name, or after ``scheme:``).
        scheme: ``alias``, ``torchvision`` or ``timm``.
        uri: The full source string for the default weights.
        default_tag: The weights taken when no tag is given.
        tags: Every weights tag known for the name.
        license: The default weights' licence, when known.
        num_classes: The default weights' class count, when known.
    """

    name: str
    scheme: str
    uri: str
    default_tag: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    license: str | None = None
    num_classes: int | None = None


def list_sources(pattern: str | None = None) -> list[SourceInfo]:
    """Named sources whose name (or ``scheme:name``) matches the glob ``pattern``.

    Aliases come first, then torchvision, then timm (the order bare names are resolved in).
    Libraries that are not installed are skipped.
    """
    out: list[SourceInfo] = []
    for lister in _LISTERS:
        out.extend(lister(pattern))
    return out


def _matches(pattern: str | None, scheme: str, name: str) -> bool:
    return pattern is None or fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(f"{scheme}:{name}", pattern)


def _aliases(pattern: str | None) -> Iterator[SourceInfo]:
    for alias in list_aliases():
        if _matches(pattern, "alias", alias.name):
            meta = alias.metadata
            classes = meta.get("num_classes") or (len(meta["classes"]) if meta.get("classes") else None)
            yield SourceInfo(alias.name, "alias", alias.target, license=meta.get("license"), num_classes=classes)


def _torchvision(pattern: str | None) -> Iterator[SourceInfo]:
    try:
        from weightport.adapters.torchvision import candidates, weights_enum
    except ImportError:
        return
    for name in candidates():
        if not _matches(pattern, "torchvision", name):
            continue
        enum = weights_enum(name)
        if enum is None:
            continue
        default = enum.DEFAULT
        categories = default.meta.get("categories")
        yield SourceInfo(name, "torchvision", f"torchvision:{name}.{default.name}", default.name,
                         tuple(w.name for w in enum), None, len(categories) if categories else None)


def _timm(pattern: str | None) -> Iterator[SourceInfo]:
    try:
        from timm import models
    except ImportError:
        return
    by_arch: dict[str, list[str]] = {}
    for full in models.list_pretrained():
        arch, _, tag = full.partition(".")
        by_arch.setdefault(arch, []).append(tag)
    for arch, tags in by_arch.items():
        if not (_matches(pattern, "timm", arch) or any(_matches(pattern, "timm", f"{arch}.{t}") for t in tags)):
            continue
        cfg = models.get_pretrained_cfg(arch)
        default = cfg.tag if cfg is not None and cfg.tag else tags[0]
        yield SourceInfo(arch, "timm", f"timm:{arch}.{default}", default, tuple(tags),
                         getattr(cfg, "license", None), getattr(cfg, "num_classes", None))


_LISTERS: list[Callable[[str | None], Iterator[SourceInfo]]] = [_aliases, _torchvision, _timm]
