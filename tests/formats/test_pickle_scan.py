"""The static pickle scan: names every global, declared storages, and what broke the stream."""

from __future__ import annotations

import io
import os
import pickle

import torch

from weightport.formats.pickle_scan import UNRESOLVED_GLOBAL, scan_pickle

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
