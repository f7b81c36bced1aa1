"""Bad input over the CLI and every experiment script, as a table: each case must exit non-zero with one
paragraph that names the problem, no traceback, nothing written or changed on disk, and no training. A case
is (arguments, words the message must contain[, environment variables]); damaged state (a results folder,
a dataset, a published teacher) is made by the fixture. Issue 36's classes each have cases here: damaged
state and odd environments before compute, launchers, options in range; what can only fail later (a disk
that fills up, SIGTERM, two sweeps at once) is tested after the table."""
import errno
import gzip
import importlib
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd

import pytest
import torch

from kd import cli, harness, records, run, teachers
from kd.analysis import Outputs
from kd.datasets import DEBIAN_FASHION_MNIST, FMNIST_FILES
from tests.test_harness import EXPERIMENTS

REPO = records.REPO

TINY = ["--subset-fraction", "0.01", "--epochs", "1"]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """Files the cases point at, under one folder whose whole state is compared before and after."""
    root = tmp_path / "world"
    (root / "empty").mkdir(parents=True)
    (root / "results").mkdir()
    damaged = root / "damaged"
    damaged.mkdir()
    for name in FMNIST_FILES:
        raw = (DEBIAN_FASHION_MNIST / (name + ".gz")).read_bytes()
        (damaged / (name + ".gz")).write_bytes(raw[: len(raw) // 3] if "t10k-images" in name else raw)
    (root / "junk.pt").write_text("not a checkpoint")
    torch.save({"model": "resnet8", "epochs": 10}, root / "foreign.pt")
    for split, at in (("train", 5), ("t10k", 7)):  # a label out of the 10 classes; the rest linked, unchanged
        labels = root / f"labels-{split}"
        labels.mkdir()
        for name in FMNIST_FILES:
            if name.startswith(f"{split}-labels"):
                raw = bytearray(gzip.open(DEBIAN_FASHION_MNIST / (name + ".gz")).read())
                raw[8 + at] = 12 if split == "train" else 255
                (labels / name).write_bytes(bytes(raw))
            else:
                (labels / (name + ".gz")).symlink_to(DEBIAN_FASHION_MNIST / (name + ".gz"))
    published = root / "published"  # a published teacher whose weights no longer match their recorded hash
    shutil.copytree(REPO / "results" / "teachers" / "resnet20-06b4abd0b4a7", published / "resnet20-06b4abd0b4a7")
    weights = published / "resnet20-06b4abd0b4a7" / "final.pt"
    weights.write_bytes(weights.read_bytes()[:-100])
    for tree in ("nothing/train", "nothing/val", "no-images/train/cat", "no-images/val/cat", "no-val/train/cat"):
        (root / "folders" / tree).mkdir(parents=True)
    for name in EXPERIMENTS:  # runs.csv files that pandas cannot parse, that are not ours, or damaged
        for kind, text in (("corrupt", "run_id,status\nabc,done\nhalf a row,written,by,a,crash\n"),
                           ("foreign", "a,b\n1,2\n"), ("twice", "run_id,status\nabc,failed\nabc,done\n"),
                           ("lost", "run_id,status\nabc,done\n")):  # lost: a finished run without its history
            folder = root / kind / name / "smoke"
            folder.mkdir(parents=True)
            (folder / "runs.csv").write_text(text)
        (root / "folder" / name / "smoke" / "runs.csv").mkdir(parents=True)  # a folder where the file goes
    monkeypatch.setenv("KD_CACHE", str(root / "cache"))
    monkeypatch.delenv("KD_DATA", raising=False)
    return root


def state(root):
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns,
                                       p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
            for p in sorted(root.rglob("*"))}


def W(*parts):
    """A path under the fixture's folder, filled in per case."""
    return "{W}/" + "/".join(parts)


# (arguments, words the message must contain)
CLI_CASES = [
    (["train", "--model", "resnet9000"], "Unknown model 'resnet9000'"),
    (["train", "--model", "resnet8", "--dataset", "mnist9"], "Unknown dataset 'mnist9'"),
    (["train", "--model", "resnet8", "--epochs", "0"], "epochs must be >= 1"),
    (["train", "--model", "resnet8", "--epochs", "-3"], "epochs must be >= 1"),
    (["train", "--model", "resnet8", "--lr", "nan"], "lr must be a finite number"),
    (["train", "--model", "resnet8", "--lr", "inf"], "lr must be a finite number"),
    (["train", "--model", "resnet8", "--lr", "0"], "learning rate must be > 0"),
    (["train", "--model", "resnet8", "--momentum", "1.5"], "momentum must be in [0, 1)"),
    (["train", "--model", "resnet8", "--weight-decay", "-1"], "weight decay must be >= 0"),
    (["train", "--model", "resnet8", "--weight-decay", "nan"], "weight_decay must be a finite number"),
    (["train", "--model", "resnet8", "--batch-size", "0"], "batch size must be >= 1"),
    (["train", "--model", "resnet8", "--subset-fraction", "1.5"], "--subset-fraction must be in (0, 1]"),
    (["train", "--model", "resnet8", "--subset-fraction", "0"], "--subset-fraction must be in (0, 1]"),
    (["train", "--model", "resnet8", "--subset-fraction", "nan"], "--subset-fraction must be in (0, 1]"),
    (["train", "--model", "resnet8", "--width", "0"], "width multiplier must be > 0"),
    (["train", "--model", "resnet8", "--width", "nan"], "width multiplier must be > 0"),
    (["train", "--model", "resnet18", "--width", "0.5"], "applies to the CIFAR zoo only"),
    (["train", "--model", "resnet8", "--schedule", "linear"], "invalid choice: 'linear'"),
    (["train", "--model", "resnet8", "--epochs", "10", "--milestones", "50"], "milestones must lie in [1, 10]"),
    (["train", "--model", "resnet8", "--epochs", "10", "--warmup-epochs", "20"], "warm-up epochs"),
    (["train", "--model", "resnet8", "--eval-every", "0"], "eval_every must be >= 1"),
    (["train", "--model", "resnet8", "--label-smoothing", "1.5"], "--label-smoothing must be in [0, 1)"),
    (["train", "--model", "resnet8", "--seed", "abc"], "invalid int value: 'abc'"),
    (["train", "--model", "resnet8", "--device", "cuda"], "no CUDA GPU is visible"),
    (["train", "--model", "resnet8", "--device", "tpu"], "Unknown device 'tpu'"),
    (["train", "--model", "resnet8", "--data-dir", W("missing")], "does not exist"),
    (["train", "--model", "resnet8", "--data-dir", W("empty")], "Fashion-MNIST was not found in"),
    (["train", "--model", "resnet8", "--data-dir", W("damaged")], "t10k-images-idx3-ubyte.gz is damaged"),
    (["train", "--model", "resnet8", "--dataset", "cifar100", "--data-dir", W("missing"), "--epochs", "1"],
     "does not exist"),
    (["train", "--model", "resnet8", "--results", "/proc/kd-results"], "Cannot write results in /proc/kd-results"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--loss", "mse"], "Unknown loss 'mse'"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--temperature", "0"], "temperature must be > 0"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--temperature", "nan"], "must be finite"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--temperature", "inf"], "must be finite"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--kd-weight", "-1"], "kd_weight must be >= 0"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--loss", "dist", "--alpha", "1"],
     "takes no option alpha"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--epochs", "5", "--stop-epoch", "9"],
     "stop epoch must be between 1 and the last epoch (5)"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--loss", "ce"], "needs a distillation loss"),
    (["distill", "--student", "resnet8", "--teacher", "resnet9000"], "Unknown model 'resnet9000'"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--teacher-epochs", "0", *TINY],
     "epochs must be >= 1"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--teacher-subset-fraction", "2"],
     "--teacher-subset-fraction must be in (0, 1]"),
    (["distill", "--student", "resnet8"], "Give the teacher as a model name"),
    (["distill", "--student", "resnet8", "--teacher", "resnet8", "--teacher-ckpt", W("junk.pt"), *TINY],
     "could not be read as PyTorch"),  # --teacher names the model of a bare state_dict: this file is none
    (["distill", "--student", "resnet8", "--teacher-ckpt", "/nonexistent.pt"], "does not exist"),
    (["distill", "--student", "resnet8", "--teacher-ckpt", W("junk.pt"), *TINY], "could not be read as PyTorch"),
    (["distill", "--student", "resnet8", "--teacher-ckpt", W("foreign.pt"), *TINY], "holds no state_dict of tensors"),
    (["distill", "--config", W("junk.pt")], "could not be read as YAML"),
    # issue 36: seeds out of numpy's range, odd environments, labels and folders the data cannot be read from
    (["train", "--model", "resnet8", "--seed", "-1"], "--seed must be in [0, 4294967295]"),
    (["train", "--model", "resnet8", "--seed", str(2**32)], "--seed must be in [0, 4294967295]"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--seed", str(2**64)], "--seed must be in"),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", "--teacher-seed", "-5"], "--teacher-seed must be in"),
    (["train", "--model", "resnet8", *TINY], "Cannot write the cache ($KD_CACHE", {"KD_CACHE": W("junk.pt")}),
    (["train", "--model", "resnet8", *TINY], "Cannot write the cache ($KD_CACHE", {"KD_CACHE": "/proc/kd-cache"}),
    (["distill", "--student", "resnet8", "--teacher", "resnet20", *TINY], "KD_LOGIT_CACHE_GB='abc' must be a number",
     {"KD_LOGIT_CACHE_GB": "abc"}),
    (["train", "--model", "resnet8", *TINY], "KD_LOGIT_CACHE_GB='-1' must be a number", {"KD_LOGIT_CACHE_GB": "-1"}),
    (["train", "--model", "resnet8", *TINY], "KD_LOGIT_CACHE_GB='nan' must be a number", {"KD_LOGIT_CACHE_GB": "nan"}),
    (["train", "--model", "resnet8", *TINY], "KD_LOGIT_CACHE='yes' must be 0", {"KD_LOGIT_CACHE": "yes"}),
    (["train", "--model", "resnet8", "--data-dir", W("labels-train"), *TINY], "1 label(s) outside the 10 classes"),
    (["train", "--model", "resnet8", "--data-dir", W("labels-t10k"), *TINY], "test split of the dataset"),
    (["train", "--model", "resnet8", *TINY], "1 label(s) outside the 10 classes", {"KD_DATA": W("labels-train")}),
    (["train", "--model", "resnet8", *TINY], "(from $KD_DATA) does not exist", {"KD_DATA": W("missing")}),
    (["train", "--model", "resnet18", "--dataset", "imagefolder", "--data-dir", W("folders", "nothing"), *TINY],
     "Couldn't find any class folder"),
    (["train", "--model", "resnet18", "--dataset", "imagefolder", "--decode", "once", "--data-dir",
      W("folders", "nothing"), *TINY], "Couldn't find any class folder"),
    (["train", "--model", "resnet8", "--decode", "once", *TINY], "--decode once is for imagefolder data"),
    (["train", "--model", "resnet18", "--dataset", "imagefolder", "--data-dir", W("folders", "no-images"), *TINY],
     "Found no valid file for the classes cat"),
    (["train", "--model", "resnet18", "--dataset", "imagefolder", "--data-dir", W("folders", "no-val"), *TINY],
     "no-val/val is missing"),
]

