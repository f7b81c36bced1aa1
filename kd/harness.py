"""The experiment harness: every finding is one module in experiments/ that defines

    NAME, TITLE           the script's name (results/<NAME>/...) and the finding in a line
    CLAIM, PAPER          what the paper says, in a sentence or two, and its published result
    PROFILES              smoke / cpu / paper: the settings of each scale
    grid(p, seeds)        the runs: one config dict per run (with "condition" and "seed")
    run(config, ctx)      train one run, return the fit result (and extra row fields under "extra")
    SAME_RUNS (optional)  findings whose grids hold some of the same trainings (the same config but for the
                          name and condition): their finished runs are reused, not trained again
    report(rows, p, out)  summary, figure and comparison table with the verdict; returns the verdict

and ends with `harness.main(sys.modules[__name__])`; a finding with a v2 rule also defines RULE (the rule's
parameters, hashed into every row with the rule's text and the grid as `rule_id`). The harness gives it a
command line (--profile, --seeds, --jobs, --data-dir, --device, --dry-run, --plot-only), resume (a run is
identified by the hash of its full config; completed runs are skipped, failed ones redone), runs in child
processes of one thread each, several at once, and result files;
`report` builds on kd/analysis.py (summaries, comparisons, verdict lines, tables, plot style). Results go
to results/<NAME>/<profile>/, the figure to figures/<NAME>_<profile>.png.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import threading
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch

from kd import distributed, records
from kd.analysis import Outputs, last_quarter_gain, plot_style, rule_of
from kd.data import DATASETS, augmented, check_augment, load_dataset, training_pool
from kd.device import autocast, place, resolve_device
from kd.errors import KDError
from kd.isolation import ChildRunner, RunFailed, failure_message
from kd.metrics import classification_metrics, topk_accuracy
from kd.models import blend_into, count_params, create_model, forward_mflops
from kd.objectives import QualityWeights, make_objective
from kd.recipe import Recipe
from kd.samplers import Shuffle, make_kdas
from kd.teachers import (Teacher, external_logits_dir, load_checkpoint, load_ensemble, load_teacher,
                         pretrained_teacher, publish_teacher, published_folder, teacher_folder, teacher_spec)
from kd.train import fit, predict

matplotlib.use("Agg")
REPO = records.REPO
PROFILES = ("smoke", "cpu", "paper")


# ----------------------------------------------------------------------------------------- configs
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
    return t


def member_configs(config: dict) -> list[dict]:
    """The run's teacher as single teachers: each member of an ensemble on its own (its own seed), else the
    teacher itself. The sweep trains these once each, in parallel, before the runs."""
    t = config["teacher"]
    if t.get("members", 1) == 1:
        return [config]
    single = {k: v for k, v in t.items() if k != "members"}
    return [{**config, "teacher": {**single, "seed": t["seed"] + k}} for k in range(t["members"])]


def base_config(name: str, p: dict, condition: str, seed: int, **fields) -> dict:
    """What every distillation run of a finding records: data, models, teacher, recipe, loss, seed."""
    return {"experiment": name, "condition": condition, "seed": seed, "dataset": p["dataset"],
            "data_options": dict(p.get("data", {})), "pool_fraction": p.get("pool_fraction", 1.0),
            "student": p["student"], "student_width": p.get("student_width", 1.0), "teacher": teacher_config(p),
            "recipe": p["recipe"].as_dict(), "loss": p.get("loss", "kd"),
            "loss_options": dict(p.get("loss_options", {})), **fields}


def check_config(config: dict):
    """Fail on bad names and values before any compute (models, loss and options, recipe)."""
    create_model(config["student"], 10, 1, config.get("student_width", 1.0))
    t = config.get("teacher")
    if t is not None and "checkpoint" in t:
        if not Path(t["checkpoint"]).is_file():
            raise KDError(f"Teacher checkpoint {t['checkpoint']} does not exist.")
    elif t is not None:
        create_model(t["model"], 10, 1, t.get("width", 1.0))
        Recipe.from_dict(t["recipe"])
    if config.get("teacher_init") is not None:
        lam = config["teacher_init"]
        if t is None or t.get("members", 1) > 1 or not 0 <= lam <= 1:
            raise KDError(f"A student initialised from its teacher (teacher_init = {lam}) needs one teacher of "
                          f"its own architecture and lambda in [0, 1].")
    if config.get("augment"):
        check_augment(config["augment"])
        if config["augment"].get("mixup") and (config.get("loss") != "kd" or config["loss_options"].get(
                "ce_weight", 1.0) != 0):
            raise KDError("MixUp of the distillation data mixes images but not labels: it needs the soft loss "
                          "alone (loss kd with ce_weight 0, Stanton et al.'s alpha = 0).")
    if config.get("loss"):
        objective_of(config)
    sampler_of(config, torch.arange(10))


# ----------------------------------------------------------------------------------------- context
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

    def teacher_spec(self, config: dict) -> dict:
        """The teacher's spec; it trains on the run's pool unless config["teacher"] names its own fraction."""
        t = config["teacher"]
        return teacher_spec(t["model"], self.data, teacher_pool_fraction(config), Recipe.from_dict(t["recipe"]),
                            t["seed"], t["width"], t.get("label_smoothing", 0.0))

    def teacher(self, config: dict) -> tuple[Teacher, dict]:
        """The run's teacher and its checkpoint info: trained once, then cached on disk and here, or read
        from config["teacher"]["checkpoint"]; config["teacher"]["epoch"] picks an earlier snapshot of its
        training (early-stopped teachers)."""
        t = config["teacher"]
        cache = config.get("logit_cache")  # None: the KD_LOGIT_CACHE default; False: teacher on every batch
        spec = ({"checkpoint": t["checkpoint"]} if "checkpoint" in t else {"pretrained": t["model"]}
                if t.get("pretrained") else [self.teacher_spec(c) for c in member_configs(config)]
                if t.get("members", 1) > 1 else self.teacher_spec(config))
        key = records.run_id({"spec": spec, "epoch": t.get("epoch"), "cache": cache})
        if key not in self._teachers:
            if t.get("pretrained"):
                model, info = pretrained_teacher(t["model"], self.data, self.device)
                self._teachers[key] = Teacher([model], self.data, None, cache), info
            elif t.get("members", 1) > 1:
                self._teachers[key] = load_ensemble(spec, self.data, self.device, self.log, cache)
            elif "checkpoint" in t:
                model, info = load_checkpoint(t["checkpoint"], self.data, self.device, t.get("model"))
                self._teachers[key] = Teacher([model], self.data, external_logits_dir(t["checkpoint"]), cache), info
            else:
                self._teachers[key] = load_teacher(spec, self.data, self.device, t.get("epoch"), self.log, cache,
                                                   config.get("teacher_snapshots", ()))
        return self._teachers[key]


def _with_options(what: str, build, **options):
    try:
        return build(**options)
    except TypeError as exc:  # an unknown option name
        raise KDError(f"Bad {what} options ({', '.join(sorted(options))}): {exc}.") from None


def objective_of(config: dict):
    """The run's objective: its loss with options, plus KDAS quality weights when config["weights"]."""
    objective = make_objective(config["loss"], Recipe.from_dict(config["recipe"]).epochs, **config["loss_options"])
    if config.get("weights") is not None:
        objective.sample_weights = _with_options("KDAS weight", QualityWeights, **config["weights"])
    return objective


