"""The files weightport writes are plain safetensors whose tensor data starts on 64-byte boundaries."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

import weightport
from weightport.errors import UnsupportedFormatError
from weightport.formats.safetensors_writer import ALIGNMENT, aligned_order, write_safetensors


def layout(path: Path) -> tuple[int, dict[str, tuple[int, int]]]:
    """The data section's file offset and each tensor's ``(begin, end)`` within it."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    return 8 + n, {k: tuple(v["data_offsets"]) for k, v in header.items()}


def assert_aligned(path: Path) -> None:
    start, offsets = layout(path)
    assert start % ALIGNMENT == 0
    for key, (begin, end) in offsets.items():
        if (end - begin) % ALIGNMENT == 0:  # every tensor that can start aligned, does
            assert begin % ALIGNMENT == 0, key


def test_a_network_round_trips_and_its_mapped_tensors_are_64_byte_aligned(tmp_path: Path) -> None:
    state = torchvision.models.mobilenet_v3_small().state_dict()
    path = write_safetensors(state, tmp_path / "m.safetensors", {"origin": "test"})

    assert_aligned(path)
    with safe_open(str(path), framework="pt") as reader:  # the reference reader, memory-mapped
        assert reader.metadata() == {"origin": "test"}
        mapped = {k: reader.get_tensor(k) for k in reader.keys()}
    assert set(mapped) == set(state) and all(torch.equal(mapped[k], state[k]) for k in state)
    misaligned = sum(t.nbytes for t in mapped.values() if t.data_ptr() % ALIGNMENT)
    assert misaligned / sum(t.nbytes for t in mapped.values()) < 0.01
    again = weightport.read_state_dict(path)
    assert all(torch.equal(again[k], state[k]) for k in state)


def test_every_tensor_still_starts_at_a_multiple_of_its_element_size(tmp_path: Path) -> None:
    tensors = {
        "f64": torch.arange(3, dtype=torch.float64), "f32": torch.arange(7, dtype=torch.float32),
        "bf16": torch.arange(5, dtype=torch.bfloat16), "i8": torch.arange(3, dtype=torch.int8),
        "flag": torch.tensor([True, False]), "step": torch.tensor(12), "empty": torch.empty(0, 4),
        "big": torch.randn(64, 16), "strided": torch.randn(8, 8).t(),
    }
    path = write_safetensors(tensors, tmp_path / "odd.safetensors")

    _, offsets = layout(path)
    for key, (begin, _) in offsets.items():
        assert begin % tensors[key].element_size() == 0, key
    back = load_file(str(path))
    for key, tensor in tensors.items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor), key


def test_tensors_sharing_memory_are_written_as_copies(tmp_path: Path) -> None:
    base = torch.randn(4, 4)
    path = write_safetensors({"a": base, "b": base, "half": base[:2]}, tmp_path / "tied.safetensors")
    back = load_file(str(path))
    assert torch.equal(back["a"], base) and torch.equal(back["b"], base) and torch.equal(back["half"], base[:2])


def test_sizes_that_leave_the_offset_misaligned_are_paired_to_restore_it() -> None:
    sizes = {"a": 96, "d": 96, "c": 32, "w": 64}
    order = aligned_order([(name, size, 4) for name, size in sizes.items()])
    offsets, at = {}, 0
    for name in order:
        offsets[name] = at
        at += sizes[name]
    # After one 96-byte tensor the 32-byte one restores alignment, so the second 96-byte one starts
    # on a boundary too (in the reference writer's order it would not).
    assert [offsets[n] % 64 for n in ("w", "a", "d")] == [0, 0, 0]


def test_a_dtype_safetensors_cannot_store_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="complex128"):
        write_safetensors({"z": torch.zeros(2, dtype=torch.complex128)}, tmp_path / "z.safetensors")
    assert list(tmp_path.iterdir()) == []


class Classifier(weightport.PretrainedMixin, nn.Module):
    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.net = torchvision.models.resnet18(num_classes=num_classes)


def test_save_pretrained_writes_aligned_data_and_the_fast_path_maps_it_aligned(tmp_path: Path) -> None:
    Classifier().save_pretrained(tmp_path / "saved")
    assert_aligned(tmp_path / "saved" / "model.safetensors")

    again = Classifier.from_pretrained(tmp_path / "saved")
    assert again.weightport_report.path == "assign"
    assert again.net.conv1.weight.data_ptr() % ALIGNMENT == 0
    assert again.net.layer4[1].conv2.weight.data_ptr() % ALIGNMENT == 0


class Tied(weightport.PretrainedMixin, nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 4, bias=False)
        self.decode = nn.Linear(4, 4, bias=False)
        self.decode.weight = self.embed.weight


def test_save_pretrained_of_a_tied_weight_loads_back_with_the_tie(tmp_path: Path) -> None:
    model = Tied()
    model.save_pretrained(tmp_path / "tied")

    again = Tied.from_pretrained(tmp_path / "tied")
    assert torch.equal(again.embed.weight, model.embed.weight)
    assert again.decode.weight is again.embed.weight
