"""A run's config, typed and parsed once.

A finding's grid writes each run as a plain dict (`base_config` builds the part every run shares); that dict
is the run's identity: its hash is the run id that resume matches on, and it is flattened into the run's
row. `RunConfig.from_dict` parses it once, checking every name and value before any compute, into typed
parts (the student's Recipe, the TeacherConfig, the method's options); `as_dict()` gives back exactly the
dict it was parsed from, so that run ids never change. A finding's own fields (its pair, subset, labels)
are kept as they are in `RunConfig.finding`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

import torch

from kd import objectives, samplers
from kd.augment import check_augment
from kd.errors import KDError
from kd.models import create_model
from kd.recipe import Recipe
from kd.records import run_id
from kd.teachers import teacher_spec


def _plain(value):
    """A typed part as the dict it was parsed from."""
    return value.as_dict() if isinstance(value, (Recipe, TeacherConfig)) else value


@dataclass(frozen=True)
class TeacherConfig:
    """The run's teacher: trained here from labels (model, width, recipe, seed; label smoothing and a pool of
    its own where set), timm's pretrained weights (`pretrained`), an ensemble of `members` teachers seeded
    seed, seed + 1, ... , or a checkpoint file; `epoch` picks an earlier snapshot of its training; `weights`
    pins the SHA-256 of the weights it must have. `keys` are those its dict holds (optional ones only where
    set, so that older configs keep their ids)."""
    model: str | None = None
    width: float = 1.0
    recipe: Recipe | None = None
    seed: int = 0
    label_smoothing: float = 0.0
    pool_fraction: float | None = None
    pretrained: bool = False
    members: int = 1
    epoch: int | None = None
    checkpoint: str | None = None
    weights: str | None = None  # the SHA-256 of the weights the run must distil from (records.weights_sha256)
    keys: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: dict) -> TeacherConfig:
        known = {f.name for f in fields(cls)} - {"keys"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KDError(f"Unknown teacher option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}.")
        recipe = Recipe.from_dict(d["recipe"]) if d.get("recipe") is not None else None
        return cls(**{**d, "recipe": recipe}, keys=tuple(d))

    def as_dict(self) -> dict:
        return {k: _plain(getattr(self, k)) for k in self.keys}

    @property
    def trained_here(self) -> bool:
        return self.checkpoint is None and not self.pretrained

    def single(self, seed: int) -> TeacherConfig:
        """One member of this ensemble (or this teacher) with the given seed, at its fully trained epoch (the
        weights a run pins are those of its own teacher: each run checks them)."""
        keys = tuple(k for k in self.keys if k not in ("members", "epoch", "weights"))
        return replace(self, seed=seed, members=1, epoch=None, weights=None, keys=keys)

    def spec(self, data, run_pool_fraction: float) -> dict:
        """Everything that determines this teacher's weights (kd.teachers.teacher_spec): it trains on the run's
        pool unless it names a pool of its own."""
        pool = self.pool_fraction if self.pool_fraction is not None else run_pool_fraction
        return teacher_spec(self.model, data, pool, self.recipe, self.seed, self.width, self.label_smoothing)


# The keys every run records, beside the finding's own fields; the optional ones appear where set.
CORE = ("experiment", "condition", "seed", "dataset", "data_options", "pool_fraction", "student", "student_width",
        "teacher", "recipe", "loss", "loss_options")
OPTIONAL = ("train_size", "sampler", "weights", "augment", "teacher_init", "logit_cache", "fidelity_curve")


@dataclass(frozen=True)
class RunConfig:
    """One run: data, student, teacher, recipe, the objective (loss, options, KDAS quality weights) and the
    sampler (None: every pool sample each epoch; else KDAS's options), extra augmentation, the student's
    teacher-near initialisation, and the finding's own fields."""
    experiment: str
    condition: str
    seed: int
    dataset: str
    data_options: dict
    pool_fraction: float
    student: str
    student_width: float
    teacher: TeacherConfig | None
    recipe: Recipe
    loss: str
    loss_options: dict
    train_size: int | None = None     # samples an epoch trains on, as planned (cost estimates)
    sampler: dict | None = None
    weights: dict | None = None
    augment: dict | None = None
    teacher_init: float | None = None  # lambda: the student starts at lambda * teacher + (1 - lambda) * init
    logit_cache: bool | None = None    # None: the KD_LOGIT_CACHE default; False: the teacher on every batch
    fidelity_curve: bool | None = None  # fidelity on the training pool at every evaluation, not only at the end
    finding: dict = field(default_factory=dict)
    keys: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """Parse a run's dict (a finding's grid, a row's config); a missing part is a KDError."""
        if isinstance(d, RunConfig):
            return d
        missing = [k for k in CORE if k not in d]
        if missing:
            raise KDError(f"A run config needs {', '.join(missing)}; it has {', '.join(d)}.")
        own = {k: v for k, v in d.items() if k not in CORE + OPTIONAL}
        teacher = TeacherConfig.from_dict(d["teacher"]) if d["teacher"] is not None else None
        typed = {k: d[k] for k in CORE + OPTIONAL if k in d and k not in ("teacher", "recipe")}
        return cls(**typed, teacher=teacher, recipe=Recipe.from_dict(d["recipe"]), finding=own, keys=tuple(d))

    def as_dict(self) -> dict:
        """The dict it was parsed from (the run's identity)."""
        return {k: self.finding[k] if k in self.finding else _plain(getattr(self, k)) for k in self.keys}

    @cached_property
    def run_id(self) -> str:
        return run_id(self.as_dict())

    @cached_property
    def training_id(self) -> str:
        """What the run's numbers depend on: its config but for the finding's name and the condition's label
        (a run's randomness comes from its seed alone), so that findings can share runs."""
        return run_id({k: v for k, v in self.as_dict().items() if k not in ("experiment", "condition")})

    @property
    def teacher_pool_fraction(self) -> float:
        return self.teacher.pool_fraction if self.teacher.pool_fraction is not None else self.pool_fraction

    def members(self) -> list[RunConfig]:
        """The run's teacher as single teachers: each member of an ensemble on its own (its own seed), else
        the run itself. The sweep trains these once each, in parallel, before the runs."""
        if self.teacher.members == 1:
            return [self]
        return [self.with_teacher(self.teacher.single(self.teacher.seed + k)) for k in range(self.teacher.members)]

    def with_teacher(self, teacher: TeacherConfig) -> RunConfig:
        return replace(self, teacher=teacher)

    def check(self) -> RunConfig:
        """Fail on bad names and values before any compute: models, teacher, recipes, loss and its options,
        KDAS sampler and weights, augmentation."""
        create_model(self.student, 10, 1, self.student_width)
        t = self.teacher
        if t is not None and t.checkpoint is not None:
            if not Path(t.checkpoint).is_file():
                raise KDError(f"Teacher checkpoint {t.checkpoint} does not exist.")
        elif t is not None:
            create_model(t.model, 10, 1, t.width)
        if self.teacher_init is not None:
            lam = self.teacher_init
            if t is None or t.members > 1 or not 0 <= lam <= 1:
                raise KDError(f"A student initialised from its teacher (teacher_init = {lam}) needs one teacher "
                              f"of its own architecture and lambda in [0, 1].")
        if self.augment:
            check_augment(self.augment)
            if self.augment.get("mixup") and (self.loss != "kd" or self.loss_options.get("ce_weight", 1.0) != 0):
                raise KDError("MixUp of the distillation data mixes images but not labels: it needs the soft loss "
                              "alone (loss kd with ce_weight 0, Stanton et al.'s alpha = 0).")
        if self.loss:
            objectives.build(self)
        samplers.build(self, torch.arange(10))
        return self


@dataclass(frozen=True)
class TeacherJob:
    """Training (or loading) one teacher into the cache before the runs that distil from it: `config` is one
    of those runs with this single teacher, `snapshots` every earlier epoch those runs distil from."""
    config: RunConfig
    snapshots: tuple = ()


def teacher_jobs(todo: list[RunConfig]) -> list[TeacherJob]:
    """One job per teacher the runs need (each ensemble member apart), asking for every snapshot epoch its
    runs distil from, so that it trains once with all of them."""
    jobs = {}
    for m in (m for c in todo if c.teacher is not None for m in c.members()):
        single = m.with_teacher(m.teacher.single(m.teacher.seed))  # its fully trained epoch
        key = run_id(single.teacher.as_dict())
        first = jobs.setdefault(key, TeacherJob(single))
        if m.teacher.epoch is not None:
            jobs[key] = replace(first, snapshots=tuple(sorted({*first.snapshots, m.teacher.epoch})))
    return list(jobs.values())


def teacher_config(p: dict) -> dict:
    """The teacher part of a run config, from a profile's teacher settings: trained here (label smoothing
    and its own pool only where set, so that older configs keep their ids) or timm's pretrained weights."""
    t = {"model": p["teacher"], "width": p.get("teacher_width", 1.0), "recipe": p["teacher_recipe"].as_dict(),
         "seed": p.get("teacher_seed", 0)}
    if p.get("teacher_label_smoothing"):
        t["label_smoothing"] = p["teacher_label_smoothing"]
    if p.get("teacher_pool_fraction"):  # a teacher trained on more (or other) data than the student sees
        t["pool_fraction"] = p["teacher_pool_fraction"]
    if p.get("teacher_pretrained"):
        t["pretrained"] = True
    if p.get("teacher_members", 1) > 1:  # an ensemble of independently seeded teachers: seed, seed + 1, ...
        t["members"] = p["teacher_members"]
    if p.get("teacher_weights"):  # protocol v3: the published teacher's weights, pinned by their SHA-256
        t["weights"] = p["teacher_weights"]
    return t


def base_config(name: str, p: dict, condition: str, seed: int, **fields) -> dict:
    """What every distillation run of a finding records: data, models, teacher, recipe, loss, seed."""
    return {"experiment": name, "condition": condition, "seed": seed, "dataset": p["dataset"],
            "data_options": dict(p.get("data", {})), "pool_fraction": p.get("pool_fraction", 1.0),
            "student": p["student"], "student_width": p.get("student_width", 1.0), "teacher": teacher_config(p),
            "recipe": p["recipe"].as_dict(), "loss": p.get("loss", "kd"),
            "loss_options": dict(p.get("loss_options", {})), **fields}
