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
    read_only, device, source = True, "Test GPU", "by hand"

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


def test_a_run_on_folder_data_costs_the_slower_of_its_model_and_its_data_path(tmp_path):
    """A GPU trains an ImageNet run no faster than its CPU cores decode and crop the images: with a model
    step of 1 ms per sample and a data path of 100 images/s per core on 4 cores (400/s), every ImageNet run
    costs its images / 400 s; CIFAR runs are the model alone; a missing table says so; a damaged one is an
    error that names it."""
    import importlib

    from kd.costs import DataPath, gpu_hours
    module = importlib.import_module("experiments.eskd")
    args = harness.parse_args(module, ["--profile", "paper", "--device", "cpu", "--results-root", str(tmp_path),
                                       "--data-dir", str(tmp_path)])
    p, _, _, todo, _ = harness.plan(module, args)
    assert p["dataset"] == "imagefolder"
    rates = tmp_path / "imagenet_data.csv"
    pd.DataFrame([{"images_per_s_per_core: pil": 1e9, "device": "Old CPU"},
                  {"images_per_s_per_core: pil": 100.0, "device": "Test CPU"}]).to_csv(rates, index=False)
    data = DataPath.of(p, cores=4, path=rates)
    assert (data.decode, data.per_core, data.cpu) == ("pil", 100.0, "Test CPU")
    flat = _FlatCost()
    images = sum(c.train_size * c.recipe.epochs for c in todo)
    line = gpu_hours(todo, [], flat, data)
    assert f"{images / 400 / 3600:.1f} GPU-hours" in line
    assert f"slower than the model in {len(todo)} of {len(todo)} jobs on folder data" in line
    model_only = sum(estimate_seconds(c, torch.device("cuda"), flat) for c in todo) / 3600
    assert f"{model_only:.1f} GPU-hours" in gpu_hours(todo, [], flat, DataPath.of(p, cores=10**6, path=rates))
    assert "data path is not priced" in gpu_hours(todo, [], flat, DataPath.of(p, 4, tmp_path / "none.csv"))
    cifar = importlib.import_module("experiments.kdas_finding3")
    cifar_args = harness.parse_args(cifar, ["--profile", "paper", "--device", "cpu", "--results-root", str(tmp_path)])
    cifar_todo = harness.plan(cifar, cifar_args)[3]
    assert data.seconds(cifar_todo[0]) is None and "data path" not in gpu_hours(cifar_todo[:2], [], flat, data)
    rates.write_text(rates.read_text().replace("100.0", "fast"))
    with pytest.raises(KDError, match="imagenet_data.csv is damaged"):
        DataPath.of(p, 4, rates)
