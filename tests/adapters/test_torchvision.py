"""torchvision: sources through torchvision's real weights metadata; files served from 127.0.0.1."""

from __future__ import annotations

import hashlib
import os

import pytest

from weightport.errors import IntegrityError, OfflineCacheMissError, UnknownSourceError
from weightport.fetch.step import fetch_files
from weightport.fetch.types import FetchOptions
from weightport.registry import resolve

pytest.importorskip("torchvision")


def test_metadata_from_the_weights_enum():
    source = resolve("torchvision:resnet50.IMAGENET1K_V2")
    assert source.location == "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
    assert source.uri == "torchvision:resnet50.IMAGENET1K_V2"
    assert len(source.classes) == 1000 and source.classes[0] == "tench"
    pre = source.preprocessing
    assert (pre.mean, pre.std, pre.input_size, pre.interpolation) == (
        (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (3, 224, 224), "bilinear")
    assert source.meta["metrics"]["ImageNet-1K"]["acc@1"] == pytest.approx(80.858)


def test_default_weights_when_no_tag():
    assert resolve("torchvision:resnet50").uri == "torchvision:resnet50.IMAGENET1K_V2"


def test_unknown_tag_lists_the_available_ones():
    with pytest.raises(UnknownSourceError) as info:
        resolve("torchvision:resnet50.IMAGENET1K_V9")
    assert "IMAGENET1K_V1" in str(info.value) and "IMAGENET1K_V2" in str(info.value)


def test_unknown_model_has_close_matches():
    with pytest.raises(UnknownSourceError, match="resnet50"):
        resolve("torchvision:resnet5O")


def test_fetch_goes_to_torch_hub_cache_through_the_mirror(file_server, tmp_path, monkeypatch):
    body = os.urandom(50_000)
    name = f"tiny-{hashlib.sha256(body).hexdigest()[:8]}.pth"  # torch.hub's naming: the hash prefix
    file_server.add(f"/models/{name}", body)
    monkeypatch.setenv("WEIGHTPORT_MIRROR", f"https://download.pytorch.org/={file_server.base}/")
    source = resolve("torchvision:resnet18").replace(location=f"https://download.pytorch.org/models/{name}")
    fetched = fetch_files(source, FetchOptions(progress=False))
    assert fetched.path == tmp_path / "torch" / "hub" / "checkpoints" / name
    assert fetched.path.read_bytes() == body


def test_file_not_matching_the_hash_in_its_name_is_refused(file_server, tmp_path, monkeypatch):
    file_server.add("/models/resnet18-f37072fd.pth", os.urandom(1000))
    monkeypatch.setenv("WEIGHTPORT_MIRROR", f"https://download.pytorch.org/={file_server.base}/")
    with pytest.raises(IntegrityError, match="f37072fd"):
        fetch_files(resolve("torchvision:resnet18"), FetchOptions(progress=False))
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth").exists()


def test_bad_file_planted_in_torch_hub_cache_is_not_used_offline(tmp_path):
    planted = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"not the weights")
    with pytest.raises(OfflineCacheMissError, match="cached copy is bad.*f37072fd"):
        fetch_files(resolve("torchvision:resnet18"), FetchOptions(offline=True))
