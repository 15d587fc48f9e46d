"""Building the source architecture without drawing the initialisation the checkpoint replaces."""

import torch
import torchvision
from torch import nn

from weightport.loading.equivalence import _reference
from weightport.loading.noinit import build_without_init, uninitialised_left


def test_random_draws_are_skipped_and_computed_values_kept():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 4)
            nn.init.trunc_normal_(self.linear.weight, std=0.02)
            self.register_buffer("index", torch.arange(4), persistent=False)
            self.register_buffer("ones", torch.ones(3).mul_(2), persistent=False)

    rng = torch.get_rng_state()
    model, skipped = build_without_init(Net)
    assert torch.equal(torch.get_rng_state(), rng)  # nothing drawn
    assert torch.equal(model.index, torch.arange(4)) and torch.equal(model.ones, torch.full((3,), 2.0))
    assert model.linear.weight.untyped_storage().data_ptr() in skipped
    assert uninitialised_left(model, skipped) is None  # what is left uninitialised is what a load replaces


def test_a_buffer_the_checkpoint_does_not_hold_left_uninitialised_is_found():
    class Projection(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 4)
            self.register_buffer("random_features", torch.empty(4, 4).normal_(), persistent=False)

    model, skipped = build_without_init(Projection)
    assert uninitialised_left(model, skipped) == "random_features"


def test_the_source_architecture_is_built_normally_when_a_skipped_draw_would_stay():
    class Projection(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 4)
            torch.manual_seed(0)
            self.register_buffer("random_features", torch.empty(4, 4).normal_(), persistent=False)

    state = Projection().state_dict()
    reference = _reference(Projection, state)
    assert torch.equal(reference.random_features, Projection().random_features)  # drawn, as its build does
    assert torch.equal(reference.linear.weight, state["linear.weight"])


def test_a_model_that_cannot_be_built_on_meta_gets_the_checkpoint_without_an_initialisation():
    # torchvision's RegNet computes its widths with .tolist(): no meta build; built on the CPU, draws skipped
    torch.manual_seed(0)
    state = torchvision.models.regnet_y_400mf().state_dict()
    reference = _reference(torchvision.models.regnet_y_400mf, state)
    got = reference.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())
