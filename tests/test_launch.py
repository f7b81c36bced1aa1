"""The local launcher (kd/launch.py): rows do not depend on how many runs train at once, and runs that need
no teacher fill the cores while the teachers train."""
import pandas as pd

from experiments import kdas_finding4 as f4
from kd import harness
from kd.run import Context


def test_rows_are_identical_for_any_number_of_jobs(tmp_path):
    """One thread per run in its own process: --jobs 1 and --jobs 2 give the same numbers, bit for bit (on
    Finding 4's grid: 5 runs, half of Finding 3's)."""
    metrics = {}
    for jobs in (1, 2):
        argv = ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--jobs", str(jobs),
                "--results-root", str(tmp_path / f"jobs{jobs}"), "--figures-root", str(tmp_path / f"jobs{jobs}")]
        assert harness.main(f4, argv) == 0
        rows = pd.read_csv(tmp_path / f"jobs{jobs}" / f4.NAME / "smoke" / "runs.csv").set_index("run_id").sort_index()
        assert (rows.status == "done").all() and rows.rule_id.nunique() == 1
        assert rows.device.str.startswith("cpu (1 threads").all()  # one thread per run, whatever --jobs
        metrics[jobs] = (rows.filter(regex="^(final|best)_|^samples$").drop(columns=["final_epoch_s", "best_epoch_s"])
                         .sort_index(axis=1))  # runs.csv's columns come in the order rows first brought them
    pd.testing.assert_frame_equal(metrics[1], metrics[2], check_exact=True)
    assert len(metrics[1]) == len(f4.grid(f4.PROFILES["smoke"], 1))


def test_runs_without_a_teacher_fill_the_cores_while_teachers_train(tmp_path, monkeypatch):
    """The sweep's first phase trains the teachers and, beside them, the runs that need none (scratch
    students); the distilled runs follow."""
    import types

    from experiments import eskd
    order = []
    monkeypatch.setattr(Context, "prepare", lambda self, job: order.append("teacher"))

    def run(config, ctx):
        order.append("scratch" if config.teacher is None else "distilled")
        raise ValueError("not trained in this test")
    module = types.SimpleNamespace(**{k: getattr(eskd, k) for k in ("NAME", "TITLE", "CLAIM", "PROFILES",
                                                                     "grid", "report", "verdict_for", "RULE")},
                                   run=run, __name__="fake")
    argv = ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root", str(tmp_path),
            "--figures-root", str(tmp_path)]
    assert harness.main(module, argv, isolate=False) == 1  # every run failed, by design
    scratch = order.count("scratch")
    assert scratch == 1 and order[:1 + scratch] == ["teacher"] + ["scratch"] * scratch
    assert set(order[1 + scratch:]) == {"distilled"}


def test_runs_spread_over_the_visible_gpus_several_per_gpu(monkeypatch):
    """--device cuda with GPUs visible: --jobs defaults to GPUs x --runs-per-gpu, process i on GPU i % GPUs;
    cuda:N keeps every run there; on a CPU --jobs stays the core count."""
    import importlib

    from kd import harness
    from kd.launch import available_cores, gpus_visible, placements
    assert placements("cuda", 8, 2) == ["cuda:0", "cuda:1"] * 4
    assert placements("cuda", 3, 4) == ["cuda:0", "cuda:1", "cuda:2"]
    assert placements("cuda:1", 3, 1) == ["cuda:1"] * 3 and placements("cpu", 2, 0) == ["cpu", "cpu"]
    module = importlib.import_module("experiments.kdas_finding3")
    assert harness.parse_args(module, ["--device", "cpu"]).jobs == available_cores()
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    assert gpus_visible("cuda") == 2 and gpus_visible("auto") == 2 and gpus_visible("cuda:1") == 1
    assert harness.parse_args(module, ["--device", "cuda", "--runs-per-gpu", "4"]).jobs == 8
    assert harness.parse_args(module, ["--device", "cuda", "--runs-per-gpu", "4", "--jobs", "3"]).jobs == 3
