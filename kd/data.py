"""Datasets by name, held where training runs and augmented there in batches.

Small datasets (Fashion-MNIST, CIFAR) live as uint8 tensors on the training device; random crop (with
padding) and horizontal flip are one batched gather there, so there is no per-image PIL work in the loop.
Every training view is identified by (sample index, view id), the view id encoding the crop offset and the
flip; the views of an epoch are drawn for every sample from a generator seeded by (run seed, epoch), so a
run is reproducible and two runs with the same seed see the same view of a sample in the same epoch
(which the teacher-logit cache exploits). Sample indices always refer to the full training set.

ImageNet-style trees go through torchvision's ImageFolder and a multi-worker DataLoader; their views
(RandomResizedCrop) are not keyed. Datasets are read from their files by name in kd/datasets.py; more
augmentation of the distillation data is kd/augment.py.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor

from kd.errors import KDError

# Per-channel mean and std of each dataset's training images (ImageNet's are timm's constants); the one
# place they are written: data normalisation, the models' default cfgs, benchmarks and tests read them here.
MEAN_STD = {"fashion_mnist": ((0.2860,), (0.3530,)),
            "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
            "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
            "imagefolder": (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)}


def stream_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integers such as (run seed, epoch, stream id)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0] >> 1)


def generator(*keys: int) -> torch.Generator:
    return torch.Generator().manual_seed(stream_seed(*keys))


@dataclass
class Batch:
    x: Tensor             # float, normalised, on the training device
    y: Tensor             # labels
    idx: Tensor           # indices into the full training (or test) split
    view: Tensor | None   # view ids (see TensorData), None where views are not keyed


class Dataset(Protocol):
    """What the training loop, the teachers and the samplers need of a dataset (TensorData, FolderData).
    `num_views` is None where training views are not keyed (then the teacher-logit cache is off)."""
    name: str
    num_classes: int
    in_chans: int
    image_size: tuple[int, int]
    device: torch.device
    num_views: int | None

    def targets(self, split: str = "train") -> Tensor: ...
    def identity(self) -> str: ...
    def train_batches(self, index_batches: Iterable[Tensor], seed: int, epoch: int) -> Iterator[Batch]: ...
    def eval_batches(self, split: str, idx: Tensor | None = None, batch_size: int = 1024) -> Iterator[Batch]: ...
    def keep_test(self, keep: Tensor): ...
    def to(self, device) -> "Dataset": ...


class _Labelled:
    """Labels of the two splits, as train_y and test_y."""
    train_y: Tensor
    test_y: Tensor

    @property
    def num_train(self) -> int:
        return len(self.train_y)

    def targets(self, split: str = "train") -> Tensor:
        return self.train_y if split == "train" else self.test_y

    def check_labels(self, origin: str):
        """Each split holds samples, and labels in [0, num_classes): else one error before any compute
        (a label out of range would fail inside the loss, after the teacher trained)."""
        for split, y in (("training", self.train_y), ("test", self.test_y)):
            if not len(y):
                raise KDError(f"The {split} split of {origin} holds no samples. Nothing was trained.")
            bad = (y < 0) | (y >= self.num_classes)
            if bad.any():
                raise KDError(f"The {split} split of {origin} holds {int(bad.sum())} label(s) outside the "
                              f"{self.num_classes} classes 0..{self.num_classes - 1} (e.g. {int(y[bad][0])} at "
                              f"sample {int(bad.nonzero()[0])}): its label file is damaged or of another dataset. "
                              f"Nothing was trained.")


class TensorData(_Labelled):
    """A small image dataset as uint8 tensors on one device, with batched crop + flip augmentation.

    View id v of a training sample: flip = v % 2 (if flips are on), offset = v // 2 (or v), and the crop
    starts at row offset // (2*pad + 1), column offset % (2*pad + 1) of the zero-padded image. The
    un-augmented view is `clean_view` (centre crop, no flip).
    """

    def __init__(self, name: str, train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
                 num_classes: int, mean, std, pad: int, flip: bool = True):
        self.name, self.num_classes, self.pad, self.flip = name, num_classes, pad, flip
        n, h, w, c = train_x.shape  # NHWC uint8: a gather of (rows, cols) is then channels_last for free
        self.in_chans, self.image_size = c, (h, w)
        self.train_padded = F.pad(train_x, (0, 0, pad, pad, pad, pad))
        self.test_x, self.train_y, self.test_y = test_x, train_y, test_y
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        self.side = 2 * pad + 1
        self.num_views = self.side**2 * (2 if flip else 1)
        self.clean_view = (pad * self.side + pad) * (2 if flip else 1)
        self.device = train_x.device

    def keep_test(self, keep: Tensor):
        """Evaluate on these test samples only (indices into the test split)."""
        self.test_x, self.test_y = self.test_x[keep], self.test_y[keep]

    def to(self, device) -> "TensorData":
        for k in ("train_padded", "test_x", "train_y", "test_y", "mean", "std"):
            setattr(self, k, getattr(self, k).to(device))
        self.device = torch.device(device)
        return self

    def identity(self) -> str:
        return f"{self.name}-pad{self.pad}-flip{int(self.flip)}"

    def epoch_views(self, seed: int, epoch: int) -> Tensor:
        """View id of every training sample in this epoch of a run with this seed."""
        return torch.randint(self.num_views, (self.num_train,), generator=generator(seed, epoch, 1))

    def _normalise(self, x_nhwc: Tensor) -> Tensor:
        x = x_nhwc.permute(0, 3, 1, 2).float()  # NCHW shape, channels_last strides
        return (x / 255.0 - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)

    def train_images(self, idx: Tensor, view: Tensor) -> Tensor:
        """The given views of training samples: one gather for crop and flip together."""
        h, w = self.image_size
        flip = (view % 2).bool() if self.flip else torch.zeros_like(view, dtype=torch.bool)
        offset = view // 2 if self.flip else view
        dy, dx = offset // self.side, offset % self.side
        ar_h = torch.arange(h, device=idx.device)
        ar_w = torch.arange(w, device=idx.device)
        rows = dy[:, None] + ar_h
        cols = dx[:, None] + torch.where(flip[:, None], w - 1 - ar_w, ar_w)
        return self._normalise(self.train_padded[idx[:, None, None], rows[:, :, None], cols[:, None, :]])

    def images(self, split: str, idx: Tensor) -> Tensor:
        """Un-augmented images of either split."""
        if split == "train":
            return self.train_images(idx, torch.full_like(idx, self.clean_view))
        return self._normalise(self.test_x[idx])

    def train_batches(self, index_batches: Iterable[Tensor], seed: int, epoch: int) -> Iterator[Batch]:
        views = self.epoch_views(seed, epoch).to(self.device)
        for idx in index_batches:
            idx = idx.to(self.device)
            v = views[idx]
            yield Batch(self.train_images(idx, v), self.train_y[idx], idx, v)

    def eval_batches(self, split: str, idx: Tensor | None = None, batch_size: int = 1024) -> Iterator[Batch]:
        """Clean views of `idx` (default: the whole split) in large batches; view = clean view id."""
        n = len(self.targets(split))
        idx = torch.arange(n, device=self.device) if idx is None else idx.to(self.device)
        for chunk in idx.split(batch_size):
            yield Batch(self.images(split, chunk), self.targets(split)[chunk], chunk,
                        torch.full_like(chunk, self.clean_view))


class LoaderData(_Labelled):
    """Any map-style torch Datasets of (image tensor, label) through a multi-worker, pinned-memory DataLoader:
    a training set (its random views: not keyed, view=None), a test set and, for train fidelity and ranking,
    clean views of the training images (default: the training set itself). The library entry for your own
    data (kd.api); `FolderData` builds one from an ImageNet-style tree. Labels come from a dataset's
    `targets` where it has them, else from one pass over it."""

    def __init__(self, train_set, test_set, train_clean_set=None, num_classes: int | None = None,
                 name: str = "datasets", workers: int = 0):
        self.train_set, self.test_set = _Indexed(train_set), _Indexed(test_set)  # items (x, y, index)
        self.train_clean_set = _Indexed(train_clean_set if train_clean_set is not None else train_set)
        self.train_y, self.test_y = labels_of(train_set), labels_of(test_set)
        self.num_classes = num_classes or int(torch.cat([self.train_y, self.test_y, torch.zeros(1)]).max()) + 1
        self.check_labels(name)
        x = train_set[0][0]
        self.in_chans, self.image_size = x.shape[0], tuple(x.shape[1:])
        self.name, self.workers, self.device = name, workers, torch.device("cpu")
        self.num_views, self.clean_view = None, None

    def keep_test(self, keep: Tensor):
        """Evaluate on these test samples only (indices into the test split)."""
        self.test_set = _Indexed(torch.utils.data.Subset(self.test_set.ds, keep.tolist()))
        self.test_y = self.test_y[keep]

    def to(self, device) -> "LoaderData":
        self.device = torch.device(device)
        return self

    def identity(self) -> str:
        return self.name

    def _load(self, dataset, index_batches, seed: int) -> Iterator[Batch]:
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=[b.tolist() for b in index_batches], num_workers=self.workers,
            pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(seed))
        for x, y, idx in loader:
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yield Batch(x, y.to(self.device, non_blocking=True), idx.to(self.device), None)

    def train_batches(self, index_batches: Iterable[Tensor], seed: int, epoch: int) -> Iterator[Batch]:
        return self._load(self.train_set, index_batches, stream_seed(seed, epoch, 1))

    def eval_batches(self, split: str, idx: Tensor | None = None, batch_size: int = 256) -> Iterator[Batch]:
        """Clean views (resize and centre crop) of `idx` of either split, in order."""
        idx = torch.arange(len(self.targets(split))) if idx is None else idx.cpu()
        yield from self._load(self.train_clean_set if split == "train" else self.test_set, idx.split(batch_size), 0)


def labels_of(dataset) -> Tensor:
    """A dataset's labels: its `targets` (torchvision's datasets), else read once from every sample."""
    targets = getattr(dataset, "targets", None)
    return torch.as_tensor(targets if targets is not None else [int(y) for _, y in dataset])


class FolderData(LoaderData):
    """An ImageNet-style tree (root/train/<class>/*, root/val/<class>/*) through torchvision's ImageFolder.
    Views are random resized crops: not keyed (view=None)."""

    def __init__(self, root: Path, image_size: int = 224, workers: int = 8):
        from timm.data import create_transform
        from torchvision import datasets
        check_tree(root)
        mean, std = MEAN_STD["imagefolder"]
        # the papers' ImageNet views: random resized crop + flip (no colour jitter); resize to 256/224, centre crop
        clean = create_transform(image_size, is_training=False, crop_pct=224 / 256, mean=mean, std=std)
        try:
            train = datasets.ImageFolder(root / "train", create_transform(
                image_size, is_training=True, color_jitter=None, mean=mean, std=std))
            val = datasets.ImageFolder(root / "val", clean)
        except (FileNotFoundError, OSError) as exc:  # an empty tree, or class folders without images
            why = str(exc).strip().splitlines()[0].rstrip(".")
            raise KDError(f"ImageFolder data in {root} is not usable: {why}. Each of "
                          f"train/ and val/ needs one folder per class holding its images. Nothing was trained.") \
                from None
        # clean views of the training files (train fidelity): the same file list, not a second scan of the tree
        train_clean = copy.copy(train)
        train_clean.transform = clean
        super().__init__(train, val, train_clean, len(train.classes),
                         f"imagefolder:{root}", workers)


def check_tree(root: Path):
    for sub in ("train", "val"):
        if not (root / sub).is_dir():
            raise KDError(f"ImageFolder data needs {root}/train/<class>/... and {root}/val/<class>/...; "
                          f"{root / sub} is missing. Point --data-dir at the folder that holds both.")


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        x, y = self.ds[i]
        return x, y, i


def training_pool(targets: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """The training pool of a run or teacher: every sample, or a seeded class-balanced fraction (the same
    fraction and seed give the same pool everywhere, so a student trains on its teacher's pool)."""
    if fraction == 1:
        return torch.arange(len(targets))
    return balanced_subset(targets, fraction, seed=seed)


def balanced_subset(targets: Tensor, fraction: float | None = None, per_class: int | None = None,
                    seed: int = 0) -> Tensor:
    """Sorted indices of a seeded, class-balanced subset: a fraction of each class, or a count per class."""
    if (fraction is None) == (per_class is None):
        raise KDError("Give exactly one of a subset fraction or a per-class count.")
    targets = targets.cpu()
    counts = torch.bincount(targets)
    if fraction is not None and not 0 < fraction <= 1:
        raise KDError(f"A subset fraction must be in (0, 1], got {fraction}.")
    if per_class is not None and not 0 < per_class <= int(counts.min()):
        raise KDError(f"A per-class count must be in [1, {int(counts.min())}] (the smallest class), "
                      f"got {per_class}.")
    g = generator(seed, 0, 2)
    picked = []
    for c in range(len(counts)):
        members = (targets == c).nonzero().squeeze(1)
        k = per_class if per_class is not None else max(1, round(fraction * len(members)))
        picked.append(members[torch.randperm(len(members), generator=g)[:k]])
    return torch.cat(picked).sort().values
