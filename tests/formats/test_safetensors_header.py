"""Every malformed safetensors header kind (faults rows 20-26) is a typed error naming the file."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from weightport.errors import CorruptCheckpointError, ResourceLimitError
from weightport.formats import read_checkpoint, read_safetensors_header

from .helpers import safetensors_bytes, write

GOOD = {
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]},
}


def test_reads_header_of_a_real_file_without_torch(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(2, 3, dtype=torch.float16), "b": torch.ones(4)}, path, metadata={"format": "pt"})
    metadata, tensors = read_safetensors_header(path)
    assert metadata == {"format": "pt"}
    assert tensors["w"][:2] == ("F16", (2, 3))
    assert tensors["b"][:2] == ("F32", (4,))
    start, end = tensors["w"][2]
    assert end - start == 12
    assert "weightport.formats.safetensors_header" in sys.modules


def _bad(tmp_path: Path, data: bytes, *words: str, error: type = CorruptCheckpointError) -> None:
    path = write(tmp_path / "bad.safetensors", data)
    for call in (read_safetensors_header, read_checkpoint):
        with pytest.raises(error) as info:
            call(path)
        message = str(info.value)
        assert str(path) in message
        for word in words:
            assert word in message


def test_header_length_beyond_file(tmp_path: Path) -> None:  # row 20
    _bad(tmp_path, struct.pack("<Q", 5000) + b"{}", "header length 5000", "larger than the rest")


def test_header_length_u64_max(tmp_path: Path) -> None:  # row 21
    _bad(tmp_path, struct.pack("<Q", 2**64 - 1) + b"{" + b" " * 64, "header length")


def test_header_above_limit_is_a_resource_error(tmp_path: Path) -> None:  # row 21, honest but huge
    header = json.dumps(GOOD).encode() + b" " * 4096
    path = write(tmp_path / "big.safetensors", safetensors_bytes(None, bytes(16), raw_header=header))
    with pytest.raises(ResourceLimitError, match="limit"):
        read_safetensors_header(path, max_header_bytes=1024)


@pytest.mark.parametrize("cut", [1, 7])
def test_truncated_data_is_a_size_mismatch(tmp_path: Path, cut: int) -> None:  # row 22
    _bad(tmp_path, safetensors_bytes(GOOD, bytes(16 - cut)), "size mismatch", "truncated")


def test_trailing_bytes_are_a_size_mismatch(tmp_path: Path) -> None:  # row 22
    _bad(tmp_path, safetensors_bytes(GOOD, bytes(20)), "size mismatch", "trailing")


def test_overlapping_offsets(tmp_path: Path) -> None:  # row 23
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    _bad(tmp_path, safetensors_bytes(header, bytes(12)), "'b'", "overlaps")


def test_gap_between_tensors(tmp_path: Path) -> None:  # row 23
    header = {
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
    }
    _bad(tmp_path, safetensors_bytes(header, bytes(12)), "gap")


def test_shape_disagrees_with_offsets(tmp_path: Path) -> None:  # row 24
    header = {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    _bad(tmp_path, safetensors_bytes(header, bytes(8)), "'a'", "needs 12 bytes")


def test_shape_overflow(tmp_path: Path) -> None:  # row 24
    header = {"a": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 8]}}
    _bad(tmp_path, safetensors_bytes(header, bytes(8)), "'a'", "data_offsets")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (json.dumps({"a": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}).encode(), ["unknown dtype", "F33"]),
        (b'{"a": "\xff\xfe"}', ["UTF-8"]),
        (b"{not json", ["not valid JSON"]),
        (b"[1, 2, 3]", ["JSON object"]),
        (json.dumps({"__metadata__": {"k": {"nested": 1}}}).encode(), ["__metadata__"]),
        (json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}).encode(), ["data_offsets"]),
        (json.dumps({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}).encode(), ["shape"]),
        (json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}).encode(), ["ending before"]),
        (json.dumps({"a": {"dtype": "F32", "shape": [1]}}).encode(), ["exactly dtype, shape and data_offsets"]),
        (json.dumps({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}).encode(), ["shape"]),
        (b'{"a": NaN}', ["not valid JSON"]),
        (b"{" * 100000, ["not valid JSON"]),
    ],
)
def test_malformed_headers(tmp_path: Path, raw: bytes, words: list[str]) -> None:  # row 25
    _bad(tmp_path, safetensors_bytes(None, bytes(4), raw_header=raw), *words)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:  # row 26
    raw = (
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
        b' "a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}'
    )
    _bad(tmp_path, safetensors_bytes(None, bytes(4), raw_header=raw), "duplicate key 'a'")


def test_file_shorter_than_length_prefix(tmp_path: Path) -> None:
    path = write(tmp_path / "tiny.safetensors", b"\x05\x00\x00")
    with pytest.raises(CorruptCheckpointError, match="too short"):
        read_safetensors_header(path)


def test_header_with_padding_and_zero_sized_tensor_is_fine(tmp_path: Path) -> None:
    header = {
        "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
        "a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
    }
    raw = json.dumps(header).encode() + b"    "
    path = write(tmp_path / "pad.safetensors", safetensors_bytes(None, bytes(4), raw_header=raw))
    _, tensors = read_safetensors_header(path)
    assert tensors["e"] == ("F32", (0, 3), (0, 0))
    raw_ckpt = read_checkpoint(path)
    assert raw_ckpt.obj["e"].shape == (0, 3) and raw_ckpt.obj["a"].dtype == torch.bfloat16


def test_missing_file_is_typed(tmp_path: Path) -> None:
    from weightport.errors import SourceNotFoundError

    with pytest.raises(SourceNotFoundError, match="no such safetensors file"):
        read_safetensors_header(tmp_path / "absent.safetensors")
