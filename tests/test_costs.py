"""What runs cost before they run (kd/costs.py): GPU-hours from measured per-sample costs, and the median of
the latest GPU's measurements."""
import pandas as pd
import pytest
import torch

from kd import harness
from kd.costs import MeasuredCosts, estimate_seconds, teachers_to_train
from kd.datasets import DATASETS
from kd.errors import KDError


class _FlatCost(dict):
    """Every per-sample cost is 1 ms: the GPU-hours are then samples x 1 ms, checkable by hand."""
    read_only = True

    def __contains__(self, key):
        self.setdefault(key, 1e-3)
        return True


def test_dry_run_prices_gpu_hours_from_measured_costs(tmp_path, monkeypatch, capsys):
    """A dry run on a machine without a GPU gives the GPU-hours from per-sample costs measured on one
    (results/benchmarks/per_sample_costs.csv): training samples x epochs, plus one teacher forward per
    distinct view, each at its measured cost; a missing cost is named, never guessed."""
    import importlib
    module = importlib.import_module("experiments.early_stopped_teachers")
    args = harness.parse_args(module, ["--profile", "paper", "--device", "cpu", "--results-root", str(tmp_path)])
    p, _, configs, todo, _ = harness.plan(module, args)
    flat, gpu = _FlatCost(), torch.device("cuda")
    teachers = list(teachers_to_train(todo, p, args).values())
    expected = sum(estimate_seconds(c, gpu, flat) for c in todo + teachers) / 3600
    size = DATASETS["cifar10"]
    first = todo[0]
    n, epochs = first.train_size, first.recipe.epochs
    by_hand = (n * epochs + n * size.views * (1 - (1 - 1 / size.views) ** epochs)) * 1e-3  # steps, teacher views
    assert estimate_seconds(first, gpu, flat) == pytest.approx(by_hand)
    costs = tmp_path / "per_sample_costs.csv"
    monkeypatch.setattr("kd.costs.GPU_COSTS", costs)
    rows = [{"device": "Test GPU", "dataset": k[0], "model": k[1], "width": k[2], "train_step": k[3], "batch": k[4],
             "seconds_per_sample": v} for k, v in flat.items()]
    pd.DataFrame(rows[1:]).to_csv(costs, index=False)  # one cost missing
    harness.dry_run(module, args, p, configs, todo)
    assert "no measured Test GPU cost for" in capsys.readouterr().out
    pd.DataFrame(rows).to_csv(costs, index=False)
    harness.dry_run(module, args, p, configs, todo)
    out = capsys.readouterr().out
    assert f"{expected:.1f} GPU-hours on one Test GPU" in out
    assert f"a Slurm array of {len(todo)} runs after {len(teachers)} teacher jobs" in out


def test_measured_costs_are_the_median_of_the_latest_gpus_measurements(tmp_path):
    """One timing of a small model on a GPU is noisy, so a cost is the median of its measurements on the
    GPU measured last (another GPU's rows are not mixed in), and a weights tag does not make a new model."""
    key = ("cifar10", "resnet20", 1.0, True, 64)
    rows = [("Old GPU", "resnet20", 9.0), ("Test GPU", "resnet20", 1.0), ("Test GPU", "resnet20", 2.0),
            ("Test GPU", "resnet20", 5.0), ("Test GPU", "resnet34.tv_in1k", 3.0)]
    costs = tmp_path / "per_sample_costs.csv"
    pd.DataFrame([{"device": d, "dataset": "cifar10", "model": m, "width": 1.0, "train_step": True, "batch": 64,
                   "seconds_per_sample": s} for d, m, s in rows]).to_csv(costs, index=False)
    measured = MeasuredCosts(costs)
    assert measured.device == "Test GPU" and measured == {key: 2.0, ("cifar10", "resnet34", 1.0, True, 64): 3.0}
    damaged = costs.read_text().replace(",64,2.0\n", ",64,n/a\n").replace(",64,5.0\n", ",64,0\n")
    costs.write_text(damaged)
    with pytest.raises(KDError, match=r"damaged: seconds_per_sample is not a positive number on line\(s\) 4, 5\."):
        MeasuredCosts(costs)
    assert costs.read_text() == damaged
