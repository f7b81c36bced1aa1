"""Extra augmentation of the distillation data (Stanton et al.'s policies): rotations are keyed views, so
cached teacher logits stay exact; MixUp batches are not keyed and go through the teacher; bad options fail
before compute."""
import pytest
import torch

from kd.augment import Augmented
from kd.config import RunConfig, base_config
from kd.data import Batch
from kd.errors import KDError
from kd.logit_cache import Teacher
from kd.models import create_model
from kd.recipe import Recipe


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return create_model("resnet8", 10, 1, width=0.5).eval().to(memory_format=torch.channels_last)


def test_rotations_are_keyed_views_on_top_of_the_same_crops_and_flips(fmnist):
    rotated = Augmented(fmnist, rotate=90)
    assert rotated.num_views == 7 * fmnist.num_views and rotated.identity() != fmnist.identity()
    views = rotated.epoch_views(3, 2)
    assert torch.equal(views % fmnist.num_views, fmnist.epoch_views(3, 2))  # paired with the base run's views
    assert len((views // fmnist.num_views).unique()) == 7
    idx = torch.arange(8)
    clean = torch.full_like(idx, fmnist.clean_view)
    for turn, k in ((3, 0), (6, 1), (0, -1)):  # 0, +90 and -90 degrees of the clean view
        image = rotated.train_images(idx, clean + turn * fmnist.num_views)
        base = fmnist.train_images(idx, clean)
        if k == 0:
            assert torch.equal(image, base)  # the unrotated view is the base view, bit for bit
        else:
            assert min((image - torch.rot90(base, k * s, (2, 3))).abs().max() for s in (1, -1)) < 1e-4


def test_cached_logits_of_rotated_views_equal_a_fresh_forward(fmnist, teacher):
    rotated = Augmented(fmnist, rotate=15)
    logits = Teacher([teacher], fmnist).on(rotated)
    idx = torch.randint(fmnist.num_train, (300,), generator=torch.Generator().manual_seed(0)).unique()
    logits.prepare([idx], seed=0, epoch=1)
    view = rotated.epoch_views(0, 1)[idx]
    filled = logits.forwards
    looked_up = logits.train_logits(Batch(rotated.train_images(idx, view), fmnist.train_y[idx], idx, view))
    assert filled == len(idx) and logits.forwards == filled  # a lookup, no forward
    with torch.no_grad():
        fresh = teacher(rotated.train_images(idx, view))
    assert torch.allclose(looked_up, fresh, atol=1e-5, rtol=1e-5)
    assert logits._table("train-views").shape[1] == rotated.num_views  # its own table, not the base one's


def test_mixup_batches_are_unkeyed_reproducible_mixtures_that_go_through_the_teacher(fmnist, teacher):
    mixed = Augmented(fmnist, mixup=1.0)
    assert mixed.num_views is None
    plan = [torch.arange(64), torch.arange(64, 128)]
    first, again = list(mixed.train_batches(plan, 5, 1)), list(mixed.train_batches(plan, 5, 1))
    plain = list(fmnist.train_batches(plan, 5, 1))
    for a, b, p in zip(first, again, plain):
        assert a.view is None and torch.equal(a.x, b.x) and torch.equal(a.y, p.y)
        assert not torch.equal(a.x, p.x)
    logits = Teacher([teacher], fmnist).on(mixed)
    logits.prepare(plan, 5, 1)  # no table of training views: nothing to fill
    assert logits.forwards == 0
    logits.train_logits(first[0])
    assert logits.forwards == 64


def config(**fields):
    p = {"dataset": "fashion_mnist", "student": "resnet8", "student_width": 0.5, "teacher": "resnet8",
         "teacher_recipe": Recipe(epochs=1), "recipe": Recipe(epochs=1), "loss_options": {"ce_weight": 0.0}}
    return base_config("test", p, "augmented", 0, **fields)


@pytest.mark.parametrize("augment, loss_options, message", [
    ({"rotate": 15, "shear": 3}, {"ce_weight": 0.0}, "Unknown augmentation"),
    ({"rotate": 270}, {"ce_weight": 0.0}, "out of range"),
    ({"mixup": -1}, {"ce_weight": 0.0}, "out of range"),
    ({"mixup": 1.0}, {"ce_weight": 0.5}, "soft loss alone"),
])
def test_bad_augmentation_fails_before_compute(augment, loss_options, message):
    with pytest.raises(KDError, match=message):
        RunConfig.from_dict(config(augment=augment, loss_options=loss_options)).check()
