"""Recognise a checkpoint's key layout as a known library architecture (torchvision, timm).

A checkpoint saved from ``torchvision.models.regnet_y_400mf()`` carries that model's exact key names
and shapes. :func:`recognise` looks its fingerprint up in a table generated from the libraries
(``scripts/known_architectures.py`` writes ``known_architectures.json``), so that a load which
had to pair the checkpoint's tensors by structure can be verified against the architecture the
checkpoint came from, without the user naming it. Several architectures may share one layout
(timm's ``efficientnet_b0`` and ``tf_efficientnet_b0`` differ only in padding and eps); all are
returned, and the verifier decides what to do with more than one.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightport.keys import is_training_state

if TYPE_CHECKING:
    from torch import nn

TABLE = Path(__file__).with_name("known_architectures.json")


@dataclass(frozen=True)
class KnownArchitecture:
    """An architecture of a library whose key layout a checkpoint has."""

    library: str  # "torchvision" or "timm"
    name: str

    @property
    def uri(self) -> str:
        return f"{self.library}:{self.name}"

    def builder(self) -> Callable[[], nn.Module]:
        """A function building it with random weights (nothing is downloaded)."""
        return architecture_builder(self.library, self.name)


def architecture_builder(library: str, name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    """A builder of ``library``'s architecture ``name`` (random weights) for ``"torchvision"`` or ``"timm"``."""
    if library == "torchvision":
        def build_tv() -> nn.Module:
            import torchvision

            return torchvision.models.get_model(name, weights=None, **kwargs)

        return build_tv

    def build_timm() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, **kwargs)

    return build_timm


def fingerprint(shapes: Mapping[str, Sequence[int]]) -> tuple[str, str]:
    """``(hash of the key names, hash of the names with their shapes)``; training state is left out."""
    keys = sorted(k for k in shapes if not is_training_state(k))
    names = hashlib.sha1("\n".join(keys).encode()).hexdigest()[:16]
    with_shapes = hashlib.sha1("\n".join(f"{k}:{tuple(shapes[k])}" for k in keys).encode()).hexdigest()[:16]
    return names, with_shapes


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, list[list[str]]]:
    if not TABLE.exists():
        return {}
    return json.loads(TABLE.read_text())


def recognise(tensors: Mapping[str, Any]) -> list[KnownArchitecture]:
    """The known architectures whose state dict has exactly these keys and shapes (maybe none)."""
    names, with_shapes = fingerprint({k: tuple(v.shape) for k, v in tensors.items()})
    return [KnownArchitecture(lib, name) for lib, name, shapes in _table().get(names, []) if shapes == with_shapes]


def recognise_names(tensors: Mapping[str, Any]) -> list[KnownArchitecture]:
    """The known architectures whose state dict has exactly these keys, whatever their shapes."""
    names, _ = fingerprint({k: tuple(v.shape) for k, v in tensors.items()})
    return [KnownArchitecture(lib, name) for lib, name, _ in _table().get(names, [])]
