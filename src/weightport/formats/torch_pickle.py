"""Read ``torch.save`` files (zip archives and the legacy pickle sequence) without running their code.

Order of work, so that a bad file is refused before anything is built from it:

1. Open the container with the standard library (zip central directory, or the legacy pickle
   sequence) and statically scan its pickle(s) (:mod:`weightport.formats.pickle_scan`).
2. Refuse unsafe globals, unsupported opcodes, truncation, and storages that declare more bytes
   than the file holds.
3. ``torch.load(..., weights_only=True, mmap=<zip only>, map_location="cpu")`` exactly once, with
   the allowlist and inert placeholders from :mod:`weightport.formats.safety` scoped to that call.
4. Check where placeholders ended up (never in a state dict, never a whole pickled model) and
   refuse expanded tensors (:mod:`weightport.formats.limits`).
"""

from __future__ import annotations

import io
import itertools
import logging
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from weightport.errors import (
    CorruptCheckpointError,
    PickledModelError,
    ResourceLimitError,
    UnsafeCheckpointError,
    UnsupportedFormatError,
    UnsupportedTensorError,
    WeightportError,
)
from weightport.formats import lightning, safety
from weightport.formats.base import RawCheckpoint, ReadOptions, limit_hint
from weightport.formats.limits import check_tensors
from weightport.formats.pickle_scan import PickleScan, StorageDecl, scan_pickle
from weightport.formats.walk import Structure, check_structure, walk
from weightport.text import listing

logger = logging.getLogger("weightport")

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_REDOWNLOAD = "the file is damaged or incomplete; download or copy it again"
_CONVERT = "load it once in a sandbox and save model.state_dict() (better: as safetensors)"


@dataclass
class _Vetted:
    """What the static checks decided: the globals to scope into the load, and the placeholders."""

    extras: list[tuple[Any, str]]
    stubbed: list[str]
    allowed: list[str]


def read_torch_zip(path: Path, options: ReadOptions) -> RawCheckpoint:
    """Read a zip-format ``torch.save`` file (``.pt``/``.pth``/``.bin``/``.ckpt``)."""
    data_pkl, records = _open_zip(path, options)
    scan = scan_pickle(data_pkl, max_bytes=options.max_header_bytes)
    vetted = _vet(path, scan, options)
    _check_zip_storages(path, scan.storages, records)
    obj = _torch_load(path, vetted, mmap=options.mmap)
    return _finish(path, obj, "torch", vetted, options)


