"""Run records: one CSV row per run (config, final and best-epoch metrics, wall time, samples, seed, device,
git commit, command) and one per-epoch history CSV per run. Rows are appended under a file lock by
rewriting the file atomically, so a killed run never leaves half a row and parallel runs never interleave.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent


def run_id(config: dict) -> str:
    """A run's identity: the hash of its full config (what resume matches on)."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.cache
def git_commit() -> str:
    """HEAD of this repo, with '-dirty' when tracked files differ from it, read once per process (at its
    first call, when a run starts): the code a process runs is what it loaded then, whatever is edited
    while it runs."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu ({torch.get_num_threads()} threads, {model})"


def command_line() -> str:
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = json.dumps(v) if isinstance(v, (list, tuple)) else v
    return out


def make_row(config: dict, result: dict, seed: int, device: torch.device, extra: dict | None = None) -> dict:
    """The CSV row of one finished run."""
    row = {"run_id": run_id(config), "status": "done", **flatten(config),
           **{f"final_{k}": v for k, v in result["final"].items()},
           **{f"best_{k}": v for k, v in result["best"].items()},
           "wall_s": result["wall_s"], "samples": result["samples"],
           "teacher_forwards": result["teacher_forwards"], "seed": seed, "device": device_name(device),
           "git_commit": git_commit(), "command": command_line(),
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
    return row


def benchmark_row(benchmark: str, device: torch.device, **fields) -> dict:
    """A benchmark's CSV row: its measurements plus the device, commit and command that produced them."""
    return {"run_id": run_id({"benchmark": benchmark, "time": time.time()}), "status": "done",
            "benchmark": benchmark, **fields, "device": device_name(device), "git_commit": git_commit(),
            "command": command_line()}


def _atomic_write(path: Path, write):
    """write(tmp_path) then rename over `path`: readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_save(obj, path: Path):
    _atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _atomic_write_csv(df: pd.DataFrame, path: Path):
    _atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def append_row(path: Path, row: dict):
    """Add a row (new columns allowed) to a CSV, replacing any earlier row with the same run_id."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        old = read_rows(path)
        if "run_id" in old:
            old = old[old["run_id"] != row["run_id"]]
        new = pd.DataFrame([row])
        _atomic_write_csv(new if old.empty else pd.concat([old, new], ignore_index=True), path)


def read_rows(path: Path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame()


def write_history(path: Path, history: list[dict]):
    _atomic_write_csv(pd.DataFrame(history), Path(path))
