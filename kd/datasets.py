"""Datasets by name, read from their files: Fashion-MNIST (the Debian package, a folder, or torchvision's
download), CIFAR-10/100 and ImageNet-style folders; a damaged or missing file is one clear error that says how
to get it. What is known of each before loading (shape, classes, size) is DATASETS."""
from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from kd.data import MEAN_STD, Dataset, FolderData, TensorData, balanced_subset
from kd.errors import KDError
from kd.folder_cache import PredecodedFolderData
from kd.records import cache_dir

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def download_dir() -> Path:
    """Where datasets are downloaded to: $KD_CACHE/data (default ~/.cache/kd/data)."""
    return cache_dir() / "data"


@contextlib.contextmanager
def _downloading(folder: Path):
    """A download into `folder`: the folders a failed one created are removed again, so that it changes nothing."""
    first_made = None if folder.exists() else folder
    while first_made is not None and not first_made.parent.exists():
        first_made = first_made.parent
    try:
        yield folder
    except BaseException:
        if first_made is not None:
            shutil.rmtree(first_made, ignore_errors=True)
        raise


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
            with _downloading(download_dir()) as folder:
                FashionMNIST(folder, train=True, download=True)
                FashionMNIST(folder, train=False, download=True)
            files = _find_idx_files(folder / "FashionMNIST" / "raw")
        except Exception as exc:  # no network: say how to get the data instead
            raise KDError(
                f"Fashion-MNIST was not found in {DEBIAN_FASHION_MNIST} and downloading it to "
                f"{download_dir()} failed ({type(exc).__name__}: {exc}). Install it offline with "
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
            sets = [cls(root or download_dir(), train=t, download=False) for t in (True, False)]
        except (RuntimeError, OSError, EOFError, ValueError) as exc:  # missing, or a damaged pickle
            sets, missing = None, exc
        if sets is None and root is not None:
            raise KDError(f"CIFAR-{num_classes} was not found or is damaged in {root} ({missing}). Extract "
                          f"cifar-{num_classes}-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) "
                          f"into that folder, or leave --data-dir and KD_DATA out to download it to "
                          f"{download_dir()}.")
        if sets is None:
            try:
                with _downloading(download_dir()) as folder:
                    sets = [cls(folder, train=t, download=True) for t in (True, False)]
            except Exception as exc:
                raise KDError(
                    f"CIFAR-{num_classes} was not found in {download_dir()} and downloading it "
                    f"failed ({type(exc).__name__}: {exc}). Download cifar-{num_classes}-python.tar.gz from "
                    f"https://www.cs.toronto.edu/~kriz/cifar.html on a machine with network, extract it into a "
                    f"folder and pass --data-dir (or set KD_DATA) to that folder.") from None
        tr, te = [(torch.from_numpy(s.data), torch.tensor(s.targets)) for s in sets]
        name = f"cifar{num_classes}"
        return TensorData(name, tr[0], tr[1], te[0], te[1], num_classes, *MEAN_STD[name], pad)
    return load


def _imagefolder(data_dir=None, image_size: int = 224, workers: int = 8, decode: str = "pil", **_) -> Dataset:
    """decode="pil": every image decoded and augmented per epoch by PIL in DataLoader workers (the papers' views);
    "once": decoded once into a uint8 cache, crops made on the training device (kd/folder_cache.py)."""
    if not data_dir:
        raise KDError("The imagefolder dataset needs --data-dir pointing at a folder with train/ and val/.")
    if decode not in ("pil", "once"):
        raise KDError(f"Unknown decode '{decode}' for imagefolder data: use pil (per epoch, the papers' views) or "
                      f"once (a uint8 cache, crops on the training device).")
    if decode == "once":
        return PredecodedFolderData(Path(data_dir), image_size, workers)
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
    data.check_labels(f"the dataset {name}" + (f" in {data_dir}" if data_dir else ""))
    if test_per_class is not None:
        data.keep_test(balanced_subset(data.targets("test"), per_class=test_per_class, seed=0))
        data.name += f"-test{test_per_class}pc"
    return data.to(device)
