"""The statistics behind every verdict: paired t contrasts, Welch where seeds differ, Holm, MDE,
non-inferiority; checked against scipy and hand-computed values."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from kd.analysis import contrast, decide


def seeds(values, first=0):
    return pd.Series(values, index=range(first, first + len(values)), dtype=float)


def test_paired_contrast_is_scipys_paired_t_test():
    a, b = seeds([71.0, 72.5, 70.2, 73.1, 71.9]), seeds([70.1, 72.0, 69.0, 72.6, 71.5])
    c = contrast(a, b)
    assert c.paired and c.n == 5 and c.df == 4
    assert c.p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    low, high = c.interval()
    ci = stats.ttest_rel(a, b).confidence_interval()
    assert (low, high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_pairing_follows_the_seed_not_the_row_order():
    a, b = seeds([1.0, 2.0, 3.0]), seeds([0.5, 1.5, 2.5])
    assert contrast(a, b.iloc[::-1]).se == 0  # every per-seed difference is 0.5


def test_unpaired_when_the_seeds_differ_is_welch():
    a, b = seeds([71.0, 72.5, 70.2, 73.1]), seeds([70.1, 72.0, 69.0], first=10)
    c = contrast(a, b)
    assert not c.paired and c.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_one_seed_gives_no_noise_estimate_and_no_direction():
    c, = decide({"x": contrast(seeds([80.0]), seeds([70.0]))}).values()
    assert math.isnan(c.p) and math.isnan(c.p_holm) and c.outcome == "within noise"


def test_holm_steps_down_and_never_decreases():
    rng = np.random.default_rng(0)
    base = seeds(rng.normal(70, 1, 6))
    shifts = {"big": 2.0, "medium": 0.6, "none": 0.0}
    cs = decide({k: contrast(base + v + seeds(rng.normal(0, 0.4, 6)), base) for k, v in shifts.items()})
    raw = sorted((c.p, k) for k, c in cs.items())
    expected, running = {}, 0.0
    for i, (p, k) in enumerate(raw):
        running = max(running, min(1.0, (3 - i) * p))
        expected[k] = running
    assert {k: c.p_holm for k, c in cs.items()} == pytest.approx(expected)
    assert cs["big"].outcome == "better" and cs["none"].outcome == "within noise"


def test_a_ci_touching_zero_is_within_noise():
    a = seeds([1.0, 2.0, 3.0, 4.0])
    # differences chosen so the 95% CI's lower bound sits just below zero
    d = np.array([-0.2, 0.9, 1.1, 0.4])
    c, = decide({"x": contrast(a + d, a)}).values()
    assert c.interval()[0] < 0 < c.interval()[1] and c.outcome == "within noise"


def test_ties_are_within_noise_and_worse_is_worse():
    a = seeds([70.0, 71.0, 72.0, 73.0, 74.0])
    tie, = decide({"x": contrast(a + seeds([0.1, -0.1, 0.2, -0.2, 0.0]), a)}).values()
    assert tie.outcome == "within noise"
    worse, = decide({"x": contrast(a - 2 + seeds([0.1, -0.1, 0.2, -0.2, 0.0]), a)}).values()
    assert worse.outcome == "worse"


def test_non_inferiority_within_the_margin():
    a = seeds([70.0, 71.0, 72.0, 73.0, 74.0])
    near = a - 0.1 + seeds([0.05, -0.05, 0.1, -0.1, 0.0])
    c, = decide({"x": contrast(near, a, margin=0.5)}).values()
    assert c.outcome == "not worse"
    assert c.p == pytest.approx(stats.ttest_rel(near, a - 0.5, alternative="greater").pvalue)
    far = a - 1.0 + seeds([0.05, -0.05, 0.1, -0.1, 0.0])
    c, = decide({"x": contrast(far, a, margin=0.5)}).values()
    assert c.outcome == "not shown"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=3, max_size=8), st.floats(0.05, 3))
def test_the_mde_is_detected_with_80_percent_power(noise, sd):
    """A true effect of one MDE, with the SE the test saw, is found in 80% of draws: the exact power of the
    two-sided t test (both tails of the noncentral t, noncentrality MDE / SE)."""
    d = np.asarray(noise)
    assume(d.std() > 1e-6)
    c, = decide({"x": contrast(seeds(d * sd), seeds(np.zeros_like(d)))}).values()
    crit, shift = stats.t.ppf(1 - 0.05 / 2, c.df), c.mde / c.se
    power = stats.nct.sf(crit, c.df, shift) + stats.nct.cdf(-crit, c.df, shift)
    assert power == pytest.approx(0.8, abs=1e-6)


def test_identical_differences_are_certain():
    a = seeds([70.0, 71.0, 72.0])
    c, = decide({"x": contrast(a + 1.0, a)}).values()
    assert c.interval() == (1.0, 1.0) and c.p == 0 and c.outcome == "better"
    c, = decide({"x": contrast(a, a)}).values()
    assert c.p == 1 and c.outcome == "within noise"


def test_a_zero_mean_difference_still_has_a_noise_estimate():
    """Differences that cancel exactly (mean 0, spread > 0) are within noise with a finite MDE; the t
    statistic is 0 there, so its SE cannot come from diff / t."""
    a = seeds([70.0, 71.0, 72.0, 73.0])
    c, = decide({"x": contrast(a + seeds([0.5, -0.5, 1.0, -1.0]), a)}).values()
    assert c.diff == 0 and c.se == pytest.approx(np.std([0.5, -0.5, 1.0, -1.0], ddof=1) / 2)
    assert math.isfinite(c.mde) and c.outcome == "within noise"
    welch, = decide({"x": contrast(seeds([1.0, 3.0]), seeds([2.0, 1.0, 3.0], first=5))}).values()
    assert welch.diff == 0 and welch.se == pytest.approx(math.sqrt(2 / 2 + 1 / 3)) and math.isfinite(welch.mde)


def test_a_missing_condition_is_no_evidence():
    c, = decide({"x": contrast(seeds([]), seeds([70.0, 71.0]))}).values()
    assert math.isnan(c.p) and c.outcome == "within noise"


def test_a_teacher_not_trained_here_is_na_in_the_regime_but_an_unmeasured_student_is_not_met():
    from kd import analysis
    rows = pd.DataFrame({"condition": ["KD"] * 2, "teacher_test_top1": 80.0, "teacher_train_top1": np.nan,
                         "teacher_last_quarter_gain": np.nan, "student_last_quarter_gain": [0.1, 0.2]})
    criterion = {"max_gain": 0.3, "min_train_gap": 2.0}
    met, block = analysis.regime(rows, criterion, "KD")
    assert met and block.count("| n/a |") == 2
    met, block = analysis.regime(rows.assign(student_last_quarter_gain=np.nan), criterion, "KD")
    assert not met


def test_two_forms_of_one_contrast_count_once_in_holms_family():
    """v3: the non-inferiority and plain tests of one difference take one place in the family, each with its
    own p there (statsmodels' Holm on the family of the other contrasts)."""
    made = {name: contrast(seeds([1.0, 2.0, 3.0]), seeds([0.0, 0.5, 1.0])) for name in ("ni", "plain", "other")}
    for name, p in (("ni", 0.01), ("plain", 0.04), ("other", 0.03)):
        made[name].p = p
    made["ni"].margin = 0.5
    c = decide(made, forms={"ni": "plain"})
    assert c["plain"].p_holm == pytest.approx(0.06) and c["other"].p_holm == pytest.approx(0.06)
    assert c["ni"].p_holm == pytest.approx(0.02) and c["ni"].outcome == "not worse"
    assert c["plain"].outcome == "within noise"
    assert decide(dict(made))["other"].p_holm == pytest.approx(0.06)  # three in the family: 0.03 x 2 (second step)
