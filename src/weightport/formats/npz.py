"""Read a numpy ``.npz`` archive into torch tensors, never unpickling object arrays."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

from weightport.errors import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    UnsupportedFormatError,
    WeightportError,
)
from weightport.formats.base import RawCheckpoint, ReadOptions
from weightport.formats.limits import check_size

_HINT = "the archive is damaged or incomplete; export or download it again"


def read_npz(path: Path, options: ReadOptions) -> RawCheckpoint:
    """Read every array of an ``.npz`` (``allow_pickle=False``) as a torch tensor, in archive order."""
    import numpy as np
    import torch

    try:
        _check_headers(path, options)
        tensors: dict[str, Any] = {}
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                tensors[key] = torch.from_numpy(np.ascontiguousarray(archive[key]))
    except WeightportError:
        raise
    except TypeError as exc:
        raise UnsupportedFormatError(f"{path}: an array of a dtype torch cannot hold ({exc})") from exc
    # numpy and zipfile report damage in many exception types
    except Exception as exc:
        raise CorruptCheckpointError(
            f"{path}: numpy could not read the archive ({type(exc).__name__}: {exc})", hint=_HINT
        ) from exc
    return RawCheckpoint(tensors, "npz", path, [path])


def _check_headers(path: Path, options: ReadOptions) -> None:
    """Read each member's .npy header first: refuse object arrays and oversized arrays before loading."""
    import numpy as np

    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                reader = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = reader(member)
            if dtype.hasobject:
                raise UnsafeCheckpointError(
                    f"{path}: array {info.filename!r} holds Python objects (pickled); expected numeric arrays",
                    hint="save plain numeric arrays; weightport never unpickles .npz members",
                )
            nbytes = math.prod(shape) * dtype.itemsize
            check_size(path, info.filename, tuple(shape), nbytes, options)
            if nbytes > info.file_size:
                raise CorruptCheckpointError(
                    f"{path}: array {info.filename!r} declares {nbytes} bytes but the member holds {info.file_size}",
                    hint=_HINT,
                )
