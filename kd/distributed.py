"""Runs on several GPUs (issue 18.3): under `torchrun --nproc_per_node N`, every rank trains the same run on
its shard of each batch of the epoch plan and DistributedDataParallel averages the gradients, so N ranks of
batch B/N take the steps one process of batch B takes (up to batch-norm statistics, computed per shard
unless SyncBatchNorm is asked for (`wrap`), and float summation order). The sampler is wrapped (`Sharded`),
the student's forward goes through DDP (`forward`), the epoch's running sums are added up across ranks
(`reduce_epoch`): the training loop itself is the same. Each rank computes the teacher logits of its own
shard; every rank evaluates (their weights are equal), and only rank 0 writes results (`is_writer`).

Each view of a sample is drawn per (seed, epoch, sample), not per batch, so a shard sees exactly the views
the whole batch would. KDAS's release mode keeps the top B/N of each rank's enlarged shard rather than the
top B of the whole enlarged batch.
"""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from kd.errors import KDError


def rank_and_size() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def is_writer() -> bool:
    return rank_and_size()[0] == 0


SYNC_BN = False  # set by init: batch norm over the whole batch (CUDA) instead of each rank's shard


def init(device: torch.device, sync_bn: bool = False) -> torch.device:
    """Join the process group torchrun describes (WORLD_SIZE > 1): NCCL on CUDA, gloo on CPU. Returns the
    device of this rank (its own GPU under CUDA)."""
    global SYNC_BN
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if sync_bn and device.type != "cuda":
        raise KDError("--sync-bn needs CUDA (SyncBatchNorm); on CPU (gloo) batch norm stays per rank.")
    SYNC_BN = sync_bn
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise KDError(f"Rank {local} has no GPU of its own ({torch.cuda.device_count()} visible): start "
                          f"torchrun with --nproc_per_node at most the number of GPUs.")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=30))
    return device


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model a student trains: with SyncBatchNorm when asked for, its weights (and so its state_dict)
    the caller's to keep; DDP over it is `forward`'s job."""
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) if dist.is_initialized() and SYNC_BN else model


def forward(model: torch.nn.Module):
    """What a student's batches go through: DDP over the model when ranks are running (gradients averaged
    over the ranks in backward), the model itself otherwise."""
    return DistributedDataParallel(model) if dist.is_initialized() else model


def barrier():
    """Wait for every rank (after rank 0 has written what the others will read next)."""
    if dist.is_initialized():
        dist.barrier()


def agree(flag: bool) -> bool:
    """Rank 0's answer on every rank: what rank 0 alone may decide (it reads and repairs the shared files)."""
    if not dist.is_initialized():
        return flag
    answer = [flag]
    dist.broadcast_object_list(answer, src=0)
    return answer[0]


def shard(sampler):
    return Sharded(sampler) if dist.is_initialized() else sampler


def reduce_epoch(sums: dict, correct: Tensor, seen: int, bad: Tensor) -> tuple[dict, Tensor, int, Tensor]:
    """The epoch's running totals (loss terms x samples, correct, samples, a non-finite loss) over all ranks."""
    if not dist.is_initialized():
        return sums, correct, seen, bad
    flat = torch.stack([*(v.float().reshape(()) for v in sums.values()), correct.float(),
                        torch.tensor(float(seen), device=correct.device), bad.float()])
    dist.all_reduce(flat)
    *terms, correct, seen, bad = flat.unbind()
    return dict(zip(sums, terms)), correct, int(seen.item()), bad > 0


class Sharded:
    """A sampler whose every planned batch is split across the ranks: this rank trains on its part. The
    wrapped sampler plans (and, for KDAS, ranks) on every rank alike; select, facts and state pass through."""

    def __init__(self, sampler):
        if getattr(sampler, "mode", None) == "batch":
            raise KDError("KDAS's release (batch) selection keeps the top B of each enlarged batch, which is not "
                          "sharded across ranks yet: run it on one GPU per run, or use mode 'global'.")
        self.inner = sampler
        self.rank, self.size = rank_and_size()

    def plan(self, epoch: int, probe=None) -> list[Tensor]:
        # a batch smaller than the world would leave some rank without a step (and its collectives unmatched,
        # a hang): every rank drops it alike, since every rank plans the same batches
        return [b.tensor_split(self.size)[self.rank] for b in self.inner.plan(epoch, probe) if len(b) >= self.size]

    def __getattr__(self, name):  # select, facts, state_dict, load_state_dict, batch_size, pool ...
        return getattr(self.inner, name)
