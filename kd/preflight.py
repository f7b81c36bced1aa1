"""Everything a run or a sweep will need, checked once before anything is written or trained: the options'
ranges, the environment variables, the cache and results folders (writable, with room for the grid), the
launcher, and the state of earlier results (a runs.csv that is a folder, a run id twice, a finished row whose
history is gone). The CLI (kd.cli) and every experiment script (kd.harness, experiments.all) call it, so that
bad input is one paragraph (a KDError) before any compute, never a traceback after it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd

from kd import records
from kd.device import resolve_device
from kd.errors import KDError, env_number
from kd.models import create_model

MAX_SEED = 2**32 - 1  # numpy's generators take 32-bit seeds (torch's take 64)
MAX_SEEDS = 1000  # seeds per condition: more is a typo (--seeds 1000000), which would plan for minutes in silence
STATE_BYTES_PER_PARAM = 3 * 4  # a run's resume state: fp32 weights, momentum and the best weights
RUN_BYTES = 1 << 20  # a run's history, row and evaluation records, generously


def environment():
    """The variables the runs read, and the cache folder they write teachers and logits to."""
    env_number("KD_LOGIT_CACHE_GB", 4)
    if os.environ.get("KD_LOGIT_CACHE", "1") not in ("0", "1"):
        raise KDError(f"The environment variable KD_LOGIT_CACHE={os.environ['KD_LOGIT_CACHE']!r} must be 0 (no "
                      f"logit cache) or 1 (the default). Nothing was written or trained.")
    records.check_writable(records.cache_dir(), what="the cache ($KD_CACHE, default ~/.cache/kd)")


def seed(value: int, flag: str = "--seed") -> int:
    if not 0 <= value <= MAX_SEED:
        raise KDError(f"{flag} must be in [0, {MAX_SEED}] (2**32 - 1: numpy's seeding takes 32 bits), got {value}. "
                      f"Nothing was written or trained.")
    return value


def seeds(n: int) -> int:
    if n < 1:
        raise KDError(f"--seeds must be >= 1, got {n}.")
    if n > MAX_SEEDS:
        raise KDError(f"--seeds {n} asks for more than {MAX_SEEDS} seeds per condition, far beyond any design "
                      f"here (the power calculations ask at most a few hundred); give a smaller number, and price it "
                      f"first with --dry-run. Nothing was written or trained.")
    return n


def launcher(args):
    """--jobs, --device and the Slurm options of an experiment's command line."""
    if args.jobs < 1:
        raise KDError(f"--jobs must be >= 1, got {args.jobs}.")
    for flag, value in (("--cpus-per-gpu", args.cpus_per_gpu), ("--runs-per-gpu", args.runs_per_gpu)):
        if value < 1:
            raise KDError(f"{flag} must be >= 1, got {value}.")
    resolve_device(args.device)
    if args.launcher == "processes":
        return
    for flag, value, least in (("--time", args.time, 1), ("--gpus-per-run", args.gpus_per_run, 0),
                               ("--array-parallelism", args.array_parallelism, 1)):
        if value < least:
            raise KDError(f"{flag} must be >= {least} with --launcher {args.launcher}, got {value}.")
    if args.launcher == "slurm" and not args.partition:
        raise KDError("--launcher slurm needs --partition (the Slurm partition to submit to).")
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise KDError(f"--launcher {args.launcher} needs submitit: `pip install submitit`.") from None
    if args.launcher == "slurm" and shutil.which("sbatch") is None:
        raise KDError("--launcher slurm submits job arrays with sbatch, which is not installed here (no Slurm on "
                      "this machine); run on a Slurm login node, or use --launcher processes (the default) or "
                      "submitit-local.")


def results_state(out) -> pd.DataFrame:
    """The completed rows of a results folder (kd.analysis.Outputs), after checking that what is there is
    sound: runs.csv a file with the columns every runs.csv has, each run id once, and each finished row's
    history present. Damaged state is named with how to repair it; nothing is changed."""
    if out.runs.is_dir():
        raise KDError(f"{out.runs} is a folder, not the results file of this grid. Nothing was written or trained. "
                      f"Move it aside (`mv {out.runs} {out.runs}.bad`) and re-run.")
    rows = records.read_rows(out.runs, required=("run_id", "status"))
    if rows.empty:
        return rows
    twice = rows.run_id[rows.run_id.duplicated()].unique()
    if len(twice):
        raise KDError(f"{out.runs} holds {len(twice)} run id(s) more than once ({', '.join(map(str, twice[:3]))}"
                      f"{', ...' if len(twice) > 3 else ''}): rows pasted or merged by hand, as the sweep replaces a "
                      f"run's row. Nothing was written or trained. Keep one row per run, e.g. the last: `python -c "
                      f"\"import pandas as pd; p='{out.runs}'; pd.read_csv(p).drop_duplicates('run_id', "
                      f"keep='last').to_csv(p, index=False)\"`, or restore the file (`git checkout -- {out.runs}`).")
    done = rows[rows.status == "done"]
    lost = [rid for rid in done.run_id if not out.history(rid).is_file()]
    if lost:
        raise KDError(f"{len(lost)} finished run(s) in {out.runs} have lost their history ({', '.join(lost[:3])}"
                      f"{', ...' if len(lost) > 3 else ''}: {out.history(lost[0])} and the like are gone), which the "
                      f"figures and the v3 checks read. Nothing was written or trained. Restore them (`git checkout "
                      f"-- {out.history(lost[0]).parent}`), or delete those rows from runs.csv so that the runs "
                      f"train again.")
    return done


def free_space(todo, folders: list[Path], save_students: bool = False):
    """Room for what the runs still to do will write (their resume states, histories and rows; with
    --save-students their models too) in each folder's file system."""
    params = {}
    for c in todo:
        key = (c.student, c.student_width)
        if key not in params:
            params[key] = sum(p.numel() for p in create_model(c.student, 10, 1, c.student_width).parameters())
    need = sum(params[(c.student, c.student_width)] * STATE_BYTES_PER_PARAM * (2 if save_students else 1)
               + RUN_BYTES for c in todo)
    for folder in folders:
        probe = Path(folder)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        if free < need:
            raise KDError(f"The {len(todo)} runs still to do need about {need / 2**20:.0f} MiB under {folder}, but "
                          f"only {free / 2**20:.0f} MiB are free there. Nothing was written or trained; free some "
                          f"space or give another folder (--out).")
