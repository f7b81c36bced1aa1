"""ImageNet-style trees decoded once (kd/folder_cache.py): the same clean views as the PIL path, torchvision's
random-resized-crop rule, a cache that is reused and never read stale."""
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import RandomResizedCrop

from kd.datasets import load_dataset
from kd.errors import KDError
from kd.folder_cache import PredecodedFolderData, cache_root, random_resized_boxes

SIZES = [(60, 45), (45, 60), (50, 50), (71, 40)]  # (width, height): landscape, portrait, square, odd margins


def write_tree(root, per_class=3, classes=("cat", "dog"), seed=0):
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                w, h = SIZES[i % len(SIZES)]
                # smooth content plus noise, saved as JPEG as ImageNet's files are
                base = np.linspace(0, 255, w)[None, :, None] * rng.random((1, 1, 3))
                pixels = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.jpg", quality=90)
    return root


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_CACHE", str(tmp_path / "cache"))
    return write_tree(tmp_path / "tree", per_class=4)


def test_clean_views_are_the_pil_paths_pixel_for_pixel(tree):
    pil = load_dataset("imagefolder", data_dir=tree, image_size=32, workers=0)
    once = load_dataset("imagefolder", data_dir=tree, image_size=32, workers=0, decode="once")
    assert once.side == math.floor(32 / (224 / 256)) and once.num_classes == 2 and once.num_train == 8
    assert torch.equal(pil.targets("train"), once.targets("train"))
    for split in ("train", "test"):
        a, b = (torch.cat([batch.x for batch in d.eval_batches(split, batch_size=3)]) for d in (pil, once))
        assert a.shape == b.shape == (8, 3, 32, 32)
        assert torch.allclose(a, b, atol=1e-6), (split, (a - b).abs().max())
    one = load_dataset("imagefolder", data_dir=tree, image_size=32, workers=0, decode="once", test_per_class=1)
    (batch,) = one.eval_batches("test")
    assert len(batch.y) == 2 and torch.equal(batch.y, one.targets("test"))


def test_training_views_are_seeded_crops_and_flips(tree):
    data = load_dataset("imagefolder", data_dir=tree, image_size=32, workers=0, decode="once")
    idx = torch.tensor([5, 0, 7])
    (a,), (b,), (c,) = (list(data.train_batches([idx], seed=s, epoch=e)) for s, e in ((1, 1), (1, 1), (1, 2)))
    assert a.x.shape == (3, 3, 32, 32) and a.idx.tolist() == [5, 0, 7] and a.view is None
    assert a.y.tolist() == data.targets("train")[idx].tolist()
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)  # the same seed and epoch: the same views
    assert a.x.is_contiguous(memory_format=torch.channels_last)
    # a crop of the whole square at the same size is the clean view up to the resampling of 36 px to 32
    clean = next(data.eval_batches("train", idx))
    assert (a.x - clean.x).abs().mean() < 2.5


def test_crop_boxes_follow_torchvisions_rule():
    side, n = 256, 20000
    boxes = random_resized_boxes(n, side, torch.Generator().manual_seed(0))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= side).all() and (w > 0).all() and (h > 0).all()
    torch.manual_seed(0)
    ref = torch.tensor([RandomResizedCrop.get_params(torch.empty(3, side, side), [0.08, 1.0], [3 / 4, 4 / 3])
                        for _ in range(n)], dtype=torch.float)  # (top, left, h, w)
    ours, theirs = (w * h / side**2, (ref[:, 2] * ref[:, 3]) / side**2)
    assert abs(ours.mean() - theirs.mean()) < 0.01 and abs(ours.std() - theirs.std()) < 0.01
    assert abs(torch.log(w / h).mean() - torch.log(ref[:, 3] / ref[:, 2]).mean()) < 0.01
    assert abs((boxes[:, 0] + w / 2).mean() - side / 2) < 2  # centred on average, as the offsets are uniform


def test_the_cache_is_built_once_and_a_changed_tree_is_decoded_again(tree):
    load_dataset("imagefolder", data_dir=tree, image_size=32, workers=0, decode="once")
    built = sorted(cache_root().iterdir())
    assert [p.name.split("-")[0] for p in built] == ["train", "val"] and not any("partial" in p.name for p in built)
    stamp = [(p / "images.npy").stat().st_mtime_ns for p in built]
    load_dataset("imagefolder", data_dir=tree, image_size=32, workers=0, decode="once")
    assert [(p / "images.npy").stat().st_mtime_ns for p in sorted(cache_root().iterdir())] == stamp
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tree / "train" / "cat" / "new.jpg")
    data = load_dataset("imagefolder", data_dir=tree, image_size=32, workers=0, decode="once")
    assert data.num_train == 9 and len(list(cache_root().iterdir())) == 3


def test_a_pool_of_decoders_writes_what_one_does(tree, tmp_path):
    one = PredecodedFolderData(tree, 32, workers=0)
    alone = np.load(sorted(cache_root().glob("train-*"))[0] / "images.npy")
    shutil.rmtree(cache_root())
    PredecodedFolderData(tree, 32, workers=2)
    assert np.array_equal(np.load(sorted(cache_root().glob("train-*"))[0] / "images.npy"), alone)
    assert one.num_train == 8


def test_bad_options_are_one_clear_error(tree):
    with pytest.raises(KDError, match="Unknown decode 'gpu'"):
        load_dataset("imagefolder", data_dir=tree, decode="gpu")
    with pytest.raises(KDError, match="train/train is missing. Point --data-dir"):
        load_dataset("imagefolder", data_dir=tree / "train", decode="once")


def test_distil_from_the_cache_through_the_command_line(tree, tmp_path):
    """`python -m kd distill --dataset imagefolder --decode once` trains a teacher and its student end to end on
    the decoded tree (224 px views of a tiny tree), its row naming the decode."""
    import pandas as pd

    from kd.cli import main
    out = tmp_path / "out"
    assert main(["distill", "--dataset", "imagefolder", "--decode", "once", "--data-dir", str(tree), "--student",
                 "resnet8", "--teacher", "resnet8", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
                 "--out", str(out)]) == 0
    rows = pd.concat(pd.read_csv(f) for f in out.rglob("runs.csv"))
    assert (rows.status == "done").all() and rows.samples.gt(0).all()
    assert rows["data_options.decode"].eq("once").all()
