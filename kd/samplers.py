"""Which samples an epoch trains on, in which batches.

`plan(epoch, probe)` returns the epoch's batches of training-set indices before the epoch starts; `probe`
gives clean-view student and teacher logits to samplers that rank samples. `select(epoch, batch, teacher
logits, model)` may then keep part of each loaded batch (the official KDAS per-enlarged-batch selection);
the default keeps all of it.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from kd.data import Batch, generator
from kd.device import autocast
from kd.errors import KDError, with_options
from kd.losses import kl_ts


class Shuffle:
    """Every sample of a fixed pool once per epoch, in an order drawn from (seed, epoch)."""

    def __init__(self, pool: Tensor, batch_size: int, seed: int):
        self.pool, self.batch_size, self.seed = pool.cpu(), batch_size, seed

    def shuffled(self, indices: Tensor, epoch: int, batch_size: int | None = None) -> list[Tensor]:
        order = indices[torch.randperm(len(indices), generator=generator(self.seed, epoch, 0))]
        return list(order.split(batch_size or self.batch_size))

    def plan(self, epoch: int, probe=None) -> list[Tensor]:
        return self.shuffled(self.pool, epoch)

    def select(self, epoch: int, batch: Batch, teacher_logits, model):
        return batch, teacher_logits

    def facts(self) -> dict:
        """What the epoch's history row should record about the sampling (nothing, for a plain shuffle)."""
        return {}

    def state_dict(self) -> dict:
        """What a resumed run needs to plan the next epochs as this sampler would (a shuffle: nothing; its
        order is drawn from the seed and the epoch)."""
        return {}

    def load_state_dict(self, state: dict):
        pass


# ------------------------------------------------------------------------------------ KDAS schedules
def ratio_schedule(kind: str, start: float, end: float, epochs: int, warmup: int = 0):
    """K(t), the share of the pool kept in epoch t (1-based); all samples during `warmup` epochs.

    constant: `start` throughout. linear: from `start` at the first epoch after warm-up to `end` at the
    last, i.e. the paper's K(t) = max(K_min, K_init - alpha*t) with alpha = (K_init - K_min)/(T - 1) (or its
    increasing mirror when end > start). cosine: the KDAS release's half-cosine from `start` to `end`.
    """
    for name, value in (("start", start), ("end", end)):
        if not 0 < value <= 1:
            raise KDError(f"A KDAS sampling ratio must be in (0, 1], got {name}={value}.")
    if kind not in ("constant", "linear", "cosine"):
        raise KDError(f"Unknown ratio schedule '{kind}'; use constant, linear or cosine.")
    if not 0 <= warmup < epochs:
        raise KDError(f"KDAS warm-up epochs must be in [0, {epochs}), got {warmup}.")
    span = max(epochs - warmup - 1, 1)

    def ratio(epoch: int) -> float:
        if epoch <= warmup:
            return 1.0
        progress = min((epoch - warmup - 1) / span, 1.0)
        if kind == "constant":
            return start
        if kind == "linear":
            return start + (end - start) * progress
        return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))
    return ratio


