"""A load that maps another implementation's layout is verified by default when the source is known."""

import pytest
import timm
import torch
import torchvision

import weightport
from tests.conftest import save
from tests.helpers.models import randomize_bn
from weightport.errors import VerificationError
from weightport.layout.known import recognise


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory):
    torch.manual_seed(0)
    source = randomize_bn(torchvision.models.mobilenet_v3_small()).eval()
    path = save(source.state_dict(), tmp_path_factory.mktemp("mnv3") / "mobilenet_v3_small.pth")
    return source, path


def test_a_checkpoints_key_layout_is_recognised_as_its_architecture(mobilenet_file):
    source, _ = mobilenet_file
    assert "torchvision:mobilenet_v3_small" in {a.uri for a in recognise(source.state_dict())}
    assert recognise({"x.weight": torch.zeros(3)}) == []


def test_a_hyper_parameter_the_file_does_not_hold_is_named_and_the_load_refused(mobilenet_file):
    _, path = mobilenet_file
    model = timm.create_model("mobilenetv3_small_100")  # batch-norm eps 1e-5; torchvision's is 1e-3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(VerificationError) as info:
        weightport.load_weights(model, path)
    message = str(info.value)
    assert "BatchNorm eps: 0.001 in the source, 1e-05 in the model" in message
    assert "verify=False" in info.value.hint
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched


def test_built_with_the_sources_values_it_loads_verified(mobilenet_file):
    source, path = mobilenet_file
    model = timm.create_model("mobilenetv3_small_100", bn_eps=1e-3).eval()
    report = weightport.load_weights(model, path)
    assert report.verification["passed"] and report.verification["against"] == "torchvision:mobilenet_v3_small"
    assert "verify" in report.timings
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x), rtol=1e-4, atol=1e-5)


def test_verification_can_be_turned_off(mobilenet_file):
    _, path = mobilenet_file
    report = weightport.load_weights(timm.create_model("mobilenetv3_small_100"), path, verify=False)
    assert report.verification is None and report.counts()["by_structural"] > 0


def test_a_refused_verification_leaves_no_cached_conversion_behind(mobilenet_file):
    # A conversion in the cache is loaded by exact names without verification: it must only ever hold a
    # mapping that loaded right, or the second load would be silently wrong.
    from weightport.fetch.cache import cache_root

    _, path = mobilenet_file
    for _attempt in range(2):
        model = timm.create_model("mobilenetv3_small_100")
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(VerificationError):
            weightport.load_weights(model, path, convert_cache=True)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        assert not list((cache_root() / "converted").glob("*.safetensors"))


def test_one_function_decides_the_source_architecture_for_the_proof_and_the_verification(tmp_path):
    # timm's efficientnet_b0 and tf_efficientnet_b0 hold the same keys: the closest to the model is taken,
    # by the planner's prover and by the verification alike.
    from weightport.loading.equivalence import auto_verification, source_architecture
    from weightport.loading.options import LoadOptions
    from weightport.loading.proof import LoadProver
    from weightport.loading.source_io import fetch_source, read_source

    torch.manual_seed(0)
    path = save(timm.create_model("efficientnet_b0").state_dict(), tmp_path / "efficientnet_b0.pth")
    opts = LoadOptions()
    opened = read_source(fetch_source(path, opts), opts)
    plain = torchvision.models.efficientnet_b0()
    like_tf = torchvision.models.efficientnet_b0(norm_layer=lambda c: torch.nn.BatchNorm2d(c, eps=1e-3))
    for model, expected in ((plain, "timm:efficientnet_b0"), (like_tf, "timm:tf_efficientnet_b0")):
        assert source_architecture(opened.source, opened.tensors, model).against == expected
        assert LoadProver(model, opened, {}, opts)._architecture().against == expected
    assert weightport.plan(plain, path).maps_another_layout  # the only plans auto_verification is asked about
    decided = auto_verification(opened.source, opened.tensors, plain)
    assert decided.against == "timm:efficientnet_b0" and "closest" in decided.note


def test_a_load_by_its_own_names_imports_no_verification(tmp_path):
    # verify="auto" is decided from the plan's `how` before the verification module is imported
    import subprocess
    import sys

    path = save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "linear.pth")
    code = ("import sys, torch, weightport; r = weightport.load_weights(torch.nn.Linear(3, 2), sys.argv[1]); "
            "assert r.coverage == 1.0; print('weightport.loading.equivalence' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