def sampler_of(config: dict, pool: torch.Tensor):
    """The run's sampler: every pool sample each epoch, or KDAS when config["sampler"] holds its options."""
    r = Recipe.from_dict(config["recipe"])
    if config.get("sampler") is None:
        return Shuffle(pool, r.batch_size, config["seed"])
    return _with_options("KDAS sampler", make_kdas, pool=pool, batch_size=r.batch_size, seed=config["seed"],
                         epochs=r.epochs, **config["sampler"])


def distill(config: dict, ctx: Context, pool: torch.Tensor, objective=None, sampler=None) -> dict:
    """Distil the config's student from its teacher on `pool` with the config's objective and sampler
    (the common run of most findings)."""
    r = Recipe.from_dict(config["recipe"])
    data = augmented(ctx.data, config.get("augment"))  # the teacher trained on ctx.data; this is what it teaches on
    teacher, info = ctx.teacher(config) if config.get("teacher") is not None else (None, {"test_top1": None})
    teacher = teacher.on(data) if teacher is not None else None
    objective = objective or objective_of(config)
    sampler = sampler or sampler_of(config, pool)
    torch.manual_seed(config["seed"])
    student = create_model(config["student"], ctx.data.num_classes, ctx.data.in_chans, config["student_width"])
    if config.get("teacher_init") is not None:  # lambda * teacher + (1 - lambda) * this random init
        blend_into(student, teacher.models[0], config["teacher_init"])
    state = ctx.out.state(records.run_id(config)) if ctx.out is not None else None
    result, = fit([student], [objective], data, sampler, r, config["seed"], teacher, ctx.device,
                  log=ctx.log, name=f"{config['condition']} seed {config['seed']}", state=state)
    shape = (ctx.data.in_chans, ctx.data.image_size)
    flops = {"student_mflops": forward_mflops(student, *shape)}
    if teacher is not None:
        flops["teacher_mflops"] = sum(forward_mflops(m, *shape) for m in teacher.models)
    result["extra"] = {"teacher_test_top1": info["test_top1"], "train_size": len(pool), **flops,
                       "student_last_quarter_gain": last_quarter_gain(result["history"]),
                       **(regime_of_teacher(config, ctx) if teacher is not None else {}),
                       **(train_fidelity(student, teacher, data, pool) if teacher is not None else {}),
                       **result.get("extra", {})}
    return result


