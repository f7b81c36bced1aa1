"""kill -9 a smoke sweep again and again, then re-run it once cleanly: every run must be in runs.csv exactly
once, done, with no half rows, and with the same test top-1, to the bit, as an uninterrupted sweep.

Each trial starts from an empty results folder and teacher cache and kills the whole process group
(the sweep and its run process) several times, each at one of three kinds of moment:
  random      a random time after the start (also when a teacher or write moment does not come first)
  teacher     while a teacher trains (a random delay after "training teacher" is logged)
  write       while a checkpoint, snapshot or logit table is being written (a *.tmp file exists in the cache)
  logit write while a logit table is being written (a *.tmp file in a <checkpoint>.logits folder)
Trials alternate between kdas_finding3 (teacher, logit cache) and early_stopped_teachers (snapshots).

    python -m tests.kill_resume [--trials 20] [--kills 3]      # prints one line per trial and the outcome
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from kd import records

REPO = records.REPO
EXPERIMENTS = ("kdas_finding3", "early_stopped_teachers")
MOMENTS = ("random", "teacher", "write", "logit write")


def sweep(name: str, work: Path) -> subprocess.Popen:
    env = {**os.environ, "KD_CACHE": str(work / "cache"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", f"experiments.{name}", "--profile", "smoke",
                             "--seeds", "1", "--device", "cpu", "--results-root", str(work / "results"),
                             "--figures-root", str(work / "figures")], env=env, cwd=REPO, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_at(proc: subprocess.Popen, moment: str, work: Path, rng: random.Random, budget: float) -> str:
    """Wait for the moment, then SIGKILL the process group; says what was hit (or that the sweep ended)."""
    log = []
    threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True).start()
    stale = set((work / "cache").rglob("*.tmp"))  # left by an earlier kill: not a write in progress
    start = time.monotonic()
    deadline = start + rng.uniform(1, budget)  # teacher/write moments not met by then: killed at random
    teacher_at = None
    while proc.poll() is None:
        now = time.monotonic()
        if moment == "teacher" and teacher_at is None and any("training teacher" in x for x in log):
            teacher_at = now + rng.uniform(0, 1.0)
        writing = [p for p in (work / "cache").rglob("*.tmp") if p not in stale] if "write" in moment else []
        if moment == "logit write":  # the tables live in <teacher>/<checkpoint>.logits/
            writing = [p for p in writing if p.parent.suffix == ".logits"]
        hit = moment if (teacher_at is not None and now >= teacher_at) or writing else None
        if hit or now >= deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"{hit or 'random'} at {now - start:.1f}s"
        time.sleep(0.002)
    return "none: the sweep had finished"


def rows_of(work: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(work / "results" / name / "smoke" / "runs.csv")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--kills", type=int, default=3, help="kills per trial before the clean re-run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "results/benchmarks/kill_resume.csv"))
    args = ap.parse_args()
    records.git_commit()
    rng = random.Random(args.seed)
    reference, budget = {}, {}
    for name in EXPERIMENTS:  # uninterrupted sweeps, and how long one takes
        with tempfile.TemporaryDirectory() as tmp:
            start = time.monotonic()
            proc = sweep(name, Path(tmp))
            proc.communicate()
            assert proc.returncode == 0, f"the uninterrupted {name} sweep failed"
            budget[name] = time.monotonic() - start
            reference[name] = rows_of(Path(tmp), name).set_index("run_id")["final_test_top1"]
        print(f"reference {name}: {len(reference[name])} runs in {budget[name]:.0f}s", flush=True)
    passed, lines = 0, []
    for trial in range(args.trials):
        name = EXPERIMENTS[trial % len(EXPERIMENTS)]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            hits = [kill_at(sweep(name, work), rng.choice(MOMENTS), work, rng, budget[name])
                    for _ in range(args.kills)]
            runs = work / "results" / name / "smoke" / "runs.csv"
            partial = len(pd.read_csv(runs)) if runs.exists() else 0
            stale = len(list(work.rglob("*.tmp")))
            proc = sweep(name, work)
            proc.communicate()
            rows = rows_of(work, name)
            ok = (proc.returncode == 0 and rows.run_id.is_unique and set(rows.status) == {"done"}
                  and set(rows.run_id) == set(reference[name].index)
                  and (rows.set_index("run_id")["final_test_top1"] == reference[name].loc[rows.run_id]).all())
        passed += ok
        line = (f"trial {trial + 1:2d} {name:23s} kills: {'; '.join(hits)}; rows before the clean run {partial}, "
                f"stale .tmp files {stale}; after it {len(rows)} rows, "
                f"{'every run once, top-1 bit-identical' if ok else 'MISMATCH'}")
        lines.append(line)
        print(line, flush=True)
    print(f"{passed} of {args.trials} trials left every run once with bit-identical top-1")
    records.append_row(Path(args.out), records.benchmark_row(
        "kill_resume", __import__("torch").device("cpu"), trials=args.trials, kills_per_trial=args.kills,
        passed=passed, experiments=" ".join(EXPERIMENTS)))
    return 0 if passed == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
