"""A pairing of same-shaped sibling modules is proven or refused (issue 12, deliverable 1).

Two "libraries" implement one block: library A registers the shortcut before the main branch,
library B the main branch (``conv``) before the shortcut (``downsample``). Both 1×1 convolutions
have the same shapes, so pairing them by registration order would swap them silently.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightport
from weightport.errors import AmbiguousMappingError


class BlockA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(4, 8, 1)
        self.main = nn.Conv2d(4, 8, 1)
        self.post = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.post(torch.relu(self.main(x)))


class BlockA2(BlockA):
    """Library A with the main branch registered first: the pairing by order happens to be right."""

    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.main = nn.Conv2d(4, 8, 1)
        self.shortcut = nn.Conv2d(4, 8, 1)
        self.post = nn.Conv2d(8, 8, 3, padding=1)


class BlockB(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 1)
        self.conv_post = nn.Conv2d(8, 8, 3, padding=1)
        self.downsample = nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_post(torch.relu(self.conv(x))) + self.downsample(x)


class NetA(nn.Module):
    def __init__(self, block: type[nn.Module] = BlockA) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.block = block()
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.act(self.stem(x))).mean((2, 3)))


class NetB(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), BlockB())
        self.classifier = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


def _saved(tmp_path, model: nn.Module) -> str:
    torch.manual_seed(1)
    path = tmp_path / "a.pt"
    torch.save(model.state_dict(), path)
    return str(path)


def _same_outputs(a: nn.Module, b: nn.Module) -> bool:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.allclose(a.eval()(x), b.eval()(x), atol=1e-6)


def test_swapped_siblings_of_an_unknown_architecture_are_refused_naming_both_sides(tmp_path):
    source = NetA()
    path = _saved(tmp_path, source)
    target = NetB()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(AmbiguousMappingError) as info:
        weightport.load_weights(target, path)
    message = str(info.value)
    for name in ("block.shortcut", "block.main", "features.2.conv", "features.2.downsample", "rename="):
        assert name in message
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # untouched


def test_the_hint_corrected_where_order_is_wrong_loads_exactly(tmp_path):
    source = NetA()
    path = _saved(tmp_path, source)
    with pytest.raises(AmbiguousMappingError) as info:
        weightport.load_weights(NetB(), path)
    by_order = info.value.rename  # type: ignore[attr-defined]
    swap = {"features.2.conv.": "features.2.downsample.", "features.2.downsample.": "features.2.conv."}
    rules = {}
    for pattern, key in by_order.items():
        prefix = next(p for p in swap if key.startswith(p))
        rules[pattern] = swap[prefix] + key[len(prefix):]
    target = NetB()
    weightport.load_weights(target, path, rename=rules)
    assert _same_outputs(source, target)


def test_the_hint_followed_as_given_loads_exactly_when_order_is_right(tmp_path):
    source = NetA(BlockA2)
    path = _saved(tmp_path, source)
    with pytest.raises(AmbiguousMappingError) as info:
        weightport.load_weights(NetB(), path)
    target = NetB()
    weightport.load_weights(target, path, rename=info.value.rename)  # type: ignore[attr-defined]
    assert _same_outputs(source, target)


def test_with_the_source_architecture_known_the_dataflow_proves_the_pairing(tmp_path):
    source = NetA()
    path = _saved(tmp_path, source)
    target = NetB()
    report = weightport.load_weights(target, path, verify=NetA)
    assert _same_outputs(source, target)
    record = next(r for r in report.loaded if r.target_key == "features.2.downsample.weight")
    assert record.source_key == "block.shortcut.weight"
    assert "dataflow" in " ".join(record.ops)
    assert record.confidence is not None and record.confidence < 0.95  # never as sure as a unique shape


class LayerA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 8)
        self.ln_2 = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln_2(x + self.fc(self.ln_1(x)))


class LayerB(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(8)
        self.lin = nn.Linear(8, 8)
        self.norm2 = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(x + self.lin(self.norm1(x)))


def test_a_sequence_of_identical_blocks_of_an_unknown_architecture_loads_exactly(tmp_path):
    torch.manual_seed(0)
    source = nn.Sequential(*[LayerA() for _ in range(4)])
    for p in source.parameters():
        nn.init.normal_(p)
    path = tmp_path / "seq.pt"
    torch.save({f"layers.{k}": v for k, v in source.state_dict().items()}, path)
    target = nn.Module()
    target.blocks = nn.ModuleList([LayerB() for _ in range(4)])
    report = weightport.load_weights(target, str(path))
    x = torch.randn(3, 8)
    y = x
    for block in target.blocks:
        y = block(y)
    with torch.no_grad():
        assert torch.allclose(source(x), y, atol=1e-6)
    reasons = " ".join(op for r in report.loaded for op in r.ops)
    assert "paired by their names" in reasons or "position in a sequence" in reasons


class DiffA(nn.Module):
    """``a(x) - b(x)``: both convolutions read the same input and feed the same op, so the dataflow
    cannot tell them apart."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.Conv2d(4, 8, 1)
        self.b = nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.a(x) - self.b(x)


class DiffB(nn.Module):
    """The same computation, with the subtrahend registered first."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, padding=1)
        self.minus = nn.Conv2d(4, 8, 1)
        self.plus = nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv0(x)
        return self.plus(x) - self.minus(x)


def test_what_the_dataflow_cannot_decide_stands_on_the_verification_which_refuses_a_wrong_order(tmp_path):
    from weightport.errors import VerificationError

    path = _saved(tmp_path, DiffA())
    target = DiffB()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(VerificationError):
        weightport.load_weights(target, path, verify=DiffA)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    with pytest.raises(AmbiguousMappingError):
        weightport.load_weights(target, path, verify=False)


class DiffC(nn.Module):
    """DiffA's computation under other names, in the same order."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, padding=1)
        self.plus = nn.Conv2d(4, 8, 1)
        self.minus = nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv0(x)
        return self.plus(x) - self.minus(x)


def test_a_pairing_by_order_that_the_verification_confirms_is_reported_as_such(tmp_path):
    source = DiffA()
    path = _saved(tmp_path, source)
    target = DiffC()
    report = weightport.load_weights(target, path, verify=DiffA)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(source(x), target(x), atol=1e-6)
    record = next(r for r in report.loaded if r.target_key == "plus.weight")
    assert "verification" in " ".join(record.ops) and record.confidence is not None and record.confidence <= 0.7