def train_fidelity(student, teacher: Teacher, data, pool: torch.Tensor) -> dict:
    """The trained student against its teacher on the clean views of its own training pool (Stanton et al.:
    fidelity on the training data): top-1, ECE, agreement and KL(p_t || p_s) as final_train_clean_*."""
    logits, teacher_logits = predict(student, data, "train", pool), teacher.clean_logits("train", pool)
    targets = data.targets("train")[pool.to(logits.device)]
    return {f"final_train_clean_{k}": v for k, v in classification_metrics(logits, targets, teacher_logits).items()}


def distill_on_pool(config: dict, ctx: Context) -> dict:
    """The run of findings that distil on a whole training pool (config["pool_fraction"]): `distill`, with
    the teacher's parameter count in the row."""
    result = distill(config, ctx, ctx.pool(config["pool_fraction"]))
    if config["teacher"] is not None and "model" in config["teacher"]:
        t = config["teacher"]
        result["extra"]["teacher_params"] = count_params(create_model(t["model"], ctx.data.num_classes,
                                                                      ctx.data.in_chans, t["width"]))
    return result


def regime_of_teacher(config: dict, ctx: Context) -> dict:
    """How converged the run's teacher is: its clean-view top-1 on the pool it trained on, and how much its
    test top-1 still rose over its last quarter of epochs (from its training history)."""
    def compute():
        teacher, info = ctx.teacher(config)
        facts = {"teacher_train_top1": math.nan, "teacher_last_quarter_gain": math.nan}
        history = Path(info["path"]).parent / "history.pt" if info.get("path") else None  # None: pretrained
        if "checkpoint" not in config["teacher"] and history is not None and history.is_file():  # trained here
            facts["teacher_last_quarter_gain"] = last_quarter_gain(records.load_saved(history))
            pool = training_pool(ctx.data.targets("train"), teacher_pool_fraction(config))
            logits = teacher.clean_logits("train", pool)
            facts["teacher_train_top1"] = topk_accuracy(logits, ctx.data.targets("train")[pool.to(logits.device)])
        return facts
    return ctx.memo({"teacher regime": config["teacher"], "pool": config["pool_fraction"]}, compute)


def teacher_pool_fraction(config: dict) -> float:
    return config["teacher"].get("pool_fraction", config["pool_fraction"])


# ----------------------------------------------------------------------------------------- outputs
def completed(out: Outputs) -> pd.DataFrame:
    rows = records.read_rows(out.runs, required=("run_id", "status"))
    return rows[rows["status"] == "done"] if "status" in rows else rows


# ----------------------------------------------------------------------------------------- costs
# Per-sample costs measured on GPUs by `--dry-run --device cuda` (one row per model, width, pass and input
# shape), so that a dry run anywhere can price a paper profile in GPU-hours of that GPU.
GPU_COSTS = REPO / "results" / "benchmarks" / "per_sample_costs.csv"


def architecture(name: str) -> str:
    """timm's model name without its weights tag ("resnet34.tv_in1k" -> "resnet34"): what a step costs."""
    return name.split(".")[0]


def estimate_seconds(config: dict, device: torch.device, cache: dict) -> float:
    """Rough cost of a run on this device: its training samples times a student train step, plus a teacher
    forward per distinct (sample, view) pair it is expected to meet (the logit cache serves repeats; on
    every step where views are not keyed), timed here on random inputs of the dataset's shape (on CUDA at
    the recipe's batch, in bf16 as the runs train). A cost missing from a read-only `cache` (one loaded
    from GPU_COSTS) raises KeyError."""
    info = DATASETS[config["dataset"]]  # no data needs to be present for a dry run
    chans, size, classes = info.in_chans, info.image_size, info.num_classes
    t = config.get("teacher")
    # on a CPU the per-sample cost hardly changes beyond these batches; ImageNet-sized ones keep it to seconds
    batch = min(config["recipe"]["batch_size"], 256 if device.type == "cuda" else 128 if size <= 64 else 8)

    def per_sample(name, width, step):
        key = (config["dataset"], architecture(name), float(width), bool(step), batch)
        if key not in cache:
            if getattr(cache, "read_only", False):
                raise KeyError(key)
            x = torch.randn(batch, chans, size, size, device=device).contiguous(memory_format=torch.channels_last)
            model = place(create_model(name, classes, chans, width), device).train(step)
            times = []
            for _ in range(3):  # the first pass pays for kernel set-up (oneDNN, cuDNN): keep the fastest
                start = time.perf_counter()
                with autocast(device), torch.set_grad_enabled(step):
                    out = model(x)
                if step:
                    out.float().sum().backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            cache[key] = min(times) / batch
        return cache[key]

    n, epochs = config["train_size"], config["recipe"]["epochs"]
    sec = per_sample(config["student"], config["student_width"], True) * n * epochs
    if t is not None and "model" in t:
        views = info.views
        distinct = n * epochs if views is None else n * views * (1 - (1 - 1 / views) ** epochs)
        sec += per_sample(t["model"], t["width"], False) * distinct
    return sec


