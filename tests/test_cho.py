"""The Cho & Hariharan scripts pass their smoke profiles, sharing their cached teachers; their three verdict
rules on made-up rows (tests/made_up.py)."""
import filecmp
import shutil

import pandas as pd
import pytest

from experiments import bigger_teachers as bt
from experiments import early_stopped_teachers as est
from experiments import eskd, kdas_common
from kd import harness
from tests.made_up import NOISE, OFFSET
from tests.test_kdas import CRITERION, PLATEAU, budget_rows, f3_curves, write_histories


def test_early_stopped_teachers_passes_its_smoke_profile(smoke):
    smoke("early_stopped_teachers")


def test_eskd_turns_the_teacher_off_and_reuses_the_runs_bigger_teachers_has_done(smoke, tmp_path, capsys):
    """ESKD's full-KD runs are bigger_teachers' runs from its smaller teacher at both budgets (the same config
    but for the names): once those are done they are reused, numbers and provenance, not trained again; and
    they are the numbers ESKD's own training of them gives. (Both scripts pass their smoke profiles on the
    way.)"""
    alone = smoke("eskd").set_index("condition")  # no bigger_teachers runs yet: ESKD trains all of its own
    history = pd.read_csv(tmp_path / "eskd" / "smoke" / "histories" /
                          f"{alone.loc[eskd.ESKD, 'run_id']}.csv")
    assert history.train_kd.notna().tolist() == [True, False, False]
    assert alone.loc["scratch", "teacher_forwards"] == 0 and alone.loc["scratch", "loss"] == "ce"
    assert "reused_from" not in alone
    shutil.move(tmp_path / "eskd", tmp_path / "eskd alone")

    theirs = smoke("bigger_teachers").set_index("condition")
    args = ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root", str(tmp_path)]
    capsys.readouterr()
    assert harness.main(eskd, [*args, "--dry-run"]) == 0
    assert "5 runs, 0 done, 3 to run, 2 reused from another finding" in capsys.readouterr().out
    rows = smoke("eskd").set_index("condition")
    for budget in (1, 2):
        mine, source = eskd.label(eskd.FULL, budget), bt.label(bt.SMALL, budget)
        assert rows.loc[mine, "reused_from"] == f"bigger_teachers/{theirs.loc[source, 'run_id']}"
        for column in ("final_test_top1", "wall_s", "git_commit", "device", "command", "finished"):
            assert rows.loc[mine, column] == theirs.loc[source, column]
        assert rows.loc[mine, "final_test_top1"] == alone.loc[mine, "final_test_top1"]  # the same training
        assert rows.loc[mine, "run_id"] == alone.loc[mine, "run_id"] and rows.loc[mine, "experiment"] == "eskd"
        assert filecmp.cmp(tmp_path / "eskd" / "smoke" / "histories" / f"{rows.loc[mine, 'run_id']}.csv",
                           tmp_path / "bigger_teachers" / "smoke" / "histories" / f"{theirs.loc[source, 'run_id']}.csv",
                           shallow=False)
    assert rows.loc[[eskd.SCRATCH, eskd.ESKD, eskd.label(eskd.ESKD, 2)], "reused_from"].isna().all()


