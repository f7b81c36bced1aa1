"""A run's config (kd/config.py): every grid of every finding parses into a RunConfig whose as_dict() is the
dict it came from (so run ids never change), parts it does not know are refused, and a sweep prepares each
teacher once with every snapshot its runs need."""
import pytest

from experiments.findings import FINDINGS, module_of
from kd import records
from kd.config import CORE, OPTIONAL, RunConfig, base_config, teacher_jobs
from kd.errors import KDError
from kd.recipe import Recipe

RECIPE = Recipe(epochs=2, batch_size=64, lr=0.05)


def test_a_sweep_prepares_each_teacher_once_with_every_snapshot_its_runs_need():
    p = {"dataset": "fashion_mnist", "student": "resnet8", "teacher": "resnet8", "teacher_width": 0.5,
         "teacher_recipe": RECIPE, "recipe": RECIPE}
    config = base_config("test", p, "kd", 0)
    todo = [{**config, "teacher": {**config["teacher"], "epoch": e}, "seed": s} for e in (None, 2, 1) for s in (0, 1)]
    todo.append({**config, "teacher": {**config["teacher"], "seed": 1}})
    todo.append({**config, "teacher": None})
    jobs = teacher_jobs([RunConfig.from_dict(c) for c in todo])
    assert [job.config.teacher.seed for job in jobs] == [0, 1]
    assert jobs[0].snapshots == (1, 2) and jobs[1].snapshots == ()
    assert all("epoch" not in job.config.teacher.as_dict() for job in jobs)


@pytest.mark.parametrize("name", FINDINGS)
def test_every_grid_config_is_the_dict_its_run_id_hashes(name):
    module = module_of(name)
    for profile, p in module.PROFILES.items():
        for grid_config in module.grid(dict(p), 2):
            config = RunConfig.from_dict(grid_config)
            assert config.as_dict() == grid_config and config.run_id == records.run_id(grid_config)
            assert RunConfig.from_dict(config.as_dict()) == config  # and back again
            assert config.finding == {k: v for k, v in grid_config.items() if k not in CORE + OPTIONAL}


def test_a_config_without_its_parts_or_with_unknown_teacher_options_is_refused():
    config = base_config("test", {"dataset": "fashion_mnist", "student": "resnet8", "teacher": "resnet8",
                                  "teacher_recipe": RECIPE, "recipe": RECIPE}, "kd", 0)
    with pytest.raises(KDError, match="A run config needs recipe"):
        RunConfig.from_dict({k: v for k, v in config.items() if k != "recipe"})
    with pytest.raises(KDError, match="Unknown teacher option.*temprature"):
        RunConfig.from_dict({**config, "teacher": {**config["teacher"], "temprature": 4}})
    with pytest.raises(TypeError, match="hashes a config dict"):
        records.run_id(RunConfig.from_dict(config))  # a typed config hashes as its dict: RunConfig.run_id