class MeasuredCosts(dict):
    """Per-sample costs of one GPU (the latest in GPU_COSTS), read-only: the median of each cost's
    measurements there, since one timing of a small, launch-bound CIFAR model is off by up to 40% (two
    dry runs on one H200, 2026-11-27), where an ImageNet one repeats within 1%."""
    read_only = True

    def __init__(self, path: Path | None = None):
        super().__init__()
        path = Path(path or GPU_COSTS)
        self.device, self.source = None, path.relative_to(REPO) if path.is_relative_to(REPO) else path
        fields = ("device", "dataset", "model", "width", "train_step", "batch", "seconds_per_sample")
        rows = records.read_rows(path, required=fields) if path.is_file() else pd.DataFrame()
        if not rows.empty:
            cost = pd.to_numeric(rows["seconds_per_sample"], errors="coerce")
            bad = rows.index[~(cost > 0)]  # text would end in a bare TypeError, a zero would price a grid at 0
            if len(bad):
                raise KDError(f"The GPU cost table {path} is damaged: seconds_per_sample is not a positive number "
                              f"on line(s) {', '.join(str(i + 2) for i in bad[:5])}. Nothing was priced. Restore "
                              f"it (`git checkout -- {self.source}`) or re-measure the costs on a GPU with "
                              "`--dry-run --device cuda`.")
            self.device = rows["device"].iloc[-1]
            rows = rows.assign(seconds_per_sample=cost, model=rows["model"].map(architecture))
            rows = rows[rows["device"] == self.device]
            for (dataset, model, width, step, batch), sec in rows.groupby(
                    ["dataset", "model", "width", "train_step", "batch"]).seconds_per_sample.median().items():
                self[dataset, model, float(width), bool(step), int(batch)] = sec

    @classmethod
    def timed_here(cls, cache: dict, device: torch.device) -> "MeasuredCosts":
        """The costs just timed on this GPU, as a read-only table."""
        measured = cls()
        measured.clear()
        measured.update(cache)
        measured.device, measured.source = records.device_name(device), "timed here, added to " + str(measured.source)
        return measured

    @staticmethod
    def save(cache: dict, device: torch.device):
        """Append the costs measured on this GPU (cache) to GPU_COSTS, one row each."""
        name, commit = records.device_name(device), records.git_commit()
        for (dataset, model, width, step, batch), sec in cache.items():
            records.append_row(GPU_COSTS, {"device": name, "dataset": dataset, "model": model, "width": width,
                                           "train_step": step, "batch": batch, "seconds_per_sample": sec,
                                           "git_commit": commit, "command": records.command_line(),
                                           "date": time.strftime("%Y-%m-%d")})


def gpu_hours(todo: list[dict], teachers: list[dict], measured: MeasuredCosts) -> str:
    """The runs' and teachers' GPU-hours from measured per-sample costs, or why they cannot be given."""
    if measured.device is None:
        return f"no GPU costs measured yet ({measured.source}: run `--dry-run --device cuda` on a GPU)"
    try:
        gpu = torch.device("cuda")  # a device object only, for the batch sizes the costs were measured at
        run_h = sum(estimate_seconds(c, gpu, measured) for c in todo) / 3600
        teacher_h = sum(estimate_seconds(c, gpu, measured) for c in teachers) / 3600
    except KeyError as missing:
        return f"no measured {measured.device} cost for {missing.args[0]}"
    return (f"{run_h + teacher_h:.1f} GPU-hours on one {measured.device} ({run_h:.1f} runs + {teacher_h:.1f} "
            f"teachers; per-sample costs measured there: {measured.source})")


