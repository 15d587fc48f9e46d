"""Checkpoint readers. ``read_checkpoint(path)`` detects the format from the bytes and reads it safely.

(Minimal placeholder: safetensors and torch pickles with ``weights_only=True``; replaced by the
full reader package.)
"""

from __future__ import annotations

from pathlib import Path

from weightport.formats.base import RawCheckpoint, ReadOptions


def read_checkpoint(path: Path, options: ReadOptions | None = None) -> RawCheckpoint:
    """Read the checkpoint at ``path`` (a file, or a directory holding one)."""
    import torch
    from safetensors.torch import load_file

    options = options or ReadOptions()
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in {".safetensors", ".pt", ".pth", ".bin", ".ckpt"})
        path = files[0]
    if path.suffix == ".safetensors":
        return RawCheckpoint(load_file(path), "safetensors", path, [path])
    obj = torch.load(path, map_location="cpu", weights_only=True, mmap=options.mmap)
    fmt = "lightning" if isinstance(obj, dict) and "pytorch-lightning_version" in obj else "torch"
    meta = {"hyper_parameters": obj.get("hyper_parameters")} if fmt == "lightning" else {}
    return RawCheckpoint(obj, fmt, path, [path], meta)


__all__ = ["RawCheckpoint", "ReadOptions", "read_checkpoint"]