EXPERIMENT_CASES = [(name, args, words) for name in EXPERIMENTS for args, words in [
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--data-dir", W("missing")], "does not exist"),
    (["--results-root", W("corrupt")], "is damaged and cannot be read"),
    # issue 36: damaged state in results, named with how to repair it
    (["--results-root", W("twice")], "holds 1 run id(s) more than once (abc)"),
    (["--results-root", W("lost")], "1 finished run(s) in"),
    (["--results-root", W("folder")], "is a folder, not the results file of this grid"),
]] + [
    ("kdas_finding3", ["--seeds", "-2"], "--seeds must be >= 1"),
    ("kdas_finding3", ["--jobs", "0"], "--jobs must be >= 1"),
    ("kdas_finding3", ["--seeds", "nan"], "invalid int value: 'nan'"),
    ("kdas_finding3", ["--profile", "huge"], "invalid choice: 'huge'"),
    ("kdas_finding3", ["--data-dir", W("empty")], "Fashion-MNIST was not found in"),
    ("kdas_finding3", ["--data-dir", W("damaged")], "is damaged"),
    ("kdas_finding3", ["--device", "cuda"], "no CUDA GPU is visible"),
    ("kdas_finding3", ["--dry-run", "--plot-only"], "not allowed with argument"),
    ("kdas_finding3", ["--sync-bn"], "--sync-bn synchronises batch norm across the processes of one run"),
    ("kdas_finding3", ["--plot-only"], "No completed runs"),
    ("kdas_finding3", ["--results-root", W("foreign")], "lacks the column(s) run_id, status"),
    ("eskd", ["--results-root", "/proc/kd-results"], "Cannot write results in /proc/kd-results"),
    ("bigger_teachers", ["--figures-root", "/proc/kd-figures"], "Cannot write results in /proc/kd-figures"),
    # issue 36: options in range and launchers, checked before another finding's rows are reused or written
    ("kdas_finding3", ["--seeds", "1000000"], "more than 1000 seeds per condition"),
    ("eskd", ["--jobs", "0"], "--jobs must be >= 1"),
    ("eskd", ["--cpus-per-gpu", "0"], "--cpus-per-gpu must be >= 1"),
    ("kdas_finding3", ["--runs-per-gpu", "0"], "--runs-per-gpu must be >= 1"),
    ("eskd", ["--device", "cuda"], "no CUDA GPU is visible"),
    ("kdas_finding4", ["--launcher", "slurm", "--partition", "gpu"], "sbatch, which is not installed here"),
    ("eskd", ["--launcher", "submitit-local", "--time", "0"], "--time must be >= 1"),
    ("dist_stronger_teacher", ["--launcher", "submitit-local", "--gpus-per-run", "-1"], "--gpus-per-run must be >= 0"),
    ("fidelity_ensembles", ["--launcher", "submitit-local", "--array-parallelism", "0"], "--array-parallelism must be"),
    # odd environments and data, before any teacher trains
    ("kdas_finding3", [], "Cannot write the cache ($KD_CACHE", {"KD_CACHE": W("junk.pt")}),
    ("bigger_teachers", [], "Cannot write the cache ($KD_CACHE", {"KD_CACHE": "/proc/kd-cache"}),
    ("kdas_finding4", [], "KD_LOGIT_CACHE_GB='abc' must be a number", {"KD_LOGIT_CACHE_GB": "abc"}),
    ("kdas_finding3", ["--data-dir", W("labels-train")], "1 label(s) outside the 10 classes"),
    ("vanillakd_data_scale", [], "1 label(s) outside the 10 classes", {"KD_DATA": W("labels-train")}),
    # a damaged published teacher and an empty cache: one error, not every run recorded failed
    ("kdas_finding1", ["--profile", "cpu", "--seeds", "1"], "The published teacher", {"KD_TEACHERS": W("published")}),
    ("kdas_finding2", ["--profile", "cpu", "--seeds", "1"], "is damaged", {"KD_TEACHERS": W("published")}),
]


