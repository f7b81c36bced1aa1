"""Datasets by name, held where training runs and augmented there in batches.

Small datasets (Fashion-MNIST, CIFAR) live as uint8 tensors on the training device; random crop (with
padding) and horizontal flip are one batched gather there, so there is no per-image PIL work in the loop.
Every training view is identified by (sample index, view id), the view id encoding the crop offset and the
flip; the views of an epoch are drawn for every sample from a generator seeded by (run seed, epoch), so a
run is reproducible and two runs with the same seed see the same view of a sample in the same epoch
(which the teacher-logit cache exploits). Sample indices always refer to the full training set.

ImageNet-style trees go through torchvision's ImageFolder and a multi-worker DataLoader; their views
(RandomResizedCrop) are not keyed.
"""
from __future__ import annotations

import copy
import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor

from kd.errors import KDError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Per-channel mean and std of each dataset's training images (ImageNet's are timm's constants); the one
# place they are written: data normalisation, the models' default cfgs, benchmarks and tests read them here.
MEAN_STD = {"fashion_mnist": ((0.2860,), (0.3530,)),
            "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
            "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
            "imagefolder": (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)}
DEFAULT_DOWNLOAD_DIR = Path.home() / ".cache" / "kd" / "data"


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


class FolderData(_Labelled):
    """An ImageNet-style tree (root/train/<class>/*, root/val/<class>/*) through torchvision's ImageFolder
    and a multi-worker, pinned-memory DataLoader. Views are random resized crops: not keyed (view=None)."""

    def __init__(self, root: Path, image_size: int = 224, workers: int = 8):
        from timm.data import create_transform
        from torchvision import datasets
        for sub in ("train", "val"):
            if not (root / sub).is_dir():
                raise KDError(f"ImageFolder data needs {root}/train/<class>/... and {root}/val/<class>/...; "
                              f"{root / sub} is missing. Point --data-dir at the folder that holds both.")
        mean, std = MEAN_STD["imagefolder"]
        # the papers' ImageNet views: random resized crop + flip (no colour jitter); resize to 256/224, centre crop
        self.train_set = _Indexed(datasets.ImageFolder(root / "train", create_transform(
            image_size, is_training=True, color_jitter=None, mean=mean, std=std)))
        clean = create_transform(image_size, is_training=False, crop_pct=224 / 256, mean=mean, std=std)
        self.test_set = _Indexed(datasets.ImageFolder(root / "val", clean))
        # clean views of the training files (train fidelity): the same file list, not a second scan of the tree
        train_clean = copy.copy(self.train_set.ds)
        train_clean.transform = clean
        self.train_clean_set = _Indexed(train_clean)
        self.name, self.workers = f"imagefolder:{root}", workers
        self.num_classes, self.in_chans, self.image_size = len(self.train_set.ds.classes), 3, (image_size,) * 2
        self.train_y = torch.tensor(self.train_set.ds.targets)
        self.test_y = torch.tensor(self.test_set.ds.targets)
        self.device = torch.device("cpu")
        self.num_views, self.clean_view = None, None

    def keep_test(self, keep: Tensor):
        """Evaluate on these test samples only (indices into the test split)."""
        self.test_set = _Indexed(torch.utils.data.Subset(self.test_set.ds, keep.tolist()))
        self.test_y = self.test_y[keep]

    def to(self, device) -> "FolderData":
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


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        x, y = self.ds[i]
        return x, y, i


