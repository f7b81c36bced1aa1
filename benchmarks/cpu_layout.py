"""CPU tensor layout, measured side by side in one run (interleaved rounds, medians): a CE training epoch of
the cpu-profile student and teacher (and the benchmarks' full-width resnet8) on real Fashion-MNIST batches
of 128, and inference on the same images in batches of 1024 (what teacher forwards, logit-cache filling and
evaluation cost), in

  nchw              contiguous NCHW model and input (safe from oneDNN's strided-1x1 bug, see kd/device.py)
  channels_last     channels_last with strided 1x1 convolutions (crashes odd batches on AVX-512 CPUs;
                    only even batches are timed here)
  ours              kd.device.place: channels_last, strided 1x1 convolutions as subsample + 1x1

It decides the CPU layout: channels_last is kept only where it pays against nchw.

    python -m benchmarks.cpu_layout [--rounds 3] [--images 5000]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from kd import records
from kd.data import balanced_subset
from kd.datasets import load_dataset
from kd.device import place, resolve_device
from kd.models import create_model
from kd.samplers import Shuffle

ARMS = ("nchw", "channels_last", "ours")


def build(arm: str, name: str, width: float, device):
    torch.manual_seed(0)
    model = create_model(name, 10, 1, width)
    if arm == "ours":
        return place(model, device)
    return model.to(device).to(memory_format=torch.channels_last if arm == "channels_last" else
                               torch.contiguous_format)


def nchw(x):
    """NCHW strides for sure: with one channel, a channels_last tensor already counts as contiguous, so
    .contiguous() would keep its strides and the convolutions would run channels_last."""
    return x.clone(memory_format=torch.contiguous_format)


def epoch_seconds(arm: str, model, data, batches) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    for batch in data.train_batches(batches, seed=0, epoch=1):
        x = nchw(batch.x) if arm == "nchw" else batch.x
        loss = F.cross_entropy(model(x), batch.y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


@torch.no_grad()
def inference_seconds(arm: str, model, data, pool) -> float:
    model.eval()
    start = time.perf_counter()
    for batch in data.eval_batches("train", pool, 1024):
        model(nchw(batch.x) if arm == "nchw" else batch.x)
    model.train()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--out", default=str(records.REPO / "results/benchmarks/cpu_layout.csv"))
    args = ap.parse_args()
    records.git_commit()
    device = resolve_device("cpu")
    data = load_dataset("fashion_mnist", device=device)
    pool = balanced_subset(data.targets(), per_class=args.images // 10, seed=0)
    batches = [b for b in Shuffle(pool, 128, 0).shuffled(pool, 1) if len(b) % 2 == 0]
    print(f"{records.device_name(device)}: {sum(map(len, batches))} images in batches of 128, {args.rounds} rounds")
    for name, width in (("resnet8", 0.5), ("resnet8", 1.0), ("resnet20", 1.0)):
        models = {arm: build(arm, name, width, device) for arm in ARMS}
        times = {f"{kind}_{arm}": [] for kind in ("train", "infer") for arm in ARMS}
        for arm in ARMS:  # warm-up: oneDNN builds its kernels on first use
            epoch_seconds(arm, models[arm], data, batches[:3])
            inference_seconds(arm, models[arm], data, pool[:1024])
        for _ in range(args.rounds):
            for arm in ARMS:
                times[f"train_{arm}"].append(epoch_seconds(arm, models[arm], data, batches))
                times[f"infer_{arm}"].append(inference_seconds(arm, models[arm], data, pool))
        med = {k: statistics.median(t) for k, t in times.items()}
        ratios = {f"{kind}: ours / {other}": med[f"{kind}_ours"] / med[f"{kind}_{other}"]
                  for kind in ("train", "infer") for other in ("channels_last", "nchw")}
        print(f"{name} x{width}: " + ", ".join(f"{a} {s:.2f}s" for a, s in med.items()) + "\n  "
              + ", ".join(f"{k} {v:.3f}x" for k, v in ratios.items()))
        records.append_row(Path(args.out), records.benchmark_row(
            "cpu_layout", device, model=name, width=width, images=sum(map(len, batches)), rounds=args.rounds,
            **{f"median_{a}_s": s for a, s in med.items()}, **{f"ratio: {k}": v for k, v in ratios.items()}))


if __name__ == "__main__":
    main()
