"""What a run is trained with: optimiser, schedule and length, as one checked, serialisable value."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from kd.errors import KDError

LATE_PHASE = 0.4  # the last 40% of training: where protocol v3's regime checks read the learning curves


@dataclass
class Recipe:
    """SGD with momentum, weight decay, cosine or step schedule with linear warm-up (epochs are 1-based)."""
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"          # "cosine" or "step"
    milestones: tuple = ()            # step: lr *= decay after each of these epochs
    decay: float = 0.1
    warmup_epochs: int = 0
    eval_every: int = 1               # test-set evaluation period in epochs (the last epoch always)
    compile: bool = False             # torch.compile the students (CUDA)
    late_eval_every: int = 0          # protocol v3: also every this many epochs over the late phase (0: not)

    def check(self) -> "Recipe":
        problems = [f"{k} must be a finite number (got {v})" for k, v in self.as_dict().items()
                    if isinstance(v, float) and not math.isfinite(v)]
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch size must be >= 1 (got {self.batch_size})")
        if not self.lr > 0:
            problems.append(f"learning rate must be > 0 (got {self.lr})")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1) (got {self.momentum})")
        if self.weight_decay < 0:
            problems.append(f"weight decay must be >= 0 (got {self.weight_decay})")
        if self.schedule not in ("cosine", "step"):
            problems.append(f"schedule must be 'cosine' or 'step' (got {self.schedule!r})")
        if any(not 1 <= m <= self.epochs for m in self.milestones):
            problems.append(f"step milestones must lie in [1, {self.epochs}] (got {list(self.milestones)})")
        if not 0 <= self.warmup_epochs < self.epochs:
            problems.append(f"warm-up epochs must be in [0, epochs) (got {self.warmup_epochs})")
        if self.eval_every < 1:
            problems.append(f"eval_every must be >= 1 (got {self.eval_every})")
        if self.late_eval_every < 0:
            problems.append(f"late_eval_every must be >= 0 (got {self.late_eval_every})")
        if problems:
            raise KDError("Bad training recipe: " + "; ".join(problems) + ".")
        return self

    def scaled(self, factor: float) -> "Recipe":
        """The same schedule over `factor` times the epochs: milestones, warm-up and evaluation period move
        with it, so that a shortened (or lengthened) control decays its LR at the same fraction of training."""
        def at(epoch):
            return max(1, round(factor * epoch))
        return replace(self, epochs=at(self.epochs), eval_every=at(self.eval_every),
                       late_eval_every=at(self.late_eval_every) if self.late_eval_every else 0,
                       milestones=tuple(at(m) for m in self.milestones),
                       warmup_epochs=round(factor * self.warmup_epochs)).check()

    def describe(self) -> str:
        """One line for a table: "240 epochs of SGD (lr 0.05, batch 64, wd 0.0005), x0.1 after 150/180/210"."""
        shape = (f"x{self.decay:g} after {'/'.join(map(str, self.milestones))}" if self.schedule == "step"
                 else "cosine to 0")
        return (f"{self.epochs} epochs of SGD (lr {self.lr:g}, batch {self.batch_size}, wd {self.weight_decay:g}), "
                f"{shape}" + (f", {self.warmup_epochs} warm-up" if self.warmup_epochs else ""))

    def evaluates(self, epoch: int) -> bool:
        """Is the test set evaluated after this epoch: every eval_every epochs and the last, and every
        late_eval_every epochs (counted back from the last) over the late phase, the last LATE_PHASE of
        training, where protocol v3 measures how the contrasts still move (kd/regime.py)."""
        late = (self.late_eval_every > 0 and epoch > (1 - LATE_PHASE) * self.epochs
                and (self.epochs - epoch) % self.late_eval_every == 0)
        return epoch % self.eval_every == 0 or epoch == self.epochs or late

    def as_dict(self) -> dict:
        """The recipe as its configs record it; a field added after protocol v2 only where it is set, so that
        older configs keep their run ids."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if not self.late_eval_every:
            del d["late_eval_every"]
        return d

    @classmethod
    def from_dict(cls, fields: dict) -> "Recipe":
        """A checked Recipe back from `as_dict` (as configs and teacher specs record it)."""
        return cls(**{**fields, "milestones": tuple(fields.get("milestones", ()))}).check()


# The papers' recipes. CIFAR: 240 epochs of SGD, lr 0.05, batch 64, weight decay 5e-4, x0.1 after epochs
# 150/180/210 (CRD and mdistiller, used by DKD, DIST and KDAS; the KDAS release uses cosine instead).
CIFAR_RECIPE = Recipe(epochs=240, batch_size=64, lr=0.05, schedule="step", milestones=(150, 180, 210))
# ImageNet: 90 epochs, batch 256, lr 0.1, weight decay 1e-4, x0.1 after 30/60/80 (torchvision's reference).
IMAGENET_RECIPE = Recipe(epochs=90, batch_size=256, lr=0.1, weight_decay=1e-4, schedule="step",
                         milestones=(30, 60, 80))