class Augmented:
    """A small dataset's training views with more augmentation of the distillation data on top of its crop +
    flip, batched on the training device (Stanton et al.'s policies that make sense on grayscale images).

    Rotation by one of `ROTATION_STEPS` angles in [-rotate, +rotate] degrees is keyed: view id = rotation
    index * base views + base view, so the teacher-logit cache stays exact. MixUp (one lambda ~ Beta(alpha,
    alpha) per batch, each image mixed with a seeded permutation of its batch, as the official code does) is
    not keyable: its batches carry view None and go through the teacher, and `num_views` None turns the table
    of training views off. A run draws the same crops and flips as the base dataset's run of its seed, so
    policies are compared on paired views. Clean views, the test split and the rest are the base dataset's."""

    ROTATION_STEPS = 7

    def __init__(self, base: TensorData, rotate: float = 0.0, mixup: float = 0.0):
        check_augment({"rotate": rotate, "mixup": mixup})
        if not isinstance(base, TensorData):
            raise KDError(f"Rotation and MixUp of the distillation data need a tensor dataset (Fashion-MNIST, "
                          f"CIFAR), not {base.name}.")
        self.base, self.rotate, self.mixup = base, float(rotate), float(mixup)
        angles = torch.linspace(-rotate, rotate, self.ROTATION_STEPS) if rotate else torch.zeros(1)
        self.radians = torch.deg2rad(angles).to(base.device)
        self.num_views = None if mixup else base.num_views * len(angles)

    def __getattr__(self, name):  # everything not about training views: the base dataset's
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def identity(self) -> str:
        return (self.base.identity() + (f"-rot{self.rotate:g}x{len(self.radians)}" if self.rotate else "")
                + (f"-mixup{self.mixup:g}" if self.mixup else ""))

    def epoch_views(self, seed: int, epoch: int) -> Tensor:
        turn = torch.randint(len(self.radians), (self.num_train,), generator=generator(seed, epoch, 6))
        return turn * self.base.num_views + self.base.epoch_views(seed, epoch)

    def train_images(self, idx: Tensor, view: Tensor) -> Tensor:
        x = self.base.train_images(idx, view % self.base.num_views)
        angle = self.radians[view // self.base.num_views]
        turn = (angle != 0).nonzero().squeeze(1)  # angle 0 is the base view, bit for bit
        if len(turn):
            cos, sin, zero = angle[turn].cos(), angle[turn].sin(), torch.zeros_like(angle[turn])
            theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
            grid = F.affine_grid(theta, list(x[turn].shape), align_corners=False)
            black = (-self.base.mean / self.base.std).view(1, -1, 1, 1)  # what zero padding is, normalised
            x[turn] = F.grid_sample(x[turn] - black, grid, align_corners=False) + black
        return x

    def train_batches(self, index_batches: Iterable[Tensor], seed: int, epoch: int) -> Iterator[Batch]:
        views = self.epoch_views(seed, epoch).to(self.device)
        for k, idx in enumerate(index_batches):
            idx = idx.to(self.device)
            v = views[idx]
            x = self.train_images(idx, v)
            if self.mixup:
                lam = float(np.random.default_rng(stream_seed(seed, epoch, 7, k)).beta(self.mixup, self.mixup))
                partner = torch.randperm(len(idx), generator=generator(seed, epoch, 8, k)).to(self.device)
                x, v = lam * x + (1 - lam) * x[partner], None
            yield Batch(x, self.train_y[idx], idx, v)


def check_augment(options: dict):
    """A run's distillation-data augmentation ({"rotate": degrees, "mixup": alpha}), checked before compute."""
    unknown = set(options) - {"rotate", "mixup"}
    if unknown:
        raise KDError(f"Unknown augmentation option(s) {', '.join(sorted(unknown))}; valid: rotate (degrees), "
                      f"mixup (Beta alpha).")
    if not 0 <= options.get("rotate", 0) <= 180 or not 0 <= options.get("mixup", 0) <= 100:
        raise KDError(f"Augmentation out of range: rotate must be in [0, 180] degrees and mixup's alpha in "
                      f"[0, 100], got {options}.")


def augmented(data: Dataset, options: dict | None) -> Dataset:
    """The dataset a run trains on: `data` itself, or its views with the run's extra augmentation."""
    return Augmented(data, **options) if options else data


# ---------------------------------------------------------------------------------------------- loading
def _read_idx(path: Path, shape: tuple) -> Tensor:
    """An IDX file (MNIST format), gzipped or not, as a uint8 tensor of the expected shape; a truncated or
    damaged file is a KDError that names it."""
    try:
        raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DamagedData(path, f"it cannot be decompressed ({type(exc).__name__}: {exc})") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or raw[3] != len(shape):
        raise DamagedData(path, f"its header is not that of a {len(shape)}-d uint8 IDX file")
    found = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(len(shape)))
    size = 4 + 4 * len(shape) + int(np.prod(found))
    if found != shape or len(raw) != size:
        raise DamagedData(path, f"it holds {len(raw)} bytes of shape {found}, expected {size} bytes of shape {shape}")
    return torch.from_numpy(np.frombuffer(raw, np.uint8, offset=4 + 4 * len(shape)).copy()).view(shape)


