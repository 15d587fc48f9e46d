"""Input channels: a stem convolution trained on ``C`` channels (usually RGB) into a model built for ``N``.

- ``N == 1``: sum over the input channels. A 1-channel model then computes on a grey image ``g``
  exactly what the original computes on ``g`` repeated ``C`` times, because
  ``sum_c w_c * g == (sum_c w_c) * g``.
- ``N > C``: repeat the channels cyclically and rescale by ``C / N``. When ``N`` is a multiple of ``C``
  an input whose channels are all equal gives exactly the original activations; otherwise the
  activations keep their scale but not their exact value (some filters appear once more than others).
  The first ``C`` input channels keep the original filters' shapes, which suits "RGB + extra bands".
- ``1 < N < C``: keep the first ``N`` channels, rescaled by ``C / N`` (scale kept, values approximate).

It applies only to the first convolution: the target key with the role ``first_conv``, which the
planner gives once (:mod:`weightport.layout.roles`: the source's ``first_conv``, else the model's
first convolution in registration order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weightport.layout.fit.base import FitContext

if TYPE_CHECKING:
    import torch


def adapt_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """``weight`` (``out, C, *kernel``) made to take ``channels`` input channels (see the module docs)."""
    base = weight.shape[1]
    work = weight.float()
    if channels == 1:
        out = work.sum(dim=1, keepdim=True)
    elif channels > base:
        repeats = -(-channels // base)  # ceil
        out = work.repeat(1, repeats, *([1] * (work.ndim - 2)))[:, :channels] * (base / channels)
    else:
        out = work[:, :channels] * (base / channels)
    return out.to(weight.dtype)


class InputChannels:
    """Adapts the first convolution's weight to another number of input channels."""

    name = "channels"

    def applies(self, tensor: torch.Tensor, ctx: FitContext) -> bool:
        shape, target = tuple(tensor.shape), ctx.target_shape
        if len(shape) < 3 or len(shape) != len(target) or shape == target:
            return False
        if shape[0] != target[0] or shape[2:] != target[2:] or shape[1] == target[1]:
            return False
        return self._is_first_conv(ctx)

    def adapt(self, tensor: torch.Tensor, ctx: FitContext) -> torch.Tensor:
        return adapt_channels(tensor, ctx.target_shape[1])

    def describe(self, tensor: torch.Tensor, ctx: FitContext) -> str:
        base, channels = tensor.shape[1], ctx.target_shape[1]
        how = "sum" if channels == 1 else ("repeat" if channels > base else "first") + f", x{base}/{channels}"
        return f"channels {base}->{channels} ({how})"

    @staticmethod
    def _is_first_conv(ctx: FitContext) -> bool:
        return "first_conv" in ctx.roles  # decided once, by the planner (weightport.layout.roles)
