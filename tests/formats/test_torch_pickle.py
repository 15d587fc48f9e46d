"""torch.save files: read safely, refuse every malicious or broken variant (faults rows 1-5, 8, 9,
12-18) without running anything."""

from __future__ import annotations

import io
import pickle
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from weightport.errors import (
    CorruptCheckpointError,
    PickledModelError,
    ResourceLimitError,
    UnsafeCheckpointError,
    UnsupportedFormatError,
    UnsupportedTensorError,
    WeightportError,
)
from weightport.formats import ReadOptions, read_checkpoint

from .helpers import (
    FakeQuantizedTensor,
    FakeStorage,
    FakeTensor,
    exec_payload,
    small_state_dict,
    spawn_payload,
    torch_zip,
    touch_payload,
    write,
)


@pytest.mark.parametrize("legacy", [False, True])
def test_reads_state_dict(tmp_path: Path, legacy: bool) -> None:
    sd = small_state_dict()
    path = tmp_path / "m.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    raw = read_checkpoint(path)
    assert raw.format == ("torch-legacy" if legacy else "torch")
    assert list(raw.obj) == list(sd) and all(torch.equal(raw.obj[k], sd[k]) for k in sd)
    assert raw.files == [path] and raw.path == path


def test_zip_tensors_are_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.save({"w": torch.ones(1000)}, path)
    raw = read_checkpoint(path)
    # mmap=True leaves the storage backed by the file: writing to it must not change the file.
    assert raw.obj["w"].untyped_storage().nbytes() == 4000
    mapped = read_checkpoint(path, ReadOptions(mmap=False))
    assert torch.equal(mapped.obj["w"], raw.obj["w"])


def test_training_container_is_returned_whole(tmp_path: Path) -> None:
    path = tmp_path / "train.pth"
    torch.save({"model": small_state_dict(), "optimizer": {"state": {}}, "epoch": 7}, path)
    raw = read_checkpoint(path)
    assert set(raw.obj) == {"model", "optimizer", "epoch"} and raw.format == "torch"


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (touch_payload, "posix.system"),
        (exec_payload, "builtins.exec"),
        (spawn_payload, "multiprocessing.util.spawnv_passfds"),
    ],
    ids=["os.system", "exec", "spawnv_passfds"],
)
def test_malicious_pickles_are_refused_without_running(
    tmp_path: Path, marker: Path, legacy: bool, payload, name: str
) -> None:  # rows 1, 2, 4
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "x": payload(marker)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(path)
    assert name in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()


