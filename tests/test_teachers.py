import pytest
import torch

from kd.errors import KDError
from kd.models import create_model
from kd.recipe import Recipe
from kd.teachers import atomic_save, cache_dir, load_checkpoint, teacher_model, teacher_spec

RECIPE = Recipe(epochs=2, batch_size=64, lr=0.05)


def test_teacher_is_trained_once_then_loaded(fmnist):
    spec = teacher_spec("resnet8", fmnist, 0.01, RECIPE, seed=0, width=0.5)
    messages = []
    first, info = teacher_model(spec, fmnist, "cpu", snapshots=(1,), log=messages.append)
    second, info2 = teacher_model(spec, fmnist, "cpu", log=messages.append)
    assert sum("training teacher" in m for m in messages) == 1
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert info["test_top1"] == info2["test_top1"] and info["epoch"] == 2
    early, info1 = teacher_model(spec, fmnist, "cpu", epoch=1, log=messages.append)
    assert info1["epoch"] == 1 and sum("training teacher" in m for m in messages) == 1
    assert not any(p.suffix == ".tmp" for p in cache_dir().rglob("*"))
    assert not first.training and not any(p.requires_grad for p in first.parameters())


def test_a_different_config_is_a_different_teacher(fmnist):
    a = teacher_spec("resnet8", fmnist, 0.01, RECIPE, seed=0)
    b = teacher_spec("resnet8", fmnist, 0.01, RECIPE, seed=1)
    from kd.teachers import spec_hash
    assert spec_hash(a) != spec_hash(b)


def test_checkpoints_are_checked_against_the_request(fmnist, tmp_path):
    model = create_model("resnet8", 7, 1, width=0.5)
    ckpt = {"arch": "resnet8", "width": 0.5, "num_classes": 7, "in_chans": 1, "state_dict": model.state_dict()}
    atomic_save(ckpt, tmp_path / "seven.pt")
    with pytest.raises(KDError, match="7 classes.*fashion_mnist has 10 classes"):
        load_checkpoint(tmp_path / "seven.pt", fmnist, "cpu")
    with pytest.raises(KDError, match="holds a resnet8, not the requested resnet20"):
        load_checkpoint(tmp_path / "seven.pt", fmnist, "cpu", "resnet20")
    with pytest.raises(KDError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt", fmnist, "cpu")
    bare = create_model("resnet8", 10, 1).state_dict()
    torch.save(bare, tmp_path / "bare.pt")
    with pytest.raises(KDError, match="bare state_dict"):
        load_checkpoint(tmp_path / "bare.pt", fmnist, "cpu")
    model, info = load_checkpoint(tmp_path / "bare.pt", fmnist, "cpu", "resnet8")
    assert 0 <= info["test_top1"] <= 100
    with pytest.raises(KDError, match="does not fit a resnet14"):
        load_checkpoint(tmp_path / "bare.pt", fmnist, "cpu", "resnet14")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(KDError, match="could not be read"):
        load_checkpoint(tmp_path / "junk.pt", fmnist, "cpu")


@pytest.mark.parametrize("which", ["final.pt", "epoch1.pt"])
def test_a_damaged_cached_teacher_is_retrained_not_used(fmnist, which):
    spec = teacher_spec("resnet8", fmnist, 0.01, RECIPE, seed=0, width=0.5)
    messages = []
    first, _ = teacher_model(spec, fmnist, "cpu", log=messages.append)
    path = next(cache_dir().glob("teachers/*")) / which
    path.write_bytes(path.read_bytes()[:-200])  # truncated, as by a full disk or a copy cut short
    again, info = teacher_model(spec, fmnist, "cpu", epoch=2 if which == "final.pt" else 1, log=messages.append)
    assert any("is damaged" in m for m in messages) and sum("training teacher" in m for m in messages) == 2
    if which == "final.pt":  # retraining is deterministic: the same teacher as before
        assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))


def test_a_retrain_for_a_missing_snapshot_leaves_nothing_of_the_old_weights(fmnist):
    """A snapshot that was not kept means training again; the new weights need not equal the old ones
    bit for bit (another machine), so the old snapshots and every logit cache beside them must go."""
    from kd.teachers import load_teacher, teacher_folder
    long = Recipe(epochs=40, batch_size=64, lr=0.05, eval_every=40)
    spec = teacher_spec("resnet8", fmnist, 0.002, long, seed=0, width=0.25)
    folder = teacher_folder(spec)
    teacher, _ = load_teacher(spec, fmnist, "cpu", log=lambda m: None)
    teacher.clean_logits("test")
    teacher.flush()  # a logit cache of the first training's final weights
    assert (folder / "epoch4.pt").exists() and any(folder.glob("*.logits/*"))
    (folder / "epoch4.pt").rename(folder / "epoch4.pt.old")  # stands for a snapshot of an older training
    messages = []
    teacher_model(spec, fmnist, "cpu", snapshots=(14, 26), log=messages.append)  # 14 and 26 were not kept
    assert sum("training teacher" in m for m in messages) == 1
    assert not (folder / "epoch4.pt.old").exists() and not any(folder.glob("*.logits"))
    # every tenth and quarter, and those asked for
    assert all((folder / f"epoch{e}.pt").exists() for e in (4, 8, 10, 14, 26, 30))
    teacher_model(spec, fmnist, "cpu", snapshots=(14, 26), log=messages.append)
    assert sum("training teacher" in m for m in messages) == 1  # all there now: no third training


