"""The static pickle scan: names every global, declared storages, and what broke the stream."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import random
import zipfile
from collections import OrderedDict

import pytest
import torch

from weightport.formats.pickle_scan import UNRESOLVED_GLOBAL, _scan_torch_opcodes, scan_pickle

from .helpers import Payload


def test_globals_of_every_protocol() -> None:
    payload = Payload(os.system, "true")
    for protocol in range(6):
        scan = scan_pickle(pickle.dumps({"x": payload}, protocol=protocol))
        assert scan.globals == ["posix.system"], protocol
        assert scan.problem is None


def test_python2_names_are_mapped_like_the_unpickler_does() -> None:
    scan = scan_pickle(b"\x80\x02c__builtin__\nset\nq\x00.")
    assert scan.globals == ["builtins.set"]


def test_stack_global_built_from_memo() -> None:
    # module and name pushed once, memoised, then fetched back for STACK_GLOBAL
    data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93."
    assert scan_pickle(data).globals == ["os.system"]


def test_stack_global_that_cannot_be_resolved() -> None:
    data = b"\x80\x04N)\x93."  # names that are not strings
    assert scan_pickle(data).globals == [UNRESOLVED_GLOBAL]


def test_storages_declared_by_torch_save() -> None:
    buf = io.BytesIO()
    torch.save(
        {"a": torch.ones(3), "b": torch.zeros(2, 2, dtype=torch.float16)}, buf, _use_new_zipfile_serialization=False
    )
    buf.seek(0)
    scans = [scan_pickle(buf) for _ in range(5)]
    decls = scans[3].storages
    assert [(d.type_name, d.numel) for d in decls] == [("torch.FloatStorage", 3), ("torch.HalfStorage", 4)]


def test_unknown_opcode() -> None:
    scan = scan_pickle(b"\x80\x02K\x01\xf0.")
    assert scan.problem == "unknown-opcode" and "0xf0" in scan.detail and "offset 4" in scan.detail


def test_truncated_stream() -> None:
    data = pickle.dumps({"a": "x" * 100}, protocol=2)
    scan = scan_pickle(data[:50])
    assert scan.problem == "truncated"


def test_sequence_position_after_stop() -> None:
    stream = io.BytesIO(pickle.dumps(1, protocol=2) + pickle.dumps("two", protocol=2))
    assert scan_pickle(stream).first_value == 1
    assert scan_pickle(stream).first_value == "two"
    assert stream.tell() == len(stream.getvalue())


def test_protocol_and_opcodes_reported() -> None:
    scan = scan_pickle(pickle.dumps([1, 2], protocol=4))
    assert scan.protocol == 4 and "FRAME" in scan.unsupported_opcodes


def _data_pkl(obj: object) -> bytes:
    """The ``data.pkl`` that ``torch.save`` writes for ``obj``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(buf) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))


def _torch_pickles() -> list[bytes]:
    base = torch.arange(12, dtype=torch.float32)
    return [
        _data_pkl({"w": torch.ones(3, 4), "b": torch.zeros(4, dtype=torch.float16)}),
        _data_pkl(
            OrderedDict(
                [
                    ("layer.0.weight", torch.randn(8, 3, 3, 3)),
                    ("layer.0.num_batches_tracked", torch.tensor(7)),
                    ("bn.mask", torch.ones(5, dtype=torch.bool)),
                    ("é.ünicode", torch.empty(0, 2, dtype=torch.bfloat16)),
                    ("view.a", base[2:6]),
                    ("view.b", base.view(3, 4).t()),
                    ("ids", torch.arange(300, dtype=torch.int64)),
                ]
            )
        ),
        _data_pkl(
            {
                "state_dict": {f"blocks.{i}.weight": torch.full((2,), float(i)) for i in range(300)},
                "epoch": 2**40,
                "global_step": -5,
                "lr": 0.125,
                "hyper_parameters": {"name": "resnet", "flags": [True, False, None], "sizes": (1, 2, 3)},
                "big": -(2**70),
                "bytes_like": "x" * 300,
                "nested": {"a": {"b": {"c": [1, 2, [3, (4,)]]}}},
            }
        ),
    ]


def test_one_loop_scan_answers_for_what_torch_save_writes() -> None:
    for data in _torch_pickles():
        quick = _scan_torch_opcodes(data, None)
        assert quick is not None
        assert quick == scan_pickle(io.BytesIO(data))  # a stream always takes the general walk
        assert quick.problem is None and quick.storages and quick.end == len(data)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # an altered GLOBAL name with a stray backslash
def test_one_loop_scan_agrees_with_the_general_walk_on_damaged_pickles() -> None:
    """Every truncation and thousands of altered copies: both walks find the same, or the quick
    one defers (returns None) and the general walk answers alone."""
    rng = random.Random(20261208)
    opcodes = sorted({ord(op.code) for op in pickletools.opcodes})
    answered = 0
    for data in _torch_pickles()[:2]:
        candidates = [data[:cut] for cut in range(len(data))]
        for _ in range(1500):
            altered = bytearray(data)
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(altered))
                choice = rng.random()
                if choice < 0.4:
                    altered[at] = rng.randrange(256)
                elif choice < 0.7:
                    altered[at] = rng.choice(opcodes)
                elif choice < 0.85:
                    altered.insert(at, rng.choice(opcodes))
                else:
                    del altered[at]
            candidates.append(bytes(altered))
        for candidate in candidates:
            general = scan_pickle(io.BytesIO(candidate))
            quick = _scan_torch_opcodes(candidate, None)
            if quick is not None:
                answered += 1
                assert quick == general, candidate
            assert scan_pickle(candidate) == general, candidate
    assert answered > 100  # the quick walk does answer for altered pickles that stay well formed


def test_one_loop_scan_defers_above_the_byte_limit() -> None:
    data = _torch_pickles()[0]
    assert _scan_torch_opcodes(data, len(data) - 1) is None
    assert scan_pickle(data, max_bytes=len(data) - 1).problem == "too-large"
    assert scan_pickle(data, max_bytes=len(data)).problem is None


def test_the_one_loop_scan_names_a_payload_and_the_reader_refuses_it(tmp_path) -> None:
    from weightport.errors import UnsafeCheckpointError
    from weightport.formats import read_checkpoint

    obj = {"w": torch.ones(2), "x": Payload(os.system, "true")}
    quick = _scan_torch_opcodes(_data_pkl(obj), None)
    assert quick is not None and "posix.system" in quick.globals  # the one loop answers for this file
    path = tmp_path / "payload.pth"
    torch.save(obj, path)
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        read_checkpoint(path)
