"""strict means what it means in torch: no weight dropped, no network re-initialised as "the head"."""

import pytest
import torch
import torchvision
from torch import nn

import weightport
from tests.conftest import save
from tests.helpers.models import TinyNet
from weightport.errors import StrictLoadError


def with_conv_biases(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint of a ResNet variant whose convolutions have biases (Cadene's fbresnet)."""
    out = dict(state)
    for key, value in state.items():
        if key.endswith(".weight") and value.dim() == 4:
            out[key[: -len("weight")] + "bias"] = torch.randn(value.shape[0])
    return out


def test_checkpoint_weights_the_model_lacks_are_an_error_under_strict(tmp_path):
    torch.manual_seed(0)
    state = with_conv_biases(torchvision.models.resnet18().state_dict())
    path = save(state, tmp_path / "fbresnet18.pth")
    model = torchvision.models.resnet18()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(StrictLoadError, match="20 checkpoint weight.s. in .* go nowhere in the model") as info:
        weightport.load_weights(model, path)
    assert "conv1.bias" in str(info.value) and "exclude=" in str(info.value.hint)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    # The hint works: leaving the biases out on purpose, or strict=False, loads the rest.
    report = weightport.load_weights(model, path, exclude=["*.bias"])
    assert report.unexpected == [] and torch.equal(model.conv1.weight, state["conv1.weight"])
    report = weightport.load_weights(torchvision.models.resnet18(), path, strict=False)
    assert len(report.unexpected) == 20


def test_training_state_the_model_lacks_is_not_an_unexpected_weight(tmp_path):
    state = {**TinyNet().state_dict(), "extra_bn.num_batches_tracked": torch.tensor(3)}
    report = weightport.load_weights(TinyNet(), save(state, tmp_path / "w.pth"))
    assert report.ok


class StackHead(nn.Module):
    """A body and a three-layer classifier, like torchvision's VGG."""

    def __init__(self, num_classes: int = 10, hidden: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                        nn.ReLU(), nn.Linear(hidden, num_classes))


def test_the_head_rule_reinitialises_the_final_layer_only_never_a_stack(tmp_path):
    torch.manual_seed(0)
    source = StackHead(hidden=32)
    path = save(source.state_dict(), tmp_path / "w.pth")
    plan = weightport.plan(StackHead(hidden=64), path)
    # Only classifier.5 is head; the first two Linear layers of the stack are network: shapes differ -> refused.
    assert {r.key for r in plan.reinitialized} <= {"classifier.5.weight", "classifier.5.bias"}
    assert not plan.ok and {m.target_key for m in plan.mismatched} >= {"classifier.1.weight", "classifier.3.weight"}
    # A new class count re-initialises exactly the final layer.
    model = StackHead(num_classes=3, hidden=32)
    report = weightport.load_weights(model, path)
    assert [r.key for r in report.reinitialized] == ["classifier.5.weight", "classifier.5.bias"]
    assert torch.equal(model.classifier[3].weight, source.classifier[3].weight)


def test_a_large_unnamed_reinitialised_share_is_refused_until_named(tmp_path):
    torch.manual_seed(0)
    path = save(TinyNet(num_classes=10, width=8).state_dict(), tmp_path / "w.pth")
    model = TinyNet(num_classes=200, width=8)  # the new head holds most of the parameters
    with pytest.raises(StrictLoadError, match=r"re-initialising \d+\.\d% of the model's parameters") as info:
        weightport.load_weights(model, path)
    assert info.value.hint == "if that is what you want, name it: reinit=['fc']"
    report = weightport.load_weights(model, path, reinit=["fc"])  # the hint works
    assert {r.key for r in report.reinitialized} == {"fc.weight", "fc.bias"}


def test_the_checkpoints_classifier_is_left_out_when_the_model_has_no_head(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    path = save(source.state_dict(), tmp_path / "r18.pth")
    model = torchvision.models.resnet18()
    model.fc = nn.Identity()  # a feature extractor
    report = weightport.load_weights(model, path)
    assert report.dropped_head == ["fc.weight", "fc.bias"] and report.unexpected == []
    assert "left out (the checkpoint's classification layer" in str(report)
    assert torch.equal(model.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    # Anything else the model lacks is still an error.
    model.layer4[1].conv2 = nn.Identity()
    with pytest.raises(StrictLoadError, match="layer4.1.conv2.weight"):
        weightport.load_weights(model, path)
