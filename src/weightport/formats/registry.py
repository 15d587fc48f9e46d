"""Format name → reader. Each reader is ``(path, options) -> RawCheckpoint`` for the format its
name says; :func:`~weightport.formats.sniff.sniff_format` picks the name from the file's bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from weightport.errors import DuplicateRegistrationError, UnsupportedFormatError
from weightport.formats.base import RawCheckpoint, ReadOptions

Reader = Callable[[Path, ReadOptions], RawCheckpoint]

_READERS: dict[str, Reader] = {}


def register_reader(name: str, reader: Reader, *, override: bool = False) -> None:
    """Register ``reader`` for the format ``name``.

    Raises:
        DuplicateRegistrationError: ``name`` already has a reader and ``override`` is false.
    """
    if name in _READERS and not override:
        raise DuplicateRegistrationError(
            f"a reader for format {name!r} is already registered", hint="pass override=True to replace it"
        )
    _READERS[name] = reader


def get_reader(name: str) -> Reader:
    """The reader registered for ``name``.

    Raises:
        UnsupportedFormatError: No reader for ``name`` (the message lists the known formats).
    """
    try:
        return _READERS[name]
    except KeyError:
        raise UnsupportedFormatError(
            f"no reader for format {name!r}; known formats: {', '.join(sorted(_READERS))}"
        ) from None


def reader_names() -> list[str]:
    """Names of every registered format."""
    return sorted(_READERS)
