"""Read a sharded checkpoint through its JSON index (``*.safetensors.index.json``,
``pytorch_model.bin.index.json``): ``{"metadata": {...}, "weight_map": {key: shard file}}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weightport.errors import CorruptCheckpointError
from weightport.formats.base import RawCheckpoint, ReadOptions
from weightport.paths import confined_name
from weightport.text import listing

_HINT = "download every shard listed in the index, or fetch the index again"


def read_index(path: Path, max_bytes: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse and validate an index file.

    Returns:
        ``(metadata, weight_map)``.

    Raises:
        CorruptCheckpointError: Not JSON, or no ``weight_map`` of strings to strings.
        PathTraversalError: A shard name that leaves the index's directory.
    """
    if path.stat().st_size > max_bytes:
        raise CorruptCheckpointError(f"{path}: index file larger than {max_bytes} bytes", hint=_HINT)
    try:
        index = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise CorruptCheckpointError(f"{path}: the shard index is not valid UTF-8 JSON ({exc})", hint=_HINT) from exc
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if (
        not isinstance(weight_map, dict)
        or not weight_map
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items())
    ):
        raise CorruptCheckpointError(
            f'{path}: expected a JSON object with a non-empty "weight_map" of tensor name -> shard file',
            hint=_HINT,
        )
    for shard in set(weight_map.values()):  # the names, not where links lead (hub snapshots link to blobs)
        confined_name(shard, f"{path}: shard", hint="shard names must be file names relative to the index's directory")
    metadata = index.get("metadata") if isinstance(index.get("metadata"), dict) else {}
    return metadata, weight_map


def read_sharded(
    path: Path,
    options: ReadOptions,
    load_shard: Callable[[Path, ReadOptions], RawCheckpoint],
    fmt: str,
) -> RawCheckpoint:
    """Read every shard named by the index at ``path`` and merge them into one flat dict.

    Args:
        path: The index file.
        options: Reading options, passed to each shard's reader.
        load_shard: Reads one shard (the single-file reader of the shards' format).
        fmt: The format name to report (``safetensors-sharded`` or ``torch-sharded``).

    Raises:
        CorruptCheckpointError: A shard is missing, lacks a tensor the index assigns to it, or two
            shards hold the same key.
    """
    metadata, weight_map = read_index(path, options.max_header_bytes)
    shards = list(dict.fromkeys(weight_map.values()))
    missing = [s for s in shards if not (path.parent / s).is_file()]
    if missing:
        raise CorruptCheckpointError(
            f"{path}: {len(missing)} shard(s) listed in the index are missing: {listing(missing)}", hint=_HINT
        )
    merged: dict[str, Any] = {}
    shard_meta: dict[str, Any] = {}
    for shard in shards:
        raw = load_shard(path.parent / shard, options)
        if not isinstance(raw.obj, dict):
            raise CorruptCheckpointError(f"{path.parent / shard}: a shard must hold a flat dict of tensors")
        expected = {k for k, v in weight_map.items() if v == shard}
        absent = sorted(expected - raw.obj.keys())
        if absent:
            raise CorruptCheckpointError(
                f"{path.parent / shard}: the index assigns {listing(repr(k) for k in absent)} to this shard, "
                "but it lacks them",
                hint=_HINT,
            )
        clash = sorted(merged.keys() & raw.obj.keys())
        if clash:
            raise CorruptCheckpointError(
                f"{path}: key(s) {listing(repr(k) for k in clash)} appear in more than one shard (also in {shard})",
                hint=_HINT,
            )
        merged.update(raw.obj)
        if raw.metadata:
            shard_meta[shard] = raw.metadata
    ordered = {k: merged[k] for k in weight_map} | {k: v for k, v in merged.items() if k not in weight_map}
    info: dict[str, Any] = {"index": metadata}
    if shard_meta:
        info["shards"] = shard_meta
    return RawCheckpoint(ordered, fmt, path, [path] + [path.parent / s for s in shards], info)
