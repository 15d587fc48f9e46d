"""Checkpoint readers: the "read" stage of the pipeline.

``read_checkpoint(path)`` detects the format from the bytes (never the extension alone) and reads
it without running any code from the file. Importing this package does not import torch.

Formats: safetensors (single, and sharded through ``*.safetensors.index.json``), ``torch.save``
files (zip and legacy; ``.pt``/``.pth``/``.bin``, sharded through ``pytorch_model.bin.index.json``),
Lightning ``.ckpt``, numpy ``.npz``, and a directory holding one of these.
"""

from __future__ import annotations

from weightport.formats.base import RawCheckpoint, ReadOptions
from weightport.formats.builtin import register_builtin_readers
from weightport.formats.read import read_checkpoint, read_single
from weightport.formats.registry import get_reader, reader_names, register_reader
from weightport.formats.safetensors_header import read_safetensors_header
from weightport.formats.safety import ALLOWLIST, UnresolvedObject
from weightport.formats.sniff import sniff_format

register_builtin_readers()

__all__ = [
    "ALLOWLIST",
    "RawCheckpoint",
    "ReadOptions",
    "UnresolvedObject",
    "get_reader",
    "read_checkpoint",
    "read_safetensors_header",
    "read_single",
    "reader_names",
    "register_reader",
    "sniff_format",
]
