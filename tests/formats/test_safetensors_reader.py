"""The safetensors reader: one copy-on-write mapping, each tensor a view with a storage of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from weightport.errors import CorruptCheckpointError, UnsupportedFormatError
from weightport.formats import ReadOptions
from weightport.formats.safetensors_header import TORCH_DTYPE_NAMES
from weightport.formats.safetensors_reader import load_safetensors


def _every_dtype() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(3, 5, generator=gen) * 4
    tensors = {}
    for code, name in TORCH_DTYPE_NAMES.items():
        dtype = getattr(torch, name)
        if dtype.is_complex:
            tensors[code] = torch.complex(values, -values).to(dtype)
        elif dtype == torch.bool:
            tensors[code] = values > 0
        elif dtype.is_floating_point:
            tensors[code] = values.to(dtype)
        else:
            tensors[code] = values.abs().to(torch.int64).to(dtype)
    tensors["odd_u8"] = torch.arange(3, dtype=torch.uint8)  # puts what follows it off its element alignment
    tensors["empty"] = torch.zeros(0, 4)
    return tensors


def test_every_dtype_reads_as_the_safetensors_library_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "all.safetensors"
    save_file(_every_dtype(), str(path))
    ours, _ = load_safetensors(path, ReadOptions())
    with safe_open(str(path), framework="pt") as reader:
        theirs = {key: reader.get_tensor(key) for key in reader.keys()}
    assert ours.keys() == theirs.keys()
    for key, tensor in theirs.items():
        assert ours[key].dtype == tensor.dtype and ours[key].shape == tensor.shape, key
        assert ours[key].view(torch.uint8).tolist() == tensor.view(torch.uint8).tolist(), key


def test_each_tensor_has_its_own_storage_starting_at_its_bytes_and_writes_stay_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"a": torch.arange(6.0), "b": torch.ones(2, 3), "c": torch.full((4,), 7.0)}, str(path))
    before = path.read_bytes()
    tensors, _ = load_safetensors(path, ReadOptions())
    for tensor in tensors.values():
        storage = tensor.untyped_storage()
        assert storage.data_ptr() == tensor.data_ptr() and storage.nbytes() == tensor.nbytes
    assert len({t.untyped_storage().data_ptr() for t in tensors.values()}) == 3
    tensors["a"].mul_(10)
    assert tensors["a"].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert path.read_bytes() == before
    kept = tensors["b"]
    del tensors
    assert kept.tolist() == [[1.0] * 3] * 2  # the mapping lives as long as any tensor of it


def test_a_file_that_grows_after_its_header_is_read_is_refused(tmp_path: Path, monkeypatch) -> None:
    import weightport.formats.safetensors_reader as reader

    path = tmp_path / "m.safetensors"
    save_file({"a": torch.arange(6.0)}, str(path))
    real = reader.read_safetensors_header

    def then_grow(*args, **kwargs):
        out = real(*args, **kwargs)
        with path.open("ab") as fh:
            fh.write(b"\0" * 64)
        return out

    monkeypatch.setattr(reader, "read_safetensors_header", then_grow)
    with pytest.raises(CorruptCheckpointError, match="changed while it was read"):
        load_safetensors(path, ReadOptions())


@pytest.mark.parametrize("code", ["F4", "F6_E2M3", "F6_E3M2"])
def test_a_dtype_torch_cannot_represent_is_refused_not_read_as_bytes(tmp_path: Path, code: str) -> None:
    import json

    header = json.dumps({"w": {"dtype": code, "shape": [4], "data_offsets": [0, 4 * int(code[1]) // 8]}}).encode()
    path = tmp_path / "sub_byte.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\x11" * (4 * int(code[1]) // 8))
    with pytest.raises(UnsupportedFormatError, match=f"dtype {code}, which torch cannot represent"):
        load_safetensors(path, ReadOptions())
