"""VanillaKD's data-scale script passes its smoke profile: both sizes and methods at both budgets from one
teacher; its grid, and its v3 verdict rule on made-up rows (tests/made_up.py)."""
import pandas as pd
import pytest
import torch

from experiments import vanillakd_data_scale as vkd
from tests.made_up import NOISE, OFFSET
from tests.test_kdas import CRITERION, PLATEAU, f3_curves


def test_vanillakd_smoke_distils_both_sizes_from_one_teacher_for_the_same_steps(smoke):
    rows = smoke("vanillakd_data_scale")
    p = vkd.PROFILES["smoke"]
    assert sorted(rows.scale.unique()) == [vkd.size_of(p, f) for f in p["scales"]]
    assert set(rows.method_name) == {vkd.KD, vkd.DKD}
    assert rows.teacher_test_top1.nunique() == 1 and rows["teacher.pool_fraction"].eq(0.05).all()
    x1 = rows[~rows.condition.str.endswith("(2x budget)")]
    assert (x1.samples - p["steps"] * p["recipe"].batch_size).abs().max() <= x1.scale.max() / 2


# ------------------------------------------------------------------------------------------ VanillaKD: the v3 rule on made-up rows
SMALL, LARGE = 400, 1600
GAPS = {SMALL: 2.0, LARGE: 1.0}  # DKD minus KD, pp: the gap shrinks with the data


def vkd_rows(x1=None, x2=None, seeds=10, noise=NOISE / 4, plateau=None):
    """KD and DKD at both sizes and budgets; x1 / x2 change one budget's DKD gaps (size -> gap)."""
    rows = []
    for budget, change in ((1, x1), (2, x2)):
        for i, (size, g) in enumerate({**GAPS, **(change or {})}.items()):
            kd = 80.0 + size / 400
            for j, (method, mean) in enumerate(((vkd.KD, kd), (vkd.DKD, kd + g))):
                rows += [{"condition": vkd.label(size, method, budget), "seed": 210 + s, "scale": size,
                          "method_name": method, "recipe.epochs": 1500 * 128 // size * budget,
                          "final_test_top1": mean + OFFSET[s % 5] + noise[(s + 2 * i + j) % 5] * (1 + s // 5),
                          "teacher_train_top1": 99.0, "teacher_test_top1": 89.0, **PLATEAU, **(plateau or {})}
                         for s in range(seeds)]
    return pd.DataFrame(rows)


def vkd_curves(rows, slopes=None):
    """The doubled budget's late-phase curves, as the report reads them (protocol.late_curves)."""
    return f3_curves(rows[rows.condition.str.endswith("(2x budget)")], slopes)


def vkd_verdict(rows, slopes=None):
    return vkd.verdict_for(rows, vkd_curves(rows, slopes), CRITERION)


def test_vanillakd_reproduced_when_the_gap_shrinks_at_both_budgets():
    verdict, facts = vkd_verdict(vkd_rows())
    assert verdict == "reproduced" and facts["decisive"] == [vkd.SHRINKS]
    assert facts["contrasts"][1][vkd.SHRINKS].diff == pytest.approx(-1.0, abs=0.2)


def test_vanillakd_not_reproduced_when_the_gap_grows_at_both_budgets():
    grows = {LARGE: 3.0}
    assert vkd_verdict(vkd_rows(grows, grows))[0] == "not reproduced"


def test_vanillakd_budget_dependent_when_the_budgets_disagree_or_drift():
    assert vkd_verdict(vkd_rows(None, {LARGE: 3.0}))[0] == "budget-dependent at this scale"
    # DKD at the largest size gaining 10 pp per schedule on KD: another 40% would undo the shrink
    verdict, facts = vkd_verdict(vkd_rows(), {vkd.label(LARGE, vkd.DKD, 2): 10.0})
    assert verdict == "budget-dependent at this scale" and not facts["stable"][vkd.SHRINKS]


@pytest.mark.parametrize("change", [dict(x1={SMALL: 0.0, LARGE: -1.0}),  # DKD does not beat KD at the small size
                                    dict(plateau={"teacher_plateau_high": 2.0})])  # the teacher still gains
def test_vanillakd_premise_not_met_is_its_own_verdict(change):
    assert vkd_verdict(vkd_rows(**change))[0] == "premise not met at this scale"


def test_vanillakd_open_readings_are_underpowered_or_inconclusive():
    assert vkd_verdict(vkd_rows(noise=3 * NOISE))[0] == "underpowered at this scale"  # the premise still clear
    flat = {LARGE: 2.0}  # the gap stays put
    assert vkd_verdict(vkd_rows(flat, flat, noise=NOISE / 10))[0] == "inconclusive"


def test_vanillakd_grid_trains_both_sizes_for_the_same_steps_on_nested_pools_evaluated_alike():
    from kd.data import training_pool
    p = vkd.PROFILES["cpu"]
    configs = vkd.grid(p, 1)
    by = {c["condition"]: c for c in configs}
    sizes = [vkd.size_of(p, f) for f in p["scales"]]
    assert sizes == [SMALL, LARGE] and len(configs) == 2 * 2 * 2
    for budget in (1, 2):
        for size in sizes:
            r = by[vkd.label(size, vkd.KD, budget)]["recipe"]
            assert r["epochs"] * size / r["batch_size"] == pytest.approx(budget * p["steps"], rel=0.05)
            # late evaluations at the same fractions of training at every size: the gaps' curves line up
            assert r["epochs"] % r["late_eval_every"] == 0 and r["epochs"] // r["late_eval_every"] == vkd.LATE_EVALUATIONS
            assert by[vkd.label(size, vkd.DKD, budget)]["loss_options"]["warmup"] == round(r["epochs"] / 12)
    teachers = {str(c["teacher"]) for c in configs}
    assert len(teachers) == 1 and configs[0]["teacher"]["pool_fraction"] == 0.1
    targets = torch.arange(60000) % 10
    student, teacher = (set(training_pool(targets, f).tolist()) for f in (p["scales"][-1], 0.1))
    assert set(training_pool(targets, p["scales"][0]).tolist()) < student < teacher  # nested, inside the teacher's
