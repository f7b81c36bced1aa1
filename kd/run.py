"""One run of a finding: the context its runs share (device, data, teachers), and the common run, distilling
the config's student from its teacher on a pool with the config's objective and sampler, with the facts its
row records beside the loop's metrics (teacher regime, train fidelity, FLOPs)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from kd import objectives, records, samplers
from kd.analysis import last_quarter_gain
from kd.augment import augmented
from kd.checkpoints import save_run
from kd.config import RunConfig, TeacherJob
from kd.data import training_pool
from kd.datasets import load_dataset
from kd.errors import KDError
from kd.device import resolve_device
from kd.logit_cache import Teacher
from kd.metrics import classification_metrics, topk_accuracy
from kd.models import blend_into, count_params, create_model, forward_mflops
from kd.regime import ANNEALED, plateau
from kd.teachers import (checkpoint_name, external_logits_dir, load_checkpoint, load_ensemble, load_teacher,
                         pretrained_teacher, published_folder, teacher_folder)
from kd.train import fit, predict


def _log(msg: str):
    print(msg, file=sys.stderr, flush=True)


class Context:
    """What runs of one invocation share: the device, the dataset, the teachers."""

    def __init__(self, p: dict, device: str = "auto", data_dir=None, data=None, log=None, out=None):
        self.p, self.data_dir = p, data_dir
        self.device = resolve_device(device)
        self._data, self._teachers, self._memo = data, {}, {}
        self.out = out
        self.log = log or _log

    @property
    def data(self):
        if self._data is None:
            self._data = load_dataset(self.p["dataset"], self.data_dir, self.device, **self.p.get("data", {}))
        return self._data

    def pool(self, fraction: float) -> torch.Tensor:
        """A training pool: all samples or a class-balanced fraction, the same one teachers train on."""
        return training_pool(self.data.targets("train"), fraction)

    def memo(self, key, compute):
        """Compute something shared by several runs (a ranking, a teacher's logits) once per invocation."""
        key = records.run_id(key) if isinstance(key, dict) else key
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def teacher_spec(self, config) -> dict:
        """The spec of the run's (single) teacher: what determines its weights (kd.teachers.teacher_spec)."""
        config = RunConfig.from_dict(config)
        return config.teacher.spec(self.data, config.pool_fraction)

    def teacher(self, config, snapshots=()) -> tuple[Teacher, dict]:
        """The run's teacher and its checkpoint info: trained once, then cached on disk and here, or read
        from its checkpoint file; its `epoch` picks an earlier snapshot of its training (early-stopped
        teachers); `snapshots`: the epochs a training must also keep."""
        config = RunConfig.from_dict(config)
        t, cache = config.teacher, config.logit_cache
        spec = ({"checkpoint": t.checkpoint} if t.checkpoint is not None else {"pretrained": t.model}
                if t.pretrained else [self.teacher_spec(c) for c in config.members()]
                if t.members > 1 else self.teacher_spec(config))
        key = records.run_id({"spec": spec, "epoch": t.epoch, "cache": cache})
        if key not in self._teachers:
            self._teachers[key] = self._load(t, spec, cache, snapshots)
        pinned(config, self._teachers[key][1])  # every run's own pin, also on a teacher loaded for another
        return self._teachers[key]

    def _load(self, t, spec, cache, snapshots) -> tuple[Teacher, dict]:
        if t.pretrained:
            model, info = pretrained_teacher(t.model, self.data, self.device)
            return Teacher([model], self.data, None, cache), info
        if t.members > 1:
            return load_ensemble(spec, self.data, self.device, self.log, cache)
        if t.checkpoint is not None:
            model, info = load_checkpoint(t.checkpoint, self.data, self.device, t.model,
                                          t.width if "width" in t.keys else None)
            return Teacher([model], self.data, external_logits_dir(t.checkpoint), cache), {**info, "key": t.checkpoint}
        return load_teacher(spec, self.data, self.device, t.epoch, self.log, cache, snapshots)

    def prepare(self, job: TeacherJob):
        """Train (or load) a teacher into the cache, with every snapshot its runs need."""
        self.teacher(job.config, job.snapshots)


def pinned(config: RunConfig, info: dict):
    """A run whose config pins its teacher's weights (teacher.weights, their SHA-256) refuses any others: the
    same recipe trained on another CPU kind gives other weights, and so other numbers."""
    want = config.teacher.weights
    if want is not None and info["weights_sha256"] != want:
        raise KDError(f"The teacher {info['key']} has weights {info['weights_sha256'][:16]}..., but this run pins "
                      f"{want[:16]}... (its config's teacher.weights, the published teacher its rule was fixed "
                      f"for). Restore the published teacher (`git checkout -- results/teachers`) and empty its "
                      f"cache folder, or run a grid that pins these weights: other weights are another run.")


def check_teachers(configs: list[RunConfig], ctx: Context):
    """Before any training: a published teacher the runs would adopt (their cache folder is empty) is intact,
    and every teacher a grid pins by its weights is here (cached or published) with those weights; otherwise
    one error that names them (a damaged copy would fail every run; training a pinned one here would give
    other weights)."""
    problems, checked = [], set()
    for config in {c.run_id: c for c in configs if c.teacher is not None and c.teacher.checkpoint is None}.values():
        found = []
        for member in config.members():
            spec = ctx.teacher_spec(member)
            name = checkpoint_name(spec, config.teacher.epoch)
            cached, published = teacher_folder(spec) / name, published_folder(spec) / name
            if not cached.is_file() and published.is_file() and published not in checked:
                try:
                    records.check_saved(published)
                except records.DamagedFile as exc:
                    raise KDError(f"The published teacher {published.parent} is damaged ({exc}) Nothing was "
                                  f"trained; restore it with `git checkout -- {published.parent}`, or delete the "
                                  f"folder to train the teacher here.") from None
                checked.add(published)
            if config.teacher.weights:  # the weights it pins: those of the copy the run will load
                files = [f for f in (cached, published) if f.is_file()]
                found.append(records.weights_sha256(records.load_saved(files[0])["state_dict"]) if files else None)
        if config.teacher.weights and (None in found or " ".join(found) != config.teacher.weights):
            problems.append(f"{config.condition} seed {config.seed}: pins {config.teacher.weights[:16]}..., here "
                            + ("not cached or published" if None in found else f"{' '.join(found)[:16]}..."))
    if problems:
        raise KDError(f"{len(problems)} runs pin teacher weights this machine does not have ({'; '.join(problems[:3])}"
                      f"{'; ...' if len(problems) > 3 else ''}). Nothing was trained. A pinned teacher is a published "
                      f"one: restore results/teachers (`git checkout -- results/teachers`) and clear its cache folder "
                      f"($KD_CACHE/teachers/).")


def distill(config, ctx: Context, pool: torch.Tensor, objective=None, sampler=None) -> dict:
    """Distil the config's student (a RunConfig, or the dict of one) from its teacher on `pool` with the
    config's objective and sampler (the common run of most findings)."""
    config = RunConfig.from_dict(config)
    data = augmented(ctx.data, config.augment)  # the teacher trained on ctx.data; this is what it teaches on
    teacher, info = ctx.teacher(config) if config.teacher is not None else (None, {"test_top1": None})
    teacher = teacher.on(data) if teacher is not None else None
    objective = objective or objectives.build(config)
    sampler = sampler or samplers.build(config, pool)
    torch.manual_seed(config.seed)
    student = create_model(config.student, ctx.data.num_classes, ctx.data.in_chans, config.student_width)
    if config.teacher_init is not None:  # lambda * teacher + (1 - lambda) * this random init
        blend_into(student, teacher.models[0], config.teacher_init)
    state = ctx.out.state(config.run_id) if ctx.out is not None else None
    keep = ctx.out is not None and ctx.out.save_students
    result, = fit([student], [objective], data, sampler, config.recipe, config.seed, teacher, ctx.device,
                  log=ctx.log, name=f"{config.condition} seed {config.seed}", state=state, keep_best=keep,
                  fidelity_pool=pool if config.fidelity_curve and teacher is not None else None)
    if keep:
        save_student(ctx.out.student(config.run_id), config.as_dict(), student, result, ctx.data)
    shape = (ctx.data.in_chans, ctx.data.image_size)
    flops = {"student_mflops": forward_mflops(student, *shape)}
    if teacher is not None:
        flops["teacher_mflops"] = sum(forward_mflops(m, *shape) for m in teacher.models)
    # the weights it was distilled from (ensembles: each member's), and where they live (cache folder, file)
    named = {"teacher_sha256": info["weights_sha256"], "teacher_key": info["key"]} if teacher is not None else {}
    result["extra"] = {"teacher_test_top1": info["test_top1"], **named, "train_size": len(pool), **flops,
                       "student_last_quarter_gain": last_quarter_gain(result["history"]),
                       **(regime_of_teacher(config, ctx) if teacher is not None else {}),
                       **(train_fidelity(student, teacher, data, pool) if teacher is not None else {}),
                       **result.get("extra", {})}
    return result


def save_student(folder: Path, config: dict, model, result: dict, data):
    """A run's trained model, final and best, as safetensors files timm loads, beside its config
    (kd.checkpoints.save_run); the best weights leave the result (they are not a row's)."""
    meta = {"arch": config.get("student") or config["model"],  # a distilled student, or a model from labels
            "width": config.get("student_width", config.get("width", 1.0)), "num_classes": data.num_classes,
            "in_chans": data.in_chans, "run_id": records.run_id(config)}
    final, best = result["final"], result["best"]
    save_run(folder, config, model, result.pop("best_state"),
             {**meta, "epoch": final["epoch"], "test_top1": final["test_top1"]},
             {"epoch": best["epoch"], "test_top1": best["test_top1"]})


def train_fidelity(student, teacher: Teacher, data, pool: torch.Tensor) -> dict:
    """The trained student against its teacher on the clean views of its own training pool (Stanton et al.:
    fidelity on the training data): top-1, ECE, agreement and KL(p_t || p_s) as final_train_clean_*."""
    logits, teacher_logits = predict(student, data, "train", pool), teacher.clean_logits("train", pool)
    targets = data.targets("train")[pool.to(logits.device)]
    return {f"final_train_clean_{k}": v for k, v in classification_metrics(logits, targets, teacher_logits).items()}


def distill_on_pool(config, ctx: Context) -> dict:
    """The run of findings that distil on a whole training pool (the config's pool_fraction): `distill`,
    with the teacher's parameter count in the row."""
    config = RunConfig.from_dict(config)
    result = distill(config, ctx, ctx.pool(config.pool_fraction))
    t = config.teacher
    if t is not None and t.model is not None:
        result["extra"]["teacher_params"] = count_params(create_model(t.model, ctx.data.num_classes,
                                                                      ctx.data.in_chans, t.width))
    return result


def regime_of_teacher(config: RunConfig, ctx: Context) -> dict:
    """How converged the run's teacher is: its clean-view top-1 on the pool it trained on, how much its test
    top-1 still rose over its last quarter of epochs (v2), and its plateau (v3: the slope of its test top-1
    once its LR annealed, kd.regime.plateau), from its training history."""
    def compute():
        teacher, info = ctx.teacher(config)
        facts = {"teacher_train_top1": math.nan, "teacher_last_quarter_gain": math.nan}
        history = Path(info["path"]).parent / "history.pt" if info.get("path") else None  # None: pretrained
        if config.teacher.checkpoint is None and history is not None and history.is_file():  # trained here
            curve = records.load_saved(history)
            facts["teacher_last_quarter_gain"] = last_quarter_gain(curve)
            slope = plateau(curve, lr_below=ANNEALED)
            facts.update({"teacher_plateau": slope.mean, "teacher_plateau_low": slope.low,
                          "teacher_plateau_high": slope.high, "teacher_plateau_n": slope.n,
                          "teacher_plateau_span": slope.span})
            pool = training_pool(ctx.data.targets("train"), config.teacher_pool_fraction)
            logits = teacher.clean_logits("train", pool)
            facts["teacher_train_top1"] = topk_accuracy(logits, ctx.data.targets("train")[pool.to(logits.device)])
        return facts
    return ctx.memo({"teacher regime": config.teacher.as_dict(), "pool": config.pool_fraction}, compute)
