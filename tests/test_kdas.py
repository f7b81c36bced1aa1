"""KDAS: the sampler picks exactly the top-K by KL_TS, schedules give the expected ratios, quality weights
are 1 inside the band and gamma far outside, the per-enlarged-batch variant keeps exactly B per enlarged
batch, and every KDAS script passes its smoke profile; the verdict rules of the five KDAS findings on
made-up rows (tests/made_up.py)."""
import numpy as np
import pandas as pd
import pytest

from experiments import kdas_finding1 as f1
from experiments import kdas_finding2 as f2
from experiments import kdas_finding3 as f3
from experiments import kdas_finding4 as f4
from experiments import kdas_method as km
from experiments import protocol
from tests.made_up import NOISE, OFFSET


@pytest.mark.parametrize("name", ["kdas_finding2", "kdas_method"])
def test_every_kdas_script_passes_its_smoke_profile(name, smoke):
    smoke(name)


def test_finding1_smoke_records_what_every_selection_held(smoke, tmp_path):
    rows = smoke("kdas_finding1")
    assert set(rows.condition) == {c["condition"] for c in f1.grid(f1.PROFILES["smoke"], 1)}
    for condition in (f1.TOP, f1.RANDOM):  # both are scored: the premise compares their selections' KL_TS
        run = rows[rows.condition == condition].iloc[0]
        history = pd.read_csv(next(tmp_path.rglob(f"histories/{run.run_id}.csv")))
        counts = history.selected_per_class.str.split().apply(lambda c: sum(map(int, c)))
        assert (counts == history.selected).all() and (history.selected == round(f1.K * run.train_size)).all()
        assert run.selected_kl_ts == pytest.approx(history.selected_kl_ts.mean()) and run.pool_kl_ts > 0
    assert rows[rows.condition == f1.ALL].selected_kl_ts.isna().all()
    assert (rows.student_mflops > 0).all() and (rows.teacher_mflops > 0).all()


# ------------------------------------------------------------------------------------------ KDAS Finding 3: the v3 rule on made-up rows
HOLDING = {"all": 80.0, "random": 79.0, "low": 78.0, "medium": 80.3, "high": 78.0}
PLATEAU = {"teacher_plateau": -1.0, "teacher_plateau_low": -2.5, "teacher_plateau_high": 0.5,
           "teacher_plateau_n": 5, "teacher_plateau_span": 0.2}
CRITERION = {"max_gain": 0.3, "min_train_gap": 2.0}


def f3_rows(x1=None, x2=None, seeds=5, noise=NOISE, medians=(1e-4, 1e-2, 1.0), teacher=None):
    """Both budgets' runs: per seed a shared offset (paired designs cancel it) plus the condition's mean;
    x1 / x2 change the holding means of one budget."""
    rows = []
    for budget, change in ((1, x1), (2, x2)):
        means = {**HOLDING, **(change or {})}
        for i, (c, m) in enumerate(means.items()):
            rows += [{"pair": "t->s", "condition": f3.label(c, budget), "seed": 30 + s, "recipe.epochs": 144 * budget,
                      "final_test_top1": m + OFFSET[s] + noise[(s + i) % 5],
                      "kl_tg_median": dict(zip(("low", "medium", "high"), medians)).get(c, 1e-2),
                      "teacher_train_top1": 99.0, "teacher_test_top1": 90.0, **PLATEAU, **(teacher or {})}
                     for s in range(seeds)]
    return pd.DataFrame(rows)


def f3_curves(rows, slopes=None):
    """Late-phase curves ending at each run's top-1, flat unless `slopes` gives a condition's slope (pp per
    schedule), with a little noise of the seed's."""
    fractions = np.round(np.arange(0.62, 1.0001, 0.02), 9)
    rng = np.random.default_rng(0)
    return {(r.condition, r.seed): pd.Series(r.final_test_top1 - (slopes or {}).get(r.condition, 0.0) * (1 - fractions)
                                             + rng.normal(0, 0.05, len(fractions)), index=fractions)
            for r in rows.itertuples()}


def f3_verdict(rows, slopes=None):
    return f3.verdict_for(rows, f3_curves(rows, slopes), CRITERION)[0]


