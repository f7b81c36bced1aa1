"""The Cho & Hariharan scripts pass their smoke profiles, sharing their cached teachers."""
import filecmp
import shutil

import pandas as pd
import pytest

from experiments import eskd
from kd import harness


@pytest.mark.parametrize("name", ["bigger_teachers", "early_stopped_teachers"])
def test_cho_scripts_pass_their_smoke_profile(name, smoke):
    smoke(name)


def test_eskd_turns_the_teacher_off_and_reuses_the_runs_bigger_teachers_has_done(smoke, tmp_path, capsys):
    """ESKD's scratch and full-KD runs are bigger_teachers' scratch and T=4 runs (the same config but for the
    names): once those are done they are reused, numbers and provenance, not trained again; and they are the
    numbers ESKD's own training of them gives."""
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
