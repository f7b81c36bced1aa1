"""Distil a timm model on your own torch Dataset with one of this repo's losses (kd.api).

    python -m examples.distill_your_dataset [--epochs 2] [--loss dkd]     # from the repo root

The Dataset below is yours to replace: any map-style Dataset of (image tensor, label) works, augmentation in
its transform. Here it reads Fashion-MNIST's idx files (bash setup.sh installs them) with numpy, trains a
small teacher from labels, then distils a half-width student from it.
"""
import argparse
import gzip
import os
from pathlib import Path

import numpy as np
import timm
import torch

import kd.api  # importing kd registers the CIFAR zoo (resnet8..110, wrn_*) with timm


class FashionMNIST(torch.utils.data.Dataset):
    """Images as normalised 1x28x28 float tensors; random horizontal flips when `train`."""

    def __init__(self, folder: Path, split: str, limit: int, train: bool):
        prefix = "train" if split == "train" else "t10k"
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz") as f:
            self.images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:limit]
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz") as f:
            self.targets = np.frombuffer(f.read(), np.uint8, offset=8)[:limit].astype(np.int64)
        self.train = train

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        x = (torch.from_numpy(self.images[i].astype(np.float32)) / 255 - 0.286) / 0.353
        if self.train and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, int(self.targets[i])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--loss", default="dkd", help="kd, dkd, dist, bkl, or one you registered")
    ap.add_argument("--train-images", type=int, default=2000)
    args = ap.parse_args(argv)
    torch.manual_seed(0)  # the models' initialisations: the same numbers on every run of this script
    folder = Path(os.environ.get("KD_DATA", "/usr/share/datasets/fashion-mnist"))
    train = FashionMNIST(folder, "train", args.train_images, train=True)
    clean = FashionMNIST(folder, "train", args.train_images, train=False)
    test = FashionMNIST(folder, "test", 1000, train=False)

    teacher = timm.create_model("resnet14", num_classes=10, in_chans=1)
    fitted = kd.api.distill(teacher, None, train, test, loss="ce", epochs=args.epochs, clean_train_set=clean)
    print(f"teacher resnet14: test top-1 {fitted['final']['test_top1']:.2f}")

    student = timm.create_model("resnet8", num_classes=10, in_chans=1, width=0.5)
    options = {"warmup": 1} if args.loss == "dkd" else {}  # DKD's 20 warm-up epochs are for 240-epoch runs
    result = kd.api.distill(student, teacher, train, test, loss=args.loss, epochs=args.epochs,
                            clean_train_set=clean, **options)
    final = result["final"]
    print(f"student resnet8 x0.5 ({args.loss}): test top-1 {final['test_top1']:.2f}, agreement with the teacher "
          f"{final['test_agreement']:.2f}%, ECE {final['test_ece']:.2f}")
    return result


if __name__ == "__main__":
    main()
