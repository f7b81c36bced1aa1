"""An exact cache of a frozen teacher's logits, keyed by (teacher, dataset, split, sample index, view).

A frozen teacher gives the same logits for the same view of the same image, and every finding distils many
students from a few teachers: each (sample, view) is run through the teacher once, then looked up by every
later epoch, run and experiment. A table is dense, `[samples, views, classes]` float32 on the training
device with a `filled` mask, which makes a lookup one gather and keeps values bit-for-bit what the teacher
gave; tables too large for the bound (`KD_LOGIT_CACHE_GB`, default 4 GiB per table) are not kept, and
those views go through the teacher every time. On disk only the filled entries are stored, next to the
teacher checkpoint, and merged under a file lock, so parallel sweeps add to one another's cache.

`Teacher` is the frozen teacher (or ensemble) as the training loop sees it, served through these tables.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from filelock import FileLock

from kd.device import autocast, eval_batch_size
from kd.errors import env_number
from kd.metrics import ensemble_logits
from kd.records import DamagedFile, atomic_save, load_saved


def max_table_bytes() -> float:
    return env_number("KD_LOGIT_CACHE_GB", 4) * 2**30


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


# A sample's logits must not depend on how many other samples share its batch: cached tables are filled in
# whatever chunks a run happens to miss, so otherwise a row would depend on which parallel run filled first
# (--jobs). On CPU only a batch of one differed from batches of 2..512 (AMD EPYC, AVX-512); 16 leaves margin.
MIN_BATCH = 16


class Teacher:
    """The frozen teacher (or the mean-probability ensemble of several) as the loop sees it.

    With the logit cache on (the default; KD_LOGIT_CACHE=0 turns it off), `prepare` runs the teacher once,
    in large batches, on the views of an epoch's plan it has not seen, and `train_logits` is then a
    lookup; `logits_dir` persists the tables across runs and experiments. Batches whose views are not
    keyed (view None: ImageFolder crops, MixUp, colour jitter) always go through the teacher.
    """

    def __init__(self, models: list, data, logits_dir: Path | None = None, cache: bool | None = None):
        self.models, self.data, self.logits_dir, self.forwards = models, data, logits_dir, 0
        self.cache = os.environ.get("KD_LOGIT_CACHE", "1") != "0" if cache is None else cache
        self._tables = {}

    @torch.no_grad()
    def _forward(self, x):
        n = len(x)
        self.forwards += n
        if 0 < n < MIN_BATCH:  # oneDNN takes another kernel for a batch of one: pad, so bits never depend on it
            x = torch.cat([x, x[:1].expand(MIN_BATCH - n, *x.shape[1:])])
        with autocast(x.device):
            outs = [m(x)[:n].float() for m in self.models]
        return outs[0] if len(outs) == 1 else ensemble_logits(outs)

    def on(self, data) -> "Teacher":
        """This teacher on other training views of the same images (a run's extra augmentation): the same
        models and cache folder, with that data's own tables."""
        return self if data is self.data else Teacher(self.models, data, self.logits_dir, self.cache)

    def _table(self, kind: str) -> LogitTable | None:
        """The table of "train-views", "train-clean" or "test-clean", None where it cannot be kept."""
        if kind not in self._tables:
            split, what = kind.split("-")
            # views None: not keyed (ImageFolder crops, MixUp); a dataset without a clean view id reads its
            # clean images from disk (ImageFolder), so only in-memory clean views are kept
            views = self.data.num_views if what == "views" else 1 if self.data.clean_view is not None else None
            n, c = len(self.data.targets(split)), self.data.num_classes
            table = None
            if self.cache and views is not None and LogitTable.fits(n, views, c):
                path = (self.logits_dir / f"{self.data.identity()}-{self.data.device.type}-{kind}.pt"
                        if self.logits_dir is not None else None)
                table = LogitTable(n, views, c, self.data.device, path)
            self._tables[kind] = table
        return self._tables[kind]

    def _fill(self, table: LogitTable, idx, view, images):
        for chunk in table.missing(idx, view).split(eval_batch_size(self.data.device)):
            i, v = idx[chunk], view[chunk]
            table.store(i, v, self._forward(images(i, v)))

    def prepare(self, plan, seed: int, epoch: int):
        """Before an epoch: make sure every view it will train on is in the table."""
        table = self._table("train-views")
        if table is not None:
            idx = torch.cat(plan).to(self.data.device)
            view = self.data.epoch_views(seed, epoch).to(self.data.device)[idx]
            self._fill(table, idx, view, self.data.train_images)

    def train_logits(self, batch):
        table = self._table("train-views")
        if table is None or batch.view is None:
            return self._forward(batch.x)
        return table.lookup(batch.idx, batch.view)

    def clean_logits(self, split: str, idx=None):
        """Logits of un-augmented images (default: the whole split)."""
        n = len(self.data.targets(split))
        idx = torch.arange(n, device=self.data.device) if idx is None else idx.to(self.data.device)
        table = self._table(f"{split}-clean")
        if table is None:
            return torch.cat([self._forward(b.x) for b in self.data.eval_batches(split, idx)])
        zero = torch.zeros_like(idx)
        self._fill(table, idx, zero, lambda i, v: self.data.images(split, i))
        return table.lookup(idx, zero)

    def flush(self):
        """Persist what the tables learnt (a no-op without logits_dir)."""
        for table in self._tables.values():
            if table is not None:
                table.save()
