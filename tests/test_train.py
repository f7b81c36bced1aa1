
import pytest
import torch
from conftest import distinct_views

from kd.data import balanced_subset
from kd.errors import KDError
from kd.logit_cache import Teacher
from kd.models import create_model
from kd.objectives import KD, CrossEntropy
from kd.recipe import Recipe
from kd.samplers import Shuffle
from kd.train import fit

TINY = Recipe(epochs=2, batch_size=64, lr=0.05)


def _run(data, pool, objective=None, teacher=None, seed=0, recipe=TINY):
    torch.manual_seed(seed)
    model = create_model("resnet8", data.num_classes, data.in_chans, width=0.25)
    result, = fit([model], [objective or CrossEntropy()], data, Shuffle(pool, recipe.batch_size, seed),
                  recipe, seed, teacher, log=lambda m: None)
    return model, result


def test_fixed_seed_gives_identical_results_on_cpu(fmnist):
    pool = balanced_subset(fmnist.train_y, per_class=30, seed=0)
    a, ra = _run(fmnist, pool)
    b, rb = _run(fmnist, pool)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert ra["final"]["test_top1"] == rb["final"]["test_top1"]
    c, _ = _run(fmnist, pool, seed=1)
    assert not torch.equal(a.state_dict()["head.fc.weight"], c.state_dict()["head.fc.weight"])


def test_history_counts_samples_and_terms(fmnist):
    pool = balanced_subset(fmnist.train_y, per_class=20, seed=0)
    teacher = create_model("resnet8", 10, 1, width=0.25).eval()
    _, result = _run(fmnist, pool, KD(temperature=4.0), Teacher([teacher], fmnist))
    assert [r["samples"] for r in result["history"]] == [200, 400]
    assert result["samples"] == 400 and result["cpu_s"] > 0  # the teacher runs once per distinct view:
    assert 200 < result["teacher_forwards"] == distinct_views(fmnist, pool, 0, 2) < 400
    assert {"train_ce", "train_kd", "test_top1", "test_agreement", "test_kl_teacher_student", "test_ece"} <= set(
        result["final"])


def test_eskd_stops_running_the_teacher(fmnist):
    pool = balanced_subset(fmnist.train_y, per_class=20, seed=0)
    teacher = Teacher([create_model("resnet8", 10, 1, width=0.25).eval()], fmnist)
    recipe = Recipe(epochs=3, batch_size=50, lr=0.05)
    _, result = _run(fmnist, pool, KD(temperature=4.0, stop_epoch=1), teacher, recipe=recipe)
    assert ["train_kd" in r for r in result["history"]] == [True, False, False]
    test_forwards = len(fmnist.test_y)
    assert teacher.forwards == test_forwards + 200  # one epoch of training views only


def test_nan_loss_is_a_clear_error(fmnist):
    pool = balanced_subset(fmnist.train_y, per_class=10, seed=0)

    class Broken(CrossEntropy):
        def __call__(self, s, t, y, idx, epoch):
            return {"ce": super().__call__(s, t, y, idx, epoch)["ce"] * float("nan")}

    with pytest.raises(KDError, match="NaN or infinite in epoch 1"):
        _run(fmnist, pool, Broken())


def test_distilling_without_a_teacher_is_refused(fmnist):
    with pytest.raises(KDError, match="no teacher"):
        _run(fmnist, balanced_subset(fmnist.train_y, per_class=5, seed=0), KD())
