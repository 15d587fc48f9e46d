"""The finite check (``check_finite=True``, off by default) reads each value once and refuses NaN/Inf in
every float dtype and path; by default values are not read, and the report says so; a cast that would
overflow is refused either way."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import weightport
from weightport.errors import NonFiniteWeightsError
from weightport.loading.api import build_and_load


def _net(dtype: torch.dtype) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)).to(dtype)


def _with_nan(tmp_path, dtype: torch.dtype = torch.float32, bad: float = float("nan")):
    state = {k: v.clone() for k, v in _net(dtype).state_dict().items()}
    state["1.weight"][1, 2] = bad
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    return path, state


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_value_is_refused_in_every_float_dtype(tmp_path, dtype, bad):
    path, _ = _with_nan(tmp_path, dtype, bad)
    model = _net(dtype)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteWeightsError, match=r"1\.weight"):
        weightport.load_weights(model, path, check_finite=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    with pytest.raises(NonFiniteWeightsError, match=r"1\.weight"):
        build_and_load(lambda: _net(dtype), path, check_finite=True)


def test_by_default_values_are_not_read_and_the_report_says_so(tmp_path):
    path, state = _with_nan(tmp_path)
    model = _net(torch.float32)
    report = weightport.load_weights(model, path)  # the default: NaN/Inf loaded as the file holds them
    assert report.finite_checked is False and report.to_dict()["finite_checked"] is False
    assert "NaN/Inf not checked" in str(report)
    assert torch.isnan(model.state_dict()["1.weight"][1, 2])
    built, report = build_and_load(lambda: _net(torch.float32), path)
    assert report.path == "assign" and not report.finite_checked
    assert all(torch.allclose(state[k], v, rtol=0, atol=0, equal_nan=True) for k, v in built.state_dict().items())


def test_the_default_does_not_read_the_values(tmp_path, monkeypatch):
    import weightport.loading.apply as apply
    import weightport.loading.planner as planner

    read = []

    def counting(tensor):
        read.append(tensor.shape)
        return True

    monkeypatch.setattr(apply, "all_finite", counting)
    monkeypatch.setattr(planner, "all_finite", counting)
    path, _ = _with_nan(tmp_path)
    build_and_load(lambda: _net(torch.float32), path)
    weightport.load_weights(_net(torch.float32), path)
    assert read == []
    weightport.load_weights(_net(torch.float32), path, check_finite=True)
    assert len(read) == 4  # each tensor once


def test_finite_weights_load_checked_and_the_report_says_so(tmp_path):
    state = {k: v.clone() for k, v in _net(torch.float32).state_dict().items()}
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    model, report = build_and_load(lambda: _net(torch.float32), path, check_finite=True)
    assert report.path == "assign" and report.finite_checked
    assert "every value checked finite" in str(report)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_a_value_that_overflows_the_model_dtype_is_refused_with_or_without_the_check(tmp_path):
    state = {k: v.clone() for k, v in _net(torch.float32).state_dict().items()}
    state["0.weight"][0, 0] = 1e30  # finite in float32, infinite once cast to float16
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    for check in (False, True):
        model = _net(torch.float16)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(NonFiniteWeightsError, match=r"overflow.*0\.weight"):
            weightport.load_weights(model, path, check_finite=check, lossy_cast="allow")
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        with pytest.raises(NonFiniteWeightsError, match=r"overflow"):
            build_and_load(lambda: _net(torch.float16), path, check_finite=check, lossy_cast="allow")


def test_nan_already_in_the_checkpoint_is_no_overflow_when_unchecked(tmp_path):
    state = {k: v.clone() for k, v in _net(torch.float32).state_dict().items()}
    state["0.weight"][0, 0] = float("nan")
    state["0.weight"][0, 1] = float("inf")
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    model = _net(torch.float16)
    weightport.load_weights(model, path, lossy_cast="allow")  # NaN and inf stay NaN and inf, as in the file
    weight = model.state_dict()["0.weight"]
    assert torch.isnan(weight[0, 0]) and torch.isinf(weight[0, 1])
    state["0.weight"][0, 2] = 1e30  # and a finite value that overflows beside them is still refused
    save_file(state, str(path))
    with pytest.raises(NonFiniteWeightsError, match=r"0\.weight"):
        weightport.load_weights(_net(torch.float16), path, lossy_cast="allow")
