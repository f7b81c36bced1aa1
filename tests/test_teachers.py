import pytest
import torch

from kd.errors import KDError
from kd.models import create_model
from kd.teachers import atomic_save, cache_dir, teacher_model, load_checkpoint, teacher_spec
from kd.recipe import Recipe

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
