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
- `plateau`: the same slope for one run alone (a teacher), with the interval of its regression; over the
  late phase, or (`lr_below`) over the evaluations after its LR has annealed below that share of its peak,
  since over a cosine schedule's late phase a single curve mostly shows the annealing (a contrast of two
  runs annealed alike does not); `converged`: another such stretch at the far end of that interval adds
  less than a bound.

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

ANNEALED = 0.1  # a teacher's plateau is read where its LR is at most this share of its peak (cosine: the last 20%)


@dataclass
class Slope:
    """A change per unit of training (pp over a whole schedule), with its 95% interval and what it rests on
    (seeds for a drift, evaluations for a plateau)."""
    mean: float
    low: float
    high: float
    n: int
    span: float = LATE_PHASE  # the share of training the slope was fitted over

    def extended(self) -> float:
        """What the far (upper) end of the interval adds over another stretch as long as the one fitted."""
        return self.high * self.span

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


def plateau(history: pd.DataFrame, metric: str = "test_top1", lr_below: float | None = None) -> Slope:
    """One run's slope (a teacher's) with the 95% interval of its least-squares fit: over the late phase, or
    over the evaluations whose LR is at most `lr_below` times the run's peak LR (its `lr` column)."""
    history = pd.DataFrame(history)
    if metric not in history:  # never evaluated
        return Slope(math.nan, math.nan, math.nan, 0, math.nan)
    if lr_below is None:
        curve = late_curve(history, metric)
    else:
        evaluated = history.dropna(subset=[metric])
        annealed = evaluated[evaluated["lr"] <= lr_below * history["lr"].max()]
        curve = pd.Series(annealed[metric].to_numpy(), index=annealed["epoch"].to_numpy() / history["epoch"].max())
    # the stretch fitted: from the end of the epoch before its first evaluation to the end of training
    span = LATE_PHASE if lr_below is None else 1 - curve.index.min() + 1 / history["epoch"].max() if len(curve) \
        else math.nan
    if len(curve) < 3:
        return Slope(math.nan, math.nan, math.nan, len(curve), span)
    fit = stats.linregress(curve.index.to_numpy(), curve.to_numpy())
    half = stats.t.ppf(0.975, len(curve) - 2) * fit.stderr
    return Slope(float(fit.slope), float(fit.slope - half), float(fit.slope + half), len(curve), float(span))


def converged(slope: Slope, max_gain: float) -> bool:
    """A plateau: even the upper end of its slope's interval, over another stretch as long as the one fitted,
    adds less than `max_gain` pp (False where unknown)."""
    return bool(slope.extended() < max_gain)  # nan compares False
