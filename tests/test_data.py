import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

import kd.datasets as kd_data
from kd.data import MEAN_STD, balanced_subset
from kd.datasets import load_dataset
from kd.errors import KDError


def test_fashion_mnist_is_real_and_complete(fmnist):
    assert fmnist.num_train == 60000 and len(fmnist.test_y) == 10000
    assert fmnist.num_classes == 10 and fmnist.in_chans == 1
    assert torch.bincount(fmnist.train_y).tolist() == [6000] * 10


def test_views_equal_torchvision_crop_and_flip(fmnist):
    """Our batched gather gives the same image as padding, cropping and flipping one PIL-free tensor."""
    p, side = fmnist.pad, fmnist.side
    idx = torch.tensor([0, 1, 2, 3, 4, 5])
    views = torch.tensor([0, 1, fmnist.clean_view, fmnist.num_views - 1, 17, 38])
    ours = fmnist.train_images(idx, views)
    for i, v in zip(idx.tolist(), views.tolist()):
        img = fmnist.train_padded[i, p:-p, p:-p].permute(2, 0, 1)  # the original 1x28x28 image
        offset, flip = v // 2, v % 2
        top, left = offset // side, offset % side
        ref = TF.crop(TF.pad(img, [p]), top, left, 28, 28)
        ref = TF.hflip(ref) if flip else ref
        (mean,), (std,) = MEAN_STD["fashion_mnist"]
        ref = (ref.float() / 255 - mean) / std
        assert torch.equal(ours[list(idx).index(i)], ref)
    assert ours.is_contiguous(memory_format=torch.channels_last)


def test_epoch_views_are_reproducible_and_cover_all_views(fmnist):
    a, b = fmnist.epoch_views(0, 1), fmnist.epoch_views(0, 1)
    assert torch.equal(a, b)
    assert not torch.equal(a, fmnist.epoch_views(0, 2)) and not torch.equal(a, fmnist.epoch_views(1, 1))
    assert a.min() == 0 and a.max() == fmnist.num_views - 1


def test_batches_carry_indices_and_labels(fmnist):
    plan = [torch.tensor([5, 9, 11]), torch.tensor([1])]
    batches = list(fmnist.train_batches(plan, seed=0, epoch=1))
    assert [b.idx.tolist() for b in batches] == [[5, 9, 11], [1]]
    assert torch.equal(batches[0].y, fmnist.train_y[[5, 9, 11]])
    assert batches[0].x.shape == (3, 1, 28, 28)


def test_balanced_subsets(fmnist):
    a = balanced_subset(fmnist.train_y, fraction=0.05, seed=3)
    assert torch.bincount(fmnist.train_y[a]).tolist() == [300] * 10
    assert torch.equal(a, balanced_subset(fmnist.train_y, fraction=0.05, seed=3))
    assert not torch.equal(a, balanced_subset(fmnist.train_y, fraction=0.05, seed=4))
    b = balanced_subset(fmnist.train_y, per_class=7, seed=0)
    assert torch.bincount(fmnist.train_y[b]).tolist() == [7] * 10
    for bad in (dict(fraction=0.0), dict(fraction=1.5), dict(per_class=10**6), dict()):
        with pytest.raises(KDError):
            balanced_subset(fmnist.train_y, **bad)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(kd_data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    monkeypatch.setenv("KD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KD_DATA", raising=False)

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("torchvision.datasets.FashionMNIST.download", no_network)
    with pytest.raises(KDError, match="apt-get install -y dataset-fashion-mnist.*--data-dir"):
        load_dataset("fashion_mnist")


def test_data_dir_in_torchvision_layout(tmp_path, monkeypatch):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in kd_data.FMNIST_FILES:
        (raw / (name + ".gz")).symlink_to(kd_data.DEBIAN_FASHION_MNIST / (name + ".gz"))
    monkeypatch.setattr(kd_data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    assert load_dataset("fashion_mnist", data_dir=tmp_path).num_train == 60000


def test_unknown_dataset():
    with pytest.raises(KDError, match="Unknown dataset 'mnist3'.*fashion_mnist.*cifar100"):
        load_dataset("mnist3")


def test_imagefolder(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.png")
    data = load_dataset("imagefolder", data_dir=tmp_path, image_size=32, workers=0)
    assert data.num_classes == 2 and data.num_train == 6
    batch, = data.train_batches([torch.tensor([0, 4, 5])], seed=0, epoch=1)
    assert batch.x.shape == (3, 3, 32, 32) and batch.idx.tolist() == [0, 4, 5] and batch.view is None
    assert sum(len(b.y) for b in data.eval_batches("test")) == 6
    one = load_dataset("imagefolder", data_dir=tmp_path, image_size=32, workers=0, test_per_class=1)
    batches = list(one.eval_batches("test"))
    assert sorted(one.targets("test").tolist()) == [0, 1] and [b.y.tolist() for b in batches] == [
        one.targets("test").tolist()]
    with pytest.raises(KDError, match="train/"):
        load_dataset("imagefolder", data_dir=tmp_path / "val")


@pytest.mark.parametrize("via_env", [False, True])
def test_an_explicit_data_dir_is_used_or_refused_never_passed_over(tmp_path, monkeypatch, via_env):
    """The Debian copy is on this machine, but a named folder without the data is an error, not a fallback."""
    (tmp_path / "empty").mkdir()
    for folder, message in ((tmp_path / "missing", "does not exist"), (tmp_path / "empty", "was not found in")):
        if via_env:
            monkeypatch.setenv("KD_DATA", str(folder))
        with pytest.raises(KDError, match=message):
            load_dataset("fashion_mnist", data_dir=None if via_env else folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing written


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong shape"])
def test_a_damaged_idx_file_is_named_with_how_to_fix_it(tmp_path, damage):
    import gzip
    for name in kd_data.FMNIST_FILES:
        (tmp_path / (name + ".gz")).symlink_to(kd_data.DEBIAN_FASHION_MNIST / (name + ".gz"))
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = bad.read_bytes()
    bad.unlink()
    if damage == "truncated":
        bad.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"not a gzip file at all")
    else:
        bad.write_bytes(gzip.compress(gzip.decompress(raw)[:-10]))
    with pytest.raises(KDError, match=f"{bad} is damaged.*Nothing was trained; replace it"):
        load_dataset("fashion_mnist", data_dir=tmp_path)


def test_what_is_known_before_loading_matches_the_data(fmnist):
    info = kd_data.DATASETS["fashion_mnist"]
    assert (info.in_chans, (info.image_size,) * 2, info.num_classes, info.num_train, info.views) == (
        fmnist.in_chans, fmnist.image_size, fmnist.num_classes, fmnist.num_train, fmnist.num_views)
