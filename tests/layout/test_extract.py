import pytest
import torch

from weightport.errors import UnsupportedFormatError
from weightport.layout.extract import extract_state_dict

W = {"fc.weight": torch.ones(2, 2), "fc.bias": torch.zeros(2)}


def test_flat_state_dict_is_taken_as_is():
    out = extract_state_dict(dict(W))
    assert set(out.tensors) == set(W) and out.container is None


@pytest.mark.parametrize("container", ["state_dict", "model_state_dict", "model", "module"])
def test_container_is_found_and_training_state_dropped(container):
    out = extract_state_dict({container: dict(W), "optimizer": {"state": {}}, "epoch": 3})
    assert set(out.tensors) == set(W)
    assert out.container == container
    assert {"optimizer", "epoch"} <= set(out.dropped)


def test_regular_weights_win_over_ema_by_default_with_a_note():
    ema = {k: v + 1 for k, v in W.items()}
    out = extract_state_dict({"state_dict": dict(W), "state_dict_ema": ema})
    assert torch.equal(out.tensors["fc.weight"], W["fc.weight"])
    assert any("ema=True" in n for n in out.notes)


def test_ema_true_takes_the_ema_weights():
    ema = {k: v + 1 for k, v in W.items()}
    out = extract_state_dict({"state_dict": dict(W), "model_ema": ema}, ema=True)
    assert out.container == "model_ema"
    assert torch.equal(out.tensors["fc.weight"], W["fc.weight"] + 1)


def test_ema_true_without_ema_weights_is_an_error():
    with pytest.raises(UnsupportedFormatError, match="no EMA weights"):
        extract_state_dict({"state_dict": dict(W)}, ema=True)


def test_only_ema_weights_are_used_when_nothing_else_exists():
    out = extract_state_dict({"state_dict_ema": dict(W), "epoch": 1})
    assert out.container == "state_dict_ema"


def test_nested_dicts_are_flattened_with_dots():
    out = extract_state_dict({"encoder": {"layer": {"weight": torch.ones(1)}}, "head": {"bias": torch.ones(1)}})
    assert set(out.tensors) == {"encoder.layer.weight", "head.bias"}


def test_no_tensors_is_a_clear_error():
    with pytest.raises(UnsupportedFormatError, match="no tensors found") as info:
        extract_state_dict({"epoch": 1, "notes": "x"})
    assert isinstance(info.value, ValueError)


def test_a_whole_object_is_refused():
    with pytest.raises(UnsupportedFormatError, match="state_dict"):
        extract_state_dict([torch.ones(1)])
