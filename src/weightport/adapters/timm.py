"""timm weights: ``timm:NAME[.TAG]`` (``timm:resnet50.a1_in1k``; the default tag when none).

Metadata comes from timm's pretrained configs: hub id or url, mean/std, input size,
interpolation, the ``classifier`` (→ ``Source.head``) and ``first_conv`` names, class count,
licence. Weights with a hub id are fetched from the Hugging Face hub into its cache (as timm does);
the others from their url into torch.hub's cache, with weightport's download machinery.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weightport.adapters.base import Adapter
from weightport.errors import (
    MissingDependencyError,
    SourceNotFoundError,
    UnknownSourceError,
)
from weightport.fetch.cache import torch_hub_checkpoints, url_filename
from weightport.fetch.store import fetch_url
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.listing import SourceInfo, matches
from weightport.registry.source import Preprocessing, Source


def _timm() -> Any:
    try:
        import timm.models
    except ImportError as exc:
        raise MissingDependencyError("timm: sources need timm", hint="pip install timm") from exc
    return timm.models


def pretrained_cfg(name: str) -> Any | None:
    """timm's pretrained config for ``arch[.tag]`` (default tag when none), or ``None``."""
    models = _timm()
    _, tag = models.split_model_name_tag(name)
    try:
        cfg = models.get_pretrained_cfg(name, allow_unregistered=False)
    except (RuntimeError, KeyError, ValueError):
        return None
    if cfg is None or (tag and cfg.tag != tag) or not (cfg.hf_hub_id or cfg.url):
        return None
    return cfg


def to_source(cfg: Any) -> Source:
    """A :class:`Source` carrying a timm pretrained config's metadata."""
    name = f"{cfg.architecture}.{cfg.tag}" if cfg.tag else cfg.architecture
    head = cfg.classifier
    first_conv = cfg.first_conv
    meta = {
        key: getattr(cfg, key)
        for key in ("architecture", "tag", "hf_hub_id", "hf_hub_filename", "url", "num_classes", "origin_url",
                    "paper_ids", "test_input_size", "crop_mode", "pool_size")
        if getattr(cfg, key, None) is not None
    }
    if isinstance(first_conv, (list, tuple)):
        meta["first_convs"] = list(first_conv)
        first_conv = first_conv[0] if first_conv else None
    return Source(
        uri=f"timm:{name}",
        scheme="timm",
        location=name,
        filename=cfg.hf_hub_filename,
        license=cfg.license,
        preprocessing=Preprocessing(
            mean=tuple(cfg.mean) if cfg.mean else None,
            std=tuple(cfg.std) if cfg.std else None,
            input_size=tuple(cfg.input_size) if cfg.input_size else None,
            interpolation=cfg.interpolation,
            crop_pct=cfg.crop_pct,
        ),
        classes=tuple(cfg.label_names) if getattr(cfg, "label_names", None) else None,
        head=(head,) if isinstance(head, str) else (tuple(head) if head else None),
        first_conv=first_conv,
        meta=meta,
    )


class TimmAdapter(Adapter):
    """timm's pretrained weights: from the hub when they have a hub id, else from their url."""

    scheme = "timm"

    def parse(self, rest: str, uri: str) -> Source:
        cfg = pretrained_cfg(rest.strip())
        if cfg is None:
            raise _unknown(rest.strip())
        return to_source(cfg)

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        hub_id = source.meta.get("hf_hub_id")
        if hub_id:
            return self._from_hub(source, hub_id, options)
        url = source.meta.get("url")
        if not url:
            raise SourceNotFoundError(f"timm has no downloadable weights for {source.location}")
        return fetch_url(source, url, torch_hub_checkpoints() / url_filename(url), options)

    def cached_path(self, source: Source, options: FetchOptions) -> Path | None:
        hub_id = source.meta.get("hf_hub_id")
        if hub_id:
            from weightport.adapters.hf import HubAdapter

            return HubAdapter().cached_path(self._hub_source(source, hub_id), options)
        url = source.meta.get("url")
        path = torch_hub_checkpoints() / url_filename(url) if url else None
        return path if path is not None and path.is_file() else None

    def _hub_source(self, source: Source, hub_id: str) -> Source:
        from weightport.adapters.hf import HubAdapter

        rest = hub_id + (f"/{source.filename}" if source.filename else "")
        return HubAdapter().parse(rest, f"hf:{rest}")

    def _from_hub(self, source: Source, hub_id: str, options: FetchOptions) -> Fetched:
        from weightport.adapters.hf import HubAdapter

        hub_source = self._hub_source(source, hub_id)
        if source.revision:  # the commit a lock file recorded (the fetch step fills it in)
            hub_source = hub_source.replace(revision=source.revision)
        # The fetch step checks pins and the lock entry on the timm source, around this whole fetch.
        return HubAdapter().fetch(hub_source, options)


def _unknown(name: str) -> UnknownSourceError:
    import difflib

    close = difflib.get_close_matches(name, candidates(), n=5, cutoff=0.6)
    return UnknownSourceError(
        f"timm has no pretrained weights {name!r}" + (f"; close matches: {', '.join(close)}" if close else ""),
        hint="list them with timm.list_pretrained() or `weightport list 'timm:*'`",
    )


def resolve_name(name: str) -> Source | None:
    """Bare-name resolver: ``resnet50.a1_in1k`` or ``vit_base_patch16_224`` when timm has weights."""
    try:
        cfg = pretrained_cfg(name)
    except MissingDependencyError:
        return None
    if cfg is None:
        return None
    source = to_source(cfg)
    which = "its default tag" if "." not in name else "as named"
    return source.replace(
        resolved_by=f"bare name {name!r}: not an alias, not in torchvision; timm has {source.location} ({which})"
    )


def candidates() -> list[str]:
    """timm's pretrained names (``arch.tag``) and architectures."""
    try:
        models = _timm()
    except MissingDependencyError:
        return []
    names = models.list_pretrained()
    return sorted({*names, *(n.partition(".")[0] for n in names)})


#: This module's bare-name resolver, listed in :data:`weightport.registry.resolve.BUILTIN_NAME_RESOLVERS`.
NAME_RESOLVER = (resolve_name, candidates)


def list_names(pattern: str | None) -> Iterator[SourceInfo]:
    """timm's pretrained architectures (with their tags) matching ``pattern``, for :func:`weightport.list_sources`."""
    try:
        from timm import models
    except ImportError:
        return
    by_arch: dict[str, list[str]] = {}
    for full in models.list_pretrained():
        arch, _, tag = full.partition(".")
        by_arch.setdefault(arch, []).append(tag)
    for arch, tags in by_arch.items():
        if not (matches(pattern, "timm", arch) or any(matches(pattern, "timm", f"{arch}.{t}") for t in tags)):
            continue
        cfg = models.get_pretrained_cfg(arch)
        default = cfg.tag if cfg is not None and cfg.tag else tags[0]
        yield SourceInfo(arch, "timm", f"timm:{arch}.{default}", default, tuple(tags),
                         getattr(cfg, "license", None), getattr(cfg, "num_classes", None))
