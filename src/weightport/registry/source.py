"""The :class:`Source` record: what a source string means, and what the weights come with."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preprocessing:
    """How inputs were prepared when the weights were trained."""

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: tuple[int, ...] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Source:
    """A resolved weight source.

    Attributes:
        uri: The canonical source string (``torchvision:resnet18.IMAGENET1K_V1``, ``file:/x.pt``).
        scheme: The adapter that fetches it (``file``, ``torchvision``, ``timm``, ``hf``, ``https``, ``pkg``).
        location: Where the adapter looks: a path, a URL, a hub repo id, a model name.
        revision: A hub revision (branch, tag or commit) when the source has one.
        filename: A file inside ``location`` when the source names one.
        sha256: The expected sha256 of the weight file, when pinned.
        size: The expected size in bytes, when known.
        license: The weights' licence, when known.
        preprocessing: Mean, std, input size and interpolation the weights were trained with.
        classes: The class names of the checkpoint's head, when known.
        head: Checkpoint key prefixes of the classification head (``fc``, ``head.fc``).
        first_conv: Checkpoint key prefix of the first convolution (``conv1``).
        layout: Name of a registered layout rule set the checkpoint is written in.
        resolved_by: How a bare name or alias became this source (shown in the report).
        meta: Anything else the source knows (metrics, hub config, torchvision meta).
    """

    uri: str
    scheme: str
    location: str
    revision: str | None = None
    filename: str | None = None
    sha256: str | None = None
    size: int | None = None
    license: str | None = None
    preprocessing: Preprocessing | None = None
    classes: tuple[str, ...] | None = None
    head: tuple[str, ...] | None = None
    first_conv: str | None = None
    layout: str | None = None
    resolved_by: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def replace(self, **changes: Any) -> Source:
        """A copy with some fields changed (the record itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view of the record."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, Preprocessing):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = jsonable(value)
            out[f.name] = value
        return out


def jsonable(value: Any) -> Any:
    """Turn nested metadata into plain JSON types (unknown objects become their ``repr``)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
