"""A whole experiment sweep with and without the teacher-logit cache, in one run of this script.

Both arms start from the same trained teachers (copied into fresh cache folders without any cached
logits), run the same `python -m experiments.<name> --profile <profile>` in a subprocess, and must produce the
same results; the cache may only make it faster. Target for kdas_finding3 --profile cpu: >= 1.5x.

    python -m benchmarks.sweep_cache [--experiment kdas_finding3] [--profile cpu]
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from kd import records
from kd.analysis import Outputs
from kd.run import Context
from kd.teachers import cache_dir

REPO = records.REPO


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="kdas_finding3")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--out", default=str(REPO / "results/benchmarks/sweep_cache.csv"))
    args = ap.parse_args()
    records.git_commit()  # pin the commit of the code this process loaded, before the long timing
    module = importlib.import_module(f"experiments.{args.experiment}")
    p = module.PROFILES[args.profile]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ctx = Context(p, "auto", out=Outputs(tmp / "prep", tmp / "prep.png"))
        for config in module.grid(p, 1):  # train (or find) every teacher first: not part of the timing
            ctx.teacher(config)
        arms = {}
        for arm, flag in (("with cache", "1"), ("without cache", "0")):
            home = tmp / arm.replace(" ", "_")
            shutil.copytree(cache_dir() / "teachers", home / "cache" / "teachers",
                            ignore=shutil.ignore_patterns("*.logits", "*.lock"))
            env = {**os.environ, "KD_CACHE": str(home / "cache"), "KD_LOGIT_CACHE": flag}
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", f"experiments.{args.experiment}", "--profile",
                            args.profile, "--results-root", str(home), "--figures-root", str(home)],
                           env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
            arms[arm] = time.perf_counter() - start
            rows = pd.read_csv(home / args.experiment / args.profile / "runs.csv").sort_values("run_id")
            arms[f"{arm} rows"] = rows
            print(f"{arm}: {arms[arm] / 60:.1f} min, {rows.teacher_forwards.sum():,} teacher forwards", flush=True)
    a, b = arms["with cache rows"], arms["without cache rows"]
    same = a.run_id.tolist() == b.run_id.tolist() and (a.final_test_top1.values == b.final_test_top1.values).all()
    speedup = arms["without cache"] / arms["with cache"]
    print(f"\n{args.experiment} --profile {args.profile}: {arms['with cache'] / 60:.1f} min with the logit cache, "
          f"{arms['without cache'] / 60:.1f} min without: {speedup:.2f}x faster (target >= 1.5x: "
          f"{'met' if speedup >= 1.5 else 'missed'}); identical accuracies in both arms: {same}")
    records.append_row(Path(args.out), records.benchmark_row(
        "sweep_cache", ctx.device, experiment=args.experiment, profile=args.profile,
        with_cache_s=arms["with cache"], without_cache_s=arms["without cache"], speedup=speedup,
        teacher_forwards_with=int(a.teacher_forwards.sum()), teacher_forwards_without=int(b.teacher_forwards.sum()),
        identical_results=bool(same)))


if __name__ == "__main__":
    main()