def budget_rows(holding, x1, x2, seeds, noise, first_seed, fields):
    """Both budgets' runs of the conditions in `holding` (shared offsets per seed, a little noise growing with
    the seed); x1 / x2 change the holding means of one budget; fields(condition, budget): a row's own columns."""
    rows = []
    for budget, change in ((1, x1), (2, x2)):
        for i, (c, m) in enumerate({**holding, **(change or {})}.items()):
            rows += [{"condition": protocol.label(c, budget), "seed": first_seed + s, "recipe.epochs": 144 * budget,
                      "final_test_top1": m + OFFSET[s % 5] + noise[(s + i) % 5] * (1 + s // 5),
                      **fields(c, budget)} for s in range(seeds)]
    return pd.DataFrame(rows)


def write_histories(rows, out, **columns):
    """Each run's history: its late-phase curve (f3_curves) as test top-1 per epoch, and `columns` taken from
    its row."""
    for r, curve in zip(rows.itertuples(), f3_curves(rows).values()):
        out.history(r.run_id).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"epoch": np.round(curve.index * 144).astype(int), "test_top1": curve.to_numpy(),
                      **{k: getattr(r, k) for k in columns}}).to_csv(out.history(r.run_id), index=False)


def test_kdas_f3_reproduced_when_both_budgets_hold():
    assert f3_verdict(f3_rows()) == "reproduced"


@pytest.mark.parametrize("change", [dict(medium=77.0), dict(low=82.0), dict(high=82.0), dict(random=82.0)])
def test_kdas_f3_not_reproduced_when_both_budgets_contradict(change):
    assert f3_verdict(f3_rows(change, change)) == "not reproduced"


@pytest.mark.parametrize("x1, x2", [
    (None, dict(medium=77.0)),  # holds at x1, contradicted at x2
    (dict(medium=80.0, random=80.0), None),  # open at x1 (medium no better than random), holds at x2
    # contradicted at both, but by different contrasts: medium below all at x1, below random at x2
    (dict(medium=77.0, random=77.0, low=76.0, high=76.0), dict(medium=80.0, random=81.5)),
])
def test_kdas_f3_budget_dependent_when_the_budgets_disagree(x1, x2):
    assert f3_verdict(f3_rows(x1, x2)) == "budget-dependent at this scale"


def test_kdas_f3_budget_dependent_when_a_deciding_contrast_still_closes_on_its_flip_point():
    rows = f3_rows()
    assert f3_verdict(rows, {"medium (2x budget)": 0.5}) == "reproduced"  # a small drift: still stable
    # medium's lead over all falling by 5 pp per schedule at x2: another 40% would cross the -0.5 pp margin
    verdict, facts = f3.verdict_for(rows, f3_curves(rows, {"medium (2x budget)": -5.0}), CRITERION)
    assert verdict == "budget-dependent at this scale" and not facts["stable"][f3.MEDIUM_VS_ALL]
    assert facts["drifts"][f3.MEDIUM_VS_ALL].high < -4


@pytest.mark.parametrize("change", [dict(medians=(1e-3, 1.5e-3, 1.0)),  # low and medium hardly differ
                                    dict(teacher={"teacher_plateau_high": 2.0}),  # +0.4 pp over another stretch
                                    dict(teacher={"teacher_plateau_high": float("nan")}),  # no plateau known
                                    dict(teacher={"teacher_train_top1": 91.0})])  # the teacher does not fit its pool
def test_kdas_f3_premise_not_met_is_its_own_verdict(change):
    assert f3_verdict(f3_rows(**change)) == "premise not met at this scale"
    assert f3_verdict(f3_rows(dict(medium=77.0), dict(medium=77.0), **change)) == "premise not met at this scale"


@pytest.mark.parametrize("change", [dict(low=79.9, high=80.2), dict(medium=79.6)])
def test_kdas_f3_inconclusive_when_both_budgets_are_open(change):
    noise = 4 * NOISE if "medium" in change else NOISE
    assert f3_verdict(f3_rows(change, change, noise=noise)) == "inconclusive"


def test_kdas_f3_one_seed_decides_nothing():
    assert f3_verdict(f3_rows(seeds=1)) == "inconclusive"


def test_kdas_f3_holm_counts_the_two_forms_of_medium_vs_all_once():
    c = f3.contrasts_at(f3_rows(), 1)
    assert {k: v.outcome for k, v in c.items()} == {**f3.HOLDS, "medium vs all": "within noise"}
    assert c["low vs medium"].mde == c["low vs medium"].mde  # a family of four: alpha / 4


