"""The Cho & Hariharan scripts pass their smoke profiles, sharing their cached teachers."""
import pandas as pd
import pytest


@pytest.mark.parametrize("name", ["bigger_teachers", "early_stopped_teachers"])
def test_cho_scripts_pass_their_smoke_profile(name, smoke):
    smoke(name)


def test_eskd_smoke_turns_the_teacher_off_after_the_stop_epoch(smoke, tmp_path):
    rows = smoke("eskd").set_index("condition")
    history = pd.read_csv(tmp_path / "eskd" / "smoke" / "histories" /
                          f"{rows.loc['resnet14 x0.5: ESKD stop 1', 'run_id']}.csv")
    assert history.train_kd.notna().tolist() == [True, False, False]
    assert rows.loc["scratch", "teacher_forwards"] == 0 and rows.loc["scratch", "loss"] == "ce"