def read_torch_legacy(path: Path, options: ReadOptions) -> RawCheckpoint:
    """Read a legacy (pre-zip) ``torch.save`` file; refuse other pickles."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        stream = _Bounded(fh, size)
        magic = scan_pickle(stream, max_bytes=options.max_header_bytes)
        if magic.first_value != LEGACY_MAGIC or magic.problem is not None:
            _vet(path, magic, options)  # a stray pickle naming unsafe globals is reported as unsafe first
            raise UnsupportedFormatError(
                f"{path}: a pickle that torch.save did not write (no torch magic number); expected a "
                "torch.save checkpoint",
                hint="weightport reads only torch.save files, safetensors, .ckpt and .npz; plain pickles can run code",
            )
        scans = [magic] + [scan_pickle(stream, max_bytes=options.max_header_bytes) for _ in range(4)]
        data_left = size - stream.tell()
    merged = _merge(scans)
    vetted = _vet(path, merged, options)
    _check_legacy_storages(path, merged.storages, data_left)
    # mmap needs the zip layout; the legacy format is read into memory.
    obj = _torch_load(path, vetted, mmap=False)
    return _finish(path, obj, "torch-legacy", vetted, options)


def read_torchscript(path: Path, options: ReadOptions) -> RawCheckpoint:
    """Refuse a TorchScript archive: it is a program, not a set of weights."""
    raise PickledModelError(
        f"{path}: a TorchScript archive (code/ and constants.pkl), not a state dict; expected tensors",
        hint="export the weights with torch.jit.load(...).state_dict() and safetensors, in a trusted environment",
    )


class _Bounded(io.RawIOBase):
    """A read-only view of a file that never asks the OS for more than what is left.

    ``pickletools`` readers call ``read(n)`` with the length a pickle declares; on a plain file a
    forged 2**62 length would make Python try to allocate it.
    """

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self.fh, self.size = fh, size

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        left = max(self.size - self.fh.tell(), 0)
        return self.fh.read(left if n is None or n < 0 else min(n, left))

    def readline(self, limit: int | None = -1) -> bytes:
        left = max(self.size - self.fh.tell(), 0)
        return self.fh.readline(left if limit is None or limit < 0 else min(limit, left))

    def tell(self) -> int:
        return self.fh.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)


def _open_zip(path: Path, options: ReadOptions) -> tuple[bytes, dict[str, int]]:
    """Return ``data.pkl``'s bytes and ``{storage key: record bytes}``, after checking every member
    the way torch will map it (:func:`_check_members`)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            pkl = [i for i in infos if i.filename == "data.pkl" or _top_level(i.filename, "data.pkl")]
            if len(pkl) != 1:
                raise UnsupportedFormatError(
                    f"{path}: a zip archive without a single top-level data.pkl (found {len(pkl)}); "
                    "expected a torch.save archive",
                    hint="the file may be another kind of zip; weightport reads torch.save, safetensors, .ckpt, .npz",
                )
            _check_members(path, archive, infos)
            if pkl[0].file_size > options.max_header_bytes:
                raise ResourceLimitError(
                    f"{path}: data.pkl is {pkl[0].file_size} bytes, above the {options.max_header_bytes}-byte limit",
                    hint=limit_hint("max_header_bytes"),
                )
            prefix = pkl[0].filename[: -len("data.pkl")] + "data/"
            records = {i.filename[len(prefix) :]: i.file_size for i in infos if i.filename.startswith(prefix)}
            return archive.read(pkl[0]), records
    except WeightportError:
        raise
    # zipfile signals damage as BadZipFile, NotImplementedError, OverflowError, ...
    except Exception as exc:
        raise CorruptCheckpointError(
            f"{path}: damaged zip archive ({type(exc).__name__}: {exc}); the file looks truncated or altered",
            hint=_REDOWNLOAD,
        ) from exc


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature, version, flags, method, time, date, crc, sizes, n, m