def attempt(call, capsys):
    try:
        code = call()
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def filled(args, env, root, monkeypatch):
    """A case's arguments with the fixture's folder filled in, and its environment variables set."""
    for k, v in env.items():
        monkeypatch.setenv(k, v.replace("{W}", str(root)))
    return [a.replace("{W}", str(root)) for a in args]


def check(code, out, err, words):
    assert code not in (0, None), (code, err)
    assert words in err, err
    assert "Traceback" not in err + out and "\n\n" not in err.strip(), err
    assert not any(w in err for w in ("training teacher", " epoch 1/", "[1/")), err  # no training started


CLI_CASES = [(*c, {})[:3] for c in CLI_CASES]  # (arguments, words, environment)
EXPERIMENT_CASES = [(*c, {})[:4] for c in EXPERIMENT_CASES]  # (name, arguments, words, environment)


@pytest.mark.parametrize("args, words, env", CLI_CASES,
                         ids=[" ".join(a)[:60] + "".join(f" {k}" for k in e) for a, _, e in CLI_CASES])
def test_cli(args, words, env, place, capsys, monkeypatch):
    for trains in (run, teachers):  # what the CLI trains through
        monkeypatch.setattr(trains, "fit", lambda *a, **k: pytest.fail("training started"))
    args = filled(args, env, place, monkeypatch)
    if "--results" not in args:
        args += ["--results", str(place / "results")]
    before = state(place)
    check(*attempt(lambda: cli.main(args), capsys), words)
    assert state(place) == before