def test_kdas_f3_report_shows_premise_budget_arm_and_figure(tmp_path):
    rows = f3_rows().assign(kl_tg_min=1e-6, kl_tg_max=5.0, train_size=600, samples=172800)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = f3.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out)
    pd.DataFrame({"kl_tg": np.logspace(-6, 1, 50)}).to_csv(f3.ranking_file(out, "t->s"), index=False)
    assert f3.report(rows, {"regime": CRITERION, "kl_direction": "paper"}, out) == "reproduced"
    table = out.table.read_text()
    assert "**Premise**" in table and "**Regime** (v3, the budget arm" in table and "| **no** |" not in table
    assert (tmp_path / "f.png").is_file()
    rows["teacher_plateau_high"] = 2.0
    assert f3.report(rows, {"regime": CRITERION, "kl_direction": "paper"}, out) == "premise not met at this scale"
    assert "| **no** |" in out.table.read_text()


# ------------------------------------------------------------------------------------------ KDAS Finding 1: the v3 rule on made-up rows
F1_HOLDING = {f1.ALL: 80.0, f1.TOP: 80.1, f1.RANDOM: 79.0}


def f1_rows(x1=None, x2=None, seeds=10, noise=NOISE, kl=None, teacher=None):
    """Both budgets' runs of all samples, top 60% and random 60% (shared offsets per seed, a little noise);
    x1 / x2 change the holding means of one budget; `kl`: the selections' mean KL_TS per condition."""
    kl = {f1.TOP: 0.5, f1.RANDOM: 0.3, **(kl or {})}
    return budget_rows(F1_HOLDING, x1, x2, seeds, noise, 120, lambda c, budget: {
        "selected_kl_ts": kl.get(c, np.nan), "pool_kl_ts": 0.3 if c != f1.ALL else np.nan,
        "teacher_train_top1": 99.0, "teacher_test_top1": 90.0, **PLATEAU, **(teacher or {})})


def f1_verdict(rows, slopes=None):
    return f1.verdict_for(rows, f3_curves(rows, slopes), CRITERION)[0]


def test_kdas_f1_reproduced_when_both_budgets_hold():
    assert f1_verdict(f1_rows()) == "reproduced"


@pytest.mark.parametrize("change", [{f1.TOP: 78.5},  # top 60% worse than all and than random
                                    {f1.RANDOM: 81.5}])  # random 60% beats top 60%
def test_kdas_f1_not_reproduced_when_both_budgets_contradict(change):
    verdict, facts = f1.verdict_for(f1_rows(change, change), f3_curves(f1_rows(change, change)), CRITERION)
    assert verdict == "not reproduced" and facts["decisive"]


def test_kdas_f1_budget_dependent_when_the_budgets_disagree_or_drift():
    assert f1_verdict(f1_rows(None, {f1.TOP: 78.5})) == "budget-dependent at this scale"
    rows = f1_rows()
    # top 60% falling by 5 pp per schedule at x2: another 40% would take it below all by more than the margin
    verdict, facts = f1.verdict_for(rows, f3_curves(rows, {f1.label(f1.TOP, 2): -5.0}), CRITERION)
    assert verdict == "budget-dependent at this scale" and not facts["stable"][f1.NOT_WORSE]


@pytest.mark.parametrize("change", [dict(kl={f1.RANDOM: 0.5}),  # top's selections hold no more KL_TS
                                    dict(teacher={"teacher_plateau_high": 2.0}),  # the teacher still gains
                                    dict(teacher={"teacher_train_top1": 91.0})])  # it does not fit its pool
def test_kdas_f1_premise_not_met_is_its_own_verdict(change):
    assert f1_verdict(f1_rows(**change)) == "premise not met at this scale"
    assert f1_verdict(f1_rows({f1.TOP: 78.5}, {f1.TOP: 78.5}, **change)) == "premise not met at this scale"


def test_kdas_f1_open_readings_are_underpowered_or_inconclusive():
    assert f1_verdict(f1_rows(noise=6 * NOISE)) == "underpowered at this scale"  # nothing shown either way
    # 0.28 pp below all: neither worse nor shown within the margin, with an MDE just under it (a narrow window:
    # at this noise an open reading is nearly always underpowered)
    below = {f1.TOP: 79.72}
    assert f1_verdict(f1_rows(below, below, noise=0.7 * NOISE)) == "inconclusive"


