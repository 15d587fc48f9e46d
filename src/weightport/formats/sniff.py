"""Tell a checkpoint's format from its bytes, and check that its extension agrees.

Each detector looks at the first bytes (and, for zip archives, the member names) and returns a
format name or ``None``; the first that answers wins. The extension is never trusted on its own: a
pickle renamed ``.safetensors`` must not reach the safetensors parser, nor a safetensors file the
unpickler.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from weightport.errors import CorruptCheckpointError, FormatMismatchError, SourceNotFoundError, UnsupportedFormatError

_PROBE_BYTES = 64
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_INDEX_SUFFIXES = (".index.json",)
_MAX_INDEX_PEEK = 16 << 20
_PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle"})
_PICKLE_OPENERS = frozenset(bytes([b]) for b in b"(cd}]lNIFSVX")

#: Extension → the formats its bytes may hold.
EXTENSION_FORMATS: dict[str, frozenset[str]] = {
    ".safetensors": frozenset({"safetensors"}),
    ".pt": frozenset({"torch", "torch-legacy", "torchscript"}),
    ".pth": frozenset({"torch", "torch-legacy", "torchscript"}),
    ".bin": frozenset({"torch", "torch-legacy", "torchscript"}),
    ".ckpt": frozenset({"torch", "torch-legacy"}),
    ".npz": frozenset({"npz"}),
}

Detector = Callable[[Path, bytes], "str | None"]


def _safetensors(path: Path, head: bytes) -> str | None:
    # u64 header length, then the JSON header, which always opens with '{'.
    return "safetensors" if len(head) > 8 and head[8:9] == b"{" else None


def _zip(path: Path, head: bytes) -> str | None:
    if head[:4] not in _ZIP_MAGICS:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    # zipfile signals damage as BadZipFile, NotImplementedError, OverflowError, ...
    except Exception:
        # A damaged archive: the extension is the only clue left; the reader reports the damage.
        return "npz" if path.suffix.lower() == ".npz" else "torch"
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "torch"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return None


def _pickle(path: Path, head: bytes) -> str | None:
    # PROTO opcode then a protocol number; torch.save's legacy format is a sequence of pickles.
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "torch-legacy"
    # Protocol 0/1 pickles have no PROTO opcode; believe a pickle extension if the first byte is an
    # opcode that can open a pickle, so the reader's opcode scan (not "unknown format") judges it.
    if path.suffix.lower() in _PICKLE_SUFFIXES and head[:1] in _PICKLE_OPENERS:
        return "torch-legacy"
    return None


def _index(path: Path, head: bytes) -> str | None:
    # The name decides which kind (HF convention: model.safetensors.index.json,
    # pytorch_model.bin.index.json); any other *.index.json goes by its shards' suffix.
    # Whether the JSON is valid is the index reader's job, so it can say what is wrong.
    if not path.name.endswith(_INDEX_SUFFIXES):
        return None
    if ".safetensors." in path.name:
        return "safetensors-index"
    if ".bin." in path.name or ".pt." in path.name or ".pth." in path.name:
        return "torch-index"
    try:
        if path.stat().st_size > _MAX_INDEX_PEEK:
            raise ValueError("too large to peek at")
        weight_map = json.loads(path.read_text(encoding="utf-8")).get("weight_map", {})
        shards = {str(f) for f in weight_map.values()}
    except (ValueError, AttributeError, TypeError, OSError, RecursionError):
        shards = set()
    return "safetensors-index" if shards and all(f.endswith(".safetensors") for f in shards) else "torch-index"


def _claimed_safetensors(path: Path, head: bytes) -> str | None:
    # Bytes no detector recognises, in a file named .safetensors: let the header parser say exactly
    # what is wrong (a damaged header) rather than "unknown format".
    return "safetensors" if path.suffix.lower() == ".safetensors" and len(head) >= 8 else None


#: Detectors, in the order they are tried. Append to support another format.
DETECTORS: list[Detector] = [_safetensors, _zip, _pickle, _index, _claimed_safetensors]


def sniff_format(path: Path | str) -> str:
    """Name the format of the checkpoint at ``path`` from its bytes.

    Args:
        path: A checkpoint file or a directory.

    Returns:
        ``directory``, ``safetensors``, ``safetensors-index``, ``torch-index``, ``torch`` (zip
        archive from ``torch.save``), ``torch-legacy`` (pre-1.6 ``torch.save`` or another pickle),
        ``torchscript`` or ``npz``.

    Raises:
        SourceNotFoundError: Nothing exists at ``path``.
        CorruptCheckpointError: The file is empty.
        UnsupportedFormatError: The bytes match no known format (a text file, an image, ...).
    """
    path = Path(path)
    if path.is_dir():
        return "directory"
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such checkpoint file", hint="check the path")
    with path.open("rb") as fh:
        head = fh.read(_PROBE_BYTES)
    if not head:
        raise CorruptCheckpointError(
            f"{path}: the file is empty (size 0 bytes); expected a checkpoint",
            hint="an interrupted download or copy leaves empty files; fetch it again",
        )
    for detect in DETECTORS:
        found = detect(path, head)
        if found is not None:
            return found
    raise UnsupportedFormatError(
        f"{path}: not a checkpoint format weightport reads (found {_describe(head)})",
        hint="weightport reads safetensors, torch.save files (.pt/.pth/.bin), Lightning .ckpt and .npz",
    )


def _describe(head: bytes) -> str:
    if head[:4] in _ZIP_MAGICS:
        return "a zip archive with neither data.pkl nor only .npy members"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data starting {head[:8]!r}"
    return f"text starting {text[:24]!r}" if text.isprintable() or text.strip() else f"bytes {head[:8]!r}"


def check_extension(path: Path, fmt: str) -> None:
    """Refuse a file whose extension names another format than its bytes.

    Raises:
        FormatMismatchError: e.g. a pickle named ``.safetensors``, or a safetensors file named ``.pth``.
    """
    expected = EXTENSION_FORMATS.get(path.suffix.lower())
    if expected is None or fmt in expected:
        return
    raise FormatMismatchError(
        f"{path}: the extension {path.suffix!r} says {'/'.join(sorted(expected))} but the bytes are {fmt}",
        hint=f"rename the file to match its content (a {fmt} file), or get the file the name promises",
    )
