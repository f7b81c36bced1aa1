"""The Cho & Hariharan scripts pass their smoke profiles, sharing their cached teachers; their three verdict
rules on made-up rows (tests/made_up.py)."""
import filecmp
import shutil

import pandas as pd
import pytest

from experiments import bigger_teachers as bt
from experiments import early_stopped_teachers as est
from experiments import eskd
from kd import harness
from tests.made_up import NOISE, OFFSET


def test_early_stopped_teachers_passes_its_smoke_profile(smoke):
    smoke("early_stopped_teachers")


def test_eskd_turns_the_teacher_off_and_reuses_the_runs_bigger_teachers_has_done(smoke, tmp_path, capsys):
    """ESKD's scratch and full-KD runs are bigger_teachers' scratch and T=4 runs (the same config but for the
    names): once those are done they are reused, numbers and provenance, not trained again; and they are the
    numbers ESKD's own training of them gives. (Both scripts pass their smoke profiles on the way.)"""
    alone = smoke("eskd").set_index("condition")  # no bigger_teachers runs yet: ESKD trains all of its own
    history = pd.read_csv(tmp_path / "eskd" / "smoke" / "histories" /
                          f"{alone.loc['resnet14 x0.5: ESKD stop 1', 'run_id']}.csv")
    assert history.train_kd.notna().tolist() == [True, False, False]
    assert alone.loc["scratch", "teacher_forwards"] == 0 and alone.loc["scratch", "loss"] == "ce"
    assert "reused_from" not in alone
    shutil.move(tmp_path / "eskd", tmp_path / "eskd alone")

    theirs = smoke("bigger_teachers").set_index("condition")
    args = ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root", str(tmp_path)]
    capsys.readouterr()
    assert harness.main(eskd, [*args, "--dry-run"]) == 0
    assert "4 runs, 0 done, 2 to run, 2 reused from another finding" in capsys.readouterr().out
    rows = smoke("eskd").set_index("condition")
    for mine, source in (("scratch", "scratch"), ("resnet14 x0.5: full KD", "resnet14 x0.5 T=4")):
        assert rows.loc[mine, "reused_from"] == f"bigger_teachers/{theirs.loc[source, 'run_id']}"
        for column in ("final_test_top1", "wall_s", "git_commit", "device", "command", "finished"):
            assert rows.loc[mine, column] == theirs.loc[source, column]
        assert rows.loc[mine, "final_test_top1"] == alone.loc[mine, "final_test_top1"]  # the same training
        assert rows.loc[mine, "run_id"] == alone.loc[mine, "run_id"] and rows.loc[mine, "experiment"] == "eskd"
        assert filecmp.cmp(tmp_path / "eskd" / "smoke" / "histories" / f"{rows.loc[mine, 'run_id']}.csv",
                           tmp_path / "bigger_teachers" / "smoke" / "histories" / f"{theirs.loc[source, 'run_id']}.csv",
                           shallow=False)
    assert rows.loc[["resnet14 x0.5: ESKD stop 1", "resnet14 x0.5: ESKD stop 2"], "reused_from"].isna().all()


def test_eskd_trains_its_own_runs_when_the_results_it_would_reuse_are_damaged(tmp_path, capsys):
    damaged = tmp_path / "bigger_teachers" / "smoke" / "runs.csv"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"\x00\xff not a results file")
    args = ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root", str(tmp_path)]
    assert harness.main(eskd, [*args, "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "4 runs, 0 done, 4 to run\n" in captured.out
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


ESKD = eskd.PROFILES["cpu"]


def eskd_verdict(eskd_gain=1.0, early_lead=2.0, end_lead=0.0, **kw):
    means, early = {"scratch": 80.0}, {"scratch": 70.0}
    for t in ESKD["eskd_teachers"]:
        means[f"{t}: full KD"], early[f"{t}: full KD"] = 80.0 + end_lead, 70.0 + early_lead
        means[f"{t}: ESKD stop {ESKD['verdict_stop']}"] = 80.0 + end_lead + eskd_gain
        early[f"{t}: ESKD stop {ESKD['verdict_stop']}"] = 70.0 + early_lead
    return eskd.verdict_for(seeded(means, extra={"early_test_top1": early}, **kw), ESKD)[0]


def test_eskd_reproduced():
    assert eskd_verdict() == "reproduced"


@pytest.mark.parametrize("change", [dict(eskd_gain=-1.5), dict(early_lead=0.0, end_lead=2.0)])
def test_eskd_not_reproduced(change):
    assert eskd_verdict(**change) == "not reproduced"


@pytest.mark.parametrize("change", [dict(eskd_gain=0.0), dict(early_lead=2.0, end_lead=2.0), dict(seeds=1)])
def test_eskd_inconclusive(change):
    assert eskd_verdict(**change) == "inconclusive"


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
