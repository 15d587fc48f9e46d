"""The finite check reads each value once, and still refuses NaN/Inf in every float dtype and path."""

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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_value_is_refused_in_every_float_dtype(tmp_path, dtype, bad):
    state = {k: v.clone() for k, v in _net(dtype).state_dict().items()}
    state["1.weight"][1, 2] = bad
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    model = _net(dtype)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteWeightsError, match=r"1\.weight"):
        weightport.load_weights(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    with pytest.raises(NonFiniteWeightsError, match=r"1\.weight"):
        build_and_load(lambda: _net(dtype), path)


def test_finite_weights_load_and_an_opt_out_loads_non_finite_ones(tmp_path):
    state = {k: v.clone() for k, v in _net(torch.float32).state_dict().items()}
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    model, report = build_and_load(lambda: _net(torch.float32), path)
    assert report.path == "assign"
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    state["0.bias"][0] = float("nan")
    save_file(state, str(path))
    model = _net(torch.float32)
    weightport.load_weights(model, path, check_finite=False)
    assert torch.isnan(model.state_dict()["0.bias"][0])


def test_a_value_that_overflows_the_model_dtype_is_refused(tmp_path):
    state = {k: v.clone() for k, v in _net(torch.float32).state_dict().items()}
    state["0.weight"][0, 0] = 1e30  # finite in float32, infinite once cast to float16
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    with pytest.raises(NonFiniteWeightsError, match=r"0\.weight"):
        weightport.load_weights(_net(torch.float16), path)