def test_a_snapshot_outside_the_schedule_is_a_clear_error_before_any_training(fmnist):
    spec = teacher_spec("resnet8", fmnist, 0.01, RECIPE, seed=0, width=0.5)
    with pytest.raises(KDError, match=r"snapshot must be at an epoch in \[1, 2\], got 5"):
        teacher_model(spec, fmnist, "cpu", snapshots=(1, 5), log=lambda m: None)
    from kd.teachers import teacher_folder
    assert not (teacher_folder(spec) / "final.pt").exists()


def test_a_published_teacher_is_used_on_a_fresh_machine_not_retrained(fmnist, tmp_path, monkeypatch):
    """What a fresh clone does: the cache is empty, results/teachers holds the weights the rows came from."""
    import pandas as pd

    from kd.records import copy_saved, load_saved, weights_sha256
    from kd.teachers import publish_teacher, published_dir, teacher_folder
    spec = teacher_spec("resnet8", fmnist, 0.01, RECIPE, seed=0, width=0.5)
    messages = []
    trained, info = teacher_model(spec, fmnist, "cpu", snapshots=(1,), log=messages.append)
    with pytest.raises(KDError, match="no epoch2.pt|run the finding first"):  # only snapshots it kept
        publish_teacher({**spec, "recipe": {**spec["recipe"], "epochs": 3}})
    publish_teacher(spec, epochs=(1,))
    dest = publish_teacher(spec)  # the same weights again, by a finding that needs no snapshot: it stays
    assert (dest / "epoch1.pt").exists()
    own, other = teacher_folder(spec) / "final.pt", teacher_spec("resnet8", fmnist, 0.01, RECIPE, seed=1, width=0.5)
    teacher_model(other, fmnist, "cpu", log=lambda m: None)
    copy_saved(own, tmp_path / "own.pt")
    copy_saved(teacher_folder(other) / "final.pt", own)  # as if another training of the recipe were cached
    dest = publish_teacher(spec)
    assert not (dest / "epoch1.pt").exists()  # other weights: nothing of the old training stays beside them
    results = tmp_path / "results" / "a_finding" / "cpu"
    results.mkdir(parents=True)
    pd.DataFrame({"run_id": ["r"], "teacher_key": [dest.name], "teacher_sha256": [info["weights_sha256"]],
                  "teacher.epoch": [None]}).to_csv(results / "runs.csv", index=False)
    with pytest.raises(KDError, match="Not publishing teacher .* rows under .* were distilled from its weights"):
        publish_teacher(spec, results=tmp_path / "results")  # rows name the first training: the cache's differs
    copy_saved(tmp_path / "own.pt", own)
    dest = publish_teacher(spec, epochs=(1,), results=tmp_path / "results")  # the weights the rows name
    assert sorted(p.name for p in dest.iterdir()) == ["epoch1.pt", "epoch1.pt.sha256", "final.pt", "final.pt.sha256",
                                                      "history.pt", "history.pt.sha256"]
    row = pd.read_csv(published_dir() / "teachers.csv").set_index("run_id").loc[teacher_folder(spec).name]
    assert row.snapshots == 1 and row.test_top1 == info["test_top1"] and row.weights_sha256 == info["weights_sha256"]
    assert row.snapshot_sha256 == weights_sha256(load_saved(dest / "epoch1.pt")["state_dict"])
    assert row.trained_on and row.trained_on != "not recorded"

    monkeypatch.setenv("KD_CACHE", str(tmp_path / "fresh"))
    again, info2 = teacher_model(spec, fmnist, "cpu", log=messages.append)
    assert sum("training teacher" in m for m in messages) == 1 and any("published" in m for m in messages)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), again.state_dict().values()))
    assert (teacher_folder(spec) / "history.pt").is_file() and info2["test_top1"] == info["test_top1"]
    _, early = teacher_model(spec, fmnist, "cpu", epoch=1, log=messages.append)
    assert early["epoch"] == 1 and sum("training teacher" in m for m in messages) == 1

    monkeypatch.setenv("KD_CACHE", str(tmp_path / "fresher"))
    (dest / "final.pt").write_bytes((dest / "final.pt").read_bytes()[:-100])  # a clone cut short
    with pytest.raises(KDError, match="published teacher .* is damaged.*git checkout"):
        teacher_model(spec, fmnist, "cpu", log=messages.append)
