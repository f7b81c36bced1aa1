"""KD epoch speed, measured side by side in one run (interleaved rounds, medians):

  ours, CE only            the loop with a plain cross-entropy objective (the floor for KD)
  ours, KD, no cache       the loop, the teacher run on every batch
  ours, KD, cache filling  the first epoch with the logit cache on (each view through the teacher once)
  ours, KD, warm cache     the same epoch again: every teacher logit is a lookup
  peer-style KD            torchvision DataLoader + PIL crop/flip, fp32, NCHW, teacher forward every step,
                           as the common CIFAR KD codebases do (best of 0 and 2 workers)

Targets: on CPU a warm-cache KD epoch <= 1.3x a CE epoch, and ours >= 3x faster than the peer-style loop;
on a GPU (CIFAR-100-shaped data) ours >= 5x the peer-style loop and < 3 s per epoch. Teachers are randomly
initialised: only their cost matters here.

    python -m benchmarks.kd_epoch                                      # resnet20 -> resnet8, 10k FMNIST, CPU
    python -m benchmarks.kd_epoch --data cifar100-shaped --images 50000 --teacher resnet56 --student resnet20
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
from kd.data import TensorData, balanced_subset
from kd.datasets import load_dataset
from kd.device import place, resolve_device
from kd.logit_cache import Teacher
from kd.models import create_model
from kd.objectives import KD, CrossEntropy
from kd.recipe import Recipe
from kd.samplers import Shuffle
from kd.train import Student, train_epoch

# Dense bf16 peak of the GPUs this repo has been measured on (TFLOP/s), for "how far from the limit".
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def make_data(kind: str, images: int, device):
    if kind == "fashion_mnist":
        data = load_dataset("fashion_mnist", device=device)
        return data, balanced_subset(data.train_y, per_class=images // 10, seed=0)
    g = torch.Generator().manual_seed(0)  # random CIFAR-100-shaped tensors: speed only, never results
    data = TensorData("cifar100-shaped-random", torch.randint(0, 256, (images, 32, 32, 3), dtype=torch.uint8,
                                                              generator=g),
                      torch.arange(images) % 100, torch.randint(0, 256, (1000, 32, 32, 3), dtype=torch.uint8,
                                                                generator=g),
                      torch.arange(1000) % 100, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 4)
    return data.to(device), torch.arange(images)


def ours_epoch(data, pool, teacher, objective, batch, epoch=1, compile=False):
    torch.manual_seed(0)
    student = Student(create_model(args.student, data.num_classes, data.in_chans, args.student_width),
                      objective, Recipe(lr=0.05, batch_size=batch, compile=compile), data.device)
    sync(data.device)
    start = time.perf_counter()
    train_epoch([student], data, Shuffle(pool, batch, 0), teacher, 0, epoch)
    sync(data.device)
    return time.perf_counter() - start


def peer_epoch(loader, teacher_model, device):
    torch.manual_seed(0)
    model = create_model(args.student, loader.dataset.n_classes, loader.dataset.in_chans,
                         args.student_width).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sync(device)
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with torch.no_grad():
            t = teacher_model(x)
        s = model(x)
        loss = 0.1 * F.cross_entropy(s, y) + 0.9 * 16 * F.kl_div(F.log_softmax(s / 4, 1), F.softmax(t / 4, 1),
                                                                 reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - start


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def flops_per_epoch(data, teacher_model, n: int, batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    student = create_model(args.student, data.num_classes, data.in_chans, args.student_width).to(data.device)
    x = data.images("train", torch.arange(batch, device=data.device))
    with FlopCounterMode(display=False) as counter:
        student(x).sum().backward()
        with torch.no_grad():
            teacher_model(x)
    return counter.get_total_flops() * n / batch


def main():
    device = resolve_device(args.device)
    data, pool = make_data(args.data, args.images, device)
    batch = args.batch_size
    torch.manual_seed(0)
    teacher_model = place(create_model(args.teacher, data.num_classes, data.in_chans), device).eval()
    teacher_model = teacher_model.requires_grad_(False)
    peer_set = PilDataset(data, pool)
    peer_set.n_classes, peer_set.in_chans = data.num_classes, data.in_chans
    peer_teacher = create_model(args.teacher, data.num_classes, data.in_chans).to(device).eval()
    workers = (0, 2) if device.type == "cpu" else (8,)
    loaders = {w: torch.utils.data.DataLoader(peer_set, batch_size=batch, shuffle=True, num_workers=w,
                                              pin_memory=device.type == "cuda", persistent_workers=w > 0)
               for w in workers}
    kd = KD(temperature=4.0, ce_weight=0.1, kd_weight=0.9)
    times = {}
    for r in range(args.rounds):
        now = {"ours_ce": ours_epoch(data, pool, None, CrossEntropy(), batch, compile=args.compile),
               "ours_kd_no_cache": ours_epoch(data, pool, Teacher([teacher_model], data, cache=False), kd,
                                              batch, compile=args.compile)}
        cached = Teacher([teacher_model], data, cache=True)
        now["ours_kd_cache_filling"] = ours_epoch(data, pool, cached, kd, batch, compile=args.compile)
        now["ours_kd_warm_cache"] = ours_epoch(data, pool, cached, kd, batch, compile=args.compile)
        for w, loader in loaders.items():
            now[f"peer_kd_w{w}"] = peer_epoch(loader, peer_teacher, device)
        for k, v in now.items():
            times.setdefault(k, []).append(v)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in now.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    peer = min(med[f"peer_kd_w{w}"] for w in workers)
    ratios = {"warm-cache KD / CE (target <= 1.3 on CPU)": med["ours_kd_warm_cache"] / med["ours_ce"],
              "no-cache KD / CE": med["ours_kd_no_cache"] / med["ours_ce"],
              "no-cache KD / warm-cache KD": med["ours_kd_no_cache"] / med["ours_kd_warm_cache"],
              "peer-style / ours warm cache (target >= 3 CPU, >= 5 GPU)": peer / med["ours_kd_warm_cache"],
              "peer-style / ours no cache": peer / med["ours_kd_no_cache"]}
    flops = flops_per_epoch(data, teacher_model, len(pool), batch)
    achieved = flops / med["ours_kd_no_cache"] / 1e12
    name = records.device_name(device)
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    print(f"\n{args.teacher} -> {args.student} (width {args.student_width}) KD epoch on {len(pool)} "
          f"{args.data} images, batch {batch}, {name}, medians of {args.rounds} rounds:")
    for k, v in med.items():
        print(f"  {k:28s} {v:8.2f} s")
    for k, v in ratios.items():
        print(f"  {k:60s} {v:6.2f}x")
    print(f"  model FLOPs per epoch (student fwd+bwd, teacher fwd): {flops / 1e12:.2f} TFLOP; "
          f"no-cache epoch achieves {achieved:.3f} TFLOP/s" +
          (f" = {100 * achieved / peak:.1f}% of the {peak:.0f} TFLOP/s bf16 peak" if peak else ""))
    row = records.benchmark_row("kd_epoch", device, data=args.data, images=len(pool), teacher=args.teacher,
                                student=args.student, student_width=args.student_width, batch_size=batch,
                                rounds=args.rounds, **{f"median_{k}_s": v for k, v in med.items()},
                                **{f"ratio: {k}": v for k, v in ratios.items()}, tflop_per_epoch=flops / 1e12,
                                achieved_tflops_no_cache=achieved)
    records.append_row(Path(args.out), row)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fashion_mnist", choices=["fashion_mnist", "cifar100-shaped"])
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--teacher", default="resnet20")
    ap.add_argument("--student", default="resnet8")
    ap.add_argument("--student-width", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="torch.compile our students (CUDA)")
    ap.add_argument("--out", default="results/benchmarks/kd_epoch.csv")
    args = ap.parse_args()
    records.git_commit()  # pin the commit of the code this process loaded, before the long timing
    main()
