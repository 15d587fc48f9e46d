"""A load runs with the cyclic garbage collector paused, and leaves it as it found it, on success or failure."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

import weightport
from weightport.errors import StrictLoadError
from weightport.loading.api import build_and_load


class _Watched(nn.Module):
    """Records whether the collector was enabled each time weightport read its state dict."""

    def __init__(self, out: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(4, out)
        self.seen: list[bool] = []
        self._register_state_dict_hook(lambda *_: self.seen.append(gc.isenabled()))


@pytest.fixture
def collector_restored():
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


@pytest.mark.parametrize("call", ["plan", "load_weights", "build_and_load"])
def test_the_collector_is_paused_during_a_load_and_enabled_after(tmp_path, collector_restored, call) -> None:
    torch.save(_Watched().state_dict(), tmp_path / "w.pt")
    gc.enable()
    model = _Watched()
    if call == "build_and_load":
        model, _ = build_and_load(lambda: model, tmp_path / "w.pt")
    else:
        getattr(weightport, call)(model, tmp_path / "w.pt")
    assert model.seen and not any(model.seen)
    assert gc.isenabled()


def test_a_failed_load_enables_the_collector_again(tmp_path, collector_restored) -> None:
    torch.save({**_Watched().state_dict(), "extra.weight": torch.ones(2)}, tmp_path / "w.pt")
    gc.enable()
    model = _Watched()
    with pytest.raises(StrictLoadError):
        weightport.load_weights(model, tmp_path / "w.pt")
    assert model.seen and not any(model.seen)
    assert gc.isenabled()


def test_a_collector_the_caller_disabled_stays_disabled(tmp_path, collector_restored) -> None:
    torch.save(_Watched().state_dict(), tmp_path / "w.pt")
    gc.disable()
    weightport.load_weights(_Watched(), tmp_path / "w.pt")
    assert not gc.isenabled()