def period_schedule(periods, epochs: int, warmup: int = 0):
    """Is epoch t a re-selection epoch? `periods` is one period (re-select every tau epochs) or the
    official list, e.g. (1, 3, 5, 10): one period per equal segment of the epochs after warm-up."""
    periods = (periods,) if isinstance(periods, int) else tuple(periods)
    if not periods or min(periods) < 1:
        raise KDError(f"KDAS re-selection periods must be >= 1 epoch, got {list(periods)}.")
    segment = max((epochs - warmup) // len(periods), 1)

    def is_sampling(epoch: int) -> bool:
        if epoch <= warmup:
            return False
        t = epoch - warmup
        period = periods[min((t - 1) // segment, len(periods) - 1)]
        return (t - 1) % period == 0
    return is_sampling


def exclusion_schedule(rate: float, epochs: int, until: float = 150 / 240):
    """Share of the highest-KL_TS samples skipped as outliers: `rate` until `until` of training (epoch 150
    of 240 in the release), then decaying linearly to 0 at the last epoch."""
    if not 0 <= rate < 1:
        raise KDError(f"The KDAS outlier exclusion rate must be in [0, 1), got {rate}.")
    hold = round(until * epochs)

    def excluded(epoch: int) -> float:
        return rate if epoch <= hold else max(rate * (epochs - epoch) / max(epochs - hold, 1), 0.0)
    return excluded


# ------------------------------------------------------------------------------------ KDAS sampler
class KDAS(Shuffle):
    """KDAS quantity-based subsampling (Chae et al., ICCV 2025, Sec. 4.1).

    On re-selection epochs keep the top K(t) of the pool by KL_TS (teacher vs current student), optionally
    skipping the top `excluded(t)` as outliers, and reuse that selection until the next re-selection.
    mode="global" ranks the whole pool on clean views (the paper's description). mode="batch" is the
    official release: the epoch loads enlarged batches of ceil(B / K(t)) augmented samples and keeps the B
    with the highest KL_TS, scored with the live student (no_grad, in its training mode as the release
    does); the kept indices are cached for the following epochs. `random=True` keeps a random K(t) instead:
    the same-size control of KDAS Finding 1. `balanced=True` (global mode) keeps the top (or a random) K(t)
    of each class instead of the whole pool's, an ablation against class confounding. The teacher's clean
    logits of the pool are computed once per run (they do not change), whatever the logit cache does.
    Every selection's class mix is recorded in the epoch's history (`facts`).
    """

    def __init__(self, pool: Tensor, batch_size: int, seed: int, ratio, is_sampling, excluded=None,
                 direction: str = "paper", mode: str = "global", random: bool = False, balanced: bool = False):
        super().__init__(pool, batch_size, seed)
        if mode not in ("global", "batch"):
            raise KDError(f"KDAS selection mode must be 'global' or 'batch', got {mode!r}.")
        if direction not in ("paper", "official"):
            raise KDError(f"KL_TS direction must be 'paper' or 'official', got {direction!r}.")
        if balanced and mode != "global":
            raise KDError("Class-balanced KDAS selection ranks the whole pool: it needs mode 'global'.")
        self.ratio, self.is_sampling, self.direction, self.mode = ratio, is_sampling, direction, mode
        self.excluded = excluded or (lambda epoch: 0.0)
        self.random, self.balanced, self.selected, self._scoring = random, balanced, None, False
        self._kept, self._kept_labels, self._teacher_clean = [], [], None
        self._selected_labels, self._num_classes, self._kl_ts = None, 0, None

    def _keep_count(self, n: int, epoch: int) -> int:
        return max(1, round(self.ratio(epoch) * n))

    def plan(self, epoch: int, probe=None) -> list[Tensor]:
        if self.ratio(epoch) >= 1.0 and self.selected is None:  # warm-up: all samples
            return self.shuffled(self.pool, epoch)
        self._scoring = self.mode == "batch" and self.is_sampling(epoch)
        if self._scoring:  # enlarged batches; select() keeps B of each
            self._kept, self._kept_labels = [], []
            return self.shuffled(self.pool, epoch, math.ceil(self.batch_size / self.ratio(epoch)))
        if self.is_sampling(epoch) or self.selected is None:
            self.selected = self._rank(epoch, probe)
            self._selected_labels, self._num_classes = probe.labels(self.selected), probe.num_classes
        return self.shuffled(self.selected, epoch)

    def _rank(self, epoch: int, probe) -> Tensor:
        """The pool's top K(t) by KL_TS (after the skipped outliers), or a random K(t); per class if balanced.
        A random selection is scored too, so that every selection's mean KL_TS (and the pool's) is recorded:
        what KDAS Finding 1's premise compares."""
        if self._teacher_clean is None:
            self._teacher_clean = probe.teacher_clean(self.pool)
        score = kl_ts(probe.student(self.pool), self._teacher_clean, self.direction).cpu()
        if self.random:
            order = torch.randperm(len(self.pool), generator=generator(self.seed, epoch, 4))
        else:
            order = score.argsort(descending=True, stable=True)
        skip = lambda n: 0 if self.random else math.ceil(n * self.excluded(epoch))  # noqa: E731
        if self.balanced:  # the same selection within each class: its own top (or random) K(t)
            labels = probe.labels(self.pool)
            ranked = [order[labels[order] == c] for c in labels.unique()]
            keep = torch.cat([r[skip(len(r)):skip(len(r)) + self._keep_count(len(r), epoch)] for r in ranked])
        else:
            keep = order[skip(len(order)):skip(len(order)) + self._keep_count(len(self.pool), epoch)]
        self._kl_ts = (score[keep].mean().item(), score.mean().item())
        return self.pool[keep]

    @torch.no_grad()
    def select(self, epoch: int, batch: Batch, teacher_logits, model):
        if not self._scoring:
            return batch, teacher_logits
        n = len(batch.y)
        if n <= self.batch_size:  # the last, short enlarged batch: keep it (as the release does)
            keep = torch.arange(n, device=batch.y.device)
        elif self.random:
            keep = torch.randperm(n, generator=generator(self.seed, epoch, 5))[:self.batch_size]
            keep = keep.to(batch.y.device)
        else:
            with autocast(batch.x.device):
                score = kl_ts(model(batch.x).float(), teacher_logits, self.direction)
            skip = math.ceil(n * self.excluded(epoch))
            keep = score.argsort(descending=True, stable=True)[skip:skip + self.batch_size]
        self._kept.append(batch.idx[keep].cpu())
        self._kept_labels.append(batch.y[keep].cpu())
        self.selected = torch.cat(self._kept).unique()
        self._selected_labels, self._num_classes = torch.cat(self._kept_labels), teacher_logits.shape[1]
        view = batch.view[keep] if batch.view is not None else None
        return Batch(batch.x[keep], batch.y[keep], batch.idx[keep], view), teacher_logits[keep]

    STATE = ("selected", "_kept", "_kept_labels", "_teacher_clean", "_selected_labels", "_num_classes", "_scoring",
             "_kl_ts")

    def state_dict(self) -> dict:
        """The current selection and what it was made from: a resumed run re-ranks only when a fresh run would."""
        return {k: getattr(self, k) for k in self.STATE}

    def load_state_dict(self, state: dict):
        for k in self.STATE:
            setattr(self, k, state.get(k, getattr(self, k)))  # a state saved before a field existed keeps its default

    def facts(self) -> dict:
        """The current selection's size and class mix (counts per class, space-separated), once there is one;
        of a whole-pool ranking also its mean KL_TS and the pool's, when it was made."""
        if self._selected_labels is None:
            return {}
        counts = torch.bincount(self._selected_labels, minlength=self._num_classes)
        kl = dict(zip(("selected_kl_ts", "pool_kl_ts"), self._kl_ts)) if self._kl_ts is not None else {}
        return {"selected": len(self.selected), "selected_per_class": " ".join(map(str, counts.tolist())), **kl}


def make_kdas(pool: Tensor, batch_size: int, seed: int, epochs: int, ratio: str = "linear", start: float = 0.6,
              end: float = 0.4, period=1, warmup: int = 0, exclude: float = 0.0, direction: str = "paper",
              mode: str = "global", random: bool = False, balanced: bool = False) -> KDAS:
    """A KDAS sampler from the plain options a run config records (paper defaults: linear 60% -> 40%,
    global ranking, re-selection every epoch; the release: cosine, period (1, 3, 5, 10), mode "batch",
    exclude 0.05, direction "official")."""
    return KDAS(pool, batch_size, seed, ratio_schedule(ratio, start, end, epochs, warmup),
                period_schedule(period, epochs, warmup), exclusion_schedule(exclude, epochs), direction, mode,
                random, balanced)


def build(config, pool: Tensor):
    """A run's sampler from its config (kd.config.RunConfig): every pool sample each epoch, or KDAS when
    config.sampler holds its options; checked before any compute."""
    r = config.recipe
    if config.sampler is None:
        return Shuffle(pool, r.batch_size, config.seed)
    return with_options("KDAS sampler", make_kdas, pool=pool, batch_size=r.batch_size, seed=config.seed,
                        epochs=r.epochs, **config.sampler)