def _check_members(path: Path, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a member torch would read differently from what its bytes are.

    torch maps storage records straight from the file (``mmap=True``: the bytes at the local
    header's data offset). So every member must be stored (a deflated record would be read as
    compressed bytes), not encrypted, named once, its local header must agree with the central
    directory, and its bytes must lie inside the file without overlapping another member's.
    """
    names: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    fp = cast(IO[bytes], archive.fp)
    end = archive.start_dir
    for info in infos:
        name = info.filename
        problem = None
        error: type[WeightportError] = CorruptCheckpointError
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            error = UnsupportedFormatError
        if name in names:
            problem = "appears twice (readers disagree on which copy wins)"
        elif info.compress_type != zipfile.ZIP_STORED:
            problem = f"is compressed (method {info.compress_type}); torch.save stores members uncompressed"
        elif info.flag_bits & 0x1:
            problem = "is encrypted"
        elif info.compress_size != info.file_size:
            problem = f"declares {info.compress_size} stored bytes but {info.file_size} uncompressed"
        names.add(name)
        if problem is None:
            start, problem = _member_data_start(fp, info, end)
            if problem is None:
                spans.append((info.header_offset, start + info.compress_size, name))
        if problem is not None:
            raise error(f"{path}: zip member {name!r} {problem}; expected a torch.save archive", hint=_ZIP_HINT)
    spans.sort()
    for (_, first_end, first), (second_start, _, second) in itertools.pairwise(spans):
        if second_start < first_end:
            raise CorruptCheckpointError(
                f"{path}: zip members {first!r} and {second!r} overlap in the file; expected a torch.save archive",
                hint=_ZIP_HINT,
            )


_ZIP_HINT = "re-save it with torch.save (or as safetensors); the archive was altered or written by another tool"


def _member_data_start(fp: IO[bytes], info: zipfile.ZipInfo, end: int) -> tuple[int, str | None]:
    """Where a member's bytes start, read from its local header as torch reads it."""
    fp.seek(info.header_offset)
    raw = fp.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size or raw[:4] != b"PK\x03\x04":
        return 0, f"has no local header at offset {info.header_offset}"
    fields = _LOCAL_HEADER.unpack(raw)
    method, n, m = fields[3], fields[9], fields[10]
    local_name = fp.read(n)
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    if method != info.compress_type or local_name.decode(encoding, "replace") != info.filename:
        return 0, "has a local header that disagrees with the central directory"
    start = info.header_offset + _LOCAL_HEADER.size + n + m
    if start + info.compress_size > end:
        return 0, f"reaches past the end of the archive's data ({start + info.compress_size} > {end} bytes)"
    return start, None


def _top_level(name: str, member: str) -> bool:
    return name.count("/") == 1 and name.endswith("/" + member)


def _merge(scans: list[PickleScan]) -> PickleScan:
    merged = PickleScan()
    for scan in scans:
        merged.globals += [g for g in scan.globals if g not in merged.globals]
        merged.opcodes |= scan.opcodes
        merged.storages += scan.storages
        merged.protocol = merged.protocol or scan.protocol
        if merged.problem is None and scan.problem is not None:
            merged.problem, merged.detail = scan.problem, scan.detail
    return merged


def _vet(path: Path, scan: PickleScan, options: ReadOptions) -> _Vetted:
    """Decide every global before loading (:func:`safety.decide`); refuse unsafe ones, tensors that
    are not plain dense CPU tensors, broken or unsupported streams."""
    vetted = _Vetted([], [], [])
    refused: list[str] = []
    kinds: list[str] = []
    for name in scan.globals:
        decision = safety.decide(
            name, allow_globals=tuple(options.allow_globals), stub_unknown_classes=options.stub_unknown_classes
        )
        vetted.extras += decision.entries
        if decision.kind in ("allowlisted", "user"):
            vetted.allowed.append(name)
        elif decision.kind == "placeholder":
            vetted.stubbed.append(name)
        elif decision.kind == "refused":
            refused.append(name if decision.reason.startswith("a function") else f"{name} ({decision.reason})")
        elif decision.kind == "tensor-kind":
            kinds.append(f"{name} ({decision.reason})")
    if kinds:
        raise UnsupportedTensorError(
            f"{path}: the checkpoint holds tensors that are not plain dense CPU tensors: {listing(kinds)}; "
            "expected dense tensors",
            hint="convert them where they were made (t.to_dense(), t.dequantize(), t.cpu(), plain tensors "
            "without attributes) and save model.state_dict(), ideally as safetensors",
        )
    if refused:
        raise UnsafeCheckpointError(
            f"{path}: the pickle wants globals outside the safe allowlist: {listing(refused)}; "
            "weightport never imports or calls them (loading this file the usual way could run code)",
            hint=f"use a safetensors copy of these weights; to read it anyway, {_CONVERT}",
        )
    _refuse_broken(path, scan)
    return vetted


def _refuse_broken(path: Path, scan: PickleScan) -> None:
    if scan.problem == "unknown-opcode":
        raise UnsupportedFormatError(
            f"{path}: {scan.detail}; expected a pickle torch.save writes (protocol 2)",
            hint="the file is damaged or was written by an incompatible tool",
        )
    if scan.problem in ("truncated", "malformed"):
        raise CorruptCheckpointError(f"{path}: {scan.detail}; expected a complete pickle", hint=_REDOWNLOAD)
    if scan.problem == "too-large":
        raise ResourceLimitError(f"{path}: {scan.detail}", hint=limit_hint("max_header_bytes"))
    if scan.unsupported_opcodes:
        raise UnsupportedFormatError(
            f"{path}: pickle protocol {scan.protocol} opcodes {listing(scan.unsupported_opcodes)} that torch's "
            "safe unpickler does not implement; expected protocol 2 as torch.save writes",
            hint="re-save with torch.save(..., pickle_protocol=2) or as safetensors",
        )


def _itemsize(type_name: str) -> int:
    """Bytes per element of a legacy storage class name such as ``torch.FloatStorage``."""
    import torch

    by_name = {name: dtype for dtype, name in torch.storage._dtype_to_storage_type_map().items()}
    dtype = by_name.get(type_name.rsplit(".", 1)[-1])
    return dtype.itemsize if dtype is not None else 1


def _check_zip_storages(path: Path, storages: list[StorageDecl], records: dict[str, int]) -> None:
    for decl in storages:
        declared = decl.numel * _itemsize(decl.type_name)
        found = records.get(decl.key)
        if found is None or found < declared:
            what = "missing" if found is None else f"{found} bytes"
            raise CorruptCheckpointError(
                f"{path}: storage {decl.key!r} declares {decl.numel} elements ({declared} bytes) of "
                f"{decl.type_name}, but the archive holds {what}: storage shorter than declared",
                hint=_REDOWNLOAD,
            )


def _check_legacy_storages(path: Path, storages: list[StorageDecl], data_left: int) -> None:
    # Each storage is an 8-byte element count followed by its bytes; torch allocates the declared
    # size before reading, so a forged count must be refused here.
    declared = sum(8 + d.numel * _itemsize(d.type_name) for d in {d.key: d for d in storages}.values())
    if declared > data_left:
        raise CorruptCheckpointError(
            f"{path}: the pickle declares {declared} bytes of storage but only {data_left} bytes follow it: "
            "storage shorter than declared",
            hint=_REDOWNLOAD,
        )


def _torch_load(path: Path, vetted: _Vetted, *, mmap: bool) -> Any:
    import torch

    try:
        with safety.scoped_safe_globals(vetted.extras):
            # weights_only is passed explicitly so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn it off.
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"{path}: torch's weights_only unpickler refused the file ({exc})",
            hint=f"weightport never retries unsafely; {_CONVERT}",
        ) from exc
    except MemoryError as exc:
        raise ResourceLimitError(f"{path}: not enough memory to read the checkpoint", hint=_CONVERT) from exc
    except safety.RefusedInLoad as exc:  # a bounded stand-in (numpy dtype/scalar) refused its arguments
        raise UnsafeCheckpointError(f"{path}: {exc.message}", hint=exc.hint) from exc
    except WeightportError:
        raise
    # torch reports damage as RuntimeError, EOFError, ValueError, ...
    except Exception as exc:
        raise CorruptCheckpointError(
            f"{path}: torch could not read the checkpoint ({type(exc).__name__}: {exc})", hint=_REDOWNLOAD
        ) from exc


