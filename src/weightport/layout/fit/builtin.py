"""The fitters weightport ships, as the instances :data:`weightport.layout.fit.base.BUILTIN_FITTERS` names.

Each can be turned off by its name: ``reshape``, ``channels``, ``pos_embed``, ``patch_embed``, ``classes``,
``flatten`` (tried in that order).
"""

from __future__ import annotations

from weightport.layout.fit.channels import InputChannels
from weightport.layout.fit.classes import ClassSubset
from weightport.layout.fit.flatten import KernelLinear
from weightport.layout.fit.patchembed import PatchEmbedResize
from weightport.layout.fit.posembed import PosEmbedResample
from weightport.layout.fit.reshape import SingletonReshape

RESHAPE = SingletonReshape()
CHANNELS = InputChannels()
POS_EMBED = PosEmbedResample()
PATCH_EMBED = PatchEmbedResize()
CLASSES = ClassSubset()
FLATTEN = KernelLinear()
