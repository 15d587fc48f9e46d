"""The fitters weightport ships; importing this module registers them, in the order they are tried.

Each can be turned off by its name: ``reshape``, ``channels``, ``pos_embed``, ``patch_embed``, ``classes``.
"""

from __future__ import annotations

from weightport.layout.fit.base import register_fitter
from weightport.layout.fit.channels import InputChannels
from weightport.layout.fit.classes import ClassSubset
from weightport.layout.fit.patchembed import PatchEmbedResize
from weightport.layout.fit.posembed import PosEmbedResample
from weightport.layout.fit.reshape import SingletonReshape

register_fitter(SingletonReshape(), override=True)
register_fitter(InputChannels(), override=True)
register_fitter(PosEmbedResample(), override=True)
register_fitter(PatchEmbedResize(), override=True)
register_fitter(ClassSubset(), override=True)
