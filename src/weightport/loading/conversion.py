"""Cached conversions: a checkpoint mapped once into a model's key layout, stored as safetensors.

A source that needed mapping (prefixes, structural alignment, fitters, casts) or a pickle read costs
that work on every load. With ``convert_cache=True`` the tensors as they were loaded are written once
to ``<cache>/converted/<key>.safetensors``, where the key hashes the source file's sha256, the
target's key layout (keys, shapes, dtypes) and the options that shape the mapping. Later loads of the
same source into the same layout read that file with exact names: a straight memory map. Provenance
(the original source and its sha256) stays in the report; a note says the conversion was used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightport.fetch.types import Fetched
from weightport.loading.options import LoadOptions

if TYPE_CHECKING:
    from torch import nn

    from weightport.loading.source_io import FetchedSource
    from weightport.report import LoadPlan, LoadReport

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
    return Conversion(path, _verified(path), digest)


def _verified(path: Path) -> bool:
    """Whether the stored conversion is the file weightport wrote: its recorded digest must match.
    A bad one (tampered, truncated, unrecorded, a link) is quarantined, so it is rebuilt."""
    from weightport.fetch.cache import refuse_linked_directory
    from weightport.fetch.integrity import check_cached, quarantine

    refuse_linked_directory(path.parent)
    digest, problem = check_cached(path)
    if problem is not None:
        quarantine(path, problem)
    return digest is not None


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


def store_conversion(conversion: Conversion, tensors: dict[str, Any], plan: LoadPlan | LoadReport) -> Path:
    """Write ``tensors`` (what ``plan`` loads, keyed by target key) as the cached conversion.

    The file goes to an exclusive temp file, its digest is recorded beside it, then it is renamed
    to its final name; on any failure nothing is left behind.

    Raises:
        DiskFullError: Not enough space (or a file-size limit).
        CacheNotWritableError: The cache cannot be written.
    """
    from weightport.fetch.cache import EntryDir
    from weightport.formats.safetensors_writer import safetensors_bytes

    tensors = _unshared({k: t.detach().contiguous() for k, t in tensors.items()})
    metadata = {"weightport_conversion": FORMAT_VERSION, "source": plan.source.uri,
                "source_sha256": conversion.source_sha256, "source_format": plan.source.format or ""}
    data = safetensors_bytes(tensors, metadata)  # 64-byte aligned data (formats/safetensors_writer.py)
    name = conversion.path.name
    tmp: str | None = None
    try:
        with EntryDir(conversion.path.parent) as entry:  # every file made relative to the directory held open
            try:
                tmp, fd = entry.create_exclusive(name)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                entry.write_sidecar(name, hashlib.sha256(data).hexdigest(), len(data))
                entry.replace(tmp, name)
                tmp = None
                entry.check_still_here()
            finally:
                if tmp is not None:
                    with contextlib.suppress(OSError):
                        entry.unlink(tmp)
    except OSError as exc:
        error = _store_error(conversion.path, len(data), exc)
        if error is exc:
            raise
        raise error from exc
    return conversion.path


def _store_error(path: Path, size: int, exc: OSError) -> Exception:
    from weightport.errors import CacheNotWritableError, DiskFullError, WeightportError

    if isinstance(exc, WeightportError):
        return exc
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return DiskFullError(
            f"not enough space in {path.parent} for the cached conversion {path.name}: needs {size} bytes "
            f"({exc.strerror}); the model was not changed",
            hint="free some space, point WEIGHTPORT_CACHE at a larger disk, or load with convert_cache=False",
        )
    return CacheNotWritableError(
        f"cannot store the cached conversion {path} ({exc.strerror}); the model was not changed",
        hint="make the cache writable, point WEIGHTPORT_CACHE elsewhere, or load with convert_cache=False",
    )


def _unshared(tensors: dict[str, Any]) -> dict[str, Any]:
    # safetensors refuses tensors that share memory; tied weights are written as separate copies.
    seen: set[int] = set()
    out = {}
    for key, tensor in tensors.items():
        ptr = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if ptr in seen else tensor
        seen.add(ptr)
    return out
