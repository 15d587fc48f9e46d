"""The fast path (meta build + assign) gives the same model as the slow path (build + copy)."""

import pytest
import timm
import torch
import torchvision
from torch import nn

from tests.conftest import save
from tests.helpers.models import randomize_bn
from weightport import PretrainedMixin


class Holder(PretrainedMixin, nn.Module):
    def __init__(self, family: str, arch: str, **kwargs):
        super().__init__()
        build = timm.create_model if family == "timm" else getattr(torchvision.models, arch)
        self.net = build(arch, pretrained=False, **kwargs) if family == "timm" else build(**kwargs)

    def forward(self, x):
        return self.net(x)


CASES = [
    ("torchvision", "resnet18", {}),
    ("torchvision", "mobilenet_v3_small", {}),
    ("timm", "resnet10t", {}),
    ("timm", "vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8}),
    ("timm", "efficientnet_b0", {}),
]


def both_paths(path, family, arch, kwargs, **load):
    models = []
    for fast in (True, False):
        torch.manual_seed(123)
        model = Holder.from_pretrained(path, family, arch, load_options={"fast": fast, **load}, **kwargs)
        models.append(model.eval())
    return models


@pytest.mark.parametrize("family,arch,kwargs", CASES, ids=[c[1] for c in CASES])
def test_fast_and_slow_paths_load_identical_weights_with_a_reinitialised_head(tmp_path, family, arch, kwargs):
    torch.manual_seed(0)
    source = Holder(family, arch, **kwargs).net
    randomize_bn(source)
    path = save(source.state_dict(), tmp_path / f"{arch}.safetensors")
    fast, slow = both_paths(path, family, arch, {**kwargs, "num_classes": 7})
    assert fast.weightport_report.path == "assign"
    assert slow.weightport_report.path == "copy"
    assert fast.weightport_report.reinitialized  # the 7-class head
    sf, ss = fast.state_dict(), slow.state_dict()
    assert list(sf) == list(ss)
    for key in sf:
        assert torch.equal(sf[key], ss[key]), key
        assert sf[key].dtype == ss[key].dtype
    assert not any(t.is_meta for t in list(fast.parameters()) + list(fast.buffers()))
    # The weights are bit-identical; the outputs are equal up to rounding only. The fast path's
    # tensors live in the file's pages, the slow path's in fresh allocations, and CPU kernels may
    # take another (equally correct) code path on data at another memory alignment: bit-equal
    # outputs are not guaranteed on every CPU or thread count (measured: 6e-7 on one AMD EPYC).
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), slow(x), rtol=1e-5, atol=1e-5)


def test_fast_path_trains(tmp_path):
    torch.manual_seed(0)
    path = save(torchvision.models.resnet18().state_dict(), tmp_path / "r.pth")
    model = Holder.from_pretrained(path, "torchvision", "resnet18", num_classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(torch.randn(2, 3, 32, 32)).sum()
    loss.backward()
    before = model.net.conv1.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.net.conv1.weight)
    assert all(p.requires_grad for p in model.parameters())


class WithBuffer(PretrainedMixin, nn.Module):
    """A non-persistent buffer computed in __init__ that nothing can rebuild on meta."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("grid", torch.arange(4.0), persistent=False)


class WithRebuildableBuffer(PretrainedMixin, nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.pos = Positions()


class Positions(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("grid", torch.arange(4.0), persistent=False)

    def init_non_persistent_buffers(self):
        self.grid.copy_(torch.arange(4.0))


def test_non_persistent_buffers_fall_back_to_the_slow_path_and_say_so(tmp_path):
    path = save(nn.Linear(4, 4).state_dict(), tmp_path / "fc.pt")
    model = WithBuffer.from_pretrained(path, into="fc")
    report = model.weightport_report
    assert report.path == "copy" and "grid" in report.fallback_reason
    assert torch.equal(model.grid, torch.arange(4.0))
    assert "path: copy (fast path unavailable" in str(model.weightport_report)


def test_non_persistent_buffers_with_a_rebuild_hook_stay_on_the_fast_path(tmp_path):
    path = save(nn.Linear(4, 4).state_dict(), tmp_path / "fc.pt")
    model = WithRebuildableBuffer.from_pretrained(path, into="fc")
    assert model.weightport_report.path == "assign"
    assert torch.equal(model.pos.grid, torch.arange(4.0))


class Tied(PretrainedMixin, nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4, bias=False)
        self.b = nn.Linear(4, 4, bias=False)
        self.b.weight = self.a.weight


def test_tied_parameters_fall_back_and_stay_tied(tmp_path):
    path = save({"a.weight": torch.ones(4, 4), "b.weight": torch.ones(4, 4)}, tmp_path / "t.pt")
    model = Tied.from_pretrained(path)
    assert model.weightport_report.path == "copy" and "tied parameters" in model.weightport_report.fallback_reason
    assert model.a.weight is model.b.weight and torch.equal(model.a.weight, torch.ones(4, 4))


class NoReset(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))


class Custom(PretrainedMixin, nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.extra = NoReset()


def test_uncovered_weights_without_an_init_fall_back(tmp_path):
    path = save(nn.Linear(3, 3).state_dict(), tmp_path / "fc.pt")
    model = Custom.from_pretrained(path, into="fc", strict=False)
    assert model.weightport_report.path == "copy" and "no reset_parameters" in model.weightport_report.fallback_reason
    assert torch.equal(model.extra.scale, torch.ones(3))
    assert model.weightport_report.missing == ["extra.scale"]


def test_constructor_that_needs_real_tensors_falls_back(tmp_path):
    class NeedsValues(PretrainedMixin, nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.norm = float(self.fc.weight.norm())  # reading a meta tensor's value fails

    path = save(nn.Linear(2, 2).state_dict(), tmp_path / "fc.pt")
    model = NeedsValues.from_pretrained(path, into="fc")
    assert model.weightport_report.path == "copy" and "meta device" in model.weightport_report.fallback_reason


class WithMetric(PretrainedMixin, nn.Module):
    """A LightningModule-style model holding a torchmetrics metric (tensor state outside buffers)."""

    def __init__(self):
        super().__init__()
        import torchmetrics

        self.fc = nn.Linear(4, 3)
        self.accuracy = torchmetrics.classification.MulticlassAccuracy(num_classes=3, average="micro")


def test_tensor_attributes_outside_buffers_fall_back_and_work(tmp_path):
    path = save(nn.Linear(4, 3).state_dict(), tmp_path / "fc.pt")
    model = WithMetric.from_pretrained(path, into="fc")
    report = model.weightport_report
    assert report.path == "copy" and "outside its parameters and buffers" in report.fallback_reason
    model.accuracy.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))
    assert abs(float(model.accuracy.compute()) - 2 / 3) < 1e-6