def test_kdas_f1_holm_counts_the_two_forms_once_and_one_seed_decides_nothing():
    c = f1.contrasts_at(f1_rows(), 1)
    assert {k: v.outcome for k, v in c.items()} == {f1.NOT_WORSE: "not worse", f1.TOP_VS_ALL: "within noise",
                                                    f1.TOP_VS_RANDOM: "better"}
    assert f1_verdict(f1_rows(seeds=1)) in ("underpowered at this scale", "premise not met at this scale")


def test_kdas_f1_report_shows_premise_budget_arm_and_figure(tmp_path):
    rows = f1_rows().assign(samples=172800)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = f1.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out, selected_kl_ts=True)
    p = {"regime": CRITERION, "period": 1, "direction": "paper"}
    assert f1.report(rows, p, out) == "reproduced"
    table = out.table.read_text()
    assert "**Premise**" in table and "**Regime** (v3, the budget arm" in table and "| **no** |" not in table
    assert "0.500 (0.300)" in table and "+0.2000 [+0.2000, +0.2000]" in table and (tmp_path / "f.png").is_file()


def test_kdas_f1_grid_keeps_one_ratio_at_both_budgets():
    runs = f1.grid(f1.PROFILES["cpu"], 1)
    assert {r["recipe"]["epochs"] for r in runs} == {144, 288} and len(runs) == 6
    assert {r["sampler"]["random"] for r in runs if "sampler" in r} == {False, True}
    assert {r["train_size"] for r in runs if "sampler" in r} == {720}


# ------------------------------------------------------------------------------------------ KDAS Finding 2: the v3 rule on made-up rows
F2_HOLDING = {f2.FIXED: 80.0, f2.DECREASING: 81.0, f2.RELEASE: 80.5, f2.INCREASING: 79.5}


def f2_rows(x1=None, x2=None, seeds=10, noise=NOISE, samples=None, teacher=None):
    """Both budgets' runs of the four schedules (shared offsets per seed, a little noise); x1 / x2 change the
    holding means of one budget; `samples`: a schedule's samples processed, relative to fixed 50%."""
    return budget_rows(F2_HOLDING, x1, x2, seeds, noise, 110, lambda c, budget: {
        "samples": 86400 * budget * (samples or {}).get(c, 1.0), "teacher_train_top1": 99.0,
        "teacher_test_top1": 90.0, **PLATEAU, **(teacher or {})})


def f2_verdict(rows, slopes=None):
    return f2.verdict_for(rows, f3_curves(rows, slopes), CRITERION)[0]


def test_kdas_f2_reproduced_when_both_budgets_hold():
    assert f2_verdict(f2_rows()) == "reproduced"


@pytest.mark.parametrize("change", [{f2.DECREASING: 78.5},  # decreasing worse than fixed 50% and increasing
                                    {f2.INCREASING: 82.5},  # increasing beats decreasing
                                    {f2.DECREASING: 80.05}])  # shown no better than fixed 50% by 0.5 pp
def test_kdas_f2_not_reproduced_when_both_budgets_contradict(change):
    verdict, facts = f2.verdict_for(f2_rows(change, change), f3_curves(f2_rows(change, change)), CRITERION)
    assert verdict == "not reproduced" and facts["decisive"]


def test_kdas_f2_budget_dependent_when_the_budgets_disagree_or_drift():
    assert f2_verdict(f2_rows(None, {f2.DECREASING: 78.5})) == "budget-dependent at this scale"
    rows = f2_rows()
    # decreasing's lead falling by 5 pp per schedule at x2: another 40% would take it below fixed 50%
    verdict, facts = f2.verdict_for(rows, f3_curves(rows, {f2.label(f2.DECREASING, 2): -5.0}), CRITERION)
    assert verdict == "budget-dependent at this scale" and not facts["stable"][f2.PAPER_VS_FIXED]


@pytest.mark.parametrize("change", [dict(samples={f2.DECREASING: 1.05}),  # decreasing processes 5% more samples
                                    dict(teacher={"teacher_plateau_high": 2.0}),  # the teacher still gains
                                    dict(teacher={"teacher_train_top1": 91.0})])  # it does not fit its pool
def test_kdas_f2_premise_not_met_is_its_own_verdict(change):
    assert f2_verdict(f2_rows(**change)) == "premise not met at this scale"


