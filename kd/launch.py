"""The local launcher: a sweep's runs in child processes of one thread each, several at once (a run killed
by a signal fails alone), teachers first; each finished or failed run becomes its row in runs.csv. The Slurm
launcher (kd/slurm.py) runs the same runs and writes the same rows through what is here."""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path

import torch
from filelock import FileLock

from kd import distributed, records
from kd.analysis import Outputs
from kd.config import RunConfig, TeacherJob, teacher_jobs
from kd.device import resolve_device
from kd.isolation import ChildRunner, RunFailed, failure_message
from kd.run import Context

REPO = records.REPO


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpus_visible(device: str) -> int:
    """GPUs a sweep with this --device spreads its runs over: all visible ones for cuda (or auto on a machine
    with CUDA), one for cuda:N, none on a CPU."""
    if device.startswith("cuda:"):
        return 1
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.cuda.device_count()
    return 0


def placements(device: str, runners: int, gpus: int) -> list[str]:
    """The device of each run process: on several GPUs, process i on GPU i % gpus, so that --jobs = GPUs x
    --runs-per-gpu puts that many on each; otherwise the device asked for. Each process has its own CUDA
    context, and cuDNN picks its kernels by heuristics (torch's default, not by timing: benchmark mode is
    off), so what shares a GPU changes a run's speed, not its numbers; what differs between two runs of one
    config is CUDA's own nondeterminism (atomic adds in some backward kernels), packed or not."""
    if gpus <= 1 or device.startswith("cuda:"):
        return [device] * runners
    return [f"cuda:{i % gpus}" for i in range(runners)]


def sweep(module, args, p: dict, out: Outputs, todo: list[RunConfig], isolate: bool) -> list[str]:
    """Train the runs not yet done, `args.jobs` at once, one row each in runs.csv; a failed run is recorded
    and the sweep goes on. Teachers the runs need are trained first, in parallel. Returns the failed ids."""
    device = resolve_device(args.device)  # checked with every option before (kd.preflight)
    teachers = teacher_jobs(todo)
    if isolate:  # one thread per run: a run's numbers do not depend on --jobs or the core count
        places = placements(args.device, max(1, min(args.jobs, len(todo))), gpus_visible(args.device))
        runners = [ChildRunner(child_runs, importable_name(module), args.profile, where, args.data_dir, out,
                               threads=1) for where in places]
        packing = max(places.count(where) for where in places)
    else:
        runners, packing = [in_process_runs(module, Context(p, args.device, args.data_dir, out=out))], 1
    failed, lock, start, stopping = [], threading.Lock(), time.perf_counter(), threading.Event()

    def record(config, result=None, error=None):
        with lock:
            status = "interrupted" if error is not None and stopping.is_set() else "failed"
            if status == "interrupted":  # its process was stopped with the sweep: that is the cause
                error = RunFailed("stopped with the sweep (Ctrl-C or SIGTERM)")
            if result is not None and device.type == "cuda":  # the packing the run trained in
                result.setdefault("extra", {})["runs_per_gpu"] = packing
            write_result(out, config, result, error, device, args.profile, args.keep_state, status=status)
            if error is not None:
                failed.append(config.run_id)

    def work(runner, queue):
        while True:
            with lock:
                if not queue:
                    return
                i, config = queue.pop(0)
            if isinstance(config, TeacherJob):
                log(f"teacher {config.config.teacher.model} for {module.NAME}")
                try:
                    runner(config)
                except RunFailed as exc:  # its runs fail too, each with its own row
                    log(f"training a teacher failed: {exc}")
                continue
            if not claim(out, config.run_id):
                log(f"[{i + 1}/{len(todo)}] {config.run_id} is trained by another sweep of this grid: skipped")
                continue
            log(f"[{i + 1}/{len(todo)}] {module.NAME} {config.condition} seed {config.seed} ({config.run_id})")
            try:  # the claim goes once the run's row is written (or the sweep stops)
                try:
                    result = runner(config)
                except RunFailed as exc:
                    record(config, error=exc)
                    continue
                except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM while this thread trains the run
                    stopping.set()
                    record(config, error=exc)
                    raise
                record(config, result)
            finally:
                release(out, config.run_id)

    def phase(jobs: list[tuple[int, RunConfig | TeacherJob]]):
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
        started.extend(threads)
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except BaseException:  # Ctrl-C or SIGTERM: no new runs; leaving the with-block stops the children,
            stopping.set()     # and the runs they were training are recorded as interrupted
            with lock:
                queue.clear()
            raise
        if errors:
            raise errors[0]

    started = []
    try:
        with contextlib.ExitStack() as stack:
            if isolate and todo:
                for r in runners:
                    stack.enter_context(r)
            numbered = list(enumerate(todo))
            # runs that need no teacher keep the other cores busy while the teachers train
            phase([(-1, t) for t in teachers] + [(i, c) for i, c in numbered if c.teacher is None])
            phase([(i, c) for i, c in numbered if c.teacher is not None])
    except KeyboardInterrupt:  # the children are stopped: let their threads record the runs as interrupted
        for t in started:
            t.join()
        raise
    log(f"{len(todo) - len(failed)} runs trained in {(time.perf_counter() - start) / 60:.1f} min "
         f"({len(runners)} at once)")
    return failed