@pytest.mark.parametrize("name, args, words, env", EXPERIMENT_CASES,
                         ids=[f"{n} {' '.join(a)}"[:60] + "".join(f" {k}" for k in e) for n, a, _, e in EXPERIMENT_CASES])
def test_experiment(name, args, words, env, place, capsys, monkeypatch):
    module = importlib.import_module(f"experiments.{name}")
    args = filled(args, env, place, monkeypatch)
    roots = {"--results-root": str(place / "results"), "--figures-root": str(place / "figures")}
    for flag, default in roots.items():
        if flag not in args:
            args += [flag, default]
    before = state(place)
    check(*attempt(lambda: harness.main(module, ["--profile", "smoke", "--device", "cpu", *args]), capsys),
          words)
    assert state(place) == before


def test_the_table_holds_at_least_40_cases():
    assert len(CLI_CASES) + len(EXPERIMENT_CASES) >= 40
    assert {n for n, *_ in EXPERIMENT_CASES} == set(EXPERIMENTS)  # every experiment script


ALL_CASES = [(["--jobs", "0"], "--jobs must be >= 1"), (["--device", "cuda"], "no CUDA GPU is visible"),
             (["--launcher", "slurm"], "--launcher slurm needs --partition")]


@pytest.mark.parametrize("args, words", ALL_CASES, ids=[" ".join(a) for a, _ in ALL_CASES])
def test_all_findings_say_bad_options_once_and_write_no_results_page(args, words, place, capsys):
    from experiments import all as every
    before = state(place)
    check(*attempt(lambda: every.main(["--profile", "smoke", "--results-root", str(place / "results"), *args]),
                   capsys), words)
    assert state(place) == before