def test_eskd_trains_its_own_runs_when_the_results_it_would_reuse_are_damaged(tmp_path, capsys):
    damaged = tmp_path / "bigger_teachers" / "smoke" / "runs.csv"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"\x00\xff not a results file")
    args = ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root", str(tmp_path)]
    assert harness.main(eskd, [*args, "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "5 runs, 0 done, 5 to run\n" in captured.out
    assert "not reusing bigger_teachers's runs" in captured.err and "damaged" in captured.err
    assert damaged.read_bytes() == b"\x00\xff not a results file"  # left as it was


# ------------------------------------------------------------------------------------------ Cho & Hariharan: the verdict rule on made-up rows
def seeded(means: dict, seeds=5, noise=NOISE, drop=(), column="final_test_top1", extra=None):
    offset = OFFSET[:seeds]
    rows = [{"condition": c, "seed": s, column: m + offset[s] + noise[(s + i) % 5],
             **({k: v[c] + offset[s] + noise[(s + i + 1) % 5] for k, v in extra.items()} if extra else {})}
            for i, (c, m) in enumerate(means.items()) if c not in drop for s in range(seeds)]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ bigger teachers: the v3 rule on made-up rows
RUNGS = {bt.SMALL: 84.0, bt.BIG: 83.9}  # final test top-1: the bigger teacher's student no better


def bigger_rows(x1=None, x2=None, seeds=10, noise=NOISE / 4, teachers=(83.97, 85.46), plateau=None):
    def fields(condition, budget):
        return {"teacher_label": {bt.SMALL: "resnet8", bt.BIG: "resnet32"}[condition],
                "teacher_test_top1": teachers[condition == bt.BIG], "teacher_train_top1": 99.0, **PLATEAU,
                **(plateau or {})}
    return budget_rows(RUNGS, x1, x2, seeds, noise, 190, fields)


def bigger(rows, slopes=None):
    return bt.verdict_for(rows, f3_curves(rows, slopes), CRITERION)


def test_bigger_teachers_reproduced_when_both_budgets_hold():
    verdict, facts = bigger(bigger_rows())
    assert verdict == "reproduced" and facts["decisive"] == [bt.NOT_BETTER]
    worse = {bt.BIG: 83.0}  # rises then falls: a worse student from the bigger teacher holds too
    assert bigger(bigger_rows(worse, worse))[0] == "reproduced"


def test_bigger_teachers_not_reproduced_when_the_bigger_teacher_is_better_at_both_budgets():
    better = {bt.BIG: 84.6}
    verdict, facts = bigger(bigger_rows(better, better))
    assert verdict == "not reproduced" and facts["decisive"] == [bt.BETTER]


def test_bigger_teachers_budget_dependent_when_the_budgets_disagree_or_drift():
    assert bigger(bigger_rows(None, {bt.BIG: 84.6}))[0] == "budget-dependent at this scale"
    # the bigger teacher's student gaining 10 pp per schedule at x2: another 40% would pass the margin
    verdict, facts = bigger(bigger_rows(), {bt.label(bt.BIG, 2): 10.0})
    assert verdict == "budget-dependent at this scale" and not facts["stable"][bt.NOT_BETTER]


@pytest.mark.parametrize("change", [dict(teachers=(83.97, 84.2)),  # the ladder does not rise by 0.5 pp
                                    dict(plateau={"teacher_plateau_high": 2.0})])  # the teachers still gain
def test_bigger_teachers_premise_not_met_is_its_own_verdict(change):
    assert bigger(bigger_rows(**change))[0] == "premise not met at this scale"


def test_bigger_teachers_open_readings_are_underpowered_or_inconclusive():
    assert bigger(bigger_rows(noise=20 * NOISE))[0] == "underpowered at this scale"
    near = {bt.BIG: 84.3}  # better by 0.3 pp: neither shown within the margin nor shown better
    assert bigger(bigger_rows(near, near, noise=0.75 * NOISE))[0] == "inconclusive"


def test_bigger_teachers_report_reads_the_late_curves_and_shows_the_kd_term(tmp_path):
    rows = bigger_rows().assign(samples=230400, teacher_params=[78042 if "smaller" in c else 464154
                                                                for c in bigger_rows().condition],
                                final_train_kd=[0.2 if "smaller" in c else 0.5 for c in bigger_rows().condition])
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = bt.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out)
    assert bt.report(rows, {"regime": CRITERION, **bt.PROFILES["cpu"]}, out) == "reproduced"
    table = out.table.read_text()
    assert f"| {bt.NOT_BETTER} | not worse | not worse |" in table and "paired: +0.30 [+0.30, +0.30] (kd_weight" in table
    assert "| +1.49 pp (83.97 -> 85.46) | >= 0.5 pp | yes |" in table and (tmp_path / "f.png").is_file()


def test_bigger_teachers_grid_pins_both_published_rungs():
    configs = bt.grid(bt.PROFILES["cpu"], 1)
    assert [(c["condition"], c["recipe"]["epochs"]) for c in configs] == [
        (bt.SMALL, 192), (bt.BIG, 192), (bt.label(bt.SMALL, 2), 384), (bt.label(bt.BIG, 2), 384)]
    dist = {t["teacher"]: t["teacher_weights"] for t in bt.dist_stronger_teacher.PROFILES["cpu"]["ladder"].values()}
    assert {c["teacher"]["model"]: c["teacher"]["weights"] for c in configs} == dist
    assert all(c["teacher"]["recipe"]["epochs"] == 240 and c["teacher"]["seed"] == 0 for c in configs)


# ------------------------------------------------------------------------------------------ ESKD: the v3 rule on made-up rows
HOLDING = {eskd.SCRATCH: 80.0, eskd.FULL: 80.0, eskd.ESKD: 81.0}  # final test top-1: ESKD 1 pp above full KD
AT_STOP = {eskd.SCRATCH: 70.0, eskd.FULL: 72.0, eskd.ESKD: 72.0}  # at the stop epoch: KD ahead of scratch


def eskd_rows(x1=None, x2=None, seeds=6, noise=NOISE, at_stop=None, plateau=None):
    """Both budgets' runs (scratch's x2 rows are not used by the rule); x1 / x2 change one budget's means."""
    top1 = {**AT_STOP, **(at_stop or {})}

    def fields(condition, budget):
        return {"stop_test_top1": top1[condition], "teacher_label": "resnet20", "teacher_test_top1": 84.43,
                "teacher_train_top1": 99.0, **(PLATEAU if condition != eskd.SCRATCH else {}), **(plateau or {})}
    return budget_rows(HOLDING, x1, x2, seeds, noise, 150, fields)


def eskd_verdict(rows, slopes=None):
    return eskd.verdict_for(rows, f3_curves(rows, slopes), CRITERION)


def test_eskd_reproduced_when_both_budgets_hold():
    verdict, facts = eskd_verdict(eskd_rows())
    assert verdict == "reproduced" and facts["decisive"] == [eskd.ESKD_GAIN] and len(facts["premise"]) == 3


def test_eskd_not_reproduced_when_both_budgets_contradict():
    assert eskd_verdict(eskd_rows({eskd.ESKD: 79.0}, {eskd.ESKD: 79.0}))[0] == "not reproduced"


def test_eskd_budget_dependent_when_the_budgets_disagree_or_drift():
    assert eskd_verdict(eskd_rows(None, {eskd.ESKD: 79.0}))[0] == "budget-dependent at this scale"
    # ESKD's lead falling by 5 pp per schedule at x2: another 40% of training would take it below full KD
    verdict, facts = eskd_verdict(eskd_rows(), {eskd.label(eskd.ESKD, 2): -5.0})
    assert verdict == "budget-dependent at this scale" and not facts["stable"][eskd.ESKD_GAIN]


@pytest.mark.parametrize("change", [dict(at_stop={eskd.FULL: 70.0}),  # KD no better than scratch early
                                    dict(plateau={"teacher_plateau_high": 2.0})])  # the teacher still gains
def test_eskd_premise_not_met_is_its_own_verdict(change):
    assert eskd_verdict(eskd_rows(**change))[0] == "premise not met at this scale"
    assert eskd_verdict(eskd_rows({eskd.ESKD: 79.0}, {eskd.ESKD: 79.0}, **change))[0] == "premise not met at this scale"


def test_eskd_open_readings_are_underpowered_or_inconclusive():
    assert eskd_verdict(eskd_rows(noise=6 * NOISE))[0] == "underpowered at this scale"
    tie = {eskd.ESKD: 80.0}
    assert eskd_verdict(eskd_rows(tie, tie, noise=NOISE / 4))[0] == "inconclusive"
    assert eskd_verdict(eskd_rows(seeds=1))[0] == "premise not met at this scale"  # one seed shows no lead


def test_eskd_report_reads_the_stop_epoch_from_the_histories(tmp_path):
    rows = eskd_rows().assign(samples=172800)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = eskd.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out)  # late-phase curves over 144 epochs
    for run_id, epochs, top1 in zip(rows.run_id, rows["recipe.epochs"], rows.stop_test_top1):
        if epochs == 144:  # x1: an evaluation at its stop epoch, before the late phase
            stop = pd.DataFrame({"epoch": [eskd.stop_epoch(epochs)], "test_top1": [top1]})
            pd.concat([stop, pd.read_csv(out.history(run_id))]).to_csv(out.history(run_id), index=False)
    assert eskd.report(rows.drop(columns="stop_test_top1"), {"regime": CRITERION, **eskd.PROFILES["cpu"]}, out) == "reproduced"
    table = out.table.read_text()
    premise, budget_arm = table.split("**Regime** (v3, the budget arm")
    assert "| +2.00 [+2.00, +2.00] pp | interval above 0 | yes |" in premise and "| **no** |" not in premise
    assert "| better | better |" in budget_arm and "72.00 (epoch 72)" in table and (tmp_path / "f.png").is_file()


