"""A sweep survives runs that die: a run killed by a signal or stopped by a NaN loss is recorded as failed
with its cause, the other runs go on, and the next invocation redoes exactly the failed ones."""
from pathlib import Path

import pandas as pd
import pytest

from kd import harness
from tests import faulty_finding


def test_a_crashed_run_and_a_nan_run_fail_alone_and_are_redone(tmp_path, monkeypatch, capsys):
    argv = ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root", str(tmp_path),
            "--figures-root", str(tmp_path)]
    runs = tmp_path / faulty_finding.NAME / "smoke" / "runs.csv"
    monkeypatch.setenv("KD_TEST_FAULTS", "1")
    assert harness.main(faulty_finding, argv) == 1
    rows = pd.read_csv(runs).set_index("condition")
    assert rows.loc["random", "status"] == "failed"
    assert rows.loc["random", "error"] == "the run's process was killed by SIGSEGV"
    assert rows.loc["low", "status"] == "failed"
    assert rows.loc["low", "error"].startswith(  # the message itself, no exception class in front
        "low seed 0: the training loss became NaN or infinite in epoch 1")
    assert (rows.drop(["random", "low"]).status == "done").all() and len(rows) == 4
    err = capsys.readouterr().err
    assert "2 runs failed" in err and "re-run the same command" in err
    done_before = rows[rows.status == "done"][["run_id", "final_test_top1"]]

    monkeypatch.setenv("KD_TEST_FAULTS", "0")
    assert harness.main(faulty_finding, argv) == 0
    after = pd.read_csv(runs)
    assert len(after) == 4 and set(after.status) == {"done"} and after.run_id.is_unique
    kept = after.set_index("run_id").loc[done_before.run_id, "final_test_top1"]
    assert list(kept) == list(done_before.final_test_top1)  # earlier results untouched, only failures redone


ORPHAN = """
import sys, time
from kd.isolation import ChildRunner

def run(config):
    import os
    print(os.getpid(), flush=True)  # the run has started
    time.sleep(60)

def setup():
    return run

if __name__ == "__main__":
    with ChildRunner(setup) as run:
        run({})
"""


def test_a_run_process_dies_with_its_sweep(tmp_path):
    """A sweep killed with SIGKILL (no chance to stop its children) leaves no run training on."""
    import os
    import signal
    import subprocess
    import sys
    import time
    script = tmp_path / "sweep.py"
    script.write_text(ORPHAN)
    sweep = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    child = int(sweep.stdout.readline())
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait()
    for _ in range(50):
        stat = Path(f"/proc/{child}/stat")
        if not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z":  # gone, or a zombie
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the run's process outlived its sweep")
