"""Every finding in turn, then the results page (results/README.md). Each finding resumes as its own script
does, and one that fails does not stop the others.

    bash experiments/all.sh [--profile smoke|cpu|paper] [--jobs N] [--dry-run] [--seeds N] [--data-dir D]

--dry-run prints each finding's runs still to do, their estimated cost and the total, a teacher that several
findings share counted once, and so a run that a later finding reuses (its SAME_RUNS).
"""
from __future__ import annotations

import sys

if not __package__:  # `python experiments/<name>.py`: run it as `python -m experiments.<name>` does
    import pathlib
    import runpy
    sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])
    runpy.run_module(f"experiments.{pathlib.Path(__file__).stem}", run_name="__main__", alter_sys=True)
    sys.exit()

from experiments import report
from experiments.findings import FINDINGS, module_of
from kd import harness, preflight
from kd.costs import DataPath, MeasuredCosts, cost_line, costs, gpu_hours, teachers_to_train
from kd.device import resolve_device
from kd.errors import KDError


def measured(cache: dict, device) -> MeasuredCosts:
    """GPU costs: those just timed on this GPU, else the last GPU's in results/benchmarks."""
    return MeasuredCosts.timed_here(cache, device) if device.type == "cuda" else MeasuredCosts()


def one_data_path(paths: list[DataPath]) -> DataPath | None:
    """The findings' data path, where they share one (else the total prices the models alone: each finding's
    line has its own)."""
    return paths[0] if len(set(paths)) == 1 else None


def dry_run(argv: list[str]) -> int:
    total, teachers, cache, todo_all, teachers_all, planned_by = 0.0, {}, {}, [], {}, {}
    device, data_paths = None, []
    print(f"all --profile {harness.parse_args(module_of(FINDINGS[0]), argv).profile}: {len(FINDINGS)} findings")
    for name in FINDINGS:
        module = module_of(name)
        args = harness.parse_args(module, argv)
        p, _, configs, todo, _ = harness.plan(module, args)
        reused = harness.reusable_runs(module, args, todo)
        shared = {o.NAME for o in harness.sharing(module, args.profile)}
        todo = [c for c in todo
                if c.run_id not in reused and planned_by.get(c.training_id) not in shared]
        for c in todo:  # a later finding that shares runs with this one reuses them
            planned_by.setdefault(c.training_id, name)
        runs, needed = costs(args, p, todo, cache)
        data_paths.append(DataPath.of(p, args.cpus_per_gpu))
        device = resolve_device(args.device)
        new = {k: v for k, v in needed.items() if k not in teachers}
        teachers.update(new)
        total += sum(runs.values())
        to_train = teachers_to_train(todo, p, args)
        fresh = [c for k, c in to_train.items() if k not in teachers_all]
        teachers_all.update(to_train)
        todo_all += todo
        print(f"{name:24s} {len(configs):4d} runs, {len(todo):4d} to run: "
              f"{cost_line(sum(runs.values()), sum(new.values()), args.jobs, device)}; "
              f"{gpu_hours(todo, fresh, measured(cache, device), data_paths[-1])}")
    if device.type == "cuda":
        MeasuredCosts.save(cache, device)
    print(f"all findings: {cost_line(total, sum(teachers.values()), args.jobs, device)}"
          "; teachers train in parallel with --jobs, so the wall time is about (runs + teachers) / jobs; "
          f"{gpu_hours(todo_all, list(teachers_all.values()), measured(cache, device), one_data_path(data_paths))}"
          f"; {len(todo_all)} runs after {len(teachers_all)} teacher jobs")
    return 0


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):  # the options are each finding's: see experiments/<name>.sh --help
        print(__doc__.strip())
        return 0
    if "--dry-run" in argv:
        try:
            return dry_run(argv)
        except KDError as exc:  # bad input, as each finding's own command line says it
            print(f"error: {exc}", file=sys.stderr)
            return 2
    args = harness.parse_args(module_of(FINDINGS[0]), argv)
    try:  # the options and the environment every finding needs, once: bad input is one error, not thirteen
        preflight.launcher(args)
        preflight.environment()
    except KDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = []
    for name in FINDINGS:
        print(f"==> {name}", flush=True)
        if harness.main(module_of(name), argv) != 0:
            failed.append(name)
    print(f"results page: {report.write(args.profile, args.results_root)}")
    if failed:
        print(f"{len(failed)} findings did not finish cleanly ({', '.join(failed)}); re-run the same command to "
              "resume them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
