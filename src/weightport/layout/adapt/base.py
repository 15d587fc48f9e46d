"""Deprecated: :mod:`weightport.layout.fit.base` under its old name (goes in 0.3)."""

from __future__ import annotations

from typing import Any

from weightport.layout.fit import base as _base


def __getattr__(name: str) -> Any:
    return getattr(_base, name)  # the old names (register_tensor_adapter, ...) warn there
