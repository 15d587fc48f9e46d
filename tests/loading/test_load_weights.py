"""load_weights / plan / read_state_dict on local checkpoints: the recipes, options and errors."""

import json

import pytest
import torch
from torch import nn

import weightport
from tests.conftest import save
from tests.helpers.models import TinyNet, randomize_bn
from weightport.errors import (
    DtypeError,
    NonFiniteWeightsError,
    ShapeMismatchError,
    SourceNotFoundError,
    StrictLoadError,
    WeightportError,
)
from weightport.warnings import LossyCastWarning


@pytest.fixture
def pretrained():
    torch.manual_seed(0)
    return randomize_bn(TinyNet(num_classes=10))


def same_body(a: nn.Module, b: nn.Module, skip=("fc.",)) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith(skip))


class Wrapped(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.resnet = TinyNet(num_classes=num_classes)


def test_matching_keys_load_exactly(tmp_path, pretrained):
    path = save(pretrained.state_dict(), tmp_path / "w.pt")
    model = TinyNet()
    report = weightport.load_weights(model, path)
    assert same_body(model, pretrained, skip=())
    assert report.counts()["by_exact"] == len(pretrained.state_dict())
    assert report.missing == [] and report.unexpected == [] and report.coverage == 1.0


def test_module_prefix_from_data_parallel_is_stripped(tmp_path, pretrained):
    path = save({"module." + k: v for k, v in pretrained.state_dict().items()}, tmp_path / "dp.pth")
    model = TinyNet()
    report = weightport.load_weights(model, str(path))
    assert same_body(model, pretrained, skip=())
    assert all("strip module." in r.ops for r in report.loaded)


def test_network_inside_a_module_with_another_head_is_reinitialised(tmp_path, pretrained):
    path = save(pretrained.state_dict(), tmp_path / "w.safetensors")
    torch.manual_seed(1)
    model = Wrapped(num_classes=4)
    before = model.resnet.fc.weight.clone()
    report = weightport.load_weights(model, f"file:{path}")
    assert same_body(model.resnet, pretrained)
    assert report.into == "resnet"
    assert {r.key for r in report.reinitialized} == {"resnet.fc.weight", "resnet.fc.bias"}
    assert "10 classes in the checkpoint, 4 in the model" in str(report)
    assert not torch.equal(model.resnet.fc.weight, before)  # it got a fresh normal init


def test_directory_holding_one_checkpoint(tmp_path, pretrained):
    save(pretrained.state_dict(), tmp_path / "ckpt" / "model.safetensors")
    model = TinyNet()
    weightport.load_weights(model, tmp_path / "ckpt")
    assert same_body(model, pretrained, skip=())


def test_plan_is_a_dry_run(tmp_path, pretrained):
    path = save(pretrained.state_dict(), tmp_path / "w.pt")
    model = TinyNet(num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = weightport.plan(model, path)
    assert plan.ok
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    json.dumps(plan.to_dict())


def test_report_to_dict_has_the_documented_fields(tmp_path, pretrained):
    path = save({k: v.half() if v.is_floating_point() else v for k, v in pretrained.state_dict().items()},
                tmp_path / "w.pt")
    model = Wrapped(num_classes=4)
    data = json.loads(json.dumps(weightport.load_weights(model, path).to_dict()))
    assert {"uri", "path", "format", "sha256", "bytes"} <= set(data["source"])
    assert data["source"]["format"] == "torch" and len(data["source"]["sha256"]) == 64
    record = data["loaded"][0]
    fields = {"source_key", "target_key", "source_shape", "target_shape", "source_dtype", "target_dtype", "ops"}
    assert fields <= set(record)
    assert {"missing", "unexpected", "reinitialized", "coverage"} <= set(data)
    assert data["reinitialized"] == ["resnet.fc.weight", "resnet.fc.bias"]
    assert 0.9 < data["coverage"] < 1.0


def test_fp16_checkpoint_into_fp32_model_stays_fp32_and_cast_is_reported(tmp_path, pretrained):
    path = save({k: v.half() if v.is_floating_point() else v for k, v in pretrained.state_dict().items()},
                tmp_path / "half.safetensors")
    model = TinyNet()
    report = weightport.load_weights(model, path)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.allclose(model.conv1.weight, pretrained.conv1.weight.half().float())
    casts = [r for r in report.loaded if "cast float16->float32" in r.ops]
    assert len(casts) == sum(v.is_floating_point() for v in pretrained.state_dict().values())
    assert "cast float16->float32" in str(report)


def test_integer_weights_into_float_params_are_refused(tmp_path, pretrained):
    sd = pretrained.state_dict()
    sd["conv1.weight"] = sd["conv1.weight"].to(torch.int32)
    path = save(sd, tmp_path / "w.pt")
    with pytest.raises(DtypeError, match="conv1.weight"):
        weightport.load_weights(TinyNet(), path)


def test_lossy_cast_warns_and_can_be_an_error(tmp_path, pretrained):
    path = save(pretrained.state_dict(), tmp_path / "w.pt")
    model = TinyNet().to(torch.bfloat16)
    with pytest.warns(LossyCastWarning):
        weightport.load_weights(model, path)
    assert model.conv1.weight.dtype == torch.bfloat16
    with pytest.raises(DtypeError, match="loses precision"):
        weightport.load_weights(TinyNet().to(torch.bfloat16), path, lossy_cast="error")


def test_wrong_shape_names_key_both_shapes_and_the_option(tmp_path, pretrained):
    sd = pretrained.state_dict()
    sd["conv2.weight"] = torch.zeros(16, 8, 5, 5)
    path = save(sd, tmp_path / "w.pt")
    model = TinyNet()
    before = model.conv1.weight.clone()
    with pytest.raises(ShapeMismatchError) as info:
        weightport.load_weights(model, path)
    msg = str(info.value)
    assert "conv2.weight" in msg and "(16, 8, 5, 5)" in msg and "(16, 8, 3, 3)" in msg and "reinit=" in msg
    assert torch.equal(model.conv1.weight, before)  # nothing was loaded


def test_strict_lists_what_is_missing_and_non_strict_loads_the_rest(tmp_path, pretrained):
    sd = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("bn2.")}
    path = save(sd, tmp_path / "w.pt")
    with pytest.raises(StrictLoadError, match="bn2") as info:
        weightport.load_weights(TinyNet(), path)
    assert "bn2.weight" in info.value.missing and isinstance(info.value, RuntimeError)
    model = TinyNet()
    report = weightport.load_weights(model, path, strict=False)
    assert set(report.missing) == {"bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var"}
    assert torch.equal(model.conv1.weight, pretrained.conv1.weight)


def test_nothing_matching_is_an_error_even_when_not_strict(tmp_path):
    path = save({"encoder.block.weight": torch.ones(3)}, tmp_path / "w.pt")
    with pytest.raises(StrictLoadError, match="nothing from"):
        weightport.load_weights(TinyNet(), path, strict=False, match="exact")


def test_rename_rules(tmp_path, pretrained):
    sd = {k.replace("conv", "convolution"): v for k, v in pretrained.state_dict().items()}
    path = save(sd, tmp_path / "w.pt")
    model = TinyNet()
    report = weightport.load_weights(model, path, rename={r"convolution": "conv"})
    assert same_body(model, pretrained, skip=())
    assert report.counts()["by_rename"] == 2


def test_include_and_exclude_select_what_is_loaded(tmp_path, pretrained):
    path = save(pretrained.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(5)
    model = TinyNet()
    original_conv2 = model.conv2.weight.clone()
    report = weightport.load_weights(model, path, exclude=["conv2"])
    assert torch.equal(model.conv2.weight, original_conv2)
    assert torch.equal(model.conv1.weight, pretrained.conv1.weight)
    assert "conv2.weight" not in {r.target_key for r in report.loaded}
    model = TinyNet()
    report = weightport.load_weights(model, path, include=["bn*"])
    assert {r.target_key.split(".")[0] for r in report.loaded} == {"bn1", "bn2"}


def test_reinit_names_keys_to_reset_even_when_they_fit(tmp_path, pretrained):
    path = save(pretrained.state_dict(), tmp_path / "w.pt")
    model = TinyNet()
    report = weightport.load_weights(model, path, reinit=["fc"])
    assert {r.key for r in report.reinitialized} == {"fc.weight", "fc.bias"}
    assert not torch.equal(model.fc.weight, pretrained.fc.weight)
    assert torch.equal(model.conv1.weight, pretrained.conv1.weight)


def test_nan_weights_are_refused_when_checked_and_loaded_as_they_are_by_default(tmp_path, pretrained):
    sd = pretrained.state_dict()
    sd["conv1.weight"][0, 0, 0, 0] = float("nan")
    path = save(sd, tmp_path / "w.pt")
    model = TinyNet()
    before = model.conv1.weight.clone()
    with pytest.raises(NonFiniteWeightsError, match="conv1.weight"):
        weightport.load_weights(model, path, check_finite=True)
    assert torch.equal(model.conv1.weight, before)
    report = weightport.load_weights(model, path)
    assert torch.isnan(model.conv1.weight).any() and not report.finite_checked


def test_saved_rules_are_reused_as_explicit_renames(tmp_path, pretrained):
    path = save({"net." + k: v for k, v in pretrained.state_dict().items()}, tmp_path / "w.pt")
    plan = weightport.plan(Wrapped(), path)
    plan.save_rules(str(tmp_path / "rules.json"))
    report = weightport.load_weights(Wrapped(), path, rename=str(tmp_path / "rules.json"), match="exact")
    assert report.counts()["by_rename"] == len(pretrained.state_dict())


def test_read_state_dict_returns_clean_keys(tmp_path, pretrained):
    path = save({"state_dict": {"module." + k: v for k, v in pretrained.state_dict().items()}}, tmp_path / "w.pt")
    sd = weightport.read_state_dict(path)
    assert set(sd) == set(pretrained.state_dict())


def test_missing_file_is_a_weightport_and_a_file_not_found_error(tmp_path):
    with pytest.raises(SourceNotFoundError) as info:
        weightport.load_weights(TinyNet(), tmp_path / "nope.pt")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, WeightportError)
    assert "nope.pt" in str(info.value)


def test_unknown_option_is_a_clear_error(tmp_path, pretrained):
    path = save(pretrained.state_dict(), tmp_path / "w.pt")
    with pytest.raises(weightport.errors.UsageError, match="stirct"):
        weightport.load_weights(TinyNet(), path, stirct=False)


def test_report_string_stays_short_for_a_large_model(tmp_path):
    import torchvision

    src = torchvision.models.resnet50()
    path = save({"model." + k: v for k, v in src.state_dict().items()}, tmp_path / "r50.pt")
    target = torchvision.models.resnet50(num_classes=7)
    text = str(weightport.load_weights(target, path))
    assert len(text.splitlines()) < 20


def test_a_source_layout_rule_set_is_applied_and_reported(tmp_path, pretrained):
    from weightport.layout.rules import LayoutRules, register_layout
    from weightport.registry.aliases import register_source, unregister_source

    register_layout(LayoutRules("test-enc-layout", renames=[(r"^enc\.", ""), (r"^classifier\.", "fc.")]),
                    override=True)
    sd = {("enc." + k if not k.startswith("fc.") else k.replace("fc.", "classifier.")): v
          for k, v in pretrained.state_dict().items()}
    path = save(sd, tmp_path / "enc.pt")
    register_source("test-enc-weights", str(path), layout="test-enc-layout", override=True)
    try:
        model = TinyNet()
        report = weightport.load_weights(model, "test-enc-weights")
    finally:
        unregister_source("test-enc-weights")
    assert same_body(model, pretrained, skip=())
    assert report.counts()["by_layout"] == len(sd)
    record = next(r for r in report.loaded if r.target_key == "fc.weight")
    assert record.source_key == "classifier.weight"
    assert any(op.startswith("layout test-enc-layout") for op in record.ops)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_finite_check_is_exact(dtype):
    from weightport.loading.apply import all_finite

    big = torch.full((1000,), torch.finfo(dtype).max / 2, dtype=dtype)  # the sum overflows; values are finite
    assert all_finite(big)
    for bad in (float("nan"), float("inf"), float("-inf")):
        t = torch.zeros(100, dtype=dtype)
        t[37] = bad
        assert not all_finite(t)
    assert all_finite(torch.arange(5))