def _finish(path: Path, obj: Any, fmt: str, vetted: _Vetted, options: ReadOptions) -> RawCheckpoint:
    structure = check_structure(path, obj, options)  # first: every later walk is bounded after it
    if vetted.stubbed:  # placeholders exist only for the globals _vet stubbed, scoped to this load
        _check_placeholders(path, obj, structure)
    check_tensors(path, obj, options)
    metadata: dict[str, Any] = {}
    if vetted.stubbed:
        metadata["stubbed_globals"] = sorted(vetted.stubbed)
        logger.info("%s: kept %s as inert placeholders", path, ", ".join(sorted(vetted.stubbed)))
    if vetted.allowed:
        metadata["allowlisted_globals"] = sorted(vetted.allowed)
    found = lightning.describe(path, obj)
    if found is not None:
        fmt = "lightning"
        metadata.update(found)
    return RawCheckpoint(obj, fmt, path, [path], metadata)


def _check_placeholders(path: Path, obj: Any, structure: Structure) -> None:
    if isinstance(obj, safety.UnresolvedObject):
        raise PickledModelError(
            f"{path}: the file holds a whole pickled object of class {obj.qualname}, not a state dict",
            hint=_CONVERT,
        )
    for where, stub in safety.find_unresolved(obj):
        if id(stub) in structure.holding_tensors:
            raise PickledModelError(
                f"{path}: {where!r} is a pickled {stub.qualname} object holding tensors (a model object, "
                "not a state dict)",
                hint=_CONVERT,
            )
    bad = _placeholders_among_tensors(obj)
    if bad:
        raise UnsafeCheckpointError(
            f"{path}: state dict entries of unknown classes: {listing(bad)}; expected only tensors",
            hint=f"if the class is trusted pass ReadOptions(allow_globals=(...)); else {_CONVERT}",
        )


def _placeholders_among_tensors(obj: Any) -> list[str]:
    """Placeholders sitting in a mapping that also holds tensors, i.e. inside a state dict."""
    import torch

    found: list[str] = []
    for where, value in walk(obj):
        if isinstance(value, dict) and any(isinstance(v, torch.Tensor) for v in value.values()):
            found += [
                f"{f'{where}.{k}' if where else k} ({v.qualname})"
                for k, v in value.items()
                if isinstance(v, safety.UnresolvedObject)
            ]
    return found
