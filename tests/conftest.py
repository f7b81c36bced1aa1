import os

import pytest
import torch

import kd  # noqa: F401  (registers the CIFAR zoo)
from kd.datasets import load_dataset


def distinct_views(data, pool, seed: int, epochs: int) -> int:
    """Distinct (sample, view) pairs a run over `pool` trains on: the teacher forwards a logit cache needs."""
    return len({(i, v) for epoch in range(1, epochs + 1)
                for i, v in zip(pool.tolist(), data.epoch_views(seed, epoch)[pool].tolist())})


# Under pytest-xdist (README: -n 2) the workers share the cores: each takes its share of threads, since more
# threads than cores make torch's thread pools wait on each other.
THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
torch.set_num_threads(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)  # and so do the processes the tests start (the CLI, scripts)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own teacher cache and published teachers, so no test reuses another's teacher nor
    the repo's (results/teachers), nor publishes into it."""
    monkeypatch.setenv("KD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KD_TEACHERS", str(tmp_path / "published"))


@pytest.fixture(scope="session")
def fmnist():
    """Real Fashion-MNIST (tests never use fake data for what they call real)."""
    torch.set_num_threads(THREADS)
    return load_dataset("fashion_mnist")


@pytest.fixture
def smoke(tmp_path):
    """Run an experiment script's smoke profile (1 seed) into tmp_path; check it produced a complete grid,
    a figure and a table with a verdict; return its rows. The runs train in this process (the sweep's child
    processes, one import of torch and timm each, are tested in test_harness and test_faults)."""
    import importlib

    import pandas as pd

    from kd import harness

    def run(name: str, *options: str):
        module = importlib.import_module(f"experiments.{name}")
        code = harness.main(module, ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root",
                                     str(tmp_path), "--figures-root", str(tmp_path), *options], isolate=False)
        assert code == 0
        rows = pd.read_csv(tmp_path / name / "smoke" / "runs.csv")
        assert len(rows) == len(module.grid(module.PROFILES["smoke"], 1)) and set(rows.status) == {"done"}
        assert (tmp_path / f"{name}_smoke.png").exists()
        assert "**Verdict: " in (tmp_path / name / "smoke" / "table.md").read_text()
        return rows
    return run