def test_eskd_grid_pins_the_published_teacher_and_moves_the_stop_with_the_budget():
    configs = eskd.grid(eskd.PROFILES["cpu"], 1)
    by = {c["condition"]: c for c in configs}
    assert list(by) == [eskd.SCRATCH, eskd.FULL, eskd.ESKD, eskd.label(eskd.FULL, 2), eskd.label(eskd.ESKD, 2)]
    assert by[eskd.SCRATCH]["teacher"] is None and by[eskd.SCRATCH]["recipe"]["epochs"] == 192
    assert by[eskd.ESKD]["loss_options"]["stop_epoch"] == 96 and "stop_epoch" not in by[eskd.FULL]["loss_options"]
    assert by[eskd.label(eskd.ESKD, 2)]["loss_options"]["stop_epoch"] == 192
    assert by[eskd.label(eskd.FULL, 2)]["recipe"]["epochs"] == 384
    teachers = {str(c["teacher"]) for c in configs if c["teacher"]}
    assert len(teachers) == 1 and by[eskd.FULL]["teacher"]["weights"] == kdas_common.PUBLISHED_TEACHER_CPU
    assert by[eskd.FULL]["teacher"]["seed"] == 0 and by[eskd.FULL]["recipe"]["late_eval_every"] == 4


# ------------------------------------------------------------------------------------------ early-stopped teachers: the v3 rule on made-up rows
STOPPED = {est.EARLY: 84.6, est.FULL: 84.0}  # final test top-1: the early-stopped teacher's student 0.6 pp better


