"""Sweeps as submitit job arrays (issue 18.1): `--launcher slurm` for a cluster, `--launcher submitit-local`
for submitit's local executor (the same code path on one machine; the tests use it).

The launcher submits the teachers the grid still needs as one array, waits for them (they are trained into
KD_CACHE, which must be on a file system every node sees), then the remaining runs as a second array. Each
job trains one run in its own process and writes its row itself, under the same file lock as a local sweep,
so rows land even if the launcher is gone; the launcher waits and writes the report. A job that is
preempted or reaches --time is requeued by submitit (`checkpoint`) and goes on from the run's resume
state (kd.train saves it every STATE_EVERY_S seconds). Re-running the command resumes the grid as usual.

    bash experiments/kdas_finding3.sh --profile paper --launcher slurm --partition gpu --gpus-per-run 1 \\
        --time 1440 --array-parallelism 16
"""
from __future__ import annotations

import time

import torch

from kd import records
from kd.analysis import Outputs
from kd.config import RunConfig, TeacherJob, teacher_jobs
from kd.device import resolve_device
from kd.isolation import RunFailed
from kd.launch import importable_name, in_process_runs, log, write_result
from kd.run import Context


class RunJob:
    """One job of the array: a teacher preparation or a run, trained in this process, its row written here."""

    def __init__(self, module_name: str, args, out: Outputs):
        self.module_name, self.out = module_name, out
        self.profile, self.device, self.data_dir = args.profile, args.device, args.data_dir
        self.keep_state, self.command = args.keep_state, records.command_line()

    def __call__(self, config: RunConfig | TeacherJob) -> str:
        import importlib
        device = resolve_device(self.device)
        if device.type == "cpu":  # one thread per run, as a local sweep: the same numbers, bit for bit
            torch.set_num_threads(1)
        module = importlib.import_module(self.module_name)
        ctx = Context(dict(module.PROFILES[self.profile]), self.device, self.data_dir, out=self.out)
        run = in_process_runs(module, ctx)
        if isinstance(config, TeacherJob):
            run(config)
            return "teacher"
        try:
            result, error = run(config), None
        except RunFailed as exc:
            result, error = None, exc
        write_result(self.out, config, result, error, device, self.profile, self.keep_state,
                             command=self.command)
        return "failed" if error else "done"

    def checkpoint(self, config: RunConfig | TeacherJob):
        """Preempted or timed out: run again from the saved state (submitit requeues the job)."""
        import submitit
        return submitit.helpers.DelayedSubmission(self, config)


def executor(module, args, out: Outputs):
    import submitit  # there: kd.preflight.launcher checked it before anything was written
    cluster = "local" if args.launcher == "submitit-local" else "slurm"
    ex = submitit.AutoExecutor(folder=out.results / "submitit" / "%j", cluster=cluster)
    ex.update_parameters(name=f"kd-{module.NAME}", timeout_min=args.time, gpus_per_node=args.gpus_per_run,
                         tasks_per_node=1, cpus_per_task=max(1, args.cpus_per_gpu * args.gpus_per_run),
                         slurm_array_parallelism=args.array_parallelism,
                         **({"slurm_partition": args.partition} if args.partition else {}))
    return ex


def sweep(module, args, p: dict, out: Outputs, todo: list[RunConfig]) -> list[str]:
    """Train the runs not yet done as job arrays (teachers first; the options and folders were checked before,
    kd.preflight); returns the ids of the runs that failed."""
    ex, job = executor(module, args, out), RunJob(importable_name(module), args, out)
    start = time.perf_counter()
    teachers = teacher_jobs(todo)
    if teachers:
        log(f"{module.NAME}: {len(teachers)} teacher jobs submitted")
        for j, t in zip(ex.map_array(job, teachers), teachers):
            try:
                j.result()
            except Exception as exc:  # its runs fail too, each with its own row
                log(f"training teacher {t.config.teacher.model} failed (job {j.job_id}): "
                             f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}")
    jobs = ex.map_array(job, todo) if todo else []
    log(f"{module.NAME}: {len(jobs)} runs submitted as one array"
                 + (f" ({jobs[0].job_id.split('_')[0]})" if jobs else ""))
    failed = []
    for j, config in zip(jobs, todo):
        try:
            status = j.result()
        except Exception as exc:  # the job died before writing its row: write it here
            status = "failed"
            write_result(out, config, None, RunFailed(f"job {j.job_id}: {exc}"), None, args.profile,
                                 args.keep_state)
        if status == "failed":
            failed.append(config.run_id)
    log(f"{len(todo) - len(failed)} runs trained in {(time.perf_counter() - start) / 60:.1f} min "
                 f"(submitit, {ex.cluster})")
    return failed

