"""The documented entry points work as documented: `bash experiments/<name>.sh` and `python
experiments/<name>.py` from any working directory, and a CLI distillation is the run an experiment makes from the same config."""
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from kd.cli import main
from kd.config import base_config
from kd.recipe import Recipe
from kd.run import Context, distill

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p.stem for p in (REPO / "experiments").glob("*.sh"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_shell_script_runs_from_another_folder(name, tmp_path):
    """Each wrapper runs its own module of this checkout from anywhere (what a dry run prints is tested in
    test_harness and test_all; here the command line answers, which costs one import)."""
    out = subprocess.run(["bash", str(REPO / "experiments" / f"{name}.sh"), "--help"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    expected = "Every finding in turn" if name == "all" else f"usage: experiments/{name}.sh"
    assert out.stdout.startswith(expected)


def test_python_runs_a_finding_file_as_its_module(tmp_path):
    """`python experiments/<name>.py` (a habit of many users) runs the finding, as `python -m` would."""
    out = subprocess.run(["python", str(REPO / "experiments" / "kdas_finding4.py"), "--profile", "smoke", "--dry-run",
                          "--results-root", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("kdas_finding4 --profile smoke: ") and "estimated" in out.stdout


def test_a_cli_distillation_is_the_run_an_experiment_makes(fmnist, tmp_path):
    recipe = Recipe(epochs=2, batch_size=64, lr=0.05)  # the CLI's Fashion-MNIST recipe with the options below
    teacher = {"model": "resnet8", "width": 0.5, "recipe": recipe.as_dict(), "seed": 0}
    config = base_config("test", {"dataset": "fashion_mnist", "pool_fraction": 0.02, "student": "resnet8",
                                          "student_width": 0.5, "recipe": recipe, "loss": "kd",
                                          "loss_options": {"temperature": 4.0}, "teacher": "resnet8",
                                          "teacher_width": 0.5, "teacher_recipe": recipe}, "kd", seed=3)
    assert config["teacher"] == teacher
    ctx = Context({"dataset": "fashion_mnist"}, "cpu", data=fmnist)
    ours = distill(config, ctx, ctx.pool(0.02))
    assert main(["distill", "--student", "resnet8", "--width", "0.5", "--teacher", "resnet8", "--teacher-width",
                 "0.5", "--teacher-subset-fraction", "0.02", "--subset-fraction", "0.02", "--epochs", "2",
                 "--batch-size", "64", "--lr", "0.05", "--temperature", "4", "--seed", "3", "--device", "cpu",
                 "--results", str(tmp_path)]) == 0
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert row.final_test_top1 == ours["final"]["test_top1"] and row.samples == ours["samples"]
    assert row.teacher_test_top1 == ours["extra"]["teacher_test_top1"]
