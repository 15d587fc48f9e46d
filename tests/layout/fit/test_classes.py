"""Class-subset fitter: keep the head rows of named classes."""

from __future__ import annotations

import pytest
import torch

from weightport.errors import UnknownClassError
from weightport.layout.fit.base import FitContext
from weightport.layout.fit.classes import ClassSubset
from weightport.layout.roles import find_roles
from weightport.registry.source import Source

CLASSES = ("tench", "goldfish", "great white shark", "tiger shark", "hammerhead", "tabby", "Egyptian cat")
SOURCE = Source(uri="file:/x.pt", scheme="file", location="/x.pt", classes=CLASSES, head=("fc",))


def _ctx(key: str, shape, classes, **kw) -> FitContext:
    kw.setdefault("roles", find_roles(torch.nn.Linear(1, 1), [(key, key)], heads=(), declared_head=SOURCE.head).of(key))
    return FitContext(key, key, tuple(shape), source=SOURCE, options={"classes": classes}, **kw)


def test_rows_of_the_named_classes_are_kept_in_the_order_asked():
    weight, bias = torch.randn(7, 4), torch.randn(7)
    wanted = ["Egyptian cat", "goldfish", "tabby"]
    fitter = ClassSubset()
    w_ctx, b_ctx = _ctx("fc.weight", (3, 4), wanted), _ctx("fc.bias", (3,), wanted)
    assert fitter.applies(weight, w_ctx) and fitter.applies(bias, b_ctx)
    assert torch.equal(fitter.adapt(weight, w_ctx), weight[[6, 1, 5]])
    assert torch.equal(fitter.adapt(bias, b_ctx), bias[[6, 1, 5]])
    assert fitter.describe(weight, w_ctx) == "classes 7->3 by name (Egyptian cat, goldfish, tabby)"


def test_subset_head_gives_the_same_logits_as_the_full_head_for_those_classes():
    full = torch.nn.Linear(4, 7)
    sub = torch.nn.Linear(4, 2)
    wanted = ["tiger shark", "tench"]
    fitter = ClassSubset()
    sub.load_state_dict(
        {k: fitter.adapt(v, _ctx(f"fc.{k}", sub.state_dict()[k].shape, wanted)) for k, v in full.state_dict().items()}
    )
    x = torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(sub(x), full(x)[:, [3, 0]])


def test_unknown_class_name_is_an_error_with_close_matches():
    with pytest.raises(UnknownClassError) as info:
        ClassSubset().adapt(torch.randn(7, 4), _ctx("fc.weight", (2, 4), ["tabby", "egyptian cat"]))
    assert "'egyptian cat'" in str(info.value) and "'Egyptian cat'" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_does_not_apply_outside_the_head_or_without_names():
    fitter = ClassSubset()
    assert not fitter.applies(torch.randn(7, 4), _ctx("layer.weight", (2, 4), ["tabby", "tench"]))
    assert fitter.applies(
        torch.randn(7, 4), _ctx("layer.weight", (2, 4), ["tabby", "tench"], roles=frozenset({"head"}))
    )
    no_names = FitContext("fc.weight", "fc.weight", (2, 4), source=SOURCE, roles=frozenset({"head"}))
    assert not fitter.applies(torch.randn(7, 4), no_names)
    assert not fitter.applies(torch.randn(7, 4), _ctx("fc.weight", (3, 4), ["tabby", "tench"]))  # count differs
