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


def _as_it_is(model: nn.Module) -> tuple[dict[str, nn.Module], dict[str, bool], dict[str, torch.Tensor]]:
    """Every module object at its path, every module's training mode, every tensor's value."""
    return (dict(model.named_modules()), {n: m.training for n, m in model.named_modules()},
            {k: v.clone() for k, v in model.state_dict().items()})


def _assert_as_it_was(model: nn.Module, before) -> None:
    modules, modes, state = before
    now = dict(model.named_modules())
    assert now.keys() == modules.keys() and all(now[n] is modules[n] for n in modules)  # the same objects
    assert {n: m.training for n, m in model.named_modules()} == modes
    after = model.state_dict()
    assert list(after) == list(state) and all(torch.equal(after[k], v) for k, v in state.items())


@pytest.fixture
def mobilenet_file(tmp_path):
    torch.manual_seed(0)
    return save(torchvision.models.mobilenet_v3_small().state_dict(), tmp_path / "mobilenet_v3_small.pth")


def _fine_tuned() -> nn.Module:
    """timm's MobileNetV3 with torchvision's eps and a new 5-class head, in train mode with a frozen block."""
    model = timm.create_model("mobilenetv3_small_100", pretrained=False, bn_eps=1e-3, num_classes=5).train()
    model.blocks[1].eval()
    return model


def test_a_verified_load_with_a_new_head_puts_the_models_own_modules_and_modes_back(mobilenet_file):
    model = _fine_tuned()
    modules, modes = dict(model.named_modules()), {n: m.training for n, m in model.named_modules()}
    report = weightport.load_weights(model, mobilenet_file)  # structural, verified by default
    assert report.verification["passed"] and report.verification["compared"].startswith("features")
    assert [r.key for r in report.reinitialized] == ["classifier.weight", "classifier.bias"]
    now = dict(model.named_modules())
    assert now.keys() == modules.keys() and all(now[n] is m for n, m in modules.items())
    assert {n: m.training for n, m in model.named_modules()} == modes


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_forward_that_raises_during_verification_leaves_the_model_exactly_as_it_was(mobilenet_file, error):
    model = _fine_tuned()
    before = _as_it_is(model)

    def fail(*_):
        raise error("the model's forward failed")

    hook = model.blocks[3].register_forward_pre_hook(fail)
    with pytest.raises(VerificationError if error is RuntimeError else error):
        weightport.load_weights(model, mobilenet_file)
    hook.remove()
    _assert_as_it_was(model, before)


def test_a_head_set_aside_is_put_back_even_when_a_later_one_cannot_be():
    from weightport.loading.equivalence import _borrowed

    model = torchvision.models.resnet18().train()
    before = _as_it_is(model)
    with pytest.raises(AttributeError), _borrowed(model, ["fc", "no.such.module"]):
        pass
    _assert_as_it_was(model, before)
    with _borrowed(model, ["fc", "layer4.1"]):
        assert isinstance(model.fc, nn.Identity) and isinstance(model.layer4[1], nn.Identity) and not model.training
    _assert_as_it_was(model, before)


def test_every_input_tried_runs_the_model_in_eval_mode(tmp_path):
    # timm's MobileNetV3 pads like TensorFlow: the 64-pixel input differs, so the native 224 input decides.
    # That second run, too, is the model in eval mode (batch-norm statistics, not the batch's): the difference
    # reported is the one of the eval-mode models.
    import re

    torch.manual_seed(0)
    path = save(timm.create_model("tf_mobilenetv3_small_100").state_dict(), tmp_path / "mobilenetv3.pth")
    model = torchvision.models.mobilenet_v3_small().train()
    with pytest.raises(VerificationError) as info:
        weightport.load_weights(model, path, verify=lambda: timm.create_model("tf_mobilenetv3_small_100"))
    reported = float(re.search(r"differ from the source architecture's by (\S+)", str(info.value)).group(1))
    assert "(1, 3, 224, 224)" in str(info.value) and model.training

    loaded = torchvision.models.mobilenet_v3_small()
    weightport.load_weights(loaded, path, verify=False)
    reference = timm.create_model("tf_mobilenetv3_small_100")
    reference.load_state_dict(torch.load(path))
    x = torch.randn((1, 3, 224, 224), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = float((loaded.eval()(x) - reference.eval()(x)).abs().max())
    assert reported == pytest.approx(expected, rel=1e-2)
