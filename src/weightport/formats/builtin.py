"""Register the readers weightport ships with."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from weightport.formats.base import RawCheckpoint, ReadOptions
from weightport.formats.npz import read_npz
from weightport.formats.registry import Reader, register_reader
from weightport.formats.safetensors_reader import read_safetensors
from weightport.formats.sharded import read_sharded
from weightport.formats.torch_pickle import read_torch_legacy, read_torch_zip, read_torchscript


def _shard_reader(*allowed: str) -> Reader:
    """Read a shard through sniffing too, so a shard whose bytes are another format is refused."""

    def read_shard(path: Path, options: ReadOptions) -> RawCheckpoint:
        from weightport.formats.read import read_single

        return read_single(path, options, allowed=allowed)

    return read_shard


def register_builtin_readers() -> None:
    """Register the built-in readers (idempotent)."""
    readers: dict[str, Reader] = {
        "safetensors": read_safetensors,
        "safetensors-index": partial(read_sharded, load_shard=_shard_reader("safetensors"), fmt="safetensors-sharded"),
        "torch-index": partial(read_sharded, load_shard=_shard_reader("torch", "torch-legacy"), fmt="torch-sharded"),
        "torch": read_torch_zip,
        "torch-legacy": read_torch_legacy,
        "torchscript": read_torchscript,
        "npz": read_npz,
    }
    for name, reader in readers.items():
        register_reader(name, reader, override=True)
