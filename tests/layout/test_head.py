import torch.nn as nn
import torchvision

from weightport.layout.head import head_keys, head_modules


class WithHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet18()
        self.backbone.fc = nn.Identity()
        self.head = nn.Linear(512, 3)


def test_named_head_inside_the_network():
    assert head_modules(torchvision.models.resnet18()) == ["fc"]


def test_separate_head_beats_an_emptied_backbone_fc():
    assert head_modules(WithHead()) == ["head"]


def test_last_linear_when_nothing_is_named_like_a_head():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert head_modules(model) == ["2"]


def test_a_classifier_stack_contributes_only_its_final_layer():
    # MobileNetV3's classifier is Linear(576, 1024) → Hardswish → Dropout → Linear(1024, 1000):
    # only the last Linear produces the logits; the first is network and is never the "head".
    model = torchvision.models.mobilenet_v3_small()
    keys = list(model.state_dict())
    assert head_keys(model, keys) == {"classifier.3.weight", "classifier.3.bias"}
    assert head_modules(torchvision.models.vgg11()) == ["classifier.6"]


def test_a_head_of_norm_and_linear_contributes_only_the_linear():
    import timm

    assert head_modules(timm.create_model("convnext_atto")) == ["head.fc"]


def test_no_head_when_the_last_layer_is_not_a_classifier():
    # A headless model (its last layer a norm) has no head: the last Linear of a block is not one.
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    assert head_modules(model) == []


def test_reinit_names_keys_relative_to_into_or_as_globs():
    model = WithHead()
    keys = list(model.state_dict())
    assert head_keys(model, keys, into="backbone", reinit=["layer4.1.bn2"]) == {
        k for k in keys if k.startswith("backbone.layer4.1.bn2.")
    }
    assert head_keys(model, keys, reinit=["*.conv1.weight"]) >= {"backbone.layer1.0.conv1.weight"}
