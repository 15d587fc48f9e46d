"""Uncertainty over seeds: a t-interval per cell and a paired comparison against a baseline.

With a handful of seeds the normal approximation is too narrow (for 3 seeds the 95 % t quantile is
4.30, not 1.96), so every interval here is Student's t with ``n - 1`` degrees of freedom. The paired
comparison takes the per-seed differences (source minus baseline, the same seed on both sides: the
same data order, augmentation draws and head initialisation) and puts a t-interval on their mean,
which removes the seed-to-seed variation the two share.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: Confidence level of every interval.
LEVEL = 0.95


def t_quantile(df: int, level: float = LEVEL) -> float:
    """The two-sided Student's t quantile for ``df`` degrees of freedom (``t_{(1+level)/2, df}``)."""
    from scipy.stats import t

    return float(t.ppf((1 + level) / 2, df))


@dataclass(frozen=True)
class Interval:
    """A mean over seeds and its t-interval.

    Attributes:
        n: Number of values.
        mean: Their mean.
        std: Sample standard deviation (``None`` for one value).
        low: Lower end of the interval (``None`` for one value: no interval).
        high: Upper end of the interval (``None`` for one value).
        level: Confidence level.
    """

    n: int
    mean: float
    std: float | None
    low: float | None
    high: float | None
    level: float = LEVEL

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (``None`` without an interval)."""
        return None if self.high is None else self.high - self.mean

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return asdict(self)


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval | None:
    """Mean and two-sided ``level`` t-interval of ``values`` (``None`` when there are none)."""
    n = len(values)
    if n == 0:
        return None
    mean = statistics.fmean(values)
    if n == 1:
        return Interval(1, mean, None, None, None, level)
    std = statistics.stdev(values)
    half = t_quantile(n - 1, level) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half, level)


@dataclass(frozen=True)
class Paired:
    """``source`` minus ``baseline``, paired by seed.

    Attributes:
        source: The source compared.
        baseline: What it is compared with (``scratch``).
        protocol: The protocol both ran under.
        seeds: The seeds both ran with (the pairs).
        difference: Mean difference and its t-interval (metric units, e.g. top-1 as a fraction).
        verdict: ``better``, ``worse`` (the interval excludes 0) or ``unclear`` (it contains 0, or
            there is a single pair and so no interval).
    """

    source: str
    baseline: str
    protocol: str
    seeds: tuple[int, ...]
    difference: Interval
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        out = asdict(self)
        out["seeds"] = list(self.seeds)
        return out


def paired(
    source: Mapping[int, float], baseline: Mapping[int, float], *, names: tuple[str, str, str], level: float = LEVEL
) -> Paired | None:
    """The paired comparison of two cells given ``{seed: value}`` each; ``None`` without a common seed.

    Args:
        source: Values of the source, by seed.
        baseline: Values of the baseline, by seed.
        names: ``(source, baseline, protocol)`` for the record.
        level: Confidence level.
    """
    seeds = tuple(sorted(set(source) & set(baseline)))
    diff = t_interval([source[s] - baseline[s] for s in seeds], level)
    if diff is None:
        return None
    if diff.low is not None and diff.low > 0:
        verdict = "better"
    elif diff.high is not None and diff.high < 0:
        verdict = "worse"
    else:
        verdict = "unclear"
    return Paired(names[0], names[1], names[2], seeds, diff, verdict)