def test_kdas_f2_open_readings_are_underpowered_or_inconclusive():
    small = {f2.DECREASING: 80.3}  # between 0 and the margin: neither better nor shown no better
    assert f2_verdict(f2_rows(small, small, noise=6 * NOISE)) == "underpowered at this scale"
    release_worse = {f2.RELEASE: 79.0}  # the paper's better, the release's worse: open, well powered
    assert f2_verdict(f2_rows(release_worse, release_worse, noise=NOISE / 2)) == "inconclusive"


def test_kdas_f2_holm_counts_the_two_forms_once_and_one_seed_decides_nothing():
    c = f2.contrasts_at(f2_rows(), 1)
    assert {k: v.outcome for k, v in c.items()} == {f2.NO_BETTER: "not shown", f2.PAPER_VS_FIXED: "better",
                                                    f2.RELEASE_VS_FIXED: "better", f2.PAPER_VS_INCREASING: "better"}
    assert f2_verdict(f2_rows(seeds=1)) in ("underpowered at this scale", "inconclusive")


def test_kdas_f2_report_shows_premise_budget_arm_and_figure(tmp_path):
    rows = f2_rows()
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = f2.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out)
    p = {"regime": CRITERION, "period": 1, "direction": "paper", "recipe": f2.PROFILES["cpu"]["recipe"]}
    assert f2.report(rows, p, out) == "reproduced"
    table = out.table.read_text()
    assert "**Premise**" in table and "**Regime** (v3, the budget arm" in table and "| **no** |" not in table
    assert "+0.00%" in table and (tmp_path / "f.png").is_file()


def test_kdas_f2_schedules_span_their_own_budget_and_process_the_same_samples():
    runs = f2.grid(f2.PROFILES["cpu"], 1)
    assert {r["recipe"]["epochs"] for r in runs} == {144, 288} and len(runs) == 8
    sizes = {r["condition"]: r["train_size"] for r in runs}
    assert len(set(sizes.values())) == 1  # every schedule's mean share is 50% at both budgets


# ------------------------------------------------------------------------------------------ KDAS Finding 4: the v3 rule on made-up rows
F4_HOLDING = {"kd": 80.0, f4.PAPER_CONDITION: 81.0, f4.RELEASE_CONDITION: 80.5}


def f4_rows(x1=None, x2=None, seeds=10, noise=NOISE, weight=0.8, teacher=None):
    """Both budgets' runs of plain KD and the two penalties (shared offsets per seed, a little noise); x1 / x2
    change the holding means of one budget; `weight`: the penalty runs' mean KD weight in their last epoch."""
    return budget_rows(F4_HOLDING, x1, x2, seeds, noise, 100, lambda c, budget: {
        "kd_weight_mean": weight if c != "kd" else np.nan, "kd_weight_below_1": 0.4, "kd_weight_at_floor": 0.3,
        "teacher_train_top1": 99.0, "teacher_test_top1": 90.0, **PLATEAU, **(teacher or {})})


def f4_verdict(rows, slopes=None):
    return f4.verdict_for(rows, f3_curves(rows, slopes), CRITERION)[0]


def test_kdas_f4_reproduced_when_both_budgets_hold():
    assert f4_verdict(f4_rows()) == "reproduced"


@pytest.mark.parametrize("change", [{f4.PAPER_CONDITION: 78.5},  # the paper's penalty is worse
                                    {f4.PAPER_CONDITION: 80.05}])  # shown no better than KD by 0.5 pp
def test_kdas_f4_not_reproduced_when_both_budgets_contradict(change):
    verdict, facts = f4.verdict_for(f4_rows(change, change), f3_curves(f4_rows(change, change)), CRITERION)
    assert verdict == "not reproduced" and facts["decisive"]


def test_kdas_f4_budget_dependent_when_the_budgets_disagree_or_drift():
    assert f4_verdict(f4_rows(None, {f4.PAPER_CONDITION: 78.5})) == "budget-dependent at this scale"
    rows = f4_rows()
    # the penalty's lead falling by 5 pp per schedule at x2: another 40% would take it below KD
    verdict, facts = f4.verdict_for(rows, f3_curves(rows, {f4.label(f4.PAPER_CONDITION, 2): -5.0}), CRITERION)
    assert verdict == "budget-dependent at this scale" and not facts["stable"][f4.PAPER_VS_KD]


