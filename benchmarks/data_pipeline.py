"""Data pipeline: one resnet8 training epoch on 10k Fashion-MNIST images, our pipeline (uint8 tensors on
the device, batched crop + flip gather, channels_last) vs a torchvision DataLoader with PIL RandomCrop /
RandomHorizontalFlip as the common CIFAR KD codebases use it, same model, same optimiser, measured side by
side in rounds (interleaved, so machine noise hits both alike). Target: ours <= 0.5x the DataLoader's time.

    python -m benchmarks.data_pipeline [--rounds 3] [--images 10000]

Prints the medians and ratios and appends them to results/benchmarks/data_pipeline.csv.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.peer import PilDataset
from kd import records
from kd.data import balanced_subset
from kd.datasets import load_dataset
from kd.device import resolve_device
from kd.models import create_model
from kd.objectives import CrossEntropy
from kd.recipe import Recipe
from kd.samplers import Shuffle
from kd.train import Student

BATCH = 128


def ours_epoch(data, pool, epoch):
    torch.manual_seed(0)
    student = Student(create_model("resnet8", 10, 1), CrossEntropy(), Recipe(lr=0.05), data.device)
    student.start_epoch(1, data.device)
    start = time.perf_counter()
    for batch in data.train_batches(Shuffle(pool, BATCH, 0).plan(epoch), 0, epoch):
        student.step(batch, None, 1)
    return time.perf_counter() - start


def dataloader_epoch(loader, channels_last):
    torch.manual_seed(0)
    model = create_model("resnet8", 10, 1)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    start = time.perf_counter()
    for x, y in loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def data_only(iterable):
    start = time.perf_counter()
    for _ in iterable:
        pass
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=10000)
    args = ap.parse_args()
    records.git_commit()  # pin the commit of the code this process loaded, before the long timing
    device = resolve_device("cpu")
    data = load_dataset("fashion_mnist", device=device)
    pool = balanced_subset(data.train_y, per_class=args.images // 10, seed=0)
    peer_set = PilDataset(data, pool)
    loaders = {w: torch.utils.data.DataLoader(peer_set, batch_size=BATCH, shuffle=True, num_workers=w,
                                              persistent_workers=w > 0) for w in (0, 2)}
    times = {}
    for r in range(args.rounds):
        now = {"ours": ours_epoch(data, pool, r + 1)}
        for w, loader in loaders.items():
            now[f"dataloader_w{w}_nchw"] = dataloader_epoch(loader, channels_last=False)
            now[f"dataloader_w{w}_channels_last"] = dataloader_epoch(loader, channels_last=True)
            now[f"dataloader_w{w}_data_only"] = data_only(loader)
        now["ours_data_only"] = data_only(data.train_batches(Shuffle(pool, BATCH, 0).plan(r + 1), 0, r + 1))
        for k, v in now.items():
            times.setdefault(k, []).append(v)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in now.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = lambda kind: min(med[f"dataloader_w{w}_{kind}"] for w in loaders)  # noqa: E731  (the peer's best)
    ratios = {
        "ours / dataloader (peer default: NCHW model, best of 0 or 2 workers)": med["ours"] / best("nchw"),
        "ours / dataloader (both channels_last: the pipeline alone)": med["ours"] / best("channels_last"),
        "data only: ours / dataloader": med["ours_data_only"] / best("data_only"),
    }
    print(f"\nresnet8 epoch on {len(pool)} Fashion-MNIST images, {device.type}, {torch.get_num_threads()} "
          f"threads, medians of {args.rounds} rounds:")
    for k, v in med.items():
        print(f"  {k:30s} {v:6.2f} s")
    for k, v in ratios.items():
        print(f"  {k:70s} {v:.3f}x")
    verdict = "met" if next(iter(ratios.values())) <= 0.5 else "missed"
    print(f"target ours <= 0.5x the DataLoader pipeline (as peers run it): {verdict}")
    row = records.benchmark_row("data_pipeline", device, images=len(pool), rounds=args.rounds,
                                **{f"median_{k}_s": v for k, v in med.items()},
                                **{f"ratio: {k}": v for k, v in ratios.items()})
    records.append_row(Path("results/benchmarks/data_pipeline.csv"), row)


if __name__ == "__main__":
    main()