class DamagedData(KDError):
    def __init__(self, path: Path, why: str):
        how = ("reinstall it with `apt-get install --reinstall -y dataset-fashion-mnist`"
               if Path(path).parent == DEBIAN_FASHION_MNIST else
               "replace it with an intact copy (or delete it and let torchvision download it again)")
        super().__init__(f"The dataset file {path} is damaged: {why}. Nothing was trained; {how}.")


FMNIST_FILES = {"train-images-idx3-ubyte": (60000, 28, 28), "train-labels-idx1-ubyte": (60000,),
                "t10k-images-idx3-ubyte": (10000, 28, 28), "t10k-labels-idx1-ubyte": (10000,)}


def _find_idx_files(folder: Path) -> list[Path] | None:
    found = []
    for name in FMNIST_FILES:
        hits = [folder / (name + ext) for ext in ("", ".gz") if (folder / (name + ext)).is_file()]
        if not hits:
            return None
        found.append(hits[0])
    return found


def _explicit_root(data_dir) -> Path | None:
    """The folder the user named (--data-dir, else $KD_DATA): used alone, never silently passed over."""
    if data_dir:
        root, origin = Path(data_dir), "--data-dir"
    elif os.environ.get("KD_DATA"):
        root, origin = Path(os.environ["KD_DATA"]), "$KD_DATA"
    else:
        return None
    if not root.is_dir():
        raise KDError(f"The data folder {root} (from {origin}) does not exist. Point {origin} at the folder "
                      f"that holds the dataset, or leave it out to use the default location.")
    return root


def _fashion_mnist(data_dir=None, pad: int = 2, **_) -> TensorData:
    root = _explicit_root(data_dir)
    candidates = [root, root / "FashionMNIST" / "raw"] if root else [DEBIAN_FASHION_MNIST]
    files = next((f for f in map(_find_idx_files, candidates) if f), None)
    wanted = ", ".join(f"{n}[.gz]" for n in FMNIST_FILES)
    if files is None and root is not None:
        raise KDError(f"Fashion-MNIST was not found in {root} (looked for {wanted} in "
                      f"{' and '.join(map(str, candidates))}). Put the four files there, point --data-dir "
                      f"(or KD_DATA) at the folder that holds them, or leave both out to use "
                      f"{DEBIAN_FASHION_MNIST} (`apt-get update && apt-get install -y dataset-fashion-mnist`).")
    if files is None:
        try:
            from torchvision.datasets import FashionMNIST
            FashionMNIST(DEFAULT_DOWNLOAD_DIR, train=True, download=True)
            FashionMNIST(DEFAULT_DOWNLOAD_DIR, train=False, download=True)
            files = _find_idx_files(DEFAULT_DOWNLOAD_DIR / "FashionMNIST" / "raw")
        except Exception as exc:  # no network: say how to get the data instead
            raise KDError(
                f"Fashion-MNIST was not found in {DEBIAN_FASHION_MNIST} and downloading it to "
                f"{DEFAULT_DOWNLOAD_DIR} failed ({type(exc).__name__}: {exc}). Install it offline with "
                f"`apt-get update && apt-get install -y dataset-fashion-mnist` (files land in "
                f"{DEBIAN_FASHION_MNIST}), or put the four idx files in a folder and pass --data-dir "
                f"(or set KD_DATA) to it.") from None
    tr_x, tr_y, te_x, te_y = (_read_idx(f, shape) for f, shape in zip(files, FMNIST_FILES.values()))
    return TensorData("fashion_mnist", tr_x[..., None], tr_y.long(), te_x[..., None], te_y.long(), 10,
                      *MEAN_STD["fashion_mnist"], pad)


