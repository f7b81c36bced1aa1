"""The experiment harness: a finding's command line and its plan. Every finding is one module in
experiments/ that defines

    NAME, TITLE           the script's name (results/<NAME>/...) and the finding in a line
    CLAIM, PAPER          what the paper says, in a sentence or two, and its published result
    PROFILES              smoke / cpu / paper: the settings of each scale
    grid(p, seeds)        the runs: one config dict per run (kd.config.base_config, "condition" and "seed")
    run(config, ctx)      train one run (a kd.config.RunConfig, a kd.run.Context), return the fit result
                          (and extra row fields under "extra"); most findings use kd.run.distill_on_pool
    SAME_RUNS (optional)  findings whose grids hold some of the same trainings (the same config but for the
                          name and condition): their finished runs are reused, not trained again
    RULE, verdict_for     the rule's parameters and its function, whose docstring is the rule's text: both
                          are hashed with the grid into every row as `rule_id`
    report(rows, p, out)  summary, figure and comparison table with the verdict; returns the verdict

and ends with `harness.main(sys.modules[__name__])`. The harness gives it a command line (--profile,
--seeds, --jobs, --data-dir, --device, --dry-run, --plot-only, --publish-teachers, --replicate, --out) and its plan: the grid
parsed and checked once, resume (a run is identified by the hash of its full config; completed runs are
skipped, failed ones redone), reuse of other findings' runs, the rule id, the dry-run listing, and the report
call. Runs are trained by a launcher (kd/launch.py: child processes of one thread each, several at once;
kd/slurm.py: submitit arrays); dry runs are priced by kd/costs.py. Results go to results/<NAME>/<profile>/,
the figure to figures/<NAME>_<profile>.png.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from kd import distributed, preflight, records, replicate
from kd.analysis import Outputs, plot_style, rule_of, teacher_weights_note
from kd.config import RunConfig, teacher_jobs
from kd.costs import DataPath, MeasuredCosts, cost_line, costs, gpu_hours, teachers_to_train
from kd.device import resolve_device
from kd.errors import KDError, os_failure
from kd.launch import available_cores, gpus_visible, held, log, sweep
from kd.run import Context, check_teachers
from kd.teachers import publish_teacher

matplotlib.use("Agg")
REPO = records.REPO
PROFILES = ("smoke", "cpu", "paper")


def completed(out: Outputs) -> pd.DataFrame:
    """The finished rows of a results folder, once its state is checked (kd.preflight.results_state)."""
    return preflight.results_state(out)


def publish_teachers(module, args, p: dict, configs: list[RunConfig]) -> int:
    """Copy the teachers the grid distils from (fully trained, and the snapshots it uses) from the cache
    into the published teachers (results/teachers), with a row each in its teachers.csv; trains nothing."""
    ctx = Context(p, "cpu", args.data_dir)
    trained = [job for job in teacher_jobs(configs) if job.config.teacher.trained_here]
    missing = []
    for job in trained:  # those trained so far: a long sweep's teachers can be published before its runs end
        t = job.config.teacher
        name = f"{t.model} x{t.width:g} seed {t.seed}"
        try:
            published = publish_teacher(ctx.teacher_spec(job.config), list(job.snapshots), args.results_root)
            print(f"published teacher {name}: {published}")
        except KDError as exc:
            missing.append(f"{name} ({exc})")
    if not trained:
        print(f"{module.NAME} --profile {args.profile} trains no teacher of its own: nothing to publish")
    if missing:
        print(f"{len(missing)} teachers not published:\n  " + "\n  ".join(missing),
              file=sys.stderr)
    return 1 if missing else 0


def dry_run(module, args, p: dict, configs: list[RunConfig], todo: list[RunConfig], reused: dict | None = None) -> int:
    """List the runs, which are done (or reused from another finding), and the estimated cost of the rest and
    of the teachers they still need (timed here, with one thread on a CPU as the runs train), and their
    GPU-hours from measured costs; train nothing (with --replicate: the replica's runs). On CUDA the
    per-sample costs timed here are added to GPU_COSTS."""
    cache, reused = {}, reused or {}
    runs, teachers = costs(args, p, todo, cache)
    print(f"{module.NAME} --profile {args.profile}: {len(configs)} runs, "
          f"{len(configs) - len(todo) - len(reused)} done, {len(todo)} to run"
          + (f", {len(reused)} reused from another finding" if reused else ""))
    for c in configs:
        rid = c.run_id
        sec = runs.get(rid)
        state = "todo" if sec is not None else "reuse" if rid in reused else "done"
        source = f"  (from {reused[rid][1]})" if rid in reused else ""
        print(f"  {state:5s} {rid}  {c.condition:32s} seed {c.seed}  {c.train_size:>7d} samples x "
              f"{c.recipe.epochs} epochs  ~{(sec or 0.0) / 60:.1f} min{source}")
    device = resolve_device(args.device)
    print(cost_line(sum(runs.values()), sum(teachers.values()), max(1, min(args.jobs, len(todo))), device))
    measured = MeasuredCosts()
    if device.type == "cuda":
        MeasuredCosts.save(cache, device)
        measured = MeasuredCosts.timed_here(cache, device)
    data = DataPath.of(p, args.cpus_per_gpu)
    print(f"{gpu_hours(todo, list(teachers_to_train(todo, p, args).values()), measured, data)}; "
          f"a Slurm array of {len(todo)} runs after {len(teachers)} teacher jobs")
    return 0


def parse_args(module, argv=None):
    ap = argparse.ArgumentParser(prog=f"experiments/{module.NAME}.sh",
                                 description=f"{module.TITLE}. Claim: {module.CLAIM}")
    ap.add_argument("--profile", default="cpu", choices=PROFILES,
                    help="smoke: seconds, tiny data; cpu (default): Fashion-MNIST on a CPU in minutes; "
                         "paper: the paper's setting, for GPUs")
    ap.add_argument("--seeds", type=int, help="number of seeds (default: the profile's)")
    ap.add_argument("--data-dir", help="dataset folder (default: $KD_DATA, then the Debian package path)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:N]")
    ap.add_argument("--jobs", type=int,
                    help="runs trained at once, one process and one thread each, so that results do not "
                         f"depend on it (default: the cores available, here {available_cores()}; with --device "
                         "cuda: the GPUs visible x --runs-per-gpu)")
    ap.add_argument("--runs-per-gpu", type=int, default=1,
                    help="with --device cuda: runs trained at once on each visible GPU, each a process of its own "
                         "(small CIFAR models leave a GPU mostly idle: their steps wait on kernel launches). "
                         "Rows record it (default %(default)s)")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--dry-run", action="store_true", help="list the runs and their estimated cost; train nothing")
    only.add_argument("--plot-only", action="store_true",
                    help="regenerate the figure and table from existing CSVs; train nothing")
    ap.add_argument("--replicate", action="store_true",
                      help="train the committed grid again here (with --seeds N: the first N seeds of each condition) "
                           "into replicas/ (or --out), from the published teachers, and compare it run by run with "
                           "the committed rows (replica_vs_committed.md); with --dry-run: price it")
    only.add_argument("--publish-teachers", action="store_true",
                      help="copy the teachers this grid distils from out of the cache into results/teachers "
                           "(commit them), so that a fresh clone distils from the same weights; train nothing")
    ap.add_argument("--keep-state", action="store_true",
                    help="keep each finished run's resume state (results/<name>/<profile>/resume/; by default it "
                         "is removed once the run's row is written)")
    ap.add_argument("--save-students", action="store_true",
                    help="keep each run's trained student, final and best, as safetensors files timm loads "
                         "(results/<name>/<profile>/students/<run_id>/, git-ignored)")
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
    ap.add_argument("--cpus-per-gpu", type=int, default=8,
                    help="CPU cores that feed each GPU: the dry run prices a run on folder data as the slower of its "
                         "model and this many cores' data path; a Slurm job asks for this many per GPU (default "
                         "%(default)s)")
    ap.add_argument("--sync-bn", action="store_true",
                    help="under torchrun on GPUs: batch norm over the whole batch (SyncBatchNorm), not per rank")
    ap.add_argument("--out", type=Path, help="put the results and the figure under this folder (OUT/results/<name>/"
                                             "<profile>/, OUT/figures/) instead of the repo's")
    ap.add_argument("--results-root", type=Path, help=argparse.SUPPRESS)  # the results (figures: beside them)
    ap.add_argument("--figures-root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.jobs is None:
        args.jobs = gpus_visible(args.device) * max(1, args.runs_per_gpu) or available_cores()  # K < 1: preflight says so
    if args.replicate and args.publish_teachers:
        ap.error("--replicate distils from the published teachers; it does not publish any")
    args.committed_root = args.results_root or REPO / "results"  # the rows a replica is compared with
    if args.replicate:  # never into the tracked results: replicas/ (git-ignored), or --out
        args.results_root = (args.out or REPO / "replicas") / "results"
    args.results_root = args.results_root or (args.out / "results" if args.out else REPO / "results")
    args.figures_root = args.figures_root or args.results_root.parent / "figures"  # never the repo's for others
    return args


def main(module, argv=None, isolate: bool = True) -> int:
    """Run a finding's command line. `isolate` (the default) trains each run in a child process, so that a
    run killed by a signal fails alone; isolate=False runs them in this process (tests that patch `run`)."""
    args = parse_args(module, argv)
    try:
        with stop_on_sigterm():
            return _main(module, args, isolate)
    except KDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # only what can happen after the checks: a disk that fills up mid-sweep
        print(f"error: {os_failure(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{module.NAME}: interrupted (Ctrl-C or SIGTERM). The runs in flight were stopped and recorded as "
              f"interrupted in runs.csv; finished rows are kept. Re-run the same command to resume.", file=sys.stderr)
        return 130


@contextlib.contextmanager
def stop_on_sigterm():
    """SIGTERM (a scheduler's or `kill`'s stop) takes the path of Ctrl-C: the run processes stop, the runs in
    flight are recorded as interrupted, and the sweep says so, instead of dying with its children orphaned."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def plan(module, args) -> tuple[dict, Outputs, list[RunConfig], list[RunConfig], pd.DataFrame]:
    """A finding's profile, outputs, checked grid, the runs still to do and the completed rows."""
    p = dict(module.PROFILES[args.profile])
    out = Outputs(args.results_root / module.NAME / args.profile,
                  args.figures_root / f"{module.NAME}_{args.profile}.png", save_students=args.save_students)
    configs = planned_runs(module, p, args.seeds)
    out.rule_id = rule_id(module, configs)
    done = completed(out)
    done_ids = set(done["run_id"]) if "run_id" in done else set()
    return p, out, configs, [c for c in configs if c.run_id not in done_ids], done


def sharing(module, profile: str) -> list:
    """The findings whose runs this one may reuse: listed in its SAME_RUNS, with the same `run`."""
    return [o for o in getattr(module, "SAME_RUNS", ()) if o.run is module.run and profile in o.PROFILES]


def reusable_runs(module, args, todo: list[RunConfig]) -> dict[str, tuple[RunConfig, str, dict, Path]]:
    """The runs still to do that a finding in `module.SAME_RUNS` has already trained (the same training_id,
    the same `run`), by run id: (the config here, that finding's name, its row, its history). A results file
    of theirs that cannot be read is left alone, and its runs trained here."""
    found = {}
    for other in sharing(module, args.profile):
        theirs = Outputs(args.results_root / other.NAME / args.profile, None)
        try:
            done = completed(theirs)
        except KDError as exc:
            log(f"not reusing {other.NAME}'s runs: {exc}")
            continue
        if done.empty:
            continue
        rows = done.set_index("run_id")
        planned = planned_runs(other, dict(other.PROFILES[args.profile]), args.seeds, check=False)
        by_training = {c.training_id: c.run_id for c in planned if c.run_id in rows.index}
        for c in todo:
            source = by_training.get(c.training_id)
            if source is not None and theirs.history(source).is_file():
                found.setdefault(c.run_id, (c, other.NAME, {**rows.loc[source].dropna(), "run_id": source},
                                                     theirs.history(source)))
    return found


def write_reused(out: Outputs, config: RunConfig, profile: str, source: str, row: dict, history: Path):
    """Another finding's run as this grid's row: its numbers and what produced them (command, commit, device,
    wall time) kept, its names and rule this grid's, and `reused_from` saying whose run it is."""
    rid = config.run_id
    log(f"reusing {source}'s run {row['run_id']} as {config.condition} seed {config.seed} ({rid})")
    records.copy_file(history, out.history(rid))
    records.append_row(out.runs, {**row, "run_id": rid, "experiment": config.experiment,
                                  "condition": config.condition, "profile": profile, "rule_id": out.rule_id,
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
    if not args.plot_only:
        preflight.launcher(args)  # --jobs, --device, the launcher: before any row is reused or written
    p, out, configs, todo, done = plan(module, args)
    committed = committed_rows(module, args, configs) if args.replicate else None  # before any compute
    if args.plot_only:
        if done.empty:
            raise KDError(f"No completed runs in {out.runs}; run the experiment without --plot-only first.")
        return _report(module, done, p, out, configs)
    reused = reusable_runs(module, args, todo)
    todo = [c for c in todo if c.run_id not in reused]
    if args.dry_run:
        return dry_run(module, args, p, configs, todo, reused)
    if args.publish_teachers:
        return publish_teachers(module, args, p, configs)
    if not todo and not reused and not args.replicate:
        print(f"All {len(configs)} runs of this grid are done in {out.runs}: nothing to train, the table below is "
              f"theirs. To check them on this machine, --replicate [--seeds 2] trains them again into replicas/ and "
              f"compares the two.")
    # everything the runs will need, before any row is written or run trained
    preflight.environment()
    for folder in (out.results, out.figure.parent):
        records.check_writable(folder)
    preflight.free_space(todo, [out.results, records.cache_dir()], args.save_students)
    check_teachers(todo, Context(p, "cpu", args.data_dir))
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
    if committed is not None and not failed and code == 0:
        code = compare_replica(module, args, p, out, configs, committed)
    if failed:
        print(f"{len(failed)} runs failed ({', '.join(failed)}); re-run the same command to redo them.",
              file=sys.stderr)
        return 1
    return code


def rule_id(module, configs: list[RunConfig]) -> str:
    """The pre-registered design, hashed: the verdict rule's text, its parameters (the module's RULE), the
    grid's conditions (every config but its seed, so that more seeds of one design share the rule) and, from
    protocol v3, the source of the functions that decide it (the module's RULE_CODE: the verdict and its
    regime checks), so that a changed check is a changed rule."""
    grid = sorted({records.run_id({k: v for k, v in c.as_dict().items() if k != "seed"}) for c in configs})
    design = {"rule": rule_of(module.verdict_for), "parameters": getattr(module, "RULE", {}), "grid": grid}
    if getattr(module, "RULE_CODE", ()):
        design["code"] = [inspect.getsource(f) for f in module.RULE_CODE]
    return records.config_hash(design, 8)


def planned_runs(module, p: dict, seeds: int | None, check: bool = True) -> list[RunConfig]:
    """The finding's grid for this profile, each run's config parsed once and checked before any compute
    (unless `check` is off: another finding's grid whose runs are only looked up)."""
    seeds = preflight.seeds(seeds if seeds is not None else p["seeds"])
    configs = [RunConfig.from_dict(c) for c in module.grid(p, seeds)]
    return [c.check() for c in configs] if check else configs


def committed_rows(module, args, configs: list[RunConfig]) -> pd.DataFrame:
    """--replicate: every committed row of this grid's rule (all seeds: the spread a replica is held to); an
    error before any compute where some run of the replica's grid is not among them."""
    folder = args.committed_root / module.NAME / args.profile
    rule = rule_id(module, configs)
    rows = completed(Outputs(folder, None))
    rows = rows[rows["rule_id"] == rule] if "rule_id" in rows else rows.iloc[:0]
    missing = {c.run_id for c in configs} - set(rows.get("run_id", ()))
    if missing:
        raise KDError(f"--replicate trains the committed grid again and compares, but {len(missing)} of the "
                      f"{len(configs)} runs it would train are not committed under the current rule ({rule}) in "
                      f"{folder / 'runs.csv'}. Run the finding itself first (or fewer --seeds); nothing was trained.")
    return rows


def compare_replica(module, args, p: dict, out: Outputs, configs: list[RunConfig], committed: pd.DataFrame) -> int:
    """Judge the committed rows of the replica's seeds in a scratch copy of their folder (the table and figure
    of the committed results are never rewritten), compare, print the outcome line, write the report."""
    ids = {c.run_id for c in configs}
    folder = args.committed_root / module.NAME / args.profile
    here = completed(out)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Outputs(Path(tmp) / "results", Path(tmp) / "figure.png", rule_id=out.rule_id)
        shutil.copytree(folder, scratch.results, ignore=shutil.ignore_patterns("runs.csv", "resume", "submitit"))
        same_seeds = _judge(module, committed[committed.run_id.isin(ids)], p, scratch, configs)
    table = folder / "table.md"
    found = re.search(r"\*\*Verdict: (.+?)\.\*\*", table.read_text()) if table.is_file() else None
    verdicts = {"committed": found.group(1) if found else "none", "committed, same seeds": same_seeds,
                "replica": _judge(module, here[here.run_id.isin(ids)], p, out, configs)}
    line, text = replicate.compare(committed, here[here.run_id.isin(ids)], verdicts)
    records.write_text(out.results / "replica_vs_committed.md", text)
    record = args.results_root / "replications.csv"  # one row per replica, for results/replications.csv
    records.append_row(record, replicate.record_row(module.NAME, args.profile, committed, here[here.run_id.isin(ids)],
                                                    line))
    print(f"{line}\nreport: {out.results / 'replica_vs_committed.md'}\nrecorded in: {record} (a maintainer copies "
          f"the row into results/replications.csv, which the README's table reads)")
    return 0


def _report(module, rows: pd.DataFrame, p: dict, out: Outputs, configs: list[RunConfig]) -> int:
    verdict = _judge(module, rows, p, out, configs)
    if verdict is None:
        return 1
    print(out.table.read_text())
    print(f"figure: {out.figure}\ntable: {out.table}\nverdict: {verdict}")
    return 0


def _judge(module, rows: pd.DataFrame, p: dict, out: Outputs, configs: list[RunConfig]) -> str | None:
    """The grid's table and figure from its rows, and its verdict ("none (rule changed)" for rows of another
    rule); None, said, where some run of the grid is not complete."""
    order = {c.run_id: i for i, c in enumerate(configs)}
    rows = rows[rows["run_id"].isin(order)] if "run_id" in rows else rows  # this grid's runs only
    rows = rows.sort_values("run_id", key=lambda ids: ids.map(order))  # grid order, whatever finished first
    wanted = set(order)
    missing = len(wanted) - len(rows)
    if missing:  # a table over part of a grid would compare conditions with different seeds
        training = sum(held(out, rid) for rid in wanted - set(rows.get("run_id", ())))
        print(f"{missing} of {len(wanted)} runs of this grid are not complete in {out.runs}; the figure and "
              f"table need all of them: " + (
                  f"a live sweep is training {training} of them now (its claims are in {out.results / 'resume'}): "
                  f"let it finish, then run --plot-only again." if training else
                  "run the same command without --plot-only to finish the grid."), file=sys.stderr)
        return None
    ids = set(rows["rule_id"].dropna()) if "rule_id" in rows else set()
    if ids != {out.rule_id}:
        before = ", ".join(sorted(ids)) if ids else "v1 (before rule ids)"
        out.stale = (f"These rows were run under rule {before}, not the current one: re-run under the current "
                     f"rule (fresh seeds) for a verdict; an earlier verdict stays in the README.")
    out.teachers = teacher_weights_note(rows)
    plot_style()
    np.random.seed(0)  # seaborn's strip-plot jitter (its bootstrap CIs take seed=0): the same rows give the same figure
    try:
        verdict = module.report(rows, p, out)
    except KeyError as exc:  # a column the report reads is not in the rows: they were edited, or are older
        column = str(exc.args[0] if exc.args else exc).removeprefix("Column not found: ")
        raise KDError(f"The rows of {out.runs} lack the column '{column}' that {module.NAME}'s report reads: the file "
                      f"was edited or comes from an older version of the code. The table and figure were not regenerated. "
                      f"Restore it (`git checkout -- {out.runs}` for committed results), or re-run the grid.") from None
    return "none (rule changed)" if out.stale else verdict