@pytest.mark.parametrize("change", [dict(weight=0.99),  # the penalty hardly cuts anything
                                    dict(teacher={"teacher_plateau_high": 2.0}),  # the teacher still gains
                                    dict(teacher={"teacher_train_top1": 91.0})])  # it does not fit its pool
def test_kdas_f4_premise_not_met_is_its_own_verdict(change):
    assert f4_verdict(f4_rows(**change)) == "premise not met at this scale"


def test_kdas_f4_open_readings_are_underpowered_or_inconclusive():
    small = {f4.PAPER_CONDITION: 80.3}  # between 0 and the margin: neither better nor shown no better
    assert f4_verdict(f4_rows(small, small, noise=6 * NOISE)) == "underpowered at this scale"
    release_worse = {f4.RELEASE_CONDITION: 79.0}  # the paper's better, the release's worse: open, well powered
    assert f4_verdict(f4_rows(release_worse, release_worse, noise=NOISE / 2)) == "inconclusive"


def test_kdas_f4_holm_counts_the_two_forms_once_and_one_seed_decides_nothing():
    c = f4.contrasts_at(f4_rows(), 1)
    assert {k: v.outcome for k, v in c.items()} == {f4.NO_BETTER: "not shown", f4.PAPER_VS_KD: "better",
                                                    f4.RELEASE_VS_KD: "better"}
    assert f4_verdict(f4_rows(seeds=1)) in ("underpowered at this scale", "inconclusive")


def test_kdas_f4_report_shows_premise_budget_arm_and_figure(tmp_path):
    rows = f4_rows().assign(samples=172800)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = f4.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out, kd_weight_mean=True)
    p = {"regime": CRITERION, "band": (0.2, 0.8), "lam": 1000.0, "direction": "paper"}
    assert f4.report(rows, p, out) == "reproduced"
    table = out.table.read_text()
    assert "**Premise**" in table and "**Regime** (v3, the budget arm" in table and "| **no** |" not in table
    assert "0.800 (40%)" in table and (tmp_path / "f.png").is_file()


def test_kdas_f4_runs_record_the_weights_their_penalty_applied_and_keep_their_students(smoke, tmp_path):
    rows = smoke("kdas_finding4", "--save-students")
    for r in rows.itertuples():  # --save-students: every run's student, final and best, where timm loads it
        folder = tmp_path / "kdas_finding4" / "smoke" / "students" / r.run_id
        assert (folder / "final.safetensors").is_file() and (folder / "best.safetensors").is_file()
    penalised = rows[rows.condition.str.startswith("penalty")]
    assert (penalised.kd_weight_mean < 1).all() and (penalised.kd_weight_below_1 > 0).all()
    assert rows[rows.condition.str.startswith("kd")].kd_weight_mean.isna().all()
    ramp = {c["condition"]: c["weights"]["ramp"] for c in f4.grid(f4.PROFILES["cpu"], 1) if "weights" in c}
    assert ramp == {f4.PAPER_CONDITION: 72, f4.RELEASE_CONDITION: 0, f4.label(f4.PAPER_CONDITION, 2): 144,
                    f4.label(f4.RELEASE_CONDITION, 2): 0}  # the ramp is half of its own budget's training


# ------------------------------------------------------------------------------------------ KDAS method: the v3 rule on made-up rows
M_HOLDING = {km.KD: 80.0, km.KDAS: 80.3}


def method_rows(x1=None, x2=None, seeds=10, noise=NOISE, cpu=None, samples=None, teacher=None):
    """Both budgets' runs of KD and KD + KDAS (shared offsets per seed, a little noise); x1 / x2 change the
    holding means of one budget; `cpu` / `samples`: a condition's CPU seconds and samples processed at x1
    (doubled at x2; CPU time with a little noise per run)."""
    cpu, samples = {km.KD: 100.0, km.KDAS: 70.0, **(cpu or {})}, {km.KD: 172800, km.KDAS: 86400, **(samples or {})}
    rows = budget_rows(M_HOLDING, x1, x2, seeds, noise, 140, lambda c, budget: {
        "cpu_s": cpu[c] * budget, "samples": samples[c] * budget, "teacher_train_top1": 99.0,
        "teacher_test_top1": 90.0, **PLATEAU, **(teacher or {})})
    return rows.assign(cpu_s=rows.cpu_s * (1 + (rows.seed * 7 + rows.condition.str.len()) % 5 / 100))


