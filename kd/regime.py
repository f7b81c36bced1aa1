"""Protocol v3's regime checks: is the evidence that decides a verdict stable at this budget?

v2 judged convergence by one difference per run (final top-1 minus top-1 at 75% of training), which over
the cosine schedule's tail mostly measures the annealing and the noise of two evaluations. v3 reads the
learning curves of the late phase instead (the last LATE_PHASE of training, evaluated every few epochs,
Recipe.late_eval_every):

- `drift`: for a decisive contrast a - b, per seed the least-squares slope of the contrast over the late
  phase (per unit of training: what a whole schedule more would add), and over seeds its mean with a 95%
  t interval;
- `budget_stable`: the contrast stays on its side of its flip point (0, or a non-inferiority margin) even
  when the far end of that interval goes on for another late phase;
- `plateau`: the same slope for one run alone (a teacher), with the interval of its regression.

The verdict's budget arm (every decisive contrast again at twice the epochs) is the direct test; these say
why it should hold, and are computed on every run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from kd.recipe import LATE_PHASE


@dataclass
class Slope:
    """A change per unit of training (pp over a whole schedule), with its 95% interval and what it rests on
    (seeds for a drift, evaluations for a plateau)."""
    mean: float
    low: float
    high: float
    n: int

    def __str__(self):
        return f"{self.mean:+.2f} pp per schedule [95% CI {self.low:+.2f}, {self.high:+.2f}], n {self.n}"


def late_curve(history: pd.DataFrame, metric: str = "test_top1") -> pd.Series:
    """A run's metric at its evaluations in the late phase, indexed by the fraction of training done (so that
    conditions of other lengths, an equal-steps control, line up)."""
    evaluated = history.dropna(subset=[metric])
    last = history["epoch"].max()
    late = evaluated[evaluated["epoch"] > (1 - LATE_PHASE) * last]
    return pd.Series(late[metric].to_numpy(), index=np.round(late["epoch"].to_numpy() / last, 9))


def _slope(curve: pd.Series) -> float:
    return float(stats.linregress(curve.index.to_numpy(), curve.to_numpy()).slope) if len(curve) >= 3 else math.nan


def drift(a: dict, b: dict) -> Slope:
    """The paired late-phase drift of a - b: `a` and `b` map each seed to its run's late_curve; per seed the
    slope of the contrast over the fractions both evaluated (three at least), then their mean over seeds
    with its 95% t interval."""
    slopes = [_slope(a[s] - b[s]) for s in sorted(set(a) & set(b))]
    slopes = np.array([s for s in slopes if not math.isnan(s)])
    if len(slopes) < 2:
        return Slope(float(slopes.mean()) if len(slopes) else math.nan, math.nan, math.nan, len(slopes))
    mean, se = slopes.mean(), slopes.std(ddof=1) / math.sqrt(len(slopes))
    half = stats.t.ppf(0.975, len(slopes) - 1) * se
    return Slope(float(mean), float(mean - half), float(mean + half), len(slopes))


def budget_stable(diff: float, slope: Slope, flip: float = 0.0) -> bool:
    """Would the contrast `diff` (its mean a - b at the end) keep its side of `flip` (0; for a non-inferiority
    test, minus its margin) if it went on moving at the far end of its drift's interval, towards the flip
    point, for another late phase? False where the interval is unknown."""
    if not (diff != flip and slope.low == slope.low and slope.high == slope.high):
        return False
    toward = slope.low if diff > flip else slope.high  # the far end in the direction of the flip point
    return (diff + toward * LATE_PHASE - flip) * (diff - flip) > 0


def plateau(history: pd.DataFrame, metric: str = "test_top1") -> Slope:
    """One run's late-phase slope (a teacher's), with the 95% interval of its least-squares fit."""
    curve = late_curve(history, metric)
    if len(curve) < 3:
        return Slope(math.nan, math.nan, math.nan, len(curve))
    fit = stats.linregress(curve.index.to_numpy(), curve.to_numpy())
    half = stats.t.ppf(0.975, len(curve) - 2) * fit.stderr
    return Slope(float(fit.slope), float(fit.slope - half), float(fit.slope + half), len(curve))
