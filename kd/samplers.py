"""Which samples an epoch trains on, in which batches. `plan(epoch, probe)` returns the epoch's batches
of training-set indices; `probe` gives clean-view student and teacher logits to samplers that rank
samples (KDAS), and is ignored by the others."""
from __future__ import annotations

import torch
from torch import Tensor

from kd.data import generator


class Shuffle:
    """Every sample of a fixed pool once per epoch, in an order drawn from (seed, epoch)."""

    student_independent = True

    def __init__(self, pool: Tensor, batch_size: int, seed: int):
        self.pool, self.batch_size, self.seed = pool.cpu(), batch_size, seed

    def plan(self, epoch: int, probe=None) -> list[Tensor]:
        order = self.pool[torch.randperm(len(self.pool), generator=generator(self.seed, epoch, 0))]
        return list(order.split(self.batch_size))