def test_a_paper_profile_without_its_data_creates_nothing(place, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")
    monkeypatch.setattr("torchvision.datasets.CIFAR100.download", offline)
    module = importlib.import_module("experiments.kdas_finding3")
    before = state(place)
    check(*attempt(lambda: harness.main(module, ["--profile", "paper", "--device", "cpu", "--jobs", "1",
                                                 "--results-root", str(place / "results")]), capsys),
          "CIFAR-100 was not found in")
    assert state(place) == before  # no $KD_CACHE/data left behind (nor ~/.cache/kd/data outside KD_CACHE)


def test_plot_only_over_rows_without_a_metric_column_says_so(place, capsys):
    from experiments import kdas_finding3 as f3
    p = dict(f3.PROFILES["smoke"])
    configs = harness.planned_runs(f3, p, 1)
    out = Outputs(place / "results" / "kdas_finding3" / "smoke", place / "f.png")
    rows = pd.DataFrame({"run_id": [c.run_id for c in configs], "status": "done", "condition": [c.condition for c in configs],
                         "seed": 1, "rule_id": harness.rule_id(f3, configs)})
    records.write_csv(rows, out.runs)
    for c in configs:
        records.write_csv(pd.DataFrame({"epoch": [1, 2], "test_top1": [10.0, 11.0]}), out.history(c.run_id))
    before = state(place)
    check(*attempt(lambda: harness.main(f3, ["--profile", "smoke", "--seeds", "1", "--plot-only", "--results-root",
                                             str(place / "results"), "--figures-root", str(place)]), capsys),
          "lack the column 'final_test_top1'")
    assert state(place) == before


# ------------------------------------------------------------------------------------------ what can only fail later
def test_a_disk_that_fills_up_mid_sweep_ends_in_one_paragraph_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    from experiments import kdas_finding4 as f4
    argv = ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root", str(tmp_path),
            "--figures-root", str(tmp_path)]
    real, written = records.write_history, []

    def fills_up(path, history):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        real(path, history)
    monkeypatch.setattr(records, "write_history", fills_up)
    code, out, err = attempt(lambda: harness.main(f4, argv, isolate=False), capsys)
    assert code == 1 and "No space left on device on " in err and "re-run the same command" in err
    assert "Traceback" not in err and len(err.strip().splitlines()[-1]) > 100  # the last line: one paragraph
    first = pd.read_csv(tmp_path / "kdas_finding4" / "smoke" / "runs.csv")
    assert first.status.tolist() == ["done", "done"]  # the rows finished before are intact
    monkeypatch.setattr(records, "write_history", real)
    assert harness.main(f4, argv, isolate=False) == 0
    rows = pd.read_csv(tmp_path / "kdas_finding4" / "smoke" / "runs.csv")
    assert len(rows) == 6 and set(rows.status) == {"done"}
    pd.testing.assert_frame_equal(rows.iloc[:2][first.columns], first)  # resumed: the first two never re-ran


