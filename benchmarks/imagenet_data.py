"""ImageNet data path per CPU core: how many training images a second one core prepares, by today's PIL path
(kd.data.FolderData: PIL decode + timm's random-resized crop + flip + normalise, per image), by torchvision's
libjpeg-turbo decode (torchvision.io.decode_jpeg on the CPU; on a GPU the same call decodes batches there),
and by the decode-once cache (kd/folder_cache.py: a gather of uint8 rows; crops on the training device, so on
a GPU the CPU's share is the gather alone; on a CPU the crops are timed too). Also the one-time cost of
building the cache. All with one thread, in rounds (interleaved, so machine noise hits every path alike), on
synthetic ImageNet-sized JPEGs (500x375 and 375x500, smooth colour fields plus noise, about ImageNet's
110 KB per file). Prints images/s per core, the ratios to the PIL path and the cores one GPU needs to feed a
student at --gpu-rate images/s (12.8k: a resnet18 student on an H200, issue 37).

    python -m benchmarks.imagenet_data [--rounds 3] [--images 512]

Appends its medians to results/benchmarks/imagenet_data.csv (read by the dry run's data-path price).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kd import records
from kd.data import MEAN_STD, FolderData
from kd.device import resolve_device
from kd.folder_cache import PredecodedFolderData, _decode_rows, cache_root

CSV = Path("results/benchmarks/imagenet_data.csv")
BATCH = 256


def write_jpegs(root: Path, n: int, classes: int = 8, seed: int = 0) -> float:
    """n JPEGs in root/{train,val}/<class>/ (val: one per class); returns the mean file size in KB."""
    rng = np.random.default_rng(seed)
    sizes = []
    for split, count in (("train", n), ("val", classes)):
        for i in range(count):
            w, h = (500, 375) if i % 2 else (375, 500)
            low = Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
            pixels = np.clip(np.asarray(low, float) + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
            path = root / split / f"c{i % classes}" / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path, quality=90)
            sizes.append(path.stat().st_size)
    return float(np.mean(sizes)) / 1e3


def rate(images: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return images / (time.perf_counter() - start)


def pil_path(data: FolderData):
    """What one DataLoader worker does per training image: read, decode, crop, flip, to tensor, normalise."""
    for i in range(len(data.train_set)):
        data.train_set[i]


def torchvision_decode(files: list[str]):
    from torchvision.io import decode_jpeg, read_file
    from torchvision.transforms import v2
    augment = v2.Compose([v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip(),
                          v2.ToDtype(torch.float32, scale=True), v2.Normalize(*MEAN_STD["imagefolder"])])
    for f in files:
        augment(decode_jpeg(read_file(f)))


def gather_only(data: PredecodedFolderData, n: int):
    for rows in torch.arange(n).split(BATCH):
        data.train_rows[torch.randperm(n)[:len(rows)].tolist()]


def gather_and_crop(data: PredecodedFolderData, n: int, epoch: int):
    for _ in data.train_batches(torch.randperm(n).split(BATCH), 0, epoch):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--gpu-rate", type=float, default=12800, help="images/s one GPU trains (resnet18 on an H200)")
    args = ap.parse_args()
    records.git_commit()  # pin the commit of the code this process loaded, before the long timing
    torch.set_num_threads(1)
    device = resolve_device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KD_CACHE"] = str(Path(tmp) / "cache")  # the cache built here goes with the folder
        root = Path(tmp) / "tree"
        kb = write_jpegs(root, args.images)
        pil = FolderData(root, 224, workers=0)
        files = [p for p, _ in pil.train_set.ds.samples]
        start = time.perf_counter()
        once = PredecodedFolderData(root, 224, workers=0)
        first_build = time.perf_counter() - start
        cached = next(cache_root().glob("train-*")) / "images.npy"
        rates = {}
        for r in range(args.rounds):
            now = {"pil": rate(len(files), lambda: pil_path(pil)),
                   "torchvision_decode_jpeg": rate(len(files), lambda: torchvision_decode(files)),
                   "once_gather": rate(len(files), lambda: gather_only(once, len(files))),
                   "once_gather_and_crop_on_cpu": rate(len(files), lambda: gather_and_crop(once, len(files), r)),
                   "once_build": rate(len(files), lambda: _decode_rows((cached, files, range(len(files)), once.side)))}
            for k, v in now.items():
                rates.setdefault(k, []).append(v)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in now.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\nimages/s per core ({records.device_name(device)}, one thread, {len(files)} JPEGs of {kb:.0f} KB, "
          f"medians of {args.rounds} rounds; first build {first_build:.1f}s):")
    for k, v in med.items():
        print(f"  {k:30s} {v:9,.0f} /s   {v / med['pil']:6.1f}x the PIL path   "
              f"{args.gpu_rate / v:6.1f} cores per GPU at {args.gpu_rate:,.0f} images/s")
    row = records.benchmark_row("imagenet_data", device, images=len(files), rounds=args.rounds, jpeg_kb=kb,
                                gpu_rate=args.gpu_rate, **{f"images_per_s_per_core: {k}": v for k, v in med.items()},
                                **{f"ratio to pil: {k}": v / med["pil"] for k, v in med.items() if k != "pil"})
    records.append_row(CSV, row)


if __name__ == "__main__":
    main()
