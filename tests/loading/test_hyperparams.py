"""Padding fixed when a model was built (TensorFlow "same", static) compares by what it applies."""

from __future__ import annotations

from torch import nn

from weightport.loading.hyperparams import hyperparameter_differences


class StaticSame(nn.Conv2d):
    """Like efficientnet_pytorch's Conv2dStaticSamePadding: a ZeroPad2d fixed at build time, conv padding 0."""

    def __init__(self, pad: tuple[int, int, int, int]) -> None:
        super().__init__(4, 4, 3)
        self.static_padding = nn.ZeroPad2d(pad)


class DynamicSame(nn.Conv2d):
    """Like timm's Conv2dSame: TensorFlow "same" padding computed at run time."""


def _differences(a: nn.Module, b: nn.Module) -> list[str]:
    return [f"{d.kind}: {d.source_value} / {d.target_value}"
            for d in hyperparameter_differences(nn.Sequential(a), nn.Sequential(b), {"0": "0"})]


def test_a_fixed_symmetric_padding_equals_the_same_symmetric_padding():
    assert _differences(StaticSame((1, 1, 1, 1)), nn.Conv2d(4, 4, 3, padding=1)) == []


def test_a_fixed_padding_of_another_amount_is_named():
    assert _differences(StaticSame((2, 2, 2, 2)), nn.Conv2d(4, 4, 3, padding=1)) == [
        "StaticSame padding: symmetric (2, 2) / symmetric (1, 1)"]


def test_a_fixed_asymmetric_padding_never_equals_a_symmetric_one():
    (line,) = _differences(StaticSame((0, 1, 0, 1)), nn.Conv2d(4, 4, 3, padding=0))
    assert "fixed (0, 1, 0, 1)" in line


def test_fixed_and_run_time_same_padding_are_both_tensorflow_same():
    assert _differences(StaticSame((0, 1, 0, 1)), DynamicSame(4, 4, 3)) == []
    assert _differences(DynamicSame(4, 4, 3), nn.Conv2d(4, 4, 3, padding=1)) == [
        "DynamicSame padding: TensorFlow 'same' (asymmetric) / symmetric (1, 1)"]