def sweep(tmp_path, *options):
    return subprocess.Popen([sys.executable, "-m", "experiments.kdas_finding4", "--profile", "smoke", "--seeds", "1",
                             "--device", "cpu", "--results-root", str(tmp_path / "r"), "--figures-root",
                             str(tmp_path / "f"), *options], cwd=REPO, stderr=subprocess.PIPE, text=True)


def running(pid: str, wait_s: float = 15.0) -> bool:
    """Whether a process still runs after up to `wait_s` seconds (a zombie has ended)."""
    stat = pathlib.Path(f"/proc/{pid}/stat")
    for _ in range(int(wait_s * 10)):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        except (FileNotFoundError, ProcessLookupError):
            return False
        time.sleep(0.1)
    return True


def test_sigterm_stops_the_run_processes_records_the_runs_in_flight_and_says_so(tmp_path):
    proc = sweep(tmp_path, "--jobs", "2")
    lines = []
    for line in proc.stderr:  # wait for the second run to start
        lines.append(line)
        if line.startswith("[2/6]"):
            break
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    proc.send_signal(signal.SIGTERM)
    err = "".join(lines) + proc.stderr.read()
    assert proc.wait(timeout=60) == 130 and "Traceback" not in err
    assert "interrupted (Ctrl-C or SIGTERM)" in err and "Re-run the same command to resume" in err
    for pid in children:  # every run process (and multiprocessing's resource tracker) ends with the sweep
        assert running(pid) is False, pid
    rows = pd.read_csv(tmp_path / "r" / "kdas_finding4" / "smoke" / "runs.csv")
    announced = {line.split("(")[-1].strip(" )\n") for line in err.splitlines() if line.startswith("[")}
    assert set(rows.run_id) == announced  # each run started has its row: done, or interrupted
    assert "interrupted" in set(rows.status) and set(rows.status) <= {"done", "interrupted"}


def test_two_sweeps_of_one_grid_at_once_train_each_run_once(tmp_path):
    procs = [sweep(tmp_path, "--jobs", "1") for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all("Traceback" not in e for e in errs)
    trained = [line for e in errs for line in e.splitlines() if line.startswith("[") and "kdas_finding4" in line]
    assert len(trained) == 6  # six runs, each trained by one of the two
    rows = pd.read_csv(tmp_path / "r" / "kdas_finding4" / "smoke" / "runs.csv")
    assert len(rows) == 6 and set(rows.status) == {"done"}


def test_a_shorter_cifar_run_moves_the_recipe_milestones(capsys):
    args = cli.build_parser().parse_args(["train", "--model", "resnet8", "--dataset", "cifar100", "--epochs", "24"])
    assert cli.recipe_from_args(args).milestones == (15, 18, 21)
    assert "moves the cifar100 recipe's step milestones [150, 180, 210]" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["train", "--model", "resnet8", "--dataset", "cifar100", "--epochs", "1"])
    assert cli.recipe_from_args(args).milestones == (1,)
