"""``list_sources()``: what weightport knows by name — aliases, torchvision weights, timm tags."""

from __future__ import annotations

import fnmatch
import importlib
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
    return list(_aliases(pattern)) + library_sources(pattern)


def alias_sources(pattern: str | None = None) -> list[SourceInfo]:
    """The registered aliases matching ``pattern`` (cheap: imports no library)."""
    return list(_aliases(pattern))


def library_sources(pattern: str | None = None) -> list[SourceInfo]:
    """The names torchvision and timm offer matching ``pattern`` (imports both: seconds)."""
    return [info for lister in _library_listers() for info in lister(pattern)]


def matches(pattern: str | None, scheme: str, name: str) -> bool:
    return pattern is None or fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(f"{scheme}:{name}", pattern)


def _aliases(pattern: str | None) -> Iterator[SourceInfo]:
    for alias in list_aliases():
        if matches(pattern, "alias", alias.name):
            meta = alias.metadata
            classes = meta.get("num_classes") or (len(meta["classes"]) if meta.get("classes") else None)
            yield SourceInfo(alias.name, "alias", alias.target, license=meta.get("license"), num_classes=classes)


#: The listers of the libraries weightport ships adapters for, in bare-name resolution order. They
#: live with their adapters and are imported by name when listing (the registry's one registration
#: idiom: the registry never imports an adapter module directly).
BUILTIN_LISTERS: tuple[str, ...] = (
    "weightport.adapters.torchvision:list_names",
    "weightport.adapters.timm:list_names",
)


def _library_listers() -> Iterator[Callable[[str | None], Iterator[SourceInfo]]]:
    for where in BUILTIN_LISTERS:
        module, _, attribute = where.partition(":")
        yield getattr(importlib.import_module(module), attribute)
