"""More augmentation of the distillation data than a dataset's crop and flip (Stanton et al.'s rotation and
MixUp), batched on the training device, keyed where it can be so that the teacher-logit cache stays exact."""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kd.data import Batch, Dataset, TensorData, generator, stream_seed
from kd.errors import KDError


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
