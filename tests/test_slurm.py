"""Sweeps as submitit job arrays (kd/slurm.py), through submitit's local executor (no Slurm here): the rows
equal a plain sweep's, bit for bit in every number; a preempted job is requeued with the same run, which
resumes from its saved state (tests/test_resume.py proves the resume itself)."""
import pandas as pd
import pytest

from experiments import kdas_finding4 as f4
from kd import harness
from kd.analysis import Outputs

pytest.importorskip("submitit")


def sweep(root, *args):
    return harness.main(f4, ["--profile", "smoke", "--device", "cpu", "--seeds", "1", "--results-root",
                             str(root / "results"), "--figures-root", str(root / "figures"), *args])


def test_a_submitit_array_writes_the_rows_a_plain_sweep_writes(tmp_path):
    assert sweep(tmp_path / "plain", "--jobs", "2") == 0
    assert sweep(tmp_path / "array", "--launcher", "submitit-local", "--gpus-per-run", "0", "--time", "20") == 0
    plain, array = (pd.read_csv(tmp_path / k / "results" / f4.NAME / "smoke" / "runs.csv").set_index("run_id")
                    .sort_index() for k in ("plain", "array"))
    assert list(plain.index) == list(array.index) and set(array.status) == {"done"}
    numbers = [c for c in plain if (c.startswith(("final_", "best_", "kl_tg")) or c == "samples")
               and not c.endswith("_s")]  # every number but the timings
    pd.testing.assert_frame_equal(plain[numbers], array[numbers])
    assert (array["command"] == plain["command"]).all()  # the launching command (here pytest's), not submitit's
    for rid in plain.index:  # every epoch of every run
        history = [pd.read_csv(tmp_path / k / "results" / f4.NAME / "smoke" / "histories" / f"{rid}.csv")
                   for k in ("plain", "array")]
        pd.testing.assert_frame_equal(*(h.drop(columns=[c for c in h if "time" in c or c.endswith("_s")])
                                        for h in history))
    assert (tmp_path / "array" / "results" / f4.NAME / "smoke" / "table.md").is_file()  # the launcher reported
    assert sweep(tmp_path / "array", "--launcher", "submitit-local", "--gpus-per-run", "0") == 0  # all done


def test_a_preempted_job_is_requeued_with_its_run(tmp_path):
    import submitit

    from kd.slurm import RunJob
    args = harness.parse_args(f4, ["--profile", "smoke", "--device", "cpu"])
    job = RunJob(f4.__name__, args, Outputs(tmp_path / "r", tmp_path / "f.png"))
    config = f4.grid(f4.PROFILES["smoke"], 1)[0]
    again = job.checkpoint(config)
    assert isinstance(again, submitit.helpers.DelayedSubmission)
    assert again.function is job and again.args == (config,)


def test_slurm_needs_a_partition_before_anything_is_submitted(tmp_path, capsys):
    assert sweep(tmp_path, "--launcher", "slurm") == 2
    assert "--partition" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
