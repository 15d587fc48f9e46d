"""Helpers for the layout tests: load one model's weights into another using only the layout units."""

from __future__ import annotations

import pytest
import torch

from weightport.layout.fit.base import FitContext, fitters
from weightport.layout.roles import find_roles
from weightport.layout.spec import specs_of
from weightport.layout.structural import Alignment, align


def _load_aligned(
    state: dict[str, torch.Tensor], target: torch.nn.Module, *, skip_shape_mismatch: bool = False
) -> tuple[Alignment, list[str]]:
    """Align ``state`` onto ``target`` structurally, adapt what the built-in fitters know, load strictly.

    Returns the alignment and one line per adapted tensor. Pairs whose shapes still differ are left
    out (re-initialised) when ``skip_shape_mismatch``, else loading fails as torch would.
    """
    result = align(specs_of(state), specs_of(target.state_dict()))
    result.raise_for_divergence()
    target_state = target.state_dict()
    roles = find_roles(target, [(p.source_key, p.target_key) for p in result.pairs], heads=())
    new, adapted = {}, []
    for pair in result.pairs:
        tensor, shape = state[pair.source_key], tuple(target_state[pair.target_key].shape)
        if tuple(tensor.shape) != shape:
            ctx = FitContext(pair.source_key, pair.target_key, shape, module=target, roles=roles.of(pair.target_key))
            fitter = next((a for a in fitters() if a.applies(tensor, ctx)), None)
            if fitter is not None:
                adapted.append(f"{pair.target_key}: {fitter.describe(tensor, ctx)}")
                tensor = fitter.adapt(tensor, ctx)
            elif skip_shape_mismatch:
                continue
        new[pair.target_key] = tensor
    _, unexpected = target.load_state_dict(new, strict=not skip_shape_mismatch)
    assert not unexpected
    return result, adapted


def _randomise_norm_statistics(module: torch.nn.Module) -> None:
    """Give batch norms non-trivial statistics and affine parameters, so a wrong pairing shows."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
                sub.running_mean.normal_(0, 0.1)
                sub.running_var.uniform_(0.5, 2.0)
                sub.weight.uniform_(0.5, 1.5)
                sub.bias.normal_(0, 0.1)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def load_aligned():
    """``load_aligned(state, target, skip_shape_mismatch=False) -> (alignment, adapted lines)``."""
    return _load_aligned


@pytest.fixture
def randomise_norm_statistics():
    """``randomise_norm_statistics(module)``: non-trivial batch-norm statistics and affine parameters."""
    return _randomise_norm_statistics
