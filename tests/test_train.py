import math

import pytest
import torch
from conftest import distinct_views

from kd.data import balanced_subset
from kd.errors import KDError
from kd.logit_cache import Teacher
from kd.models import create_model
from kd.objectives import DKD, KD, CrossEntropy, make_objective
from kd.recipe import Recipe
from kd.samplers import Shuffle
from kd.train import Student, fit

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


def test_eskd_after_the_stop_is_the_scratch_objective():
    s, t, y, idx = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3]), torch.arange(4)
    eskd = KD(temperature=4.0, ce_weight=0.1, kd_weight=0.9, stop_epoch=2)
    assert set(eskd(s, t, y, idx, 2)) == {"ce", "kd"}
    assert torch.allclose(eskd(s, t, y, idx, 2)["ce"], 0.1 * CrossEntropy()(s, None, y, idx, 3)["ce"])
    after = eskd(s, None, y, idx, 3)
    assert set(after) == {"ce"} and torch.equal(after["ce"], CrossEntropy()(s, None, y, idx, 3)["ce"])


def test_label_smoothing_of_a_distillation_objective_smooths_its_hard_label_term_only():
    s, t, y, idx = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3]), torch.arange(4)
    smooth, plain = make_objective("dist", 10, label_smoothing=0.1), make_objective("dist", 10)
    assert torch.equal(smooth(s, t, y, idx, 1)["kd"], plain(s, t, y, idx, 1)["kd"])
    assert torch.allclose(smooth(s, t, y, idx, 1)["ce"], CrossEntropy(0.1)(s, None, y, idx, 1)["ce"])
    assert not torch.allclose(smooth(s, t, y, idx, 1)["ce"], plain(s, t, y, idx, 1)["ce"])


def test_dkd_warmup_ramps_the_term():
    s, t, y = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    dkd = DKD(warmup=4)
    assert torch.allclose(dkd.term(s, t, y, 1) * 4, dkd.term(s, t, y, 4))
    assert torch.allclose(dkd.term(s, t, y, 8), dkd.term(s, t, y, 4))


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


@pytest.mark.parametrize("bad, match", [
    (dict(epochs=0), "epochs"), (dict(lr=-1.0), "learning rate"), (dict(momentum=1.0), "momentum"),
    (dict(schedule="linear"), "schedule"), (dict(milestones=(50,)), "milestones"),
    (dict(warmup_epochs=10), "warm-up")])
def test_recipe_ranges(bad, match):
    with pytest.raises(KDError, match=match):
        Recipe(**{**TINY.as_dict(), **bad}).check()


@pytest.mark.parametrize("loss, options, match", [
    ("kd", dict(temperature=0.0), "temperature must be > 0"), ("kd", dict(stop_epoch=11), "stop epoch"),
    ("dkd", dict(beta=-1.0), "beta"), ("kd", dict(direction="up"), "direction"), ("mse", {}, "Unknown loss"),
    ("dist", dict(tau=4.0), "no option tau"), ("dist", dict(temperature=-1.0), "temperature must be > 0"),
    ("kd", dict(label_smoothing=1.0), "Label smoothing")])
def test_objective_options_are_checked(loss, options, match):
    with pytest.raises(KDError, match=match):
        make_objective(loss, epochs=10, **options)


@pytest.mark.parametrize("recipe, expected", [
    # cosine to 0 over 4 epochs: lr * (1 + cos(pi * (epoch - 1) / 4)) / 2
    (Recipe(epochs=4, lr=0.1), [0.1 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)]),
    # step: x0.1 after epochs 2 and 3
    (Recipe(epochs=4, lr=0.1, schedule="step", milestones=(2, 3)), [0.1, 0.1, 0.01, 0.001]),
    # linear warm-up from lr/100 over 2 epochs, then the cosine of the whole run
    (Recipe(epochs=4, lr=0.1, warmup_epochs=2), [0.001, 0.001 + (0.1 - 0.001) / 2,
                                                  0.1 * (1 + math.cos(math.pi * 2 / 4)) / 2,
                                                  0.1 * (1 + math.cos(math.pi * 3 / 4)) / 2]),
])
def test_learning_rate_per_epoch(recipe, expected):
    student = Student(create_model("resnet8", 10, 1, width=0.5), CrossEntropy(), recipe, torch.device("cpu"))
    got = []
    for epoch in range(1, recipe.epochs + 1):
        student.start_epoch(epoch, torch.device("cpu"))
        got.append(student.opt.param_groups[0]["lr"])
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_scaled_recipe_keeps_its_schedule_shape():
    """A control run for a fraction of the epochs (or a multiple) decays its LR at the same fraction of its
    training: CIFAR's x0.1 after 150/180/210 of 240 becomes 90/108/126 of 144 (60%), 300/360/420 of 480."""
    cifar = Recipe(epochs=240, batch_size=64, lr=0.05, schedule="step", milestones=(150, 180, 210),
                   warmup_epochs=20, eval_every=10)
    assert cifar.scaled(0.6) == Recipe(epochs=144, batch_size=64, lr=0.05, schedule="step",
                                       milestones=(90, 108, 126), warmup_epochs=12, eval_every=6)
    assert cifar.scaled(2).milestones == (300, 360, 420) and cifar.scaled(1) == cifar
    assert cifar.scaled(1 / 240) == Recipe(epochs=1, batch_size=64, lr=0.05, schedule="step",
                                           milestones=(1, 1, 1), warmup_epochs=0, eval_every=1)
