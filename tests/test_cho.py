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
    """ESKD's scratch and full-KD runs are bigger_teachers' scratch and T=4 runs (the same config but for the
    names): once those are done they are reused, numbers and provenance, not trained again; and they are the
    numbers ESKD's own training of them gives. (Both scripts pass their smoke profiles on the way.)"""
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
    for mine, source in ((eskd.SCRATCH, "scratch"), (eskd.FULL, "resnet14 x0.5 T=4")):
        assert rows.loc[mine, "reused_from"] == f"bigger_teachers/{theirs.loc[source, 'run_id']}"
        for column in ("final_test_top1", "wall_s", "git_commit", "device", "command", "finished"):
            assert rows.loc[mine, column] == theirs.loc[source, column]
        assert rows.loc[mine, "final_test_top1"] == alone.loc[mine, "final_test_top1"]  # the same training
        assert rows.loc[mine, "run_id"] == alone.loc[mine, "run_id"] and rows.loc[mine, "experiment"] == "eskd"
        assert filecmp.cmp(tmp_path / "eskd" / "smoke" / "histories" / f"{rows.loc[mine, 'run_id']}.csv",
                           tmp_path / "bigger_teachers" / "smoke" / "histories" / f"{theirs.loc[source, 'run_id']}.csv",
                           shallow=False)
    assert rows.loc[[eskd.ESKD, eskd.label(eskd.FULL, 2), eskd.label(eskd.ESKD, 2)], "reused_from"].isna().all()


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


BT = bt.PROFILES["cpu"]


def bigger(depth=(80.0, 81.0, 81.5, 81.0, 79.5), width=(79.0, 80.0, 78.5), temperature=4.0, **kw):
    """Students per teacher of each series, smallest to largest (resnet8 sits in both)."""
    means = dict(zip(bt.series_labels(BT, "depth"), depth))
    means.update(zip(bt.series_labels(BT, "width"), width))
    means["resnet8"] = depth[0]
    rows = seeded({f"{label} T={temperature:g}": m for label, m in means.items()}, **kw)
    return bt.verdict_for(rows, BT)[0]


def test_bigger_teachers_reproduced():
    assert bigger() == "reproduced"


def test_bigger_teachers_not_reproduced():
    assert bigger(width=(79.0, 80.0, 82.0)) == "not reproduced"  # the widest teacher is best


@pytest.mark.parametrize("change", [dict(depth=(80.0, 80.3, 80.2, 80.3, 80.1)),  # flat: nothing falls or rises
                                    dict(noise=8 * NOISE), dict(seeds=1)])
def test_bigger_teachers_inconclusive(change):
    assert bigger(**change) == "inconclusive"


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


EST = est.PROFILES["cpu"]


def snapshots(early=(79.0, 81.5, 80.5), full=80.0, **kw):
    means = {f"teacher at epoch {e}": m for e, m in zip(EST["epochs"], early)}
    means[f"teacher at epoch {EST['teacher_recipe'].epochs} (fully trained)"] = full
    return est.verdict_for(seeded(means, **kw), EST)[0]


def test_early_stopped_teachers_reproduced():
    assert snapshots(early=(80.0, 81.5, 80.5)) == "reproduced"


def test_early_stopped_teachers_not_reproduced():
    assert snapshots(early=(77.0, 78.5, 80.2)) == "not reproduced"


@pytest.mark.parametrize("change", [dict(early=(78.0, 81.5, 80.5)), dict(early=(80.1, 80.0, 79.9)), dict(seeds=1)])
def test_early_stopped_teachers_inconclusive(change):
    assert snapshots(**change) == "inconclusive"
