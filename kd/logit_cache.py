"""An exact cache of a frozen teacher's logits, keyed by (teacher, dataset, split, sample index, view).

A frozen teacher gives the same logits for the same view of the same image, and every finding distils many
students from a few teachers: each (sample, view) is run through the teacher once, then looked up by every
later epoch, run and experiment. A table is dense, `[samples, views, classes]` float32 on the training
device with a `filled` mask, which makes a lookup one gather and keeps values bit-for-bit what the teacher
gave; tables too large for the bound (`KD_LOGIT_CACHE_GB`, default 4 GiB per table) are not kept, and
those views go through the teacher every time. On disk only the filled entries are stored, next to the
teacher checkpoint, and merged under a file lock, so parallel sweeps add to one another's cache.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from filelock import FileLock

from kd.records import DamagedFile, atomic_save, load_saved


def max_table_bytes() -> float:
    return float(os.environ.get("KD_LOGIT_CACHE_GB", "4")) * 2**30


class LogitTable:
    """Logits of `num_samples x num_views` inputs, filled on demand; `path` persists it (None: memory only)."""

    def __init__(self, num_samples: int, num_views: int, num_classes: int, device, path: Path | None = None):
        self.shape = (num_samples, num_views, num_classes)
        self.values = torch.empty(self.shape, dtype=torch.float32, device=device)
        self.filled = torch.zeros(num_samples, num_views, dtype=torch.bool, device=device)
        self.path, self.saved = path, 0
        if path is not None and path.exists():
            self._merge_file()
        self.saved = int(self.filled.sum())

    @staticmethod
    def fits(num_samples: int, num_views: int, num_classes: int) -> bool:
        return num_samples * num_views * (num_classes * 4 + 1) <= max_table_bytes()

    def _merge_file(self):
        """Add the stored entries; a damaged file is never used (its entries are computed again and the
        next save replaces it)."""
        try:
            stored = load_saved(self.path, self.values.device)
        except DamagedFile as exc:
            logging.getLogger(__name__).warning("%s Its logits will be computed again.", exc)
            return
        self._merge(stored)

    def _merge(self, stored: dict):
        if tuple(stored["shape"]) != self.shape:
            return  # a table of another layout (e.g. other padding): ignore it
        n, v = stored["keys"] // self.shape[1], stored["keys"] % self.shape[1]
        self.values[n, v] = stored["values"].to(self.values)
        self.filled[n, v] = True

    def missing(self, idx, view):
        """Positions (into idx) whose logits are not in the table yet."""
        return (~self.filled[idx, view]).nonzero().squeeze(1)

    def store(self, idx, view, logits):
        self.values[idx, view] = logits.float()
        self.filled[idx, view] = True

    def lookup(self, idx, view):
        return self.values[idx, view]

    def save(self):
        """Write the filled entries, merged with whatever another process wrote meanwhile."""
        if self.path is None or int(self.filled.sum()) == self.saved:
            return
        with FileLock(str(self.path) + ".lock"):
            if self.path.exists():
                self._merge_file()
            keys = self.filled.flatten().nonzero().squeeze(1)
            atomic_save({"shape": self.shape, "keys": keys.cpu(),
                         "values": self.values.view(-1, self.shape[2])[keys].cpu()}, self.path)
        self.saved = int(self.filled.sum())
