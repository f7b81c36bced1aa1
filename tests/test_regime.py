"""Protocol v3's regime checks (kd/regime.py) on made-up learning curves: the late phase lines up runs of
other lengths by the fraction of training, a steady contrast is budget-stable and one still closing on its
flip point is not, and a teacher's plateau slope has the interval of its fit."""
import math

import numpy as np
import pandas as pd

from kd.recipe import Recipe
from kd.regime import Slope, budget_stable, converged, drift, late_curve, plateau


def history(epochs: int, curve, every: int = 4, seed: int = 0) -> pd.DataFrame:
    """Test top-1 at the evaluations Recipe(late_eval_every=every) makes: curve(fraction of training) plus
    a little noise of the seed's."""
    recipe = Recipe(epochs=epochs, eval_every=epochs, late_eval_every=every)
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"epoch": e, "test_top1": curve(e / epochs) + rng.normal(0, 0.05)}
                         if recipe.evaluates(e) else {"epoch": e} for e in range(1, epochs + 1)])


def test_the_late_phase_lines_up_runs_of_other_lengths():
    short, long = late_curve(history(100, lambda f: 80.0)), late_curve(history(200, lambda f: 80.0, every=8))
    assert list(short.index) == list(long.index) and short.index.min() > 0.6 and short.index.max() == 1.0
    assert len(short) == 10  # every 4 of the last 40 epochs


def test_a_steady_contrast_is_budget_stable_and_a_closing_one_is_not():
    base = {s: late_curve(history(100, lambda f: 80.0, seed=s)) for s in range(5)}
    steady = {s: late_curve(history(100, lambda f: 81.0, seed=10 + s)) for s in range(5)}
    closing = {s: late_curve(history(100, lambda f: 81.0 - 2.5 * (f - 0.6), seed=20 + s)) for s in range(5)}
    flat = drift(steady, base)
    assert abs(flat.mean) < 0.2 and flat.low < 0 < flat.high and flat.n == 5 and budget_stable(1.0, flat)
    falling = drift(closing, base)  # a lead of 1 pp at 60% of training, falling by 2.5 pp per schedule
    assert -3.0 < falling.low < falling.mean < falling.high < -2.0
    assert not budget_stable(0.0, flat)  # on its flip point: no side to keep
    # the far end of the interval towards the flip point, for another 40% of training: 0.3 -> 0.3 - 0.4 * 1.0
    assert not budget_stable(0.3, Slope(-0.5, -1.0, 0.0, 5)) and budget_stable(0.5, Slope(-0.5, -1.0, 0.0, 5))
    assert budget_stable(-0.3, Slope(0.0, -1.0, 0.5, 5)) and not budget_stable(-0.1, Slope(0.0, -1.0, 0.5, 5))
    # a non-inferiority margin is a flip point too: -0.3 stays above -0.5 only while the drift is small
    assert budget_stable(-0.3, Slope(0.0, -0.4, 0.4, 5), flip=-0.5)
    assert not budget_stable(-0.3, Slope(0.0, -0.6, 0.6, 5), flip=-0.5)
    assert not budget_stable(1.0, Slope(0.0, math.nan, math.nan, 1))  # one seed: no interval, no claim


def test_a_plateau_has_the_interval_of_its_fit_and_too_few_evaluations_say_nothing():
    rising = plateau(history(120, lambda f: 80.0 + 5 * f))
    assert 4 < rising.mean < 6 and rising.low < rising.mean < rising.high and rising.n == 12
    flat = plateau(history(120, lambda f: 84.0))
    assert flat.low < 0 < flat.high
    assert math.isnan(plateau(history(10, lambda f: 80.0, every=10)).mean)
    assert str(Slope(1.0, 0.5, 1.5, 5)) == "+1.00 pp per schedule [95% CI +0.50, +1.50], n 5"


def test_a_teachers_plateau_is_read_once_its_lr_annealed():
    """Over a cosine schedule's late phase a curve rises with the annealing; once the LR is below 10% of its
    peak (the last ~20%) a converged teacher is flat, and `converged` asks its interval's upper end, over
    another such stretch, to add less than the bound."""
    recipe = Recipe(epochs=120, eval_every=5)
    lr = lambda e: 0.025 * (1 + math.cos(math.pi * (e - 1) / 120))  # noqa: E731
    curve = [{"epoch": e, "lr": lr(e), **({"test_top1": 84.5 - 40 * max(0.0, 0.8 - e / 120) ** 2 +
                                                        0.02 * (-1) ** (e // 5)} if recipe.evaluates(e) else {})}
             for e in range(1, 121)]
    late, annealed = plateau(curve), plateau(curve, lr_below=0.1)
    assert late.mean > 2 and not converged(late, 0.3)  # the late phase sees the annealing
    assert annealed.n == 5 and 0.15 < annealed.span < 0.2 and abs(annealed.mean) < 0.5 and converged(annealed, 0.3)
    assert not converged(Slope(0.0, -1.0, 2.0, 5, 0.2), 0.3) and converged(Slope(0.0, -1.0, 1.0, 5, 0.2), 0.3)
    assert not converged(plateau(curve[:3], lr_below=0.1), 0.3)  # too few evaluations: no claim
