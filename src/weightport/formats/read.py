"""``read_checkpoint``: find the file, name its format from its bytes, hand it to that format's reader."""

from __future__ import annotations

import logging
from pathlib import Path

from weightport.errors import (
    CorruptCheckpointError,
    FormatMismatchError,
    ResourceLimitError,
    SourceNotFoundError,
    WeightportError,
)
from weightport.formats.base import RawCheckpoint, ReadOptions
from weightport.formats.directory import find_checkpoint
from weightport.formats.registry import get_reader
from weightport.formats.sniff import check_extension, sniff_format

logger = logging.getLogger("weightport")


def read_checkpoint(path: Path | str, options: ReadOptions | None = None) -> RawCheckpoint:
    """Read the checkpoint at ``path`` (a file, a shard index, or a directory holding one checkpoint).

    The format comes from the file's bytes; the extension must agree. Pickles are only ever read
    with torch's ``weights_only`` unpickler, after a static scan of the globals they name.

    Args:
        path: A checkpoint file, a ``*.index.json`` shard index, or a directory.
        options: Reading options (:class:`ReadOptions` defaults if omitted).

    Returns:
        What the file holds, its format name, the files read and its metadata.

    Raises:
        SourceNotFoundError: Nothing at ``path``, or a directory without a checkpoint.
        AmbiguousCheckpointError: A directory with several checkpoints.
        FormatMismatchError: The extension names another format than the bytes.
        UnsupportedFormatError: A format weightport does not read (text, TorchScript, plain pickle...).
        UnsafeCheckpointError: A pickle that wants globals outside the allowlist (the message lists them).
        CorruptCheckpointError: An empty, truncated or inconsistent file.
        ResourceLimitError: Sizes far beyond what the file stores or what ``options`` allow.
    """
    options = options or ReadOptions()
    path = Path(path)
    if path.is_dir():
        path = find_checkpoint(path)
    try:
        raw = read_single(path, options)
    except WeightportError:
        raise
    except FileNotFoundError as exc:
        raise SourceNotFoundError(
            f"{path}: the checkpoint disappeared while being read", hint="check the path"
        ) from exc
    except MemoryError as exc:
        raise ResourceLimitError(f"{path}: not enough memory to read the checkpoint") from exc
    except (OSError, PermissionError):
        raise  # the environment, not the file's content: keep the OS's own error
    # the last line of defence: nothing untyped escapes the reader
    except Exception as exc:
        raise CorruptCheckpointError(
            f"{path}: could not be read ({type(exc).__name__}: {exc})",
            hint="the file is damaged or in an unexpected layout; fetch it again",
        ) from exc
    logger.debug("read %s as %s (%d file(s))", path, raw.format, len(raw.files))
    return raw


def read_single(path: Path, options: ReadOptions, *, allowed: tuple[str, ...] | None = None) -> RawCheckpoint:
    """Sniff one file and read it with its format's reader.

    Args:
        path: The file.
        options: Reading options.
        allowed: If given, the formats acceptable here (a shard must be of its index's kind).
    """
    fmt = sniff_format(path)
    check_extension(path, fmt)
    if allowed is not None and fmt not in allowed:
        raise FormatMismatchError(
            f"{path}: expected {' or '.join(allowed)} here, but the bytes are {fmt}",
            hint="the shard index and its shards must be of the same format",
        )
    return get_reader(fmt)(path, options)
