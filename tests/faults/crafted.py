"""Hand-written pickles and zip archives for the trust fault cases: each says what it attacks."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from typing import Any

import torch

P2 = b"\x80\x02"


def s(text: str) -> bytes:
    """A BINUNICODE string."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(n: int) -> bytes:
    """An integer (LONG1 for anything)."""
    raw = n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def call(module: str, name: str, *args: bytes) -> bytes:
    """GLOBAL module.name, MARK args TUPLE, REDUCE."""
    return g(module, name) + b"(" + b"".join(args) + b"tR"


def checkpoint(value: bytes, state: bytes = b"}") -> bytes:
    """A raw protocol-2 pickle of ``{"state_dict": <state>, "extra": <value>}``."""
    return P2 + b"}(" + s("state_dict") + state + s("extra") + value + b"u."


def memo_bomb(levels: int) -> bytes:
    """``d0 = {}; d_k = {"a": d_{k-1}, "b": d_{k-1}}`` — 2**levels paths from ~20 bytes a level."""
    out = P2 + (b"}(" + s("a")) * levels + b"}q\x00"
    for k in range(1, levels + 1):
        out += s("b") + b"h" + bytes([k - 1]) + b"uq" + bytes([k])
    return out + b"."


def nested(depth: int, opener: bytes = b"}", key: bytes | None = None) -> bytes:
    """``depth`` dicts (or lists) nested in each other, as a raw pickle."""
    if opener == b"}":
        body = b"".join(b"}" + s("k") for _ in range(depth)) + b"}" + b"s" * depth
    else:
        body = b"".join(b"]" for _ in range(depth + 1)) + b"a" * depth
    return P2 + body + b"."


def self_list() -> bytes:
    """A list that contains itself."""
    return P2 + b"]q\x00h\x00a."


def self_dict() -> bytes:
    return P2 + b"}q\x00" + s("me") + b"h\x00s."


def torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def with_pickle(obj: Any, data_pkl: bytes) -> bytes:
    """A torch.save archive of ``obj`` whose data.pkl is replaced by ``data_pkl``."""
    src = zipfile.ZipFile(io.BytesIO(torch_bytes(obj)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in src.infolist():
            archive.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl") else src.read(info))
    return out.getvalue()


def rezip(data: bytes, *, method: int | None = None, which: str = "/data/", duplicate: bool = False) -> bytes:
    """Re-write a torch archive, compressing (or duplicating with other bytes) the members named ``which``."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in src.infolist():
            body = src.read(info)
            kind = method if (method is not None and which in info.filename) else zipfile.ZIP_STORED
            archive.writestr(info.filename, body, compress_type=kind)
            if duplicate and which in info.filename:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    archive.writestr(info.filename, bytes(len(body)))
    return out.getvalue()


_CENTRAL = struct.Struct("<4s6H3L5H2L")


def patch_central(data: bytes, which: str, **fields: int) -> bytes:
    """Change fields of the central-directory record of the member whose name ends with ``which``.

    Fields: ``flags``, ``method``, ``csize``, ``usize``, ``offset``; ``local_flags`` patches the
    member's local header too (an encrypted flag must be in both).
    """
    buf = bytearray(data)
    at = 0
    while (at := buf.find(b"PK\x01\x02", at)) != -1:
        rec = list(_CENTRAL.unpack_from(buf, at))
        n, m, k = rec[10], rec[11], rec[12]
        name = bytes(buf[at + _CENTRAL.size : at + _CENTRAL.size + n]).decode()
        if name.endswith(which):
            for key, index in (("flags", 3), ("method", 4), ("csize", 8), ("usize", 9), ("offset", 16)):
                if key in fields:
                    rec[index] = fields[key]
            _CENTRAL.pack_into(buf, at, *rec)
            if "flags" in fields:
                struct.pack_into("<H", buf, rec[16] + 6, fields["flags"])
            if "local_name" in fields:
                buf[rec[16] + 30] ^= 0x20  # a different first letter of the local name
            return bytes(buf)
        at += _CENTRAL.size + n + m + k
    raise KeyError(which)


def member_offset(data: bytes, which: str) -> int:
    return next(i.header_offset for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if i.filename.endswith(which))


def raw_pickle(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=2)
