"""What runs cost before they run: per-sample costs of a student's train step and a teacher's forward, timed
here on random inputs (one thread on a CPU, as runs train) or read from those measured on a GPU, times the
samples a run trains on and the distinct views its teacher meets; the dry run prints them."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from kd import records
from kd.config import RunConfig, teacher_jobs
from kd.datasets import DATASETS
from kd.device import autocast, place, resolve_device
from kd.errors import KDError
from kd.models import create_model
from kd.run import Context
from kd.teachers import published_folder, teacher_folder

REPO = records.REPO

# Per-sample costs measured on GPUs by `--dry-run --device cuda` (one row per model, width, pass and input
# shape), so that a dry run anywhere can price a paper profile in GPU-hours of that GPU.
GPU_COSTS = REPO / "results" / "benchmarks" / "per_sample_costs.csv"
# Training images one CPU core prepares a second on each folder-data path (benchmarks/imagenet_data.py): a
# GPU run on an ImageNet tree goes no faster than its data path, so it is priced as the slower of the two.
DATA_RATES = REPO / "results" / "benchmarks" / "imagenet_data.csv"
RATE_COLUMN = {"pil": "images_per_s_per_core: pil", "once": "images_per_s_per_core: once_gather"}


def architecture(name: str) -> str:
    """timm's model name without its weights tag ("resnet34.tv_in1k" -> "resnet34"): what a step costs."""
    return name.split(".")[0]


def estimate_seconds(config: RunConfig, device: torch.device, cache: dict) -> float:
    """Rough cost of a run on this device: its training samples times a student train step, plus a teacher
    forward per distinct (sample, view) pair it is expected to meet (the logit cache serves repeats; on
    every step where views are not keyed), timed here on random inputs of the dataset's shape (on CUDA at
    the recipe's batch, in bf16 as the runs train). A cost missing from a read-only `cache` (one loaded
    from GPU_COSTS) raises KeyError."""
    info = DATASETS[config.dataset]  # no data needs to be present for a dry run
    chans, size, classes = info.in_chans, info.image_size, info.num_classes
    t = config.teacher
    # on a CPU the per-sample cost hardly changes beyond these batches; ImageNet-sized ones keep it to seconds
    batch = min(config.recipe.batch_size, 256 if device.type == "cuda" else 128 if size <= 64 else 8)

    def per_sample(name, width, step):
        key = (config.dataset, architecture(name), float(width), bool(step), batch)
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

    n, epochs = config.train_size, config.recipe.epochs
    sec = per_sample(config.student, config.student_width, True) * n * epochs
    if t is not None and t.model is not None:
        views = info.views
        distinct = n * epochs if views is None else n * views * (1 - (1 - 1 / views) ** epochs)
        sec += per_sample(t.model, t.width, False) * distinct
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


@dataclass(frozen=True)
class DataPath:
    """What feeds one GPU a folder dataset: `cores` CPU cores at `per_core` training images a second each
    (None: not measured), by the latest row of DATA_RATES, measured on `cpu`."""
    decode: str
    cores: int
    per_core: float | None = None
    cpu: str = ""

    @classmethod
    def of(cls, p: dict, cores: int, path: Path | None = None) -> "DataPath":
        decode = p.get("data", {}).get("decode", "pil")
        path = Path(path or DATA_RATES)
        rows = records.read_rows(path) if path.is_file() else pd.DataFrame()
        if rows.empty or RATE_COLUMN[decode] not in rows:
            return cls(decode, cores)
        rate = pd.to_numeric(rows[RATE_COLUMN[decode]], errors="coerce")
        if not rate.iloc[-1] > 0:
            raise KDError(f"The data-path table {path} is damaged: its last row's {RATE_COLUMN[decode]} is not a "
                          f"positive number. Nothing was priced. Restore it (`git checkout -- {path}`) or measure "
                          f"again with `python -m benchmarks.imagenet_data`.")
        return cls(decode, cores, float(rate.iloc[-1]), str(rows["device"].iloc[-1]))

    def seconds(self, config: RunConfig) -> float | None:
        """Seconds the data path needs for the run's training images; None where the data are tensors already
        (CIFAR, Fashion-MNIST: crops on the GPU) or the path is not measured."""
        if DATASETS[config.dataset].views is not None or self.per_core is None:
            return None
        return config.train_size * config.recipe.epochs / (self.per_core * self.cores)


