"""The adapters weightport ships, as the instances the tensor-adapter table names.

Each can be turned off by its name: ``reshape``, ``channels``, ``pos_embed``, ``patch_embed``, ``classes``
(tried in that order; see :data:`weightport.layout.adapt.base.BUILTIN_TENSOR_ADAPTERS`).
"""

from __future__ import annotations

from weightport.layout.adapt.channels import InputChannels
from weightport.layout.adapt.classes import ClassSubset
from weightport.layout.adapt.patchembed import PatchEmbedResize
from weightport.layout.adapt.posembed import PosEmbedResample
from weightport.layout.adapt.reshape import SingletonReshape

RESHAPE = SingletonReshape()
CHANNELS = InputChannels()
POS_EMBED = PosEmbedResample()
PATCH_EMBED = PatchEmbedResize()
CLASSES = ClassSubset()
