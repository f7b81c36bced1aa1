"""Every cpu-profile student and teacher trains through the loop's own code path (fit -> Student.step on
batches from the data pipeline) at odd and even batch sizes. On AVX-512 CPUs oneDNN's strided 1x1
convolution in channels_last crashed the process on odd batches (see kd/device.py); each model runs in
a child process so that a crash is a failing test that names the model and batch size, not a dead pytest."""
import importlib
import subprocess
import sys

import pytest
import torch

from kd import records
from kd.device import SubsampledPointwiseConv, place
from kd.models import create_model
from tests.test_harness import EXPERIMENTS

BATCH_SIZES = (1, 2, 3, 7, 51)


def cpu_profile_models() -> list[tuple[str, float]]:
    """(model, width) of every student and teacher in any experiment's cpu grid."""
    found = set()
    for name in EXPERIMENTS:
        module = importlib.import_module(f"experiments.{name}")
        for c in module.grid(module.PROFILES["cpu"], 1):
            found.add((c["student"], c.get("student_width", 1.0)))
            if c.get("teacher"):
                found.add((c["teacher"]["model"], c["teacher"]["width"]))
    return sorted(found)


CHILD = """
import sys, torch
from kd.data import balanced_subset
from kd.datasets import load_dataset
from kd.models import create_model
from kd.objectives import CrossEntropy
from kd.samplers import Shuffle
from kd.recipe import Recipe
from kd.train import fit
torch.set_num_threads(2)
name, width = sys.argv[1], float(sys.argv[2])
data = load_dataset("fashion_mnist", test_per_class=5)
for bs in map(int, sys.argv[3:]):
    print(f"{name} x{width} batch {bs}", flush=True)
    pool = balanced_subset(data.targets(), per_class=6, seed=0)[:bs]
    torch.manual_seed(0)
    model = create_model(name, data.num_classes, data.in_chans, width)
    result, = fit([model], [CrossEntropy()], data, Shuffle(pool, bs, 0), Recipe(epochs=1, batch_size=bs, lr=0.01),
                  0, log=lambda m: None)
    assert result["samples"] == bs, result["samples"]
print("ok", flush=True)
"""


def test_the_cpu_grids_cover_students_and_teachers():
    models = cpu_profile_models()
    assert ("resnet8", 0.5) in models and ("resnet20", 1.0) in models and len(models) >= 5


@pytest.mark.parametrize("model, width", cpu_profile_models())
def test_training_steps_at_odd_and_even_batch_sizes(model, width):
    proc = subprocess.run([sys.executable, "-c", CHILD, model, str(width), *map(str, BATCH_SIZES)],
                          cwd=records.REPO, capture_output=True, text=True, timeout=600)
    last = (proc.stdout.strip().splitlines() or ["(nothing)"])[-1]
    assert proc.returncode == 0 and last == "ok", (
        f"{model} x{width} died at '{last}' with exit code {proc.returncode}: {proc.stderr[-2000:]}")


def test_strided_pointwise_convs_are_replaced_on_cpu_with_the_same_numbers():
    torch.manual_seed(0)
    model = create_model("resnet8", 10, 1, width=0.5).eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        reference = model(x)  # NCHW, strided 1x1 projection shortcuts
    placed = place(model, torch.device("cpu"))
    swapped = [m for m in placed.modules() if isinstance(m, SubsampledPointwiseConv)]
    assert len(swapped) == 2  # the two stride-2 projection shortcuts of a resnet8
    assert all(m.stride == (2, 2) for m in swapped)
    with torch.no_grad():
        out = placed(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, reference, atol=1e-5)
    assert set(placed.state_dict()) == set(create_model("resnet8", 10, 1, width=0.5).state_dict())
