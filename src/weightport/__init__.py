"""weightport: pretrained weights from anywhere into any PyTorch Lightning model, with a report.

Public names are imported lazily so that ``import weightport`` stays cheap (no torch, timm,
torchvision, lightning or huggingface_hub until a feature needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from weightport.errors import WeightportError

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "PretrainedMixin": "weightport.mixin",
    "load_weights": "weightport.loading.api",
    "plan": "weightport.loading.api",
    "apply": "weightport.loading.api",
    "read_state_dict": "weightport.loading.api",
    "LoadOptions": "weightport.loading.options",
    "LoadPlan": "weightport.report",
    "LoadReport": "weightport.report",
    "TensorRecord": "weightport.report",
    "Source": "weightport.registry.source",
    "resolve": "weightport.registry.resolve",
    "register_source": "weightport.registry.aliases",
    "register_adapter": "weightport.registry.schemes",
    "list_sources": "weightport.registry.listing",
    "lock_sources": "weightport.lock",
}
_MODULES: dict[str, str] = {"errors": "weightport.errors", "warnings": "weightport.warnings"}

__all__ = ["WeightportError", "__version__", *_LAZY, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value: Any = importlib.import_module(_MODULES[name])
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'weightport' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from weightport import errors, warnings
    from weightport.loading.api import apply, load_weights, plan, read_state_dict
    from weightport.loading.options import LoadOptions
    from weightport.lock import lock_sources
    from weightport.mixin import PretrainedMixin
    from weightport.registry.aliases import register_source
    from weightport.registry.listing import list_sources
    from weightport.registry.resolve import resolve
    from weightport.registry.schemes import register_adapter
    from weightport.registry.source import Source
    from weightport.report import LoadPlan, LoadReport, TensorRecord
