"""A run killed between epochs resumes from its saved state and ends with the same numbers and weights as
one that never stopped (on CPU, bit for bit), also with a KDAS sampler, whose selection is part of the
state; a damaged state is never used; a sweep removes a run's state once its row is written."""
import pytest
import torch

from kd.data import training_pool
from kd.logit_cache import Teacher
from kd.models import create_model
from kd.objectives import KD
from kd.recipe import Recipe
from kd.records import atomic_save
from kd.samplers import Shuffle, make_kdas
from kd.train import fit

RECIPE = Recipe(epochs=4, batch_size=64, lr=0.05, eval_every=2)


class Killed(Exception):
    pass


@pytest.fixture(autouse=True)
def _save_every_epoch(monkeypatch):
    import kd.train
    monkeypatch.setattr(kd.train, "STATE_EVERY_S", 0.0)  # these runs are seconds long


def run(data, pool, sampler, state=None, kill_after=None):
    torch.manual_seed(0)
    teacher_model = create_model("resnet8", 10, 1, width=0.5).eval()
    torch.manual_seed(1)
    student = create_model("resnet8", 10, 1, width=0.25)

    def on_epoch(epoch, s):
        if epoch == kill_after:
            raise Killed

    result, = fit([student], [KD()], data, sampler(), RECIPE, 1, Teacher([teacher_model], data), log=lambda m: None,
                  on_epoch=on_epoch, state=state)
    return result, student


@pytest.mark.parametrize("kind", ["shuffle", "kdas"])
def test_a_killed_run_resumes_to_the_same_numbers_bit_for_bit(fmnist, tmp_path, kind):
    pool = training_pool(fmnist.targets("train"), 0.005)
    sampler = (lambda: Shuffle(pool, 64, 1)) if kind == "shuffle" else \
        (lambda: make_kdas(pool, 64, 1, RECIPE.epochs, ratio="linear", start=0.8, end=0.4, period=1))
    whole, model = run(fmnist, pool, sampler)
    state = tmp_path / "run.pt"
    with pytest.raises(Killed):
        run(fmnist, pool, sampler, state, kill_after=3)  # epochs 1-2 saved, epoch 3 lost with the kill
    resumed, resumed_model = run(fmnist, pool, sampler, state)
    timing = {"epoch_s"}
    strip = lambda h: [{k: v for k, v in r.items() if k not in timing} for r in h]  # noqa: E731
    assert strip(resumed["history"]) == strip(whole["history"]) and resumed["samples"] == whole["samples"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed_model.state_dict().values()))
    # teacher forwards count what each process computed: the resumed one's logit cache starts empty
    assert resumed["teacher_forwards"] >= whole["teacher_forwards"]


def test_a_damaged_or_foreign_state_is_not_used(fmnist, tmp_path):
    pool = training_pool(fmnist.targets("train"), 0.005)
    whole, _ = run(fmnist, pool, lambda: Shuffle(pool, 64, 1))
    state = tmp_path / "run.pt"
    atomic_save({"epoch": 3, "students": [{"model": {"nonsense": torch.zeros(1)}}]}, state)  # another model's
    again, _ = run(fmnist, pool, lambda: Shuffle(pool, 64, 1), state)
    assert again["history"][-1]["test_top1"] == whole["history"][-1]["test_top1"]  # started afresh
    state.write_bytes(b"half a file")  # damaged: its size and hash no longer match
    again, _ = run(fmnist, pool, lambda: Shuffle(pool, 64, 1), state)
    assert again["history"][-1]["test_top1"] == whole["history"][-1]["test_top1"]


def test_a_sweep_removes_a_runs_state_once_its_row_is_written(smoke, tmp_path):
    rows = smoke("eskd")
    assert len(rows) and not list((tmp_path / "eskd" / "smoke" / "resume").glob("*"))


def test_a_killed_teacher_training_resumes_keeping_its_snapshots(fmnist, tmp_path, monkeypatch):
    import kd.train
    from kd.teachers import teacher_folder, teacher_model, teacher_spec
    spec = teacher_spec("resnet8", fmnist, 0.005, RECIPE, seed=0, width=0.25)
    monkeypatch.setenv("KD_CACHE", str(tmp_path / "whole"))
    whole, _ = teacher_model(spec, fmnist, "cpu", log=lambda m: None)
    monkeypatch.setenv("KD_CACHE", str(tmp_path / "killed"))
    save = kd.train.save_state

    def save_then_die(path, epoch, *args):
        save(path, epoch, *args)
        if epoch == 2:
            raise Killed
    monkeypatch.setattr(kd.train, "save_state", save_then_die)
    with pytest.raises(Killed):
        teacher_model(spec, fmnist, "cpu", log=lambda m: None)
    assert (teacher_folder(spec) / "epoch1.pt").exists() and (teacher_folder(spec) / "train_state.pt").exists()
    monkeypatch.setattr(kd.train, "save_state", save)
    messages = []
    resumed, _ = teacher_model(spec, fmnist, "cpu", log=messages.append)
    assert any("resuming" in m for m in messages) and (teacher_folder(spec) / "epoch1.pt").exists()
    assert not (teacher_folder(spec) / "train_state.pt").exists()  # the finished training needs none
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
