"""What a run minimises. The training loop calls `objective(student_logits, teacher_logits, targets,
indices, epoch)` and sums the named terms it returns; methods differ here, never in the loop.

Epochs are 1-based, as in the papers ("stop KD at epoch 150 of 240").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from kd import losses
from kd.errors import KDError, with_options


def check_options(objective):
    """An objective's options, checked when it is made (before any compute): every number finite, weights
    and warm-up >= 0, a positive temperature, a known KD direction, label smoothing in [0, 1)."""
    values = {f: getattr(objective, f) for f in objective.__dataclass_fields__ if f != "sample_weights"}
    nonfinite = [f"{k}={v}" for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
    if nonfinite:
        raise KDError(f"Loss options must be finite numbers, got {', '.join(nonfinite)}.")
    if "temperature" in values and not values["temperature"] > 0:
        raise KDError(f"The temperature must be > 0, got {values['temperature']}.")
    for name in ("ce_weight", "kd_weight", "alpha", "beta", "gamma", "warmup"):
        if name in values and values[name] < 0:
            raise KDError(f"The loss weight {name} must be >= 0, got {values[name]}.")
    if values.get("direction", "forward") not in ("forward", "reverse"):
        raise KDError(f"The KD direction must be 'forward' or 'reverse', got {values['direction']!r}.")
    if not 0 <= values.get("label_smoothing", 0.0) < 1:
        raise KDError(f"Label smoothing must be in [0, 1), got {values['label_smoothing']}.")


@dataclass
class CrossEntropy:
    """Training from labels alone: teachers and scratch students."""
    label_smoothing: float = 0.0

    def __post_init__(self):
        check_options(self)

    def uses_teacher(self, epoch: int) -> bool:
        return False

    def facts(self) -> dict:
        return {}

    def __call__(self, s: Tensor, t: Tensor | None, y: Tensor, idx: Tensor, epoch: int) -> dict:
        return {"ce": losses.cross_entropy(s, y, self.label_smoothing)}


@dataclass
class Distillation:
    """ce_weight * CE + kd_weight * mean_i(w_i * term_i): the shape shared by every logit method.

    `stop_epoch` (ESKD, Cho & Hariharan 2019): after that epoch the teacher is no longer run and the loss is
    plain cross-entropy with weight 1, the scratch student's objective (alpha -> 0 in (1 - alpha) CE +
    alpha KD); keeping ce_weight = 0.1 would cut the step size tenfold instead.
    `sample_weights(teacher_logits, targets, epoch)` gives per-sample weights (KDAS quality calibration);
    None weighs every sample 1. `label_smoothing` smooths the hard-label term (a stronger student recipe,
    DIST's B2 setting).
    """
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    stop_epoch: int | None = None
    sample_weights: object = None
    label_smoothing: float = 0.0

    def __post_init__(self):  # every method's options, checked as it is made
        check_options(self)

    def term(self, s: Tensor, t: Tensor, y: Tensor, epoch: int) -> Tensor:
        raise NotImplementedError

    def uses_teacher(self, epoch: int) -> bool:
        return self.stop_epoch is None or epoch <= self.stop_epoch

    def facts(self) -> dict:
        """What the epoch's history records of the objective beside its terms (the KDAS weights it applied)."""
        return self.sample_weights.facts() if hasattr(self.sample_weights, "facts") else {}

    def __call__(self, s: Tensor, t: Tensor | None, y: Tensor, idx: Tensor, epoch: int) -> dict:
        if not self.uses_teacher(epoch):
            return {"ce": losses.cross_entropy(s, y, self.label_smoothing)}
        per_sample = self.term(s.float(), t.float(), y, epoch)
        if self.sample_weights is not None:
            per_sample = per_sample * self.sample_weights(t.float(), y, epoch)
        return {"ce": self.ce_weight * losses.cross_entropy(s, y, self.label_smoothing),
                "kd": self.kd_weight * per_sample.mean()}


@dataclass
class KD(Distillation):
    """Hinton et al. (2015): ce_weight CE + kd_weight T^2 KL(p_t^T || p_s^T); direction="reverse" is the KDAS
    release's. The defaults are mdistiller's CIFAR-100 KD (configs/cifar100/kd.yaml: T 4, CE 0.1, KD 0.9),
    as every objective's defaults here are its official code's CIFAR setting."""
    ce_weight: float = 0.1
    kd_weight: float = 0.9
    temperature: float = 4.0
    direction: str = "forward"

    def term(self, s, t, y, epoch):
        return losses.kd_loss(s, t, self.temperature, "none", self.direction)


@dataclass
class DKD(Distillation):
    """Zhao et al. (2022): alpha*TCKD + beta*NCKD, ramped in by min(epoch / warmup, 1)."""
    alpha: float = 1.0
    beta: float = 8.0
    temperature: float = 4.0
    warmup: int = 20

    def term(self, s, t, y, epoch):
        ramp = min(epoch / self.warmup, 1.0) if self.warmup > 0 else 1.0
        return ramp * losses.dkd_loss(s, t, y, self.alpha, self.beta, self.temperature, "none")


@dataclass
class DIST(Distillation):
    """Huang et al. (2022): T^2 (beta*inter + gamma*intra) Pearson distances (the paper's tau is T)."""
    beta: float = 2.0
    gamma: float = 2.0
    temperature: float = 4.0

    def term(self, s, t, y, epoch):
        return losses.dist_loss(s, t, self.beta, self.gamma, self.temperature, "none")


@dataclass
class BKL(Distillation):
    """VanillaKD's binary-KL ablation."""

    def term(self, s, t, y, epoch):
        return losses.bkl_loss(s, t, "none")


@dataclass
class QualityWeights:
    """KDAS quality-calibrated loss weights (Chae et al., ICCV 2025, Sec. 4.2): per batch, samples whose
    KL_TG lies outside the band between its `low` and `high` quantiles are down-weighted,
    w = clamp(1 - lambda * distance outside the band, gamma, 1) (lambda = 1000: effectively gamma outside).
    `ramp` > 0 grows lambda from 0 to full over that many epochs after `start` (the paper's ramp-up; the
    release defaults to none); before `start` (the release's KDAS warm-up) every weight is 1. `facts()` says
    what the weights were since it was last asked (once per epoch, in the history): their mean, the share of
    samples they cut (w < 1) and the share held at the floor gamma, the premise of KDAS Finding 4."""
    low: float = 0.2
    high: float = 0.8
    lam: float = 1000.0
    gamma: float = 0.5
    ramp: int = 0
    start: int = 0
    direction: str = "paper"

    def __post_init__(self):
        if not 0 <= self.low < self.high <= 1:
            raise KDError(f"KDAS band quantiles need 0 <= low < high <= 1, got {self.low}, {self.high}.")
        if not 0 <= self.gamma <= 1 or self.lam < 0 or self.ramp < 0:
            raise KDError(f"KDAS weights need gamma in [0, 1], lambda >= 0 and ramp >= 0; got gamma="
                          f"{self.gamma}, lambda={self.lam}, ramp={self.ramp}.")
        self._tally = None  # sum of weights, how many < 1, how many at the floor, how many: since facts()

    def __call__(self, t: Tensor, y: Tensor, epoch: int) -> Tensor:
        q = losses.kl_tg(t, y, self.direction)
        if epoch <= self.start:
            return torch.ones_like(q)
        progress = min((epoch - self.start) / self.ramp, 1.0) if self.ramp > 0 else 1.0
        lo, hi = torch.quantile(q, torch.tensor([self.low, self.high], dtype=q.dtype, device=q.device))
        outside = (lo - q).clamp(min=0) + (q - hi).clamp(min=0)
        w = (1 - progress * self.lam * outside).clamp(self.gamma, 1.0)
        tally = torch.stack([w.sum(), (w < 1).sum(), (w <= self.gamma).sum(), torch.tensor(len(w), device=w.device)])
        self._tally = tally.double() + (self._tally if self._tally is not None else 0)  # no host sync per batch
        return w

    def facts(self) -> dict:
        tally, self._tally = self._tally, None
        if tally is None:  # no weighted batch since the last call (before `start`, or after an ESKD stop)
            return {}
        total, below, floor, n = tally.tolist()
        return {"kd_weight_mean": total / n, "kd_weight_below_1": below / n, "kd_weight_at_floor": floor / n}


LOSSES = {"kd": KD, "dkd": DKD, "dist": DIST, "bkl": BKL, "ce": CrossEntropy}


def make_objective(loss: str, epochs: int, **options):
    """An objective by name ("ce": labels only, a scratch student), its options checked before any compute
    is spent (by the class as it is made; the stop epoch against the run's length here)."""
    if loss not in LOSSES:
        raise KDError(f"Unknown loss '{loss}'. Valid losses: {', '.join(LOSSES)}.")
    cls = LOSSES[loss]
    known = cls.__dataclass_fields__
    unknown = [k for k in options if k not in known]
    if unknown:
        raise KDError(f"Loss '{loss}' takes no option {', '.join(unknown)}; its options are "
                      f"{', '.join(k for k in known if k != 'sample_weights')}.")
    stop = options.get("stop_epoch")
    if stop is not None and not 1 <= stop <= epochs:
        raise KDError(f"The KD stop epoch must be between 1 and the last epoch ({epochs}), got {stop}.")
    return cls(**options)


def has_nonfinite(terms: dict) -> Tensor:
    return ~torch.isfinite(torch.stack([v.detach() for v in terms.values()])).all()


def build(config):
    """A run's objective from its config (kd.config.RunConfig): its loss with options, plus KDAS quality
    weights when config.weights holds their options; checked before any compute."""
    objective = make_objective(config.loss, config.recipe.epochs, **config.loss_options)
    if config.weights is not None:
        objective.sample_weights = with_options("KDAS weight", QualityWeights, **config.weights)
    return objective
