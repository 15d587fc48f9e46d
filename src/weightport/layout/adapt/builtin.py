"""The adapters weightport ships; importing this module registers them."""

from __future__ import annotations

from weightport.layout.adapt.base import register_tensor_adapter
from weightport.layout.adapt.reshape import SingletonReshape

register_tensor_adapter(SingletonReshape(), override=True)
