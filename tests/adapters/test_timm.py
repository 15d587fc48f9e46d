"""timm: sources through timm's real pretrained configs; hub files served from 127.0.0.1."""

from __future__ import annotations

import os

import pytest

from weightport.errors import UnknownSourceError
from weightport.fetch.step import fetch_files
from weightport.fetch.types import FetchOptions
from weightport.registry import resolve

pytest.importorskip("timm")


def test_metadata_from_the_pretrained_cfg():
    source = resolve("timm:resnet50.a1_in1k")
    assert (source.head, source.first_conv, source.license) == (("fc",), "conv1", "apache-2.0")
    assert source.preprocessing.interpolation == "bicubic" and source.preprocessing.crop_pct == 0.95
    assert source.meta["hf_hub_id"] == "timm/resnet50.a1_in1k" and source.meta["num_classes"] == 1000


def test_default_tag_when_none():
    assert resolve("timm:tf_efficientnet_lite0").uri == "timm:tf_efficientnet_lite0.in1k"


def test_unknown_tag():
    with pytest.raises(UnknownSourceError, match="close matches"):
        resolve("timm:resnet50.a1_in1kk")


def test_fetch_through_the_hub(hub, tmp_path):
    body = os.urandom(3000)
    hub.add_repo("timm/resnet18.a1_in1k", {"model.safetensors": body, "config.json": b"{}"})
    fetched = fetch_files(resolve("timm:resnet18.a1_in1k"), FetchOptions(progress=False))
    assert fetched.path.read_bytes() == body
    assert fetched.path.is_relative_to(tmp_path / "hf" / "hub")


def test_fetch_by_url_when_no_hub_id(file_server, tmp_path, monkeypatch):
    body = os.urandom(3000)
    source = resolve("timm:resnet18.a1_in1k")
    url = source.meta["url"]
    prefix = url.rsplit("/", 1)[0] + "/"
    file_server.add("/rel/" + url.rsplit("/", 1)[1], body)
    monkeypatch.setenv("WEIGHTPORT_MIRROR", f"{prefix}={file_server.base}/rel/")
    meta = {k: v for k, v in source.meta.items() if k != "hf_hub_id"}
    fetched = fetch_files(source.replace(meta=meta), FetchOptions(progress=False))
    assert fetched.path == tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    assert fetched.path.read_bytes() == body
