"""The format comes from the bytes; the extension must agree (faults row 27)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from weightport.errors import CorruptCheckpointError, FormatMismatchError, SourceNotFoundError, UnsupportedFormatError
from weightport.formats import read_checkpoint, sniff_format

from .helpers import small_state_dict, write


def test_each_format_is_recognised(tmp_path: Path) -> None:
    sd = small_state_dict()
    save_file(sd, tmp_path / "a.safetensors")
    torch.save(sd, tmp_path / "b.pt")
    torch.save(sd, tmp_path / "c.pt", _use_new_zipfile_serialization=False)
    np.savez(tmp_path / "d.npz", w=np.ones(2))
    write(tmp_path / "e.safetensors.index.json", b'{"weight_map": {"w": "a.safetensors"}}')
    write(tmp_path / "pytorch_model.bin.index.json", b'{"weight_map": {"w": "b.pt"}}')
    assert sniff_format(tmp_path / "a.safetensors") == "safetensors"
    assert sniff_format(tmp_path / "b.pt") == "torch"
    assert sniff_format(tmp_path / "c.pt") == "torch-legacy"
    assert sniff_format(tmp_path / "d.npz") == "npz"
    assert sniff_format(tmp_path / "e.safetensors.index.json") == "safetensors-index"
    assert sniff_format(tmp_path / "pytorch_model.bin.index.json") == "torch-index"
    assert sniff_format(tmp_path) == "directory"


def test_sniff_ignores_the_extension(tmp_path: Path) -> None:
    save_file(small_state_dict(), tmp_path / "weights.data")
    assert sniff_format(tmp_path / "weights.data") == "safetensors"
    assert set(read_checkpoint(tmp_path / "weights.data").obj) == {"fc.weight", "fc.bias"}


def test_sniff_does_not_import_torch(tmp_path: Path) -> None:
    import subprocess

    save_file(small_state_dict(), tmp_path / "a.safetensors")
    code = (
        "import sys; from weightport.formats import sniff_format, read_safetensors_header; "
        f"print(sniff_format({str(tmp_path / 'a.safetensors')!r}), "
        f"len(read_safetensors_header({str(tmp_path / 'a.safetensors')!r})[1]), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=None)
    assert out.stdout.split() == ["safetensors", "2", "False"]


def test_pickle_named_safetensors(tmp_path: Path) -> None:  # row 27
    path = tmp_path / "model.safetensors"
    torch.save(small_state_dict(), path, _use_new_zipfile_serialization=False)
    with pytest.raises(FormatMismatchError) as info:
        read_checkpoint(path)
    assert ".safetensors" in str(info.value) and "torch-legacy" in str(info.value)


def test_torch_zip_named_safetensors(tmp_path: Path) -> None:  # row 27
    path = tmp_path / "model.safetensors"
    torch.save(small_state_dict(), path)
    with pytest.raises(FormatMismatchError, match="bytes are torch"):
        read_checkpoint(path)


def test_safetensors_named_pth(tmp_path: Path) -> None:  # row 27
    path = tmp_path / "model.pth"
    save_file(small_state_dict(), path)
    with pytest.raises(FormatMismatchError) as info:
        read_checkpoint(path)
    assert "'.pth'" in str(info.value) and "safetensors" in str(info.value)


def test_text_file(tmp_path: Path) -> None:
    path = write(tmp_path / "model.bin", b"<html>404 Not Found</html>\n")
    with pytest.raises(UnsupportedFormatError) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value) and "text" in str(info.value)


def test_git_lfs_pointer(tmp_path: Path) -> None:
    path = write(tmp_path / "weights", b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n")
    with pytest.raises(UnsupportedFormatError, match="not a checkpoint format"):
        read_checkpoint(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        read_checkpoint(tmp_path / "nope.pt")
    assert isinstance(info.value, FileNotFoundError) and "nope.pt" in str(info.value)


def test_empty_file_sniff(tmp_path: Path) -> None:
    with pytest.raises(CorruptCheckpointError, match="size 0"):
        sniff_format(write(tmp_path / "x.safetensors", b""))


def test_unknown_binary(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="binary"):
        sniff_format(write(tmp_path / "x", bytes(range(200, 256)) * 2))


@pytest.mark.parametrize("name", ["w.npz", "w.pt", "w.safetensors"])
def test_zip_needing_an_unknown_zip_version(tmp_path: Path, name: str) -> None:
    # Found by scripts/fuzz_formats.py: zipfile raises NotImplementedError for such archives.
    np.savez(tmp_path / "src.npz", a=np.ones(2))
    data = bytearray((tmp_path / "src.npz").read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6] = 109  # "version needed to extract" 10.9
    path = write(tmp_path / name, bytes(data))
    assert sniff_format(path) == ("npz" if name.endswith(".npz") else "torch")
    with pytest.raises((CorruptCheckpointError, FormatMismatchError)):
        read_checkpoint(path)
