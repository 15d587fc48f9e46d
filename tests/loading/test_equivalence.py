"""verify=: run the source architecture and the model on one input after loading."""

import pytest
import timm
import torch
import torchvision
from torch import nn

import weightport
from tests.conftest import save
from weightport import PretrainedMixin
from weightport.errors import UsageError, VerificationError
from weightport.loading.equivalence import source_builder


class Wrapper(PretrainedMixin, nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.backbone = timm.create_model("resnet18", pretrained=False, num_classes=num_classes)


def test_torchvision_weights_into_timm_resnet_verify_equal(tmp_path):
    torch.manual_seed(0)
    path = save(torchvision.models.resnet18().state_dict(), tmp_path / "tv.pt")
    model = Wrapper.from_pretrained(path, load_options={"verify": torchvision.models.resnet18,
                                                         "verify_input_shape": (1, 3, 64, 64)})
    v = model.weightport_report.verification
    assert v["passed"] and v["max_abs_diff"] < 1e-4 and v["compared"] == "logits"
    assert "verified: logits" in str(model.weightport_report)


def test_verification_with_a_new_head_compares_features(tmp_path):
    torch.manual_seed(0)
    path = save(torchvision.models.resnet18().state_dict(), tmp_path / "tv.pt")
    model = Wrapper.from_pretrained(path, num_classes=5, load_options={
        "verify": torchvision.models.resnet18, "verify_input_shape": (1, 3, 64, 64)})
    assert model.weightport_report.verification["compared"].startswith("features")


def test_a_wrong_load_fails_verification_and_the_module_is_restored(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    path = save(source.state_dict(), tmp_path / "tv.pt")
    target = torchvision.models.resnet18()
    before = {k: v.clone() for k, v in target.state_dict().items()}

    def wrong_builder():
        model = torchvision.models.resnet18()
        model.bn1.eps = 0.5  # computes something else with the same tensors
        return model

    with pytest.raises(VerificationError, match="differ from the source architecture"):
        weightport.load_weights(target, path, verify=wrong_builder, verify_input_shape=(1, 3, 64, 64))
    for k, v in target.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("source,cls", [("torchvision:resnet18", "ResNet"), ("timm:resnet18.a1_in1k", "ResNet"),
                                        ("torchvision:mobilenet_v3_small", "MobileNetV3")])
def test_the_architecture_comes_from_a_torchvision_or_timm_source(source, cls):
    # Resolution reads metadata only: nothing is downloaded.
    build = source_builder(weightport.resolve(source))
    assert build is not None and type(build()).__name__ == cls


def test_verify_without_a_known_architecture_says_what_to_pass(tmp_path):
    path = save(torchvision.models.resnet18().state_dict(), tmp_path / "tv.pt")
    with pytest.raises(UsageError, match="verify=<a function"):
        weightport.load_weights(torchvision.models.resnet18(), path, verify=True)
