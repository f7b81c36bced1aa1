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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock

from kd.distributed import is_writer, rank_and_size
from kd.errors import KDError

REPO = Path(__file__).resolve().parent.parent


def config_hash(config: dict, length: int = 16) -> str:
    """A short stable hash of a config dict (key order does not matter): run ids, teacher cache keys."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:length]


def weights_sha256(state_dict: dict) -> str:
    """The SHA-256 of a model's weights: every tensor's name, dtype, shape and bytes, in name order. It names
    the weights, not the file they came in (a checkpoint's other fields, its pickling, do not count)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def run_id(config: dict) -> str:
    """A run's identity: the hash of its full config as a dict (what resume matches on)."""
    if not isinstance(config, dict):  # a typed config would hash as its repr: RunConfig.run_id hashes its dict
        raise TypeError(f"run_id hashes a config dict, not a {type(config).__name__}")
    return config_hash(config)


@functools.cache
def git_commit() -> str:
    """HEAD of this repo, with '-dirty' when tracked files other than results and figures differ from it,
    read once per process (at its first call, when a run starts): the code a process runs is what it
    loaded then, whatever is edited while it runs."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!results", ":!figures"],  # result files written meanwhile are not code
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    ranks = rank_and_size()[1]
    return f"{ranks} x {name}" if ranks > 1 else name  # torchrun: the run trained on this many processes


def _cpu_name() -> str:
    model, flags = platform.machine(), ""
    try:
        info = open("/proc/cpuinfo").read().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        flags = next(line for line in info if line.startswith("flags"))
    except (OSError, StopIteration):
        pass
    # oneDNN picks other kernels (and has had other bugs) with AVX-512: say which kind of CPU ran it
    isa = ", AVX-512" if " avx512f" in flags else ", no AVX-512" if flags else ""
    return f"cpu ({torch.get_num_threads()} threads, {model}{isa})"


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
           "wall_s": result["wall_s"], "cpu_s": result.get("cpu_s"), "samples": result["samples"],
           "teacher_forwards": result["teacher_forwards"], "seed": seed,
           "device": result.get("device") or device_name(device),
           "git_commit": git_commit(), "command": command_line(),
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
    return row


def benchmark_row(benchmark: str, device: torch.device, **fields) -> dict:
    """A benchmark's CSV row: its measurements plus the device, commit and command that produced them."""
    return {"run_id": run_id({"benchmark": benchmark, "time": time.time()}), "status": "done",
            "benchmark": benchmark, **fields, "device": device_name(device), "git_commit": git_commit(),
            "command": command_line()}


UMASK = os.umask(0o022)  # read once (os.umask sets it too: set it back)
os.umask(UMASK)


def atomic_write(path: Path, write):
    """write(tmp_path), flush it to the disk, then rename over `path`: readers see the old file or the new
    one, never half, and a power loss cannot leave an empty file under the final name. Under torchrun only
    rank 0 writes (every file of a run goes through here): the other ranks hold the same weights and rows."""
    if not is_writer():
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp's 0600 would hide rows from the group a Slurm folder is shared with
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself
        finally:
            os.close(folder)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cache_dir() -> Path:
    """Where teachers, their logit caches and downloaded datasets are kept: $KD_CACHE, default ~/.cache/kd."""
    return Path(os.environ.get("KD_CACHE", Path.home() / ".cache" / "kd"))


def check_writable(folder: Path, what: str = "results"):
    """Fail before any compute if files could not be written in `folder` (which may not exist yet)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise KDError(f"Cannot write {what} in {folder}: {probe} is a file, not a folder. Nothing was trained.")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise KDError(f"Cannot write {what} in {folder} ({exc.strerror} in {probe}). Nothing was trained; "
                      f"make the folder writable or choose another one.") from None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return f"{Path(path).stat().st_size} {h.hexdigest()}"


def sum_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".sha256")


class DamagedFile(KDError):
    """A cache file whose size and hash differ from those recorded when it was written."""


def atomic_save(obj, path: Path):
    """torch.save, atomically, with the file's size and SHA-256 written beside it (checked by load_saved)."""
    digest = []

    def write(tmp):
        torch.save(obj, tmp)
        digest.append(_digest(tmp))
    atomic_write(path, write)
    if digest:  # nothing was written where another rank writes (torchrun: rank 0 only)
        atomic_write(sum_path(path), lambda tmp: Path(tmp).write_text(digest[0]))


def check_saved(path: Path):
    """Raise DamagedFile unless `path` has the size and hash recorded beside it by atomic_save."""
    sums = sum_path(path)
    if not sums.is_file():
        raise DamagedFile(f"{path} has no record of its size and hash ({sums.name}): it was not written "
                          f"completely by this version of the code.")
    if _digest(path) != sums.read_text().strip():
        raise DamagedFile(f"{path} is damaged: its size or SHA-256 differs from the one recorded when it was "
                          f"written.")


def copy_saved(src: Path, dest: Path):
    """Copy a file written by atomic_save, with its size-and-hash record, after checking it against that
    record (DamagedFile if it differs); each of the two lands atomically."""
    check_saved(src)
    for a, b in ((src, dest), (sum_path(src), sum_path(dest))):
        copy_file(a, b)


def copy_file(src: Path, dest: Path):
    """Copy a file byte for byte; the copy lands atomically."""
    atomic_write(dest, lambda tmp: shutil.copyfile(src, tmp))


def load_saved(path: Path, map_location="cpu"):
    check_saved(path)
    return torch.load(path, map_location=map_location, weights_only=True)


def write_csv(df: pd.DataFrame, path: Path):
    """A CSV (a summary, a history, runs.csv), written atomically."""
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def append_row(path: Path, row: dict):
    """Add a row (new columns allowed) to a CSV, replacing any earlier row with the same run_id."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        old = read_rows(path)
        if "run_id" in old:
            old = old[old["run_id"] != row["run_id"]]
        new = pd.DataFrame([row])
        write_csv(new if old.empty else pd.concat([old, new], ignore_index=True), path)


def read_rows(path: Path, required: tuple = ()) -> pd.DataFrame:
    """A results CSV (empty if absent); a damaged one, or one without the `required` columns, is a KDError
    that leaves the file as it is."""
    path = Path(path)
    if not (path.exists() and path.stat().st_size):
        return pd.DataFrame()
    try:
        rows = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KDError(f"The results file {path} is damaged and cannot be read ({why}). Nothing was written "
                      f"or trained. Restore it (`git checkout -- {path}` for committed results) or move it "
                      f"aside (`mv {path} {path}.bad`) to start its grid afresh.") from None
    missing = [c for c in required if c not in rows]
    if missing:
        raise KDError(f"The results file {path} lacks the column(s) {', '.join(missing)} that every runs.csv "
                      f"has, so it is damaged or not ours. Nothing was written or trained. Restore it (`git "
                      f"checkout -- {path}` for committed results) or move it aside to start its grid afresh.")
    return rows


def write_text(path: Path, text: str):
    """A text file (a table, a results page), written atomically."""
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def write_history(path: Path, history: list[dict]):
    write_csv(pd.DataFrame(history), Path(path))