def costs(args, p: dict, todo: list[dict], cache: dict) -> tuple[dict, dict]:
    """Estimated seconds of each run to do (by run id) and of each teacher they need that is not cached yet
    (by teacher id, so that findings sharing a teacher count it once), timed here with one thread."""
    device = resolve_device(args.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {records.run_id(c): estimate_seconds(c, device, cache) for c in todo}
        teacher_sec = {k: estimate_seconds(c, device, cache) for k, c in teachers_to_train(todo, p, args).items()}
    finally:
        torch.set_num_threads(threads)
    return runs, teacher_sec


def teachers_to_train(todo: list[dict], p: dict, args) -> dict:
    """The teachers the runs need that would be trained here (not pretrained, not cached), as runs by id."""
    return {records.run_id(m["teacher"]): teacher_run(m) for m in teacher_preparations(todo)
            if "model" in m["teacher"] and not m["teacher"].get("pretrained")
            and not teacher_cached(m, p, args.data_dir)}


def teacher_run(config: dict) -> dict:
    """A teacher's training as a run, for cost estimates: its model from labels on its pool and recipe."""
    t = config["teacher"]
    return {"dataset": config["dataset"], "student": t["model"], "student_width": t["width"], "teacher": None,
            "recipe": t["recipe"], "train_size": round(DATASETS[config["dataset"]].num_train
                                                       * teacher_pool_fraction(config))}


def teacher_cached(config: dict, p: dict, data_dir) -> bool:
    try:
        spec = Context(p, "cpu", data_dir).teacher_spec(config)
    except KDError:  # no data here: its identity, and so the teacher's cache key, is unknown
        return False
    return any((folder / "final.pt").is_file() for folder in (teacher_folder(spec), published_folder(spec)))


def publish_teachers(module, args, p: dict, configs: list[dict]) -> int:
    """Copy the teachers the grid distils from (fully trained, and the snapshots it uses) from the cache
    into the published teachers (results/teachers), with a row each in its teachers.csv; trains nothing."""
    ctx = Context(p, "cpu", args.data_dir)
    trained = [c for c in teacher_preparations(configs)
               if not (c["teacher"].get("checkpoint") or c["teacher"].get("pretrained"))]
    missing = []
    for c in trained:  # those trained so far: a long sweep's teachers can be published before its runs end
        name = f"{c['teacher']['model']} x{c['teacher']['width']:g} seed {c['teacher']['seed']}"
        try:
            print(f"published teacher {name}: {publish_teacher(ctx.teacher_spec(c), c['teacher_snapshots'])}")
        except KDError as exc:
            missing.append(f"{name} ({exc})")
    if not trained:
        print(f"{module.NAME} --profile {args.profile} trains no teacher of its own: nothing to publish")
    if missing:
        print(f"{len(missing)} teachers not published, not (fully) trained here yet:\n  " + "\n  ".join(missing),
              file=sys.stderr)
    return 1 if missing else 0


def cost_line(run_sec: float, teacher_sec: float, jobs: int, device) -> str:
    where = "on this GPU" if device.type == "cuda" else "with one thread"
    return (f"estimated {run_sec / 60:.0f} min of runs ({run_sec / 60 / jobs:.0f} min with --jobs {jobs}) and "
            f"{teacher_sec / 60:.0f} min of teacher training on {records.device_name(device)}, timed on random "
            f"inputs {where} (evaluation not included)")


def dry_run(module, args, p: dict, configs: list[dict], todo: list[dict], reused: dict | None = None) -> int:
    """List the runs, which are done (or reused from another finding), and the estimated cost of the rest and
    of the teachers they still need (timed here, with one thread on a CPU as the runs train), and their
    GPU-hours from measured costs; train nothing. On CUDA the per-sample costs timed here are added to
    GPU_COSTS."""
    cache, reused = {}, reused or {}
    runs, teachers = costs(args, p, todo, cache)
    print(f"{module.NAME} --profile {args.profile}: {len(configs)} runs, "
          f"{len(configs) - len(todo) - len(reused)} done, {len(todo)} to run"
          + (f", {len(reused)} reused from another finding" if reused else ""))
    for c in configs:
        rid = records.run_id(c)
        sec = runs.get(rid)
        state = "todo" if sec is not None else "reuse" if rid in reused else "done"
        source = f"  (from {reused[rid][1]})" if rid in reused else ""
        print(f"  {state:5s} {rid}  {c['condition']:32s} seed {c['seed']}  {c['train_size']:>7d} samples x "
              f"{c['recipe']['epochs']} epochs  ~{(sec or 0.0) / 60:.1f} min{source}")
    device = resolve_device(args.device)
    print(cost_line(sum(runs.values()), sum(teachers.values()), max(1, min(args.jobs, len(todo))), device))
    measured = MeasuredCosts()
    if device.type == "cuda":
        MeasuredCosts.save(cache, device)
        measured = MeasuredCosts.timed_here(cache, device)
    print(f"{gpu_hours(todo, list(teachers_to_train(todo, p, args).values()), measured)}; "
          f"a Slurm array of {len(todo)} runs after {len(teachers)} teacher jobs")
    return 0


# ----------------------------------------------------------------------------------------- main
def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(module, argv=None):
    ap = argparse.ArgumentParser(prog=f"experiments/{module.NAME}.sh",
                                 description=f"{module.TITLE}. Claim: {module.CLAIM}")
    ap.add_argument("--profile", default="cpu", choices=PROFILES,
                    help="smoke: seconds, tiny data; cpu (default): Fashion-MNIST on a CPU in minutes; "
                         "paper: the paper's setting, for GPUs")
    ap.add_argument("--seeds", type=int, help="number of seeds (default: the profile's)")
    ap.add_argument("--data-dir", help="dataset folder (default: $KD_DATA, then the Debian package path)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:N]")
    ap.add_argument("--jobs", type=int, default=available_cores(),
                    help="runs trained at once, one process and one thread each, so that results do not "
                         "depend on it (default: the cores available, here %(default)s)")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--dry-run", action="store_true", help="list the runs and their estimated cost; train nothing")
    only.add_argument("--plot-only", action="store_true",
                    help="regenerate the figure and table from existing CSVs; train nothing")
    only.add_argument("--publish-teachers", action="store_true",
                      help="copy the teachers this grid distils from out of the cache into results/teachers "
                           "(commit them), so that a fresh clone distils from the same weights; train nothing")
    ap.add_argument("--keep-state", action="store_true",
                    help="keep each finished run's resume state (results/<name>/<profile>/resume/; by default it "
                         "is removed once the run's row is written)")
    slurm = ap.add_argument_group("Slurm (submitit): one job per run, as job arrays")
    slurm.add_argument("--launcher", default="processes", choices=("processes", "slurm", "submitit-local"),
                       help="processes (default): --jobs child processes here; slurm: submit the remaining runs as "
                            "a Slurm job array; submitit-local: the same arrays through submitit's local executor")
    slurm.add_argument("--partition", help="Slurm partition")
    slurm.add_argument("--gpus-per-run", type=int, default=1, help="GPUs per job (default %(default)s)")
    slurm.add_argument("--time", type=int, default=24 * 60,
                       help="minutes per job before Slurm stops it; submitit requeues it and the run resumes "
                            "from its saved state (default %(default)s)")
    slurm.add_argument("--array-parallelism", type=int, default=16, help="jobs of an array running at once")
    ap.add_argument("--sync-bn", action="store_true",
                    help="under torchrun on GPUs: batch norm over the whole batch (SyncBatchNorm), not per rank")
    ap.add_argument("--results-root", type=Path, default=REPO / "results", help=argparse.SUPPRESS)
    ap.add_argument("--figures-root", type=Path, default=REPO / "figures", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(module, argv=None, isolate: bool = True) -> int:
    """Run a finding's command line. `isolate` (the default) trains each run in a child process, so that a
    run killed by a signal fails alone; isolate=False runs them in this process (tests that patch `run`)."""
    args = parse_args(module, argv)
    try:
        return _main(module, args, isolate)
    except KDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def plan(module, args) -> tuple[dict, Outputs, list[dict], list[dict], pd.DataFrame]:
    """A finding's profile, outputs, checked grid, the runs still to do and the completed rows."""
    p = dict(module.PROFILES[args.profile])
    out = Outputs(args.results_root / module.NAME / args.profile,
                  args.figures_root / f"{module.NAME}_{args.profile}.png")
    configs = planned_runs(module, p, args.seeds)
    out.rule_id = rule_id(module, configs)
    done = completed(out)
    done_ids = set(done["run_id"]) if "run_id" in done else set()
    return p, out, configs, [c for c in configs if records.run_id(c) not in done_ids], done


def training_id(config: dict) -> str:
    """What a run's numbers depend on: its config but for the finding's name and the condition's label (a
    run's randomness comes from its seed alone)."""
    return records.run_id({k: v for k, v in config.items() if k not in ("experiment", "condition")})


def sharing(module, profile: str) -> list:
    """The findings whose runs this one may reuse: listed in its SAME_RUNS, with the same `run`."""
    return [o for o in getattr(module, "SAME_RUNS", ()) if o.run is module.run and profile in o.PROFILES]


def reusable_runs(module, args, todo: list[dict]) -> dict[str, tuple[dict, str, dict, Path]]:
    """The runs still to do that a finding in `module.SAME_RUNS` has already trained (the same training_id,
    the same `run`), by run id: (the config here, that finding's name, its row, its history). A results file
    of theirs that cannot be read is left alone, and its runs trained here."""
    found = {}
    for other in sharing(module, args.profile):
        theirs = Outputs(args.results_root / other.NAME / args.profile, None)
        try:
            done = completed(theirs)
        except KDError as exc:
            _log(f"not reusing {other.NAME}'s runs: {exc}")
            continue
        if done.empty:
            continue
        rows = done.set_index("run_id")
        planned = planned_runs(other, dict(other.PROFILES[args.profile]), args.seeds, check=False)
        by_training = {training_id(c): records.run_id(c) for c in planned if records.run_id(c) in rows.index}
        for c in todo:
            source = by_training.get(training_id(c))
            if source is not None and theirs.history(source).is_file():
                found.setdefault(records.run_id(c), (c, other.NAME, {**rows.loc[source].dropna(), "run_id": source},
                                                     theirs.history(source)))
    return found


def write_reused(out: Outputs, config: dict, profile: str, source: str, row: dict, history: Path):
    """Another finding's run as this grid's row: its numbers and what produced them (command, commit, device,
    wall time) kept, its names and rule this grid's, and `reused_from` saying whose run it is."""
    rid = records.run_id(config)
    _log(f"reusing {source}'s run {row['run_id']} as {config['condition']} seed {config['seed']} ({rid})")
    records.copy_file(history, out.history(rid))
    records.append_row(out.runs, {**row, "run_id": rid, "experiment": config["experiment"],
                                  "condition": config["condition"], "profile": profile, "rule_id": out.rule_id,
                                  "reused_from": f"{source}/{row['run_id']}"})


def _main(module, args, isolate: bool) -> int:
    records.git_commit()  # pin the commit of the code this process loaded, before any long run
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: every rank trains each run on its shard
        args.device = str(distributed.init(resolve_device(args.device), args.sync_bn))
        isolate, args.jobs = False, 1
    elif args.sync_bn:
        raise KDError("--sync-bn synchronises batch norm across the processes of one run, so it needs torchrun "
                      "(e.g. `torchrun --nproc_per_node 8 -m experiments.<name> --sync-bn ...`); this is one "
                      "process, where batch norm already sees the whole batch.")
    p, out, configs, todo, done = plan(module, args)
    if args.plot_only:
        if done.empty:
            raise KDError(f"No completed runs in {out.runs}; run the experiment without --plot-only first.")
        return _report(module, done, p, out, configs)
    reused = reusable_runs(module, args, todo)
    todo = [c for c in todo if records.run_id(c) not in reused]
    if args.dry_run:
        return dry_run(module, args, p, configs, todo, reused)
    if args.publish_teachers:
        return publish_teachers(module, args, p, configs)
    for config, *source in reused.values():
        write_reused(out, config, args.profile, *source)
    if args.launcher == "processes":
        failed = sweep(module, args, p, out, todo, isolate)
    else:
        from kd import slurm
        failed = slurm.sweep(module, args, p, out, todo)
    if not distributed.is_writer():  # rank 0 writes the report
        return 1 if failed else 0
    code = _report(module, completed(out), p, out, configs)
    if failed:
        print(f"{len(failed)} runs failed ({', '.join(failed)}); re-run the same command to redo them.",
              file=sys.stderr)
        return 1
    return code


def rule_id(module, configs: list[dict]) -> str:
    """The pre-registered design, hashed: the verdict rule's text, its parameters (the module's RULE) and the
    grid's conditions (every config but its seed, so that more seeds of one design share the rule)."""
    grid = sorted({records.run_id({k: v for k, v in c.items() if k != "seed"}) for c in configs})
    return records.config_hash({"rule": rule_of(module.verdict_for), "parameters": getattr(module, "RULE", {}),
                                "grid": grid}, 8)


def planned_runs(module, p: dict, seeds: int | None, check: bool = True) -> list[dict]:
    """The finding's grid for this profile, every config checked before any compute (unless `check` is off:
    another finding's grid whose runs are only looked up)."""
    seeds = seeds if seeds is not None else p["seeds"]
    if seeds < 1:
        raise KDError(f"--seeds must be >= 1, got {seeds}.")
    configs = module.grid(p, seeds)
    for c in configs if check else ():
        check_config(c)
    return configs


def teacher_preparations(todo: list[dict]) -> list[dict]:
    """One preparation per teacher the runs need (each ensemble member apart), asking for every snapshot
    epoch its runs distil from, so that it trains once with all of them."""
    teachers = {}
    for m in (m for c in todo if c.get("teacher") is not None for m in member_configs(c)):
        t = {k: v for k, v in m["teacher"].items() if k != "epoch"}
        first = teachers.setdefault(records.run_id(t), {**m, "teacher": t, "prepare_teacher": True,
                                                        "teacher_snapshots": []})
        if m["teacher"].get("epoch") is not None:
            first["teacher_snapshots"] = sorted({*first["teacher_snapshots"], m["teacher"]["epoch"]})
    return list(teachers.values())


def sweep(module, args, p: dict, out: Outputs, todo: list[dict], isolate: bool) -> list[str]:
    """Train the runs not yet done, `args.jobs` at once, one row each in runs.csv; a failed run is recorded
    and the sweep goes on. Teachers the runs need are trained first, in parallel. Returns the failed ids."""
    device = resolve_device(args.device)  # a bad --device fails here, before any training
    if args.jobs < 1:
        raise KDError(f"--jobs must be >= 1, got {args.jobs}.")
    for folder in (out.results, out.figure.parent):
        records.check_writable(folder)
    teachers = teacher_preparations(todo)
    if isolate:  # one thread per run: a run's numbers do not depend on --jobs or the core count
        runners = [ChildRunner(_child_runs, importable_name(module), args.profile, args.device, args.data_dir, out,
                               threads=1) for _ in range(max(1, min(args.jobs, len(todo))))]
    else:
        runners = [_in_process_runs(module, Context(p, args.device, args.data_dir, out=out))]
    failed, lock, start = [], threading.Lock(), time.perf_counter()

    def record(config, result=None, error=None):
        with lock:
            write_result(out, config, result, error, device, args.profile, args.keep_state)
            if error is not None:
                failed.append(records.run_id(config))

    def work(runner, queue):
        while True:
            with lock:
                if not queue:
                    return
                i, config = queue.pop(0)
            if config.get("prepare_teacher"):
                _log(f"teacher {config['teacher']['model']} for {module.NAME}")
                try:
                    runner(config)
                except RunFailed as exc:  # its runs fail too, each with its own row
                    _log(f"training a teacher failed: {exc}")
                continue
            _log(f"[{i + 1}/{len(todo)}] {module.NAME} {config['condition']} seed {config['seed']} "
                 f"({records.run_id(config)})")
            try:
                record(config, runner(config))
            except RunFailed as exc:
                record(config, error=exc)

    def phase(jobs: list[tuple[int, dict]]):
        queue = list(jobs)
        if len(runners) == 1:  # in this thread: Ctrl-C and errors surface as they happen
            return work(runners[0], queue)
        errors = []

        def guarded(runner):
            try:
                work(runner, queue)
            except BaseException as exc:  # stop the others too, and raise it in the main thread
                errors.append(exc)
                with lock:
                    queue.clear()
        threads = [threading.Thread(target=guarded, args=(r,)) for r in runners]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except BaseException:  # Ctrl-C: no new runs; leaving the with-block stops the children
            with lock:
                queue.clear()
            raise
        if errors:
            raise errors[0]

    with contextlib.ExitStack() as stack:
        if isolate and todo:
            for r in runners:
                stack.enter_context(r)
        numbered = list(enumerate(todo))
        # runs that need no teacher keep the other cores busy while the teachers train
        phase([(-1, t) for t in teachers] + [(i, c) for i, c in numbered if c.get("teacher") is None])
        phase([(i, c) for i, c in numbered if c.get("teacher") is not None])
    _log(f"{len(todo) - len(failed)} runs trained in {(time.perf_counter() - start) / 60:.1f} min "
         f"({len(runners)} at once)")
    return failed


def write_result(out: Outputs, config: dict, result: dict | None, error: Exception | None, device, profile: str,
                 keep_state: bool, command: str | None = None):
    """A run's row (and history) in runs.csv, or a failed row that a re-run redoes; once the row is written
    the run's resume state goes, unless kept. Called under the sweep's lock (append_row also locks the file,
    so jobs of a Slurm array write safely to a shared folder)."""
    rid = records.run_id(config)
    where = records.device_name(device) if device is not None else "unknown"
    if error is not None:  # record it, go on with the sweep
        _log(f"run {rid} failed: {error}")
        records.append_row(out.runs, {"run_id": rid, "status": "failed", **records.flatten(config),
                                      "error": str(error).strip().splitlines()[-1], "rule_id": out.rule_id,
                                      "git_commit": records.git_commit(),
                                      "command": command or records.command_line(), "device": where})
        return
    row = records.make_row(config, result, config["seed"], device,
                           {"profile": profile, "rule_id": out.rule_id, **result.get("extra", {})})
    if command is not None:
        row["command"] = command
    records.write_history(out.history(rid), result["history"])
    records.append_row(out.runs, row)
    if not keep_state:  # the row is written: the run needs no resuming any more
        for path in (out.state(rid), records.sum_path(out.state(rid))):
            path.unlink(missing_ok=True)


def _log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def importable_name(module) -> str:
    """The name a child process imports a finding by (also when it was started as a script)."""
    if module.__name__ != "__main__":
        return module.__name__
    spec = getattr(module, "__spec__", None)
    if spec is not None and spec.name:
        return spec.name
    return ".".join(Path(module.__file__).resolve().relative_to(REPO).with_suffix("").parts)


def _child_runs(module_name: str, profile: str, device: str, data_dir, out: Outputs):
    """In the child: one thread, the finding's context (device, data, teachers) once, then `run` per config."""
    import importlib
    torch.set_num_threads(1)
    module = importlib.import_module(module_name)
    return _in_process_runs(module, Context(dict(module.PROFILES[profile]), device, data_dir, out=out))


def _in_process_runs(module, ctx: Context):
    ctx.data  # a missing dataset fails here, before any training

    def run(config):
        try:
            if config.get("prepare_teacher"):  # train (or load) the teacher into the cache, nothing else
                ctx.teacher(config)
                return None
            result = module.run(config, ctx)
            result["device"] = records.device_name(ctx.device)  # as the run saw it (its thread count)
            return result
        except Exception as exc:
            raise RunFailed(failure_message(exc)) from None
    return run


def _report(module, rows: pd.DataFrame, p: dict, out: Outputs, configs: list[dict]) -> int:
    order = {records.run_id(c): i for i, c in enumerate(configs)}
    rows = rows[rows["run_id"].isin(order)] if "run_id" in rows else rows  # this grid's runs only
    rows = rows.sort_values("run_id", key=lambda ids: ids.map(order))  # grid order, whatever finished first
    wanted = set(order)
    missing = len(wanted) - len(rows)
    if missing:  # a table over part of a grid would compare conditions with different seeds
        print(f"{missing} of {len(wanted)} runs of this grid are not complete in {out.runs}; the figure and "
              f"table need all of them: run the same command without --plot-only to finish the grid.",
              file=sys.stderr)
        return 1
    ids = set(rows["rule_id"].dropna()) if "rule_id" in rows else set()
    if ids != {out.rule_id}:
        before = ", ".join(sorted(ids)) if ids else "v1 (before rule ids)"
        out.stale = (f"These rows were run under rule {before}, not the current one: re-run under the current "
                     f"rule (fresh seeds) for a verdict; an earlier verdict stays in the README.")
    plot_style()
    np.random.seed(0)  # seaborn's strip-plot jitter: the same rows give the same figure, byte for byte
    verdict = module.report(rows, p, out)
    print(out.table.read_text())
    print(f"figure: {out.figure}\ntable: {out.table}\nverdict: {'none (rule changed)' if out.stale else verdict}")
    return 0
