"""Runs of a sweep in a child process, so that a run which kills its process (a oneDNN segfault, the OOM
killer, an abort in native code) fails alone: the sweep records why and goes on with the next run in a
fresh child. Successive runs share one child while it lives, so what they share in memory (the dataset,
teachers, rankings) is loaded once.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
import traceback

from kd.errors import KDError


class RunFailed(Exception):
    """One run failed (an exception in it, or its process died); the message says why, in a line."""


def exit_cause(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory, or killed from outside)" if name == "SIGKILL" else ""
        return f"the run's process was killed by {name}{hint}"
    return f"the run's process exited with code {code}"


def failure_message(exc: Exception) -> str:
    """What a failed run records: the message of an error we raise on purpose, else a short traceback."""
    if isinstance(exc, (KDError, RunFailed)):
        return str(exc)
    return "".join(traceback.format_exception(exc, limit=3))


def _exit_with_parent(poll_s: float = 1.0):
    """Die when the sweep that started this child dies (SIGKILL, a crash), instead of training on unseen."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _stop(signum, frame):
    raise KeyboardInterrupt


def _serve(conn, setup, args):
    """The child: build the per-run function once, then answer one config at a time until told to stop
    (SIGTERM from the sweep stops the run in flight as Ctrl-C would)."""
    _exit_with_parent()
    signal.signal(signal.SIGTERM, _stop)
    try:
        call = setup(*args)
    except Exception as exc:
        conn.send(("error", failure_message(exc)))
        return
    conn.send(("ready", None))
    try:
        while (config := conn.recv()) is not None:
            try:
                conn.send(("ok", call(config)))
            except Exception as exc:
                conn.send(("failed", failure_message(exc)))
    except (KeyboardInterrupt, EOFError):  # Ctrl-C reaches the whole process group; the parent reports it
        pass


_env_lock = threading.Lock()


@contextlib.contextmanager
def _environment(**values):
    with _env_lock:
        old = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


class ChildRunner:
    """`runner(config)` returns `setup(*args)(config)`, computed in a spawned child process; raises
    RunFailed when the run raised or its process died. A failure to set up (e.g. missing data) is a
    KDError: it would fail every run alike."""

    def __init__(self, setup, *args, threads: int | None = None):
        self.setup, self.args, self.proc, self.conn = setup, args, None, None
        # One thread means one OpenMP thread from the start: torch.set_num_threads(1) after import leaves the
        # pool's other threads spinning, which took half of a 2-core machine from two parallel runs.
        self.env = {} if threads is None else {v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    def _start(self):
        ctx = multiprocessing.get_context("spawn")  # fork would copy the parent's oneDNN/OpenMP state
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child_conn, self.setup, self.args), daemon=True)
        with _environment(**self.env):  # read by OpenMP when the child imports torch, before any code runs
            self.proc.start()
        child_conn.close()
        kind, value = self._receive("while starting")
        if kind != "ready":
            self.close()
            raise KDError(value.strip())

    def _receive(self, when: str):
        proc = self.proc  # __exit__ may drop it meanwhile (an interrupted sweep stops its children)
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            proc.join()
            cause = exit_cause(proc.exitcode)
            self.proc = None
            if when == "while starting":
                raise KDError(f"{cause} {when}.") from None
            raise RunFailed(cause) from None

    def __call__(self, config):
        if self.proc is None:
            self._start()
        self.conn.send(config)
        kind, value = self._receive("during the run")
        if kind == "failed":
            raise RunFailed(value)
        return value

    def close(self):
        if self.proc is not None:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(timeout=10)
            if self.proc.is_alive():
                self.proc.kill()
            self.proc = None

    def __enter__(self):
        self._start()  # set-up problems (missing data) are said before any run is announced
        return self

    def __exit__(self, *exc):
        proc = self.proc  # the thread waiting on its run drops self.proc when the child exits
        if exc[0] is not None and proc is not None:  # interrupted: stop the run in flight, as Ctrl-C does
            # SIGTERM, which _serve turns into a KeyboardInterrupt (SIGINT is ignored by background jobs): the
            # child exits cleanly, its semaphores released; one that does not within 10 s is killed
            proc.terminate()
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
            self.proc = None
        self.close()
