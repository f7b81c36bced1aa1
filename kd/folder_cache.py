"""An ImageNet-style tree decoded once into uint8 arrays, so that training reads pixels instead of JPEGs.

Why: the PIL path (kd.data.FolderData) decodes, crops and resizes every image of every epoch on the CPU, a
few hundred images a second per core (benchmarks/imagenet_data.py), while a GPU trains a resnet18 student on
about 12.8k a second: dozens of cores per GPU. Here every image is decoded once, resized (shorter side to
`side` = image_size / crop_pct, 256 for 224, torchvision's bilinear Resize as the PIL path's evaluation
transform) and centre-cropped to a square, into one (N, side, side, 3) uint8 .npy file per split under
$KD_CACHE/data/predecoded. A training batch is a gather of rows (memory-mapped, in DataLoader workers), then
random-resized crops + flips on the training device: one antialiased bilinear resize per image (the PIL
path's interpolation; on a CPU torch's uint8 kernel does about 10k a second per core).

What differs from the PIL path: random-resized crops are drawn (torchvision's scale and ratio ranges and
its ten-tries rule) from the centre square at 256 px, not from the whole image at full resolution, so the
long side's margins are never seen and a small crop is upsampled from fewer pixels. Clean views (evaluation,
train fidelity) are the centre image_size square of the cached one: the PIL path's resize + centre crop,
pixel for pixel (tests/test_folder_cache.py). A cache is keyed by the tree's file list and sizes and by
`side`, so a changed tree is decoded again, never read stale.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import shutil
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kd.data import MEAN_STD, Batch, _Labelled, check_tree, generator
from kd.errors import KDError
from kd.records import cache_dir

SCALE, RATIO, TRIES = (0.08, 1.0), (3 / 4, 4 / 3), 10  # torchvision's RandomResizedCrop defaults


def cache_root() -> Path:
    return cache_dir() / "data" / "predecoded"


def _square(side: int):
    from torchvision import transforms
    return transforms.Compose([transforms.Resize(side, transforms.InterpolationMode.BILINEAR),
                               transforms.CenterCrop(side)])


def _decode_rows(job):
    """In a pool worker: decode files[i] for the rows given and write them into the open .npy file."""
    path, files, rows, side = job
    from torchvision.datasets.folder import default_loader
    square, out = _square(side), np.load(path, mmap_mode="r+")
    for i in rows:
        out[i] = np.asarray(square(default_loader(files[i])))
    out.flush()
    return len(rows)


def decode_split(folder: Path, side: int, workers: int = 8, log=print) -> tuple[Path, Tensor, list[str]]:
    """The split's cache (images.npy of shape (N, side, side, 3), uint8), its labels and classes: built once
    with `workers` processes, into a temporary folder renamed when complete (an interrupted build is redone)."""
    from torchvision import datasets
    try:
        tree = datasets.ImageFolder(folder)
    except (FileNotFoundError, OSError) as exc:
        why = str(exc).strip().splitlines()[0].rstrip(".")
        raise KDError(f"ImageFolder data in {folder} is not usable: {why}. It needs one folder per class holding "
                      f"its images. Nothing was trained.") from None
    files = [p for p, _ in tree.samples]
    key = hashlib.sha256(json.dumps([str(Path(folder).resolve()), side, tree.classes,
                                     [(str(Path(p).relative_to(folder)), Path(p).stat().st_size) for p in files]])
                         .encode()).hexdigest()[:16]
    done = cache_root() / f"{Path(folder).name}-{side}px-{key}"
    if not (done / "images.npy").is_file():
        partial = done.with_name(done.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        need = len(files) * side * side * 3
        free = shutil.disk_usage(partial).free
        if need > free:
            shutil.rmtree(partial)
            raise KDError(f"Decoding {folder} at {side} px needs {need / 1e9:.1f} GB in {cache_root()}, which has "
                          f"{free / 1e9:.1f} GB free. Point $KD_CACHE at a larger disk, or use the PIL path.")
        log(f"decoding {len(files):,} images of {folder} once into {done} ({need / 1e9:.1f} GB, {workers} processes)")
        np.lib.format.open_memmap(partial / "images.npy", "w+", np.uint8, (len(files), side, side, 3)).flush()
        chunks = [(partial / "images.npy", files, rows, side)
                  for rows in np.array_split(np.arange(len(files)), max(1, math.ceil(len(files) / 256)))]
        if workers > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                list(pool.imap_unordered(_decode_rows, chunks))
        else:
            list(map(_decode_rows, chunks))
        np.save(partial / "labels.npy", np.asarray(tree.targets, np.int64))
        (partial / "classes.json").write_text(json.dumps(tree.classes))
        partial.rename(done)
    return done / "images.npy", torch.from_numpy(np.load(done / "labels.npy")), json.loads(
        (done / "classes.json").read_text())


class _Rows(torch.utils.data.Dataset):
    """Batches of rows of a memory-mapped uint8 array, each as one (B, side, side, 3) tensor; the file is
    opened in the process that reads it (a DataLoader worker), never pickled."""

    def __init__(self, path: Path):
        self.path, self.array = path, None

    def __len__(self):
        return len(np.load(self.path, mmap_mode="r"))

    def __getitem__(self, rows):
        if self.array is None:
            self.array = np.load(self.path, mmap_mode="r")
        rows = np.asarray(rows)
        order = np.argsort(rows)  # read the file forwards, hand the rows back in the batch's order
        out = np.empty((len(rows),) + self.array.shape[1:], np.uint8)
        out[order] = self.array[rows[order]]
        return torch.from_numpy(out), torch.as_tensor(rows)


def random_resized_boxes(n: int, side: int, g: torch.Generator) -> Tensor:
    """(n, 4) crop boxes x1, y1, x2, y2 in pixels of a side x side image, by torchvision's RandomResizedCrop
    rule: ten tries of an area fraction in SCALE and a log-uniform aspect ratio in RATIO, the first that fits;
    none fitting, the whole image (the fallback for a square image)."""
    area = side * side * torch.empty(n, TRIES).uniform_(*SCALE, generator=g)
    aspect = torch.exp(torch.empty(n, TRIES).uniform_(math.log(RATIO[0]), math.log(RATIO[1]), generator=g))
    w, h = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
    fits = (w > 0) & (w <= side) & (h > 0) & (h <= side)
    first = fits.float().argmax(1)  # the first try that fits (0 where none does: replaced below)
    w, h = w.gather(1, first[:, None])[:, 0], h.gather(1, first[:, None])[:, 0]
    none = ~fits.any(1)
    w[none], h[none] = side, side
    u = torch.rand(n, 2, generator=g)
    x1 = (u[:, 0] * (side - w + 1)).floor()
    y1 = (u[:, 1] * (side - h + 1)).floor()
    return torch.stack([x1, y1, x1 + w, y1 + h], 1)


class PredecodedFolderData(_Labelled):
    """An ImageNet-style tree (root/train/<class>/*, root/val/<class>/*) from its uint8 cache (module doc).
    Views are random resized crops + flips made on the training device; not keyed (view=None)."""

    def __init__(self, root: Path, image_size: int = 224, workers: int = 8, crop_pct: float = 224 / 256):
        check_tree(root)
        self.side = math.floor(image_size / crop_pct)
        (train, self.train_y, classes), (val, self.test_y, _) = (
            decode_split(root / sub, self.side, workers) for sub in ("train", "val"))
        self.train_rows, self.test_rows = _Rows(train), _Rows(val)
        self.num_classes, self.in_chans, self.image_size = len(classes), 3, (image_size, image_size)
        self.check_labels(f"the ImageFolder tree {root}")
        self.name, self.workers, self.device = f"imagefolder-u8:{root}", workers, torch.device("cpu")
        self.num_views = self.clean_view = None  # views not keyed; clean views are not kept in the logit cache
        self.test_keep = None
        mean, std = MEAN_STD["imagefolder"]
        # (x / 255 - mean) / std as one multiply-add: x * scale + shift (2.7x faster on a CPU at 224 px)
        self.scale = 1 / (255 * torch.tensor(std).view(1, 3, 1, 1))
        self.shift = -torch.tensor(mean).view(1, 3, 1, 1) / torch.tensor(std).view(1, 3, 1, 1)

    def keep_test(self, keep: Tensor):
        self.test_keep = keep if self.test_keep is None else self.test_keep[keep]
        self.test_y = self.test_y[keep]

    def to(self, device) -> "PredecodedFolderData":
        self.device = torch.device(device)
        self.scale, self.shift = self.scale.to(device), self.shift.to(device)
        return self

    def identity(self) -> str:
        return f"{self.name}-{self.side}px"

    def _uint8_batches(self, rows: _Rows, index_batches: Iterable[Tensor]):
        loader = torch.utils.data.DataLoader(rows, batch_size=None, sampler=[b.tolist() for b in index_batches],
                                             num_workers=self.workers, pin_memory=self.device.type == "cuda")
        for x, idx in loader:
            yield x.to(self.device, non_blocking=True).permute(0, 3, 1, 2), idx.to(self.device)  # channels_last

    def _normalise(self, x: Tensor) -> Tensor:
        return x.float().contiguous(memory_format=torch.channels_last).mul_(self.scale).add_(self.shift)

    def train_batches(self, index_batches: Iterable[Tensor], seed: int, epoch: int) -> Iterator[Batch]:
        g = generator(seed, epoch, 1)
        for x, idx in self._uint8_batches(self.train_rows, index_batches):
            boxes = random_resized_boxes(len(idx), self.side, g).long().tolist()
            flip = (torch.rand(len(idx), generator=g) < 0.5).to(self.device)[:, None, None, None]
            if x.device.type == "cuda":  # CUDA's antialiased resize takes floats; the CPU's has a fast uint8 kernel
                x = x.float()
            # one resize per image (crops differ in size), antialiased bilinear as PIL's resize in the PIL path
            crops = torch.cat([F.interpolate(x[i:i + 1, :, y1:y2, x1:x2], self.image_size, mode="bilinear",
                                             antialias=True) for i, (x1, y1, x2, y2) in enumerate(boxes)])
            crops = torch.where(flip, crops.flip(-1), crops)
            yield Batch(self._normalise(crops), self.train_y[idx.cpu()].to(self.device), idx, None)

    def eval_batches(self, split: str, idx: Tensor | None = None, batch_size: int = 256) -> Iterator[Batch]:
        """Clean views (the centre image_size square) of `idx` of either split, in order."""
        idx = torch.arange(len(self.targets(split))) if idx is None else idx.cpu()
        rows, file_rows = (self.train_rows, idx) if split == "train" else (
            self.test_rows, idx if self.test_keep is None else self.test_keep[idx])
        (h, w), side = self.image_size, self.side
        top, left = round((side - h) / 2.0), round((side - w) / 2.0)  # as torchvision's CenterCrop
        for chunk, (x, _) in zip(idx.split(batch_size), self._uint8_batches(rows, file_rows.split(batch_size))):
            yield Batch(self._normalise(x[:, :, top:top + h, left:left + w]),
                        self.targets(split)[chunk].to(self.device), chunk.to(self.device), None)
