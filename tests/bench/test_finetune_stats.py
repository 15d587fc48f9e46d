"""Intervals over seeds and the paired comparison against scratch."""

from __future__ import annotations

import math

import pytest

from weightport_bench.finetune.stats import paired, t_interval, t_quantile


def test_t_interval_uses_students_t_not_the_normal() -> None:
    assert t_quantile(2) == pytest.approx(4.3027, abs=1e-4)  # 3 seeds: far wider than 1.96
    iv = t_interval([0.80, 0.84, 0.88])
    assert iv is not None and iv.n == 3 and iv.mean == pytest.approx(0.84)
    assert iv.std == pytest.approx(0.04)
    assert iv.high - iv.mean == pytest.approx(4.3027 * 0.04 / math.sqrt(3), rel=1e-4)
    assert iv.mean - iv.low == pytest.approx(iv.high - iv.mean)


def test_one_seed_has_a_mean_and_no_interval() -> None:
    iv = t_interval([0.5])
    assert iv is not None and iv.mean == 0.5 and iv.low is None and iv.high is None and iv.std is None
    assert t_interval([]) is None


def test_paired_by_seed_removes_what_the_seeds_share() -> None:
    # Seed effects are large, but the source beats scratch by 0.10 to 0.12 on every seed.
    source = {0: 0.60, 1: 0.91, 2: 0.75}
    scratch = {0: 0.50, 1: 0.80, 2: 0.63}
    result = paired(source, scratch, names=("a", "scratch", "full"))
    assert result is not None and result.seeds == (0, 1, 2)
    assert result.difference.mean == pytest.approx(0.11) and result.difference.low > 0
    assert result.verdict == "better"
    # Unpaired, the two cells' intervals overlap widely: the pairing is what makes it clear.
    a, b = t_interval(list(source.values())), t_interval(list(scratch.values()))
    assert a.low < b.high


def test_paired_verdicts_worse_unclear_and_only_common_seeds() -> None:
    assert paired({0: 0.1, 1: 0.2, 2: 0.15}, {0: 0.5, 1: 0.6, 2: 0.55}, names=("a", "s", "p")).verdict == "worse"
    unclear = paired({0: 0.5, 1: 0.7, 2: 0.4}, {0: 0.6, 1: 0.5, 2: 0.5}, names=("a", "s", "p"))
    assert unclear.verdict == "unclear" and unclear.difference.low < 0 < unclear.difference.high
    one = paired({0: 0.9, 5: 0.1}, {0: 0.5, 7: 0.2}, names=("a", "s", "p"))
    assert one.seeds == (0,) and one.verdict == "unclear" and one.difference.low is None
    assert paired({1: 0.5}, {2: 0.5}, names=("a", "s", "p")) is None