def gpu_hours(todo: list[RunConfig], teachers: list[RunConfig], measured: MeasuredCosts,
              data: DataPath | None = None) -> str:
    """The runs' and teachers' GPU-hours from measured per-sample costs, each run the slower of its model and
    its data path (folder data), or why they cannot be given."""
    if measured.device is None:
        return f"no GPU costs measured yet ({measured.source}: run `--dry-run --device cuda` on a GPU)"
    gpu = torch.device("cuda")  # a device object only, for the batch sizes the costs were measured at
    bound, extra = 0, 0.0

    def hours(configs):
        nonlocal bound, extra
        total = 0.0
        for c in configs:
            model = estimate_seconds(c, gpu, measured)
            feed = data.seconds(c) if data is not None else None
            if feed is not None and feed > model:
                bound, extra = bound + 1, extra + (feed - model) / 3600
            total += max(model, feed or 0.0)
        return total / 3600
    try:
        run_h, teacher_h = hours(todo), hours(teachers)
    except KeyError as missing:
        return f"no measured {measured.device} cost for {missing.args[0]}"
    line = (f"{run_h + teacher_h:.1f} GPU-hours on one {measured.device} ({run_h:.1f} runs + {teacher_h:.1f} "
            f"teachers; per-sample costs measured there: {measured.source})")
    folder = [c for c in todo + teachers if DATASETS[c.dataset].views is None]
    if folder and data is not None and data.per_core is None:
        line += (f"; the {data.decode} data path is not priced (no measurement in "
                 f"{DATA_RATES.relative_to(REPO)}: run `python -m benchmarks.imagenet_data`)")
    elif folder and data is not None:
        line += (f"; the data path ({data.decode} decode, {data.per_core:,.0f} images/s per core measured on "
                 f"{data.cpu}, {data.cores} cores per GPU: --cpus-per-gpu) is slower than the model in {bound} of "
                 f"{len(folder)} jobs on folder data, {extra:.1f} of those GPU-hours")
    return line


def costs(args, p: dict, todo: list[RunConfig], cache: dict) -> tuple[dict, dict]:
    """Estimated seconds of each run to do (by run id) and of each teacher they need that is not cached yet
    (by teacher id, so that findings sharing a teacher count it once), timed here with one thread."""
    device = resolve_device(args.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {c.run_id: estimate_seconds(c, device, cache) for c in todo}
        teacher_sec = {k: estimate_seconds(c, device, cache) for k, c in teachers_to_train(todo, p, args).items()}
    finally:
        torch.set_num_threads(threads)
    return runs, teacher_sec


def teachers_to_train(todo: list[RunConfig], p: dict, args) -> dict[str, RunConfig]:
    """The teachers the runs need that would be trained here (not pretrained, not cached), as runs by id."""
    ctx = Context(p, "cpu", args.data_dir)  # its dataset, loaded once, names every teacher's cache folder
    return {records.run_id(job.config.teacher.as_dict()): teacher_run(job.config) for job in teacher_jobs(todo)
            if job.config.teacher.model is not None and job.config.teacher.trained_here
            and not teacher_cached(job.config, ctx)}


def teacher_run(config: RunConfig) -> RunConfig:
    """A teacher's training as a run, for cost estimates: its model from labels on its pool and recipe."""
    t = config.teacher
    return replace(config, student=t.model, student_width=t.width, teacher=None, recipe=t.recipe,
                   train_size=round(DATASETS[config.dataset].num_train * config.teacher_pool_fraction))


def teacher_cached(config: RunConfig, ctx: Context) -> bool:
    try:
        spec = ctx.teacher_spec(config)
    except KDError:  # no data here: its identity, and so the teacher's cache key, is unknown
        return False
    return any((folder / "final.pt").is_file() for folder in (teacher_folder(spec), published_folder(spec)))


def cost_line(run_sec: float, teacher_sec: float, jobs: int, device) -> str:
    where = "on this GPU" if device.type == "cuda" else "with one thread"
    return (f"estimated {run_sec / 60:.0f} min of runs ({run_sec / 60 / jobs:.0f} min with --jobs {jobs}) and "
            f"{teacher_sec / 60:.0f} min of teacher training on {records.device_name(device)}, timed on random "
            f"inputs {where} (evaluation not included)")
