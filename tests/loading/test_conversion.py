"""convert_cache=True: the mapped tensors are stored once as safetensors and later loads read them."""

import timm
import torch
from torch import nn

from weightport import PretrainedMixin


class Lite(PretrainedMixin, nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.backbone = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)


def test_a_structural_mapping_is_converted_once_and_then_read_as_safetensors(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTPORT_CACHE", str(tmp_path / "cache"))
    first = Lite.from_pretrained("efficientnet_lite0", num_classes=10, load_options={"convert_cache": True})
    stored = list((tmp_path / "cache" / "converted").glob("*.safetensors"))
    assert len(stored) == 1
    assert any("stored a cached conversion" in n for n in first.weightport_report.notes)
    assert first.weightport_report.counts()["by_structural"] == 294

    torch.manual_seed(0)
    second = Lite.from_pretrained("efficientnet_lite0", num_classes=10, load_options={"convert_cache": True})
    report = second.weightport_report
    assert any("read from the cached conversion" in n for n in report.notes)
    assert report.source.format == "safetensors" and report.counts()["by_exact"] == 294
    assert report.source.uri == first.weightport_report.source.uri
    assert report.source.sha256 == first.weightport_report.source.sha256  # provenance is the original file
    assert report.path == "assign"
    assert second.backbone.conv_stem.weight.data_ptr() % 64 == 0  # weightport writes 64-byte aligned data
    assert {r.key for r in report.reinitialized} == {"backbone.classifier.weight", "backbone.classifier.bias"}
    body = {k: v for k, v in first.state_dict().items() if "classifier" not in k}
    for key, value in body.items():
        assert torch.equal(second.state_dict()[key], value), key


def test_another_layout_gets_its_own_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTPORT_CACHE", str(tmp_path / "cache"))
    Lite.from_pretrained("efficientnet_lite0", num_classes=10, load_options={"convert_cache": True})
    Lite.from_pretrained("efficientnet_lite0", num_classes=5, load_options={"convert_cache": True})
    assert len(list((tmp_path / "cache" / "converted").glob("*.safetensors"))) == 2
    assert not list((tmp_path / "cache" / "converted").glob("*.part"))


def test_without_the_option_nothing_is_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTPORT_CACHE", str(tmp_path / "cache"))
    Lite.from_pretrained("efficientnet_lite0", num_classes=10)
    assert not (tmp_path / "cache" / "converted").exists()