def method_verdict(rows, slopes=None):
    return km.verdict_for(rows, f3_curves(rows, slopes), CRITERION)[0]


def test_kdas_method_reproduced_when_both_budgets_hold():
    assert method_verdict(method_rows()) == "reproduced"


@pytest.mark.parametrize("change", [dict(x1={km.KDAS: 78.5}, x2={km.KDAS: 78.5}),  # less accurate than KD
                                    dict(cpu={km.KDAS: 115.0})])  # takes more CPU time than KD
def test_kdas_method_not_reproduced_when_both_budgets_contradict(change):
    rows = method_rows(**change)
    verdict, facts = km.verdict_for(rows, f3_curves(rows), CRITERION)
    assert verdict == "not reproduced" and facts["decisive"]


def test_kdas_method_budget_dependent_when_the_budgets_disagree_or_drift():
    assert method_verdict(method_rows(None, {km.KDAS: 78.5})) == "budget-dependent at this scale"
    rows = method_rows()
    # KD + KDAS falling by 5 pp per schedule at x2: another 40% would take it below KD by more than the margin
    verdict, facts = km.verdict_for(rows, f3_curves(rows, {km.label(km.KDAS, 2): -5.0}), CRITERION)
    assert verdict == "budget-dependent at this scale" and not facts["stable"][km.NOT_WORSE]
    assert facts["stable"][km.SAVED]  # CPU time has no curve: each budget measures its own


@pytest.mark.parametrize("change", [dict(samples={km.KDAS: 172800}),  # the sampler saved nothing
                                    dict(teacher={"teacher_plateau_high": 2.0}),  # the teacher still gains
                                    dict(teacher={"teacher_train_top1": 91.0})])  # it does not fit its pool
def test_kdas_method_premise_not_met_is_its_own_verdict(change):
    assert method_verdict(method_rows(**change)) == "premise not met at this scale"


def test_kdas_method_open_readings_are_underpowered_or_inconclusive():
    assert method_verdict(method_rows(noise=6 * NOISE)) == "underpowered at this scale"
    # as accurate, but saving under 10%: open at both budgets, and well powered
    assert method_verdict(method_rows(cpu={km.KDAS: 95.0}, noise=NOISE / 2)) == "inconclusive"


def test_kdas_method_holm_counts_the_two_forms_once_and_one_seed_decides_nothing():
    c = km.contrasts_at(method_rows(), 2)
    assert {k: v.outcome for k, v in c.items()} == {km.NOT_WORSE: "not worse", km.ACC_GAP: "within noise",
                                                    km.SAVED: "better"}
    assert c[km.SAVED].diff == pytest.approx(30, abs=2)
    assert method_verdict(method_rows(seeds=1)) == "underpowered at this scale"


def test_kdas_method_report_shows_premise_budget_arm_and_figure(tmp_path):
    rows = method_rows().assign(wall_s=1.0, teacher_forwards=1, student_mflops=1.0, teacher_mflops=2.0)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = km.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out)
    p = {"regime": CRITERION, "period": 1, "ramp_share": 0.5}
    assert km.report(rows, p, out) == "reproduced"
    table = out.table.read_text()
    assert "**Premise**" in table and "**Regime** (v3, the budget arm" in table and "| **no** |" not in table
    assert "| 0.500; 0.500 | < 1 at each budget | yes |" in table and (tmp_path / "f.png").is_file()


@pytest.mark.parametrize("profile", ["cpu", "paper"])
def test_kdas_method_grid_runs_the_paper_settings_at_both_budgets_with_the_teacher_on_every_batch(profile):
    p = km.PROFILES[profile]
    runs = km.grid(p, 1)
    assert len(runs) == 4 and not any(r["logit_cache"] for r in runs)
    by = {r["condition"]: r for r in runs}
    epochs = p["recipe"].epochs
    assert {r["recipe"]["epochs"] for r in runs} == {epochs, 2 * epochs}
    for budget in (1, 2):  # the quality weights ramp over half of the run's own training
        kdas = by[km.label(km.KDAS, budget)]
        assert kdas["weights"]["ramp"] == round(epochs * budget / 2) and kdas["sampler"]["start"] == 0.6
        assert kdas["loss_options"]["kd_weight"] == 0.9 and "sampler" not in by[km.label(km.KD, budget)]