def claim(out: Outputs, rid: str) -> bool:
    """Claim a run for this sweep, under runs.csv's lock: False when it is done, or claimed by another live
    sweep (two sweeps of one grid started at once then train each run once). A claim is a file naming its
    host and process; one whose process is gone on this host is stale and taken over. Under torchrun every
    rank trains every run (on its shard), so ranks never claim."""
    if distributed.rank_and_size()[1] > 1:
        return True
    path = out.results / "resume" / f"{rid}.claim"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.runs) + ".lock"):
        rows = records.read_rows(out.runs)
        if "run_id" in rows and ((rows.run_id == rid) & (rows.status == "done")).any():
            return False
        if held(out, rid):
            return False
        records.write_text(path, f"{socket.gethostname()} {os.getpid()}")
    return True


def held(out: Outputs, rid: str) -> bool:
    """Whether a live sweep holds the run's claim: its process is alive on this host, or it is on another
    host (which this one cannot check)."""
    path = out.results / "resume" / f"{rid}.claim"
    if not path.is_file():
        return False
    host, _, pid = path.read_text().partition(" ")
    return host != socket.gethostname() or _alive(int(pid or 0))


def release(out: Outputs, rid: str):
    (out.results / "resume" / f"{rid}.claim").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def write_result(out: Outputs, config: RunConfig, result: dict | None, error: Exception | None, device, profile: str,
                 keep_state: bool, command: str | None = None, status: str = "failed"):
    """A run's row (and history) in runs.csv, or a failed (or interrupted) row that a re-run redoes; once the
    row is written the run's resume state goes, unless kept. Called under the sweep's lock (append_row also
    locks the file, so jobs of a Slurm array write safely to a shared folder)."""
    rid, flat = config.run_id, config.as_dict()
    where = records.device_name(device) if device is not None else "unknown"
    if error is not None:  # record it, go on with the sweep
        log(f"run {rid} {status}: {error}")
        records.append_row(out.runs, {"run_id": rid, "status": status, **records.flatten(flat),
                                      "error": str(error).strip().splitlines()[-1], "rule_id": out.rule_id,
                                      "git_commit": records.git_commit(),
                                      "command": command or records.command_line(), "device": where})
        return
    row = records.make_row(flat, result, config.seed, device,
                           {"profile": profile, "rule_id": out.rule_id, **result.get("extra", {})})
    if command is not None:
        row["command"] = command
    records.write_history(out.history(rid), result["history"])
    records.append_row(out.runs, row)
    if not keep_state:  # the row is written: the run needs no resuming any more
        for path in (out.state(rid), records.sum_path(out.state(rid))):
            path.unlink(missing_ok=True)


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def importable_name(module) -> str:
    """The name a child process imports a finding by (also when it was started as a script)."""
    if module.__name__ != "__main__":
        return module.__name__
    spec = getattr(module, "__spec__", None)
    if spec is not None and spec.name:
        return spec.name
    return ".".join(Path(module.__file__).resolve().relative_to(REPO).with_suffix("").parts)


def child_runs(module_name: str, profile: str, device: str, data_dir, out: Outputs):
    """In the child: one thread, the finding's context (device, data, teachers) once, then `run` per config."""
    import importlib
    torch.set_num_threads(1)
    module = importlib.import_module(module_name)
    return in_process_runs(module, Context(dict(module.PROFILES[profile]), device, data_dir, out=out))


def in_process_runs(module, ctx: Context):
    ctx.data  # a missing dataset fails here, before any training

    def run(config: RunConfig | TeacherJob):
        try:
            if isinstance(config, TeacherJob):  # train (or load) the teacher into the cache, nothing else
                ctx.prepare(config)
                return None
            result = module.run(config, ctx)
            result["device"] = records.device_name(ctx.device)  # as the run saw it (its thread count)
            return result
        except Exception as exc:
            raise RunFailed(failure_message(exc)) from None
    return run
