"""The Cho & Hariharan scripts pass their smoke profiles, sharing their cached teachers."""
import importlib

import pandas as pd
import pytest

from kd import harness


@pytest.mark.parametrize("name", ["bigger_teachers", "eskd", "early_stopped_teachers"])
def test_cho_scripts_pass_their_smoke_profile(name, tmp_path):
    module = importlib.import_module(f"experiments.{name}")
    code = harness.main(module, ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root",
                                 str(tmp_path), "--figures-root", str(tmp_path)])
    assert code == 0
    rows = pd.read_csv(tmp_path / name / "smoke" / "runs.csv")
    assert len(rows) == len(module.grid(module.PROFILES["smoke"], 1)) and set(rows.status) == {"done"}
    assert (tmp_path / f"{name}_smoke.png").exists()
    assert "**Verdict: " in (tmp_path / name / "smoke" / "table.md").read_text()


def test_eskd_turns_the_teacher_off_after_the_stop_epoch(tmp_path):
    from experiments import eskd
    assert harness.main(eskd, ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root",
                               str(tmp_path), "--figures-root", str(tmp_path)]) == 0
    rows = pd.read_csv(tmp_path / "eskd" / "smoke" / "runs.csv").set_index("condition")
    history = pd.read_csv(tmp_path / "eskd" / "smoke" / "histories" / f"{rows.loc['resnet14 x0.5: ESKD stop 1', 'run_id']}.csv")
    assert history.train_kd.notna().tolist() == [True, False, False]
    full = rows.loc["resnet14 x0.5: full KD", "teacher_forwards"]
    assert rows.loc["resnet14 x0.5: ESKD stop 1", "teacher_forwards"] < full
    assert rows.loc["scratch", "teacher_forwards"] == 0 and rows.loc["scratch", "loss"] == "ce"