def early_rows(x1=None, x2=None, seeds=10, noise=NOISE / 4, teachers=(84.2, 85.46), annealed=20, plateau=None):
    def fields(condition, budget):
        early = condition == est.EARLY
        return {"teacher_label": "resnet32, 60 epochs" if early else "resnet32",
                "teacher_test_top1": teachers[not early], "teacher_train_top1": 99.0,
                **PLATEAU, "teacher_plateau_n": annealed if early else 49, **(plateau or {})}
    return budget_rows(STOPPED, x1, x2, seeds, noise, 200, fields)


def early_stopped(rows, slopes=None):
    return est.verdict_for(rows, f3_curves(rows, slopes), CRITERION)


def test_early_stopped_teachers_reproduced_when_both_budgets_hold():
    verdict, facts = early_stopped(early_rows())
    assert verdict == "reproduced" and facts["decisive"] == [est.EARLY_GAIN]


def test_early_stopped_teachers_not_reproduced_when_both_budgets_contradict():
    worse = {est.EARLY: 83.0}
    assert early_stopped(early_rows(worse, worse))[0] == "not reproduced"


def test_early_stopped_teachers_budget_dependent_when_the_budgets_disagree_or_drift():
    assert early_stopped(early_rows(None, {est.EARLY: 83.0}))[0] == "budget-dependent at this scale"
    verdict, facts = early_stopped(early_rows(), {est.label(est.FULL, 2): 10.0})  # the full one's catching up
    assert verdict == "budget-dependent at this scale" and not facts["stable"][est.EARLY_GAIN]


@pytest.mark.parametrize("change", [dict(teachers=(85.2, 85.46)),  # the early teacher is as good: not early
                                    dict(annealed=0),  # never at a low LR: a snapshot, not an early stop
                                    dict(plateau={"teacher_plateau_high": 2.0})])  # the full teacher still gains
def test_early_stopped_teachers_premise_not_met_is_its_own_verdict(change):
    verdict, facts = early_stopped(early_rows(**change))
    assert verdict == "premise not met at this scale" and [m for *_, m in facts["premise"]].count(False) == 1


def test_early_stopped_teachers_open_readings_are_underpowered_or_inconclusive():
    assert early_stopped(early_rows(noise=20 * NOISE))[0] == "underpowered at this scale"
    same = {est.EARLY: 84.0}
    assert early_stopped(early_rows(same, same, noise=NOISE / 2))[0] == "inconclusive"


def test_early_stopped_teachers_grid_compresses_the_full_schedule_and_pins_the_full_teacher():
    configs = est.grid(est.PROFILES["cpu"], 1)
    by = {c["condition"]: c for c in configs}
    assert [(c["condition"], c["recipe"]["epochs"]) for c in configs] == [
        (est.EARLY, 192), (est.FULL, 192), (est.label(est.EARLY, 2), 384), (est.label(est.FULL, 2), 384)]
    early, full = by[est.EARLY]["teacher"], by[est.FULL]["teacher"]
    assert full["weights"] == bt.dist_stronger_teacher.PROFILES["cpu"]["ladder"]["strongest"]["teacher_weights"]
    assert (early["recipe"]["epochs"], full["recipe"]["epochs"]) == (60, 240) and early["model"] == full["model"]
    assert {k: v for k, v in early["recipe"].items() if k != "epochs"} == {
        k: v for k, v in full["recipe"].items() if k != "epochs"}  # one factor: the schedule's length
    paper = est.PROFILES["paper"]["ladder"][est.EARLY]["teacher_recipe"]
    assert paper.epochs == 60 and paper.milestones == (38, 45, 52)  # a step schedule decays inside its epochs


def test_early_stopped_teachers_report_shows_the_teachers_and_the_budget_arm(tmp_path):
    rows = early_rows().assign(samples=230400, teacher_params=464154, final_train_kd=0.3)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = est.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out)
    assert est.report(rows, {"regime": CRITERION, **est.PROFILES["cpu"]}, out) == "reproduced"
    table = out.table.read_text()
    assert "| +1.26 pp (84.20 -> 85.46) | >= 0.5 pp | yes |" in table and "| better | better |" in table
    assert (tmp_path / "f.png").is_file()