def _cifar(num_classes: int):
    def load(data_dir=None, pad: int = 4, **_) -> TensorData:
        from torchvision import datasets
        cls = datasets.CIFAR10 if num_classes == 10 else datasets.CIFAR100
        root = _explicit_root(data_dir)
        try:
            sets = [cls(root or DEFAULT_DOWNLOAD_DIR, train=t, download=False) for t in (True, False)]
        except (RuntimeError, OSError, EOFError, ValueError) as exc:  # missing, or a damaged pickle
            sets, missing = None, exc
        if sets is None and root is not None:
            raise KDError(f"CIFAR-{num_classes} was not found or is damaged in {root} ({missing}). Extract "
                          f"cifar-{num_classes}-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) "
                          f"into that folder, or leave --data-dir and KD_DATA out to download it to "
                          f"{DEFAULT_DOWNLOAD_DIR}.")
        if sets is None:
            try:
                sets = [cls(DEFAULT_DOWNLOAD_DIR, train=t, download=True) for t in (True, False)]
            except Exception as exc:
                raise KDError(
                    f"CIFAR-{num_classes} was not found in {DEFAULT_DOWNLOAD_DIR} and downloading it "
                    f"failed ({type(exc).__name__}: {exc}). Download cifar-{num_classes}-python.tar.gz from "
                    f"https://www.cs.toronto.edu/~kriz/cifar.html on a machine with network, extract it into a "
                    f"folder and pass --data-dir (or set KD_DATA) to that folder.") from None
        tr, te = [(torch.from_numpy(s.data), torch.tensor(s.targets)) for s in sets]
        name = f"cifar{num_classes}"
        return TensorData(name, tr[0], tr[1], te[0], te[1], num_classes, *MEAN_STD[name], pad)
    return load


def _imagefolder(data_dir=None, image_size: int = 224, workers: int = 8, **_) -> FolderData:
    if not data_dir:
        raise KDError("The imagefolder dataset needs --data-dir pointing at a folder with train/ and val/.")
    return FolderData(Path(data_dir), image_size, workers)


@dataclass(frozen=True)
class DatasetInfo:
    """What is known of a dataset before loading it (cost estimates and grids need no data)."""
    load: Callable[..., Dataset]
    in_chans: int
    image_size: int
    num_classes: int
    num_train: int      # for imagefolder: ImageNet-1k's, the tree a paper profile points at
    views: int | None   # keyed training views per sample at the default padding (None: not keyed)


DATASETS = {"fashion_mnist": DatasetInfo(_fashion_mnist, 1, 28, 10, 60000, 5 * 5 * 2),
            "cifar10": DatasetInfo(_cifar(10), 3, 32, 10, 50000, 9 * 9 * 2),
            "cifar100": DatasetInfo(_cifar(100), 3, 32, 100, 50000, 9 * 9 * 2),
            "imagefolder": DatasetInfo(_imagefolder, 3, 224, 1000, 1281167, None)}


def load_dataset(name: str, data_dir=None, device="cpu", test_per_class: int | None = None,
                 **options) -> Dataset:
    """Load a dataset by name onto `device` (options: pad for crops, image_size/workers for folders).
    `test_per_class` keeps a fixed class-balanced part of the test split (smoke runs evaluate faster)."""
    if name not in DATASETS:
        raise KDError(f"Unknown dataset '{name}'. Valid datasets: {', '.join(DATASETS)}.")
    data = DATASETS[name].load(data_dir=data_dir, **options)
    if test_per_class is not None:
        data.keep_test(balanced_subset(data.targets("test"), per_class=test_per_class, seed=0))
        data.name += f"-test{test_per_class}pc"
    return data.to(device)


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
