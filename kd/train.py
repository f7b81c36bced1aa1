"""The one training loop. Teacher training, KD, DKD, DIST, ESKD and KDAS differ only in the objective
(kd/objectives.py) and the sampler (kd/samplers.py) given to `fit`; several students can be trained in
lock-step on the same batches, sharing one teacher pass.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path

import torch
from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler
from tqdm import tqdm

from kd import distributed
from kd.device import autocast, eval_batch_size, place
from kd.errors import KDError
from kd.metrics import classification_metrics
from kd.objectives import has_nonfinite
from kd.recipe import Recipe
from kd.records import atomic_save, load_saved


@torch.no_grad()
def predict(model, data, split: str, idx=None, batch_size: int | None = None) -> torch.Tensor:
    """float32 logits of clean views, in eval mode, in large batches (restores the model's mode)."""
    was_training = model.training
    model.eval()
    batch_size = batch_size or eval_batch_size(data.device)
    with autocast(data.device):
        out = torch.cat([model(b.x).float() for b in data.eval_batches(split, idx, batch_size)])
    model.train(was_training)
    return out


class Probe:
    """Clean-view logits of the current student and of the teacher, for samplers that rank samples."""

    def __init__(self, model, teacher, data):
        self.model, self.teacher, self.data = model, teacher, data

    def student(self, idx):
        return predict(self.model, self.data, "train", idx)

    def teacher_clean(self, idx):
        return self.teacher.clean_logits("train", idx)

    def labels(self, idx):
        return self.data.targets("train").cpu()[idx]

    @property
    def num_classes(self) -> int:
        return self.data.num_classes


@contextlib.contextmanager
def _quiet(logger: str):
    """Silence one logger's warnings for a moment, without changing logging for the rest of the process."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


class Student:
    """One model being trained: its objective, optimiser, schedule and running sums."""

    def __init__(self, model, objective, recipe: Recipe, device):
        self.model = distributed.wrap(place(model, device).train())
        self.forward = distributed.forward(self.model)  # DDP under torchrun, the model itself otherwise
        if recipe.compile:
            self.forward = torch.compile(self.forward)
        self.objective = objective
        self.opt = torch.optim.SGD(self.model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                   nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
        warm = dict(warmup_t=recipe.warmup_epochs, warmup_lr_init=recipe.lr * 0.01)
        if recipe.schedule == "cosine":
            with _quiet("timm.scheduler.cosine_lr"):  # it warns that a 1-epoch cosine (smoke runs) is flat
                self.sched = CosineLRScheduler(self.opt, t_initial=recipe.epochs, lr_min=0.0, **warm)
        else:
            # timm decays at step t when t + 1 >= decay_t, and epoch e is step e - 1: decay_t = m + 1 makes
            # epoch m the last at the old rate, as in the papers' code (mdistiller: lr decays when epoch > m)
            self.sched = MultiStepLRScheduler(self.opt, decay_t=[m + 1 for m in recipe.milestones],
                                              decay_rate=recipe.decay, **warm)
        self.history, self.samples = [], 0
        self.best_state, self.best_top1 = None, -1.0  # kept only when fit(keep_best=True)

    def start_epoch(self, epoch: int, device):
        self.sched.step(epoch - 1)
        self.sums, self.correct, self.seen = {}, torch.zeros((), device=device), 0
        self.bad = torch.zeros((), dtype=torch.bool, device=device)

    def step(self, batch, teacher_logits, epoch: int):
        with autocast(batch.x.device):
            logits = self.forward(batch.x)
        terms = self.objective(logits, teacher_logits, batch.y, batch.idx, epoch)
        loss = sum(terms.values())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        n = len(batch.y)
        for k, v in terms.items():  # kept on the device: no host sync inside the epoch
            self.sums[k] = self.sums.get(k, 0.0) + v.detach().float() * n
        self.correct += (logits.detach().argmax(1) == batch.y).sum()
        self.bad |= has_nonfinite(terms)
        self.seen += n


def train_epoch(students: list[Student], data, sampler, teacher, seed: int, epoch: int, desc: str = ""):
    """One epoch of every student on the batches the sampler plans; one teacher pass feeds them all."""
    device = data.device
    for s in students:
        s.start_epoch(epoch, device)
    plan = sampler.plan(epoch, Probe(students[0].model, teacher, data))
    use_teacher = teacher is not None and any(s.objective.uses_teacher(epoch) for s in students)
    if use_teacher:
        teacher.prepare(plan, seed, epoch)
    bar = tqdm(total=sum(len(b) for b in plan), desc=desc, unit="img", leave=False,
               disable=not sys.stderr.isatty())
    for batch in data.train_batches(plan, seed, epoch):
        loaded = len(batch.y)
        t_logits = teacher.train_logits(batch) if use_teacher else None
        batch, t_logits = sampler.select(epoch, batch, t_logits, students[0].model)
        for s in students:
            s.step(batch, t_logits, epoch)
        bar.update(loaded)
    bar.close()


STATE_EVERY_S = 30.0  # a run saves its state after an epoch once this long has passed since the last save


def save_state(path: Path, epoch: int, students: list, sampler, spent: dict):
    """Everything a run needs to go on after `epoch` as if it had never stopped."""
    atomic_save({"epoch": epoch, "sampler": sampler.state_dict(), "spent": spent, "rng": torch.get_rng_state(),
                 "students": [{"model": s.model.state_dict(), "opt": s.opt.state_dict(),
                               "sched": s.sched.state_dict(), "history": s.history, "samples": s.samples,
                               "best": (s.best_state, s.best_top1)} for s in students]}, path)


def load_state(path: Path, students: list, sampler, log) -> tuple[int, dict]:
    """Restore a run saved by save_state: (its last finished epoch, the time it had spent); (0, nothing)
    when there is no usable state (none, damaged, or of other code), so the run starts afresh."""
    if not path.exists():
        return 0, {}
    try:
        state = load_saved(path)
        for s, saved in zip(students, state["students"], strict=True):
            s.model.load_state_dict(saved["model"])
            s.opt.load_state_dict(saved["opt"])
            s.sched.load_state_dict(saved["sched"])
            s.history, s.samples = saved["history"], saved["samples"]
            s.best_state, s.best_top1 = saved.get("best", (None, -1.0))
        sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["rng"])
    except (KDError, RuntimeError, KeyError, ValueError) as exc:
        log(f"{path} cannot be resumed from ({type(exc).__name__}: {str(exc).splitlines()[0]}); starting afresh.")
        return 0, {}
    log(f"resuming {path.stem} after epoch {state['epoch']}")
    return state["epoch"], state["spent"]


def fit(models: list, objectives: list, data, sampler, recipe: Recipe, seed: int, teacher=None,
        device: torch.device = torch.device("cpu"), log=None, name: str = "run", on_epoch=None,
        state: Path | None = None, keep_best: bool = False, fidelity_pool: torch.Tensor | None = None) -> list[dict]:
    """Train each model with its objective, all on the batches that `sampler` plans for each epoch.
    `on_epoch(epoch, student)` is called after each epoch's evaluation (teacher snapshots use it).
    With `state`, the run saves everything it needs there after an epoch (every STATE_EVERY_S seconds at
    most, so that thousands of short epochs cost no more than a few saves) and, if a state is there when it
    starts, goes on from it: a killed run resumes where it stopped, with the same final numbers (on CPU, bit
    for bit). The file is the caller's to remove once the run is recorded.

    Returns, per model, {history, final, best, wall_s, cpu_s, samples, teacher_forwards}: `final` holds the last
    epoch's metrics, `best` those of the epoch with the highest test top-1; with `keep_best`, `best_state`
    holds the weights of that epoch too (a copy on the CPU, taken at each new best). With `fidelity_pool` (indices
    of training samples) each evaluation also measures the student against its teacher on their clean views
    (train_clean_* in the history: Stanton et al.'s fidelity on the training data, as a curve).
    """
    recipe.check()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    students = [Student(m, o, recipe, device) for m, o in zip(models, objectives)]
    sampler = distributed.shard(sampler)  # under torchrun each rank trains on its part of every batch
    needs_teacher = any(o.uses_teacher(e) for o in objectives for e in range(1, recipe.epochs + 1))
    if needs_teacher and teacher is None:
        raise KDError("This objective distils from a teacher, but no teacher was given.")
    teacher_test = teacher.clean_logits("test") if teacher is not None else None
    teacher_train = teacher.clean_logits("train", fidelity_pool) if teacher is not None and fidelity_pool is not None \
        else None
    done, spent = load_state(state, students, sampler, log) if state is not None else (0, {})
    forwards_before = (teacher.forwards if teacher is not None else 0) - spent.get("teacher_forwards", 0)
    # CPU time: what a loaded machine cannot inflate; both clocks go on from a resumed run's
    start = time.perf_counter() - spent.get("wall_s", 0.0)
    cpu_start = time.process_time() - spent.get("cpu_s", 0.0)
    saved = time.perf_counter()
    for epoch in range(done + 1, recipe.epochs + 1):
        t0 = time.perf_counter()
        train_epoch(students, data, sampler, teacher, seed, epoch, f"{name} epoch {epoch}/{recipe.epochs}")
        evaluate = recipe.evaluates(epoch)
        for s in students:
            s.sums, s.correct, s.seen, s.bad = distributed.reduce_epoch(s.sums, s.correct, s.seen, s.bad)
            if s.bad.item():
                raise KDError(f"{name}: the training loss became NaN or infinite in epoch {epoch} "
                              f"(terms {', '.join(s.sums)}). Lower the learning rate or the loss weights; "
                              f"results of earlier runs are kept.")
            s.samples += s.seen
            row = {"epoch": epoch, "lr": s.opt.param_groups[0]["lr"], "samples": s.samples,
                   "epoch_s": time.perf_counter() - t0, "train_top1": 100.0 * s.correct.item() / s.seen,
                   **{f"train_{k}": v.item() / s.seen for k, v in s.sums.items()}, **sampler.facts(),
                   **getattr(s.objective, "facts", dict)()}
            if evaluate:
                logits = predict(s.model, data, "test")
                row.update({f"test_{k}": v for k, v in classification_metrics(
                    logits, data.targets("test"), teacher_test).items()})
                if teacher_train is not None:
                    logits = predict(s.model, data, "train", fidelity_pool)
                    row.update({f"train_clean_{k}": v for k, v in classification_metrics(
                        logits, data.targets("train")[fidelity_pool.to(logits.device)], teacher_train).items()})
                if keep_best and row["test_top1"] > s.best_top1:
                    s.best_top1 = row["test_top1"]
                    s.best_state = {k: v.detach().to("cpu", copy=True) for k, v in s.model.state_dict().items()}
            s.history.append(row)
            if on_epoch is not None:
                on_epoch(epoch, s)
        msg = "; ".join(f"test top-1 {s.history[-1]['test_top1']:.2f}" for s in students
                        if "test_top1" in s.history[-1])
        log(f"{name} epoch {epoch}/{recipe.epochs}: {students[0].seen} samples, "
            f"{time.perf_counter() - t0:.1f}s" + (f", {msg}" if msg else ""))
        if state is not None and time.perf_counter() - saved >= STATE_EVERY_S and epoch < recipe.epochs:
            saved = time.perf_counter()
            save_state(state, epoch, students, sampler, {
                "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start,
                "teacher_forwards": (teacher.forwards if teacher is not None else 0) - forwards_before})
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if teacher is not None:
        teacher.flush()
    results = []
    for s in students:
        evaluated = [r for r in s.history if "test_top1" in r]
        best = max(evaluated, key=lambda r: r["test_top1"])
        results.append({"history": s.history, "final": s.history[-1], "best": best, "wall_s": wall, "cpu_s": cpu,
                        "samples": s.samples, **({"best_state": s.best_state} if keep_best else {}),
                        "teacher_forwards": teacher.forwards - forwards_before if teacher is not None else 0})
    return results

