"""A run's recipe (kd/recipe.py): its ranges checked, the learning rate of every epoch of a cosine and a step
schedule, and a scaled recipe keeping its schedule's shape."""
import math

import pytest
import torch

from kd.errors import KDError
from kd.models import create_model
from kd.objectives import CrossEntropy
from kd.recipe import Recipe
from kd.train import Student

TINY = Recipe(epochs=2, batch_size=64, lr=0.05)


@pytest.mark.parametrize("bad, match", [
    (dict(epochs=0), "epochs"), (dict(lr=-1.0), "learning rate"), (dict(momentum=1.0), "momentum"),
    (dict(schedule="linear"), "schedule"), (dict(milestones=(50,)), "milestones"),
    (dict(warmup_epochs=10), "warm-up")])
def test_recipe_ranges(bad, match):
    with pytest.raises(KDError, match=match):
        Recipe(**{**TINY.as_dict(), **bad}).check()


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
