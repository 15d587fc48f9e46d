"""The adapters weightport ships; importing this module registers them, in the order they are tried.

Each can be turned off by its name: ``reshape``, ``channels``, ``pos_embed``, ``patch_embed``, ``classes``.
"""

from __future__ import annotations

from weightport.layout.adapt.base import register_tensor_adapter
from weightport.layout.adapt.channels import InputChannels
from weightport.layout.adapt.classes import ClassSubset
from weightport.layout.adapt.patchembed import PatchEmbedResize
from weightport.layout.adapt.posembed import PosEmbedResample
from weightport.layout.adapt.reshape import SingletonReshape

register_tensor_adapter(SingletonReshape(), override=True)
register_tensor_adapter(InputChannels(), override=True)
register_tensor_adapter(PosEmbedResample(), override=True)
register_tensor_adapter(PatchEmbedResize(), override=True)
register_tensor_adapter(ClassSubset(), override=True)
