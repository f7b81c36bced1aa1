"""One run (kd/run.py): a distilled run's row names the weights of its teacher (their SHA-256, and its cache
folder), and a run that pins its teacher's weights refuses any others, before any training."""
import pytest

from kd.config import RunConfig, base_config
from kd.errors import KDError
from kd.recipe import Recipe
from kd.records import load_saved, weights_sha256
from kd.run import Context, check_teachers, distill
from kd.teachers import teacher_folder

RECIPE = Recipe(epochs=1, batch_size=64, lr=0.05)
P = {"dataset": "fashion_mnist", "pool_fraction": 0.01, "student": "resnet8", "student_width": 0.5,
     "teacher": "resnet8", "teacher_width": 0.5, "teacher_recipe": RECIPE, "recipe": RECIPE, "loss": "kd"}


def test_a_row_names_its_teachers_weights_and_a_pinned_run_takes_no_others(fmnist):
    ctx = Context(P, "cpu", data=fmnist, log=lambda m: None)
    result = distill(base_config("test", P, "kd", 0), ctx, ctx.pool(0.01))
    folder = teacher_folder(ctx.teacher_spec(base_config("test", P, "kd", 0)))
    weights = weights_sha256(load_saved(folder / "final.pt")["state_dict"])
    assert result["extra"]["teacher_sha256"] == weights and result["extra"]["teacher_key"] == folder.name

    same = RunConfig.from_dict(base_config("test", {**P, "teacher_weights": weights}, "kd", 1))
    check_teachers([same], ctx)  # these weights are cached: nothing to say
    assert distill(same, ctx, ctx.pool(0.01))["extra"]["teacher_sha256"] == weights
    other = RunConfig.from_dict(base_config("test", {**P, "teacher_weights": "0" * 64}, "kd", 1))
    with pytest.raises(KDError, match="pin teacher weights this machine does not have.*Nothing was trained"):
        check_teachers([other], ctx)
    with pytest.raises(KDError, match="but this run pins 0000000000000000"):
        distill(other, Context(P, "cpu", data=fmnist, log=lambda m: None), ctx.pool(0.01))


def test_a_pinned_teacher_that_is_nowhere_here_is_said_before_it_is_trained(fmnist):
    missing = RunConfig.from_dict(base_config("test", {**P, "teacher_weights": "f" * 64, "teacher_seed": 7}, "kd", 0))
    ctx = Context(P, "cpu", data=fmnist, log=lambda m: None)
    with pytest.raises(KDError, match="not cached or published"):
        check_teachers([missing], ctx)
    assert not (teacher_folder(ctx.teacher_spec(missing)) / "final.pt").exists()  # and nothing was trained