def test_raw_pickle_with_exec(tmp_path: Path, marker: Path) -> None:  # row 3
    path = write(tmp_path / "raw.pt", pickle.dumps(exec_payload(marker), protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="builtins.exec"):
        read_checkpoint(path)


def test_plain_pickle_without_globals_is_unsupported(tmp_path: Path) -> None:
    path = write(tmp_path / "raw.pt", pickle.dumps({"a": [1, 2]}, protocol=2))
    with pytest.raises(UnsupportedFormatError, match="torch.save did not write"):
        read_checkpoint(path)


def test_protocol_0_pickle_is_scanned(tmp_path: Path, marker: Path) -> None:
    path = write(tmp_path / "old.pt", pickle.dumps(touch_payload(marker), protocol=0))
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        read_checkpoint(path)


def test_payload_followed_by_garbage(tmp_path: Path, marker: Path) -> None:  # row 5
    data = pickle.dumps(touch_payload(marker), protocol=2)[:-1] + b"\xff\xfe garbage"
    path = write(tmp_path / "broken.pth", data)
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        read_checkpoint(path)


def test_whole_pickled_module(tmp_path: Path) -> None:  # row 8
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(PickledModelError) as info:
        read_checkpoint(path)
    assert isinstance(info.value, UnsafeCheckpointError) and isinstance(info.value, UnsupportedFormatError)
    assert "torch.nn.modules.linear.Linear" in str(info.value) and "state dict" in str(info.value)


def test_module_inside_a_container(tmp_path: Path) -> None:  # row 8
    path = tmp_path / "train.pt"
    torch.save({"config": {"net": torch.nn.Linear(2, 2)}, "state_dict": small_state_dict()}, path)
    with pytest.raises(PickledModelError, match="config.net"):
        read_checkpoint(path)


def test_torchscript_archive(tmp_path: Path) -> None:  # row 8
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(PickledModelError, match="TorchScript"):
        read_checkpoint(path)


def test_force_no_weights_only_env_is_ignored(tmp_path: Path, marker: Path, monkeypatch) -> None:  # row 9
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path = tmp_path / "evil.pt"
    torch.save({"x": touch_payload(marker)}, path)
    with pytest.raises(UnsafeCheckpointError):
        read_checkpoint(path)
    # Even a file our scan passes is loaded with weights_only=True explicitly.
    good = tmp_path / "good.pt"
    torch.save(small_state_dict(), good)
    assert set(read_checkpoint(good).obj) == {"fc.weight", "fc.bias"}


def test_exactly_one_safe_load_even_when_it_fails(tmp_path: Path, monkeypatch) -> None:  # row 12
    calls: list[dict] = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    path = tmp_path / "m.pt"
    torch.save(small_state_dict(), path)
    # Passes the static scan, then fails inside torch.load (a view beyond its storage).
    bad = torch_zip(tmp_path / "bad.pt", {"w": FakeTensor(FakeStorage("0", 1), 0, (4,), (1000,))}, {"0": bytes(4)})
    with pytest.raises(WeightportError):
        read_checkpoint(bad)
    read_checkpoint(path)
    assert len(calls) == 2
    assert all(c["weights_only"] is True and c["map_location"] == "cpu" for c in calls)


def test_pickle_protocol_4_is_unsupported(tmp_path: Path) -> None:  # row 13
    path = tmp_path / "p4.pt"
    torch.save(small_state_dict(), path, pickle_protocol=4)
    with pytest.raises(UnsupportedFormatError, match="protocol 4"):
        read_checkpoint(path)


def test_unknown_opcode_is_unsupported(tmp_path: Path) -> None:  # row 13
    path = write(tmp_path / "op.pt", b"\x80\x02\xf0\xf1.")
    with pytest.raises(UnsupportedFormatError, match="unknown pickle opcode 0xf0"):
        read_checkpoint(path)


def test_storage_shorter_than_declared(tmp_path: Path) -> None:  # row 14
    path = torch_zip(tmp_path / "short.pt", {"w": FakeTensor(FakeStorage("0", 12), 0, (12,), (1,))}, {"0": bytes(8)})
    with pytest.raises(CorruptCheckpointError, match="storage shorter than declared"):
        read_checkpoint(path)


def test_legacy_storage_shorter_than_declared(tmp_path: Path) -> None:  # row 14, legacy
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(4)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    write(path, data[:-8])
    with pytest.raises(CorruptCheckpointError, match="storage shorter than declared"):
        read_checkpoint(path)


def test_view_beyond_its_storage(tmp_path: Path) -> None:  # row 15 (out-of-bounds geometry)
    path = torch_zip(tmp_path / "oob.pt", {"w": FakeTensor(FakeStorage("0", 1), 0, (4,), (1000,))}, {"0": bytes(4)})
    with pytest.raises(CorruptCheckpointError, match="torch could not read"):
        read_checkpoint(path)


def test_quantized_tensors_are_refused_before_torch_builds_them(tmp_path: Path) -> None:  # row 15
    storage = FakeStorage("0", 4, torch.QInt8Storage)
    for name, stride in (("q.pt", (2, 1)), ("qbad.pt", (1000,))):  # a plain one, and the out-of-bounds one
        shape = (2, 2) if len(stride) == 2 else (4,)
        path = torch_zip(tmp_path / name, {"q": FakeQuantizedTensor(storage, 0, shape, stride)}, {"0": bytes(4)})
        with pytest.raises(UnsupportedTensorError, match="quantized") as info:
            read_checkpoint(path)
        assert str(path) in str(info.value) and "dequantize" in info.value.hint


def test_stride_zero_giant_tensor(tmp_path: Path) -> None:  # row 16
    path = tmp_path / "bomb.pt"
    torch.save({"w": torch.ones(1).expand(2**34)}, path)
    assert path.stat().st_size < 4096
    with pytest.raises(ResourceLimitError) as info:
        read_checkpoint(path)
    assert "'w'" in str(info.value) and "68719476736" in str(info.value) and "stride-0" in str(info.value)


def test_tensor_over_budget(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.save({"w": torch.ones(1000)}, path)
    with pytest.raises(ResourceLimitError, match="max_tensor_bytes"):
        read_checkpoint(path, ReadOptions(max_tensor_bytes=100))


@pytest.mark.parametrize("cut", ["half", "minus10", "first100"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_truncated_files(tmp_path: Path, cut: str, legacy: bool) -> None:  # row 17
    path = tmp_path / "m.pth"
    torch.save({"w": torch.randn(64, 64)}, path, _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    data = {"half": data[: len(data) // 2], "minus10": data[:-10], "first100": data[:100]}[cut]
    write(path, data)
    with pytest.raises(CorruptCheckpointError) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)


def test_empty_file(tmp_path: Path) -> None:  # row 18
    path = write(tmp_path / "empty.pth", b"")
    with pytest.raises(CorruptCheckpointError) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value) and "size 0" in str(info.value)


def test_bit_flip_in_pickle_is_caught_by_zip_crc(tmp_path: Path) -> None:  # row 19 (the part a reader sees)
    path = tmp_path / "m.pt"
    torch.save(small_state_dict(), path)
    data = bytearray(path.read_bytes())
    start = data.index(b"data.pkl") + len(b"data.pkl") + 80  # inside the stored data.pkl bytes
    data[start] ^= 0x01
    write(path, bytes(data))
    with pytest.raises(WeightportError):
        read_checkpoint(path)


def test_zip_without_data_pkl(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedFormatError):
        read_checkpoint(path)


def test_crafted_zip_checkpoint_loads(tmp_path: Path) -> None:
    # Sanity check of the crafting helper used above: honest geometry reads back.
    import struct

    data = struct.pack("<4f", 1, 2, 3, 4)
    path = torch_zip(tmp_path / "ok.pt", OrderedDict(w=FakeTensor(FakeStorage("0", 4), 0, (2, 2), (2, 1))), {"0": data})
    assert torch.equal(read_checkpoint(path).obj["w"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_errors_keep_upstream_cause(tmp_path: Path) -> None:
    path = write(tmp_path / "trunc.pt", io.BytesIO(b"PK\x03\x04" + bytes(50)).getvalue())
    with pytest.raises(CorruptCheckpointError) as info:
        read_checkpoint(path)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("payload", [touch_payload, exec_payload, spawn_payload], ids=["os.system", "exec", "spawn"])
def test_control_the_payloads_are_live(tmp_path: Path, payload) -> None:
    # Control for the refusal tests: an unsafe load of the same file does run the payload, so a
    # missing marker there means weightport blocked it, not that the payload was inert.
    marker = tmp_path / "control"
    path = tmp_path / "evil.pth"
    torch.save({"x": payload(marker)}, path)
    torch.load(path, weights_only=False)
    deadline = time.monotonic() + 60  # spawnv_passfds returns before the child has run
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
