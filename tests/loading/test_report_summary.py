"""The report's short summary names each adaptation whole, grouped by what was done."""

from __future__ import annotations

import torch
from torch import nn

import weightport


class Flat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 3)


def test_reshape_lines_show_both_shapes_and_the_count(tmp_path):
    src = Flat()
    sd = {k: (v.reshape(*v.shape, 1, 1) if v.dim() == 2 else v) for k, v in src.state_dict().items()}
    torch.save(sd, tmp_path / "w.pt")
    target = Flat()
    report = weightport.load_weights(target, tmp_path / "w.pt")
    assert torch.equal(target.a.weight, src.a.weight) and torch.equal(target.b.weight, src.b.weight)
    lines = [line for line in str(report).splitlines() if "adapted:" in line]
    assert lines == ["  adapted: reshape (3, 4, 1, 1)->(3, 4) (2 tensors)"], str(report)
