"""A meta build skips initialising values (meta tensors have none) and keeps the model's structure exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from weightport.loading.fast import build_on_meta
from weightport.loading.meta_init import VALUE_OP_NAMES, skip_meta_init


class _Initialised(nn.Module):
    """Initialisation in every style: nn.init, tensor methods, a trunc-normal, and a buffer made on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 4)
        self.pos = nn.Parameter(torch.zeros(1, 5, 8))
        self.register_buffer("table", torch.arange(6, device="cpu").reshape(2, 3).float().mul_(2.0), persistent=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out")
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.fc.weight.data.uniform_(-0.1, 0.1)
        self.fc.bias.data.zero_().add_(0.5)

    def init_non_persistent_buffers(self) -> None:
        self.table = torch.arange(6).reshape(2, 3).float().mul_(2.0)


def _structure(model: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype, tuple[int, ...], str]]:
    state = model.state_dict(keep_vars=True)
    return [(k, tuple(v.shape), v.dtype, v.stride(), v.device.type) for k, v in state.items()]


def test_the_structure_of_a_meta_build_is_the_same_with_and_without_initialisation() -> None:
    with torch.device("meta"):
        plain = _Initialised()
    with torch.device("meta"), skip_meta_init():
        skipped = _Initialised()
    assert _structure(skipped) == _structure(plain)
    assert [type(m) for m in skipped.modules()] == [type(m) for m in plain.modules()]
    assert all(p.requires_grad for p in skipped.parameters())


def test_only_value_writes_to_meta_tensors_are_skipped() -> None:
    with torch.device("meta"), skip_meta_init():
        meta = torch.empty(4, 3)
        assert meta.normal_() is meta and meta.mul_(2.0) is meta and meta.copy_(torch.empty(4, 3)) is meta
        assert meta.t_().shape == (3, 4)  # shape-changing in-place operations still run
        assert meta.add(1.0).shape == (3, 4)  # and out-of-place ones
    cpu = torch.empty(3, device="cpu")
    with torch.device("meta"), skip_meta_init():
        cpu.fill_(2.0)
        made_on_cpu = torch.arange(3, device="cpu").float().mul_(3.0)
    assert cpu.tolist() == [2.0, 2.0, 2.0]
    assert made_on_cpu.tolist() == [0.0, 3.0, 6.0]


@pytest.mark.parametrize("name", VALUE_OP_NAMES)
def test_every_skipped_operation_keeps_shape_dtype_and_strides(name: str) -> None:
    # What the skip relies on: the operation, run for real on meta, changes no metadata of its tensor.
    tensor = torch.empty(4, 6, device="meta").t()
    before = (tensor.shape, tensor.dtype, tensor.stride())
    method = getattr(tensor, name)
    args = {"fill_": (1.0,), "clamp_": (0.0, 1.0), "clamp_min_": (0.0,), "clamp_max_": (1.0,), "mul_": (2.0,),
            "add_": (1.0,), "sub_": (1.0,), "div_": (2.0,), "geometric_": (0.5,),
            "copy_": (torch.empty(6, 4, device="meta"),)}
    result = method(*args.get(name, ()))
    assert result is tensor
    assert (tensor.shape, tensor.dtype, tensor.stride()) == before


class _Seen(TorchFunctionMode):
    """Records the in-place value operations on meta tensors that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.meta_writes: list[str] = []
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.calls += 1
        name = getattr(func, "__name__", "")
        if name in VALUE_OP_NAMES and args and getattr(args[0], "is_meta", False):
            self.meta_writes.append(name)
        return func(*args, **(kwargs or {}))


def test_build_on_meta_skips_initialisation_and_the_rng_is_untouched() -> None:
    with _Seen() as plain_seen, torch.device("meta"):
        _Initialised()
    assert plain_seen.meta_writes  # a plain meta build initialises (the check below can fail)
    state = torch.get_rng_state()
    with _Seen() as seen:
        model = build_on_meta(_Initialised)
    assert seen.meta_writes == [] and seen.calls > 0
    assert torch.equal(torch.get_rng_state(), state)
    assert all(t.is_meta for t in model.parameters())
    assert not model.table.is_meta  # the constructor's own CPU buffer is made as usual
    assert model.table.tolist() == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]
