"""Cached conversions: a checkpoint mapped once into a model's key layout, stored as safetensors.

A source that needed mapping (prefixes, structural alignment, fitters, casts) or a pickle read costs
that work on every load. With ``convert_cache=True`` the tensors as they were loaded are written once
to ``<cache>/converted/<key>.safetensors``, where the key hashes the source file's sha256, the
target's key layout (keys, shapes, dtypes) and the options that shape the mapping. Later loads of the
same source into the same layout read that file with exact names: a straight memory map. Provenance
(the original source and its sha256) stays in the report; a note says the conversion was used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from weightport.fetch.types import Fetched
from weightport.loading.options import LoadOptions

if TYPE_CHECKING:
    from torch import nn

    from weightport.loading.source_io import FetchedSource
    from weightport.report import LoadPlan

FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Conversion:
    """Where a source's conversion for one target layout lives, and whether it is there."""

    path: Path
    hit: bool
    source_sha256: str


def conversion_for(fs: FetchedSource, module: nn.Module, options: LoadOptions) -> Conversion | None:
    """The cached conversion slot for loading ``fs`` into ``module``, or ``None`` when not asked for."""
    if not options.convert_cache:
        return None
    from weightport.fetch.cache import cache_root

    digest = fs.digest()
    if digest is None:
        return None
    key = hashlib.sha256()
    key.update(f"v{FORMAT_VERSION};{digest};".encode())
    for name, tensor in module.state_dict(keep_vars=True).items():
        key.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
    key.update(_mapping_options(options).encode())
    path = cache_root(options.fetch.cache_dir) / "converted" / f"{key.hexdigest()[:40]}.safetensors"
    return Conversion(path, path.is_file(), digest)


def _mapping_options(options: LoadOptions) -> str:
    fields = ("into", "rename", "include", "exclude", "reinit", "ema", "match", "fitters", "fitter_options",
              "classes")
    return json.dumps({f: getattr(options, f) for f in fields}, sort_keys=True, default=str)


def cached_fetch(fs: FetchedSource, conversion: Conversion) -> Fetched:
    """The converted file, presented with the original source's digest and size for provenance."""
    return Fetched(path=conversion.path, sha256=conversion.source_sha256, size=fs.fetched.size, cached=True,
                   meta=dict(fs.fetched.meta))


def options_for_converted(options: LoadOptions) -> LoadOptions:
    """The converted file is already in the target's layout: exact names, no renames or fitters."""
    return dataclasses.replace(options, into=None, rename=None, match="exact", ema=None, fitters={},
                               fitter_options={}, classes=None)


def store_conversion(conversion: Conversion, module: nn.Module, plan: LoadPlan) -> Path:
    """Write the tensors ``plan`` loaded into ``module`` as the cached conversion (atomic rename)."""
    from weightport.formats.safetensors_writer import write_safetensors

    state = module.state_dict()
    tensors = {r.target_key: state[r.target_key] for r in plan.loaded}
    metadata = {"weightport_conversion": FORMAT_VERSION, "source": plan.source.uri,
                "source_sha256": conversion.source_sha256, "source_format": plan.source.format or ""}
    return write_safetensors(tensors, conversion.path, metadata)
