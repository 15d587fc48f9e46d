"""torchvision weights: ``torchvision:NAME[.WEIGHTS]`` (``torchvision:resnet50.IMAGENET1K_V2``).

Metadata comes from torchvision's weights enums (url, categories, transforms, metrics). The file is
stored where torch.hub would put it (``$TORCH_HOME/hub/checkpoints/<basename of url>``) so both
share it, but it is downloaded by weightport's own machinery (lock, temp file, sha256) and never
through torch.hub's loader, which unpickles with ``weights_only=False``. The 8-hex prefix of the
sha256 that torchvision puts in each file name is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weightport.adapters.base import Adapter
from weightport.errors import MissingDependencyError, UnknownSourceError
from weightport.fetch.cache import torch_hub_checkpoints, url_filename
from weightport.fetch.integrity import check_cached
from weightport.fetch.store import fetch_url
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.listing import SourceInfo, matches
from weightport.registry.source import Preprocessing, Source

#: torch.hub's convention: ``name-<sha256 prefix>.ext``.
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")


def _models() -> Any:
    try:
        import torchvision.models
    except ImportError as exc:
        raise MissingDependencyError("torchvision: sources need torchvision", hint="pip install torchvision") from exc
    return torchvision.models


def weights_enum(name: str) -> Any | None:
    """torchvision's weights enum for a model name, or ``None`` when it has none."""
    models = _models()
    try:
        return models.get_model_weights(name)
    except (ValueError, KeyError):
        return None


def lookup(name: str, tag: str | None) -> Any | None:
    """The weights entry ``name.tag`` (``DEFAULT`` when no tag), or ``None`` when unknown."""
    enum = weights_enum(name)
    if enum is None:
        return None
    if tag is None:
        return enum.DEFAULT
    try:
        return enum[tag]
    except KeyError:
        return None


def to_source(name: str, weights: Any, uri: str | None = None) -> Source:
    """A :class:`Source` carrying a torchvision weights entry's url and metadata."""
    meta = dict(weights.meta)
    categories = meta.pop("categories", None)
    info: dict[str, Any] = {
        "architecture": name,
        "weights": f"{type(weights).__name__}.{weights.name}",
        "metrics": meta.pop("_metrics", {}),
        **{k.lstrip("_"): v for k, v in meta.items() if k != "_docs"},
    }
    return Source(
        uri=uri or f"torchvision:{name}.{weights.name}",
        scheme="torchvision",
        location=weights.url,
        filename=url_filename(weights.url),
        preprocessing=_preprocessing(weights),
        classes=tuple(categories) if categories else None,
        meta=info,
    )


def _preprocessing(weights: Any) -> Preprocessing | None:
    try:
        transform = weights.transforms()
    except Exception:  # some transforms need arguments; metadata is optional
        return None
    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    crop = getattr(transform, "crop_size", None)
    resize = getattr(transform, "resize_size", None)
    interpolation = getattr(transform, "interpolation", None)
    crop_px = crop[0] if isinstance(crop, (list, tuple)) and crop else None
    resize_px = resize[0] if isinstance(resize, (list, tuple)) and resize else None
    if mean is None and crop_px is None:
        return None
    return Preprocessing(
        mean=tuple(mean) if mean is not None else None,
        std=tuple(std) if std is not None else None,
        input_size=(3, crop_px, crop_px) if crop_px else None,
        interpolation=getattr(interpolation, "value", None),
        crop_pct=round(crop_px / resize_px, 4) if crop_px and resize_px else None,
    )


def _split(text: str) -> tuple[str, str | None]:
    name, dot, tag = text.partition(".")
    return name, (tag if dot else None)


class TorchvisionAdapter(Adapter):
    """torchvision's pretrained weights, cached in torch.hub's directory."""

    scheme = "torchvision"

    def parse(self, rest: str, uri: str) -> Source:
        name, tag = _split(rest.strip())
        weights = lookup(name, tag)
        if weights is None:
            raise _unknown(name, tag)
        return to_source(name, weights)

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        dest = torch_hub_checkpoints() / url_filename(source.location)
        return fetch_url(source, source.location, dest, options, hash_prefix=_hash_prefix(dest.name))

    def cache_status(self, source: Source, options: FetchOptions) -> tuple[Path | None, str | None]:
        dest = torch_hub_checkpoints() / url_filename(source.location)
        digest, problem = check_cached(dest, sha256=source.sha256, hash_prefix=_hash_prefix(dest.name))
        return (dest if digest is not None else None), problem


def _hash_prefix(filename: str) -> str | None:
    match = HASH_IN_NAME.search(filename)
    return match.group(1) if match else None


def _unknown(name: str, tag: str | None) -> UnknownSourceError:
    import difflib

    enum = weights_enum(name)
    if enum is not None:
        return UnknownSourceError(
            f"torchvision has no weights {tag!r} for {name}",
            hint="available: " + ", ".join(w.name for w in enum) + " (or no tag for the default)",
        )
    close = difflib.get_close_matches(name, candidates(), n=5, cutoff=0.6)
    return UnknownSourceError(
        f"torchvision has no model {name!r} with weights" + (f"; close matches: {', '.join(close)}" if close else ""),
        hint="list them with torchvision.models.list_models() or `weightport list 'torchvision:*'`",
    )


def resolve_name(name: str) -> Source | None:
    """Bare-name resolver: ``resnet18`` or ``resnet50.IMAGENET1K_V2`` when torchvision has them."""
    model, tag = _split(name)
    try:
        weights = lookup(model, tag)
    except MissingDependencyError:
        return None
    if weights is None:
        return None
    which = "its default" if tag is None else "as named"
    return to_source(model, weights).replace(
        resolved_by=f"bare name {name!r}: no alias; torchvision has {model} weights {weights.name} ({which})"
    )


def candidates() -> list[str]:
    """torchvision model names that have weights."""
    try:
        models = _models()
    except MissingDependencyError:
        return []
    return [m for m in models.list_models() if weights_enum(m) is not None]


#: This module's bare-name resolver, listed in :data:`weightport.registry.resolve.BUILTIN_NAME_RESOLVERS`.
NAME_RESOLVER = (resolve_name, candidates)


def list_names(pattern: str | None) -> Iterator[SourceInfo]:
    """torchvision's weights whose name matches ``pattern``, for :func:`weightport.list_sources`."""
    try:
        names = candidates()
    except ImportError:
        return
    for name in names:
        if not matches(pattern, "torchvision", name):
            continue
        enum = weights_enum(name)
        if enum is None:
            continue
        default = enum.DEFAULT
        categories = default.meta.get("categories")
        yield SourceInfo(name, "torchvision", f"torchvision:{name}.{default.name}", default.name,
                         tuple(w.name for w in enum), None, len(categories) if categories else None)
