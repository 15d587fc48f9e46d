"""Weight fingerprints and strategy choice (the 2-process run itself is in test_finetune_ddp.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightport.errors import UsageError
from weightport_bench.finetune.dist import build_strategy, weights_fingerprint


def test_fingerprint_sees_every_weight_and_buffer() -> None:
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    b = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    b.load_state_dict(a.state_dict())
    assert weights_fingerprint(a) == weights_fingerprint(b)
    with torch.no_grad():
        b[0].weight[0, 0, 0, 0] += 1e-6
    assert weights_fingerprint(a) != weights_fingerprint(b)
    b.load_state_dict(a.state_dict())
    b[1].running_mean.fill_(0.1)
    assert weights_fingerprint(a) != weights_fingerprint(b)


def test_one_device_needs_no_distributed_strategy() -> None:
    assert build_strategy("ddp", devices=1, unfreezes=False) == "auto"


def test_ddp_tolerates_an_unused_body_only_when_it_unfreezes() -> None:
    assert build_strategy("ddp", devices=2, unfreezes=True)._ddp_kwargs["find_unused_parameters"] is True
    assert build_strategy("ddp", devices=2, unfreezes=False)._ddp_kwargs["find_unused_parameters"] is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without GPUs")
def test_fsdp_without_gpus_is_refused_with_a_hint() -> None:
    with pytest.raises(UsageError, match="fsdp needs CUDA GPUs") as err:
        build_strategy("fsdp", devices=2, unfreezes=False)
    assert "--strategy ddp" in str(err.value)


def test_unknown_strategy_lists_the_choices() -> None:
    with pytest.raises(UsageError, match="unknown strategy 'horovod'"):
        build_strategy("horovod", devices=2, unfreezes=False)
