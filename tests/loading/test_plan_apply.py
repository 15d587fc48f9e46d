"""A plan is data (printable, comparable, JSON); ``weightport.apply`` carries out one made by ``plan``."""

import copy
import dataclasses
import json

import pytest
import torch
from torch import nn

import weightport
from weightport.errors import UsageError
from weightport.report import LoadPlan


def _net(out: int = 3) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, out))


def test_apply_carries_out_the_plan_and_reports_it(tmp_path):
    source = _net()
    torch.save({"state_dict": {"module." + k: v for k, v in source.state_dict().items()}}, tmp_path / "w.pt")
    target = _net()
    the_plan = weightport.plan(target, tmp_path / "w.pt")
    assert not torch.equal(target[0].weight, source[0].weight)  # a dry run
    report = weightport.apply(the_plan, target)
    assert torch.equal(target[0].weight, source[0].weight) and torch.equal(target[2].bias, source[2].bias)
    assert report.path == "copy" and report.fallback_reason is None
    assert [r.target_key for r in report.loaded] == [r.target_key for r in the_plan.loaded]


def test_a_plan_holds_no_callables_and_round_trips_as_data(tmp_path):
    torch.save(_net().state_dict(), tmp_path / "w.pt")
    the_plan = weightport.plan(_net(), tmp_path / "w.pt")
    assert {f.name for f in dataclasses.fields(LoadPlan)}.isdisjoint({"_producers"})
    json.dumps(the_plan.to_dict())
    assert copy.deepcopy(the_plan) == the_plan


def test_a_copied_plan_is_refused_with_a_hint_that_works(tmp_path):
    torch.save(_net().state_dict(), tmp_path / "w.pt")
    target = _net()
    the_plan = weightport.plan(target, tmp_path / "w.pt")
    with pytest.raises(UsageError, match="not made by weightport.plan") as info:
        weightport.apply(copy.deepcopy(the_plan), target)
    assert "weightport.plan(module, source)" in info.value.hint
    weightport.apply(weightport.plan(target, tmp_path / "w.pt"), target)


def test_a_plan_applied_to_a_differently_laid_out_module_is_refused_untouched(tmp_path):
    torch.save(_net().state_dict(), tmp_path / "w.pt")
    the_plan = weightport.plan(_net(), tmp_path / "w.pt")
    other = _net(out=5)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(UsageError, match="laid out differently"):
        weightport.apply(the_plan, other)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_a_failing_plan_is_refused_by_apply_before_the_module_changes(tmp_path):
    torch.save(nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 3)).state_dict(), tmp_path / "w.pt")
    target = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))  # the first layer is no head: a mismatch
    the_plan = weightport.plan(target, tmp_path / "w.pt")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    assert not the_plan.ok
    with pytest.raises(weightport.errors.ShapeMismatchError):
        weightport.apply(the_plan, target)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_the_fallback_reason_is_its_own_field_in_the_report_and_its_json(tmp_path):
    class WithBuffer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.register_buffer("grid", torch.arange(4.0), persistent=False)

    torch.save(nn.Linear(4, 4).state_dict(), tmp_path / "fc.pt")
    from weightport.loading.api import build_and_load

    _, report = build_and_load(WithBuffer, tmp_path / "fc.pt", into="fc")
    assert report.path == "copy" and "grid" in report.fallback_reason
    data = report.to_dict()
    assert data["path"] == "copy" and data["fallback_reason"] == report.fallback_reason
    assert f"path: copy (fast path unavailable: {report.fallback_reason})" in str(report)
