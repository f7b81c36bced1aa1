"""Bad input over the CLI and every experiment script, as a table: each case must exit non-zero with one
paragraph that names the problem, no traceback, nothing written or changed on disk, and no training."""
import importlib

import pytest
import torch

from kd import cli, harness, run, teachers
from kd.datasets import DEBIAN_FASHION_MNIST, FMNIST_FILES
from tests.test_harness import EXPERIMENTS

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
    for name in EXPERIMENTS:  # runs.csv files that pandas cannot parse, or that are not ours
        folder = root / "corrupt" / name / "smoke"
        folder.mkdir(parents=True)
        (folder / "runs.csv").write_text("run_id,status\nabc,done\nhalf a row,written,by,a,crash\n")
        folder = root / "foreign" / name / "smoke"
        folder.mkdir(parents=True)
        (folder / "runs.csv").write_text("a,b\n1,2\n")
    monkeypatch.setenv("KD_CACHE", str(root / "cache"))
    monkeypatch.delenv("KD_DATA", raising=False)
    return root


def state(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
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
]

EXPERIMENT_CASES = [(name, args, words) for name in EXPERIMENTS for args, words in [
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--data-dir", W("missing")], "does not exist"),
    (["--results-root", W("corrupt")], "is damaged and cannot be read"),
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
]


def attempt(call, capsys):
    try:
        code = call()
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def check(code, out, err, words):
    assert code not in (0, None), (code, err)
    assert words in err, err
    assert "Traceback" not in err + out and "\n\n" not in err.strip(), err
    assert not any(w in err for w in ("training teacher", " epoch 1/", "[1/")), err  # no training started


@pytest.mark.parametrize("args, words", CLI_CASES, ids=[" ".join(a)[:60] for a, _ in CLI_CASES])
def test_cli(args, words, place, capsys, monkeypatch):
    for trains in (run, teachers):  # what the CLI trains through
        monkeypatch.setattr(trains, "fit", lambda *a, **k: pytest.fail("training started"))
    args = [a.replace("{W}", str(place)) for a in args]
    if "--results" not in args:
        args += ["--results", str(place / "results")]
    before = state(place)
    check(*attempt(lambda: cli.main(args), capsys), words)
    assert state(place) == before


@pytest.mark.parametrize("name, args, words", EXPERIMENT_CASES,
                         ids=[f"{n} {' '.join(a)}"[:60] for n, a, _ in EXPERIMENT_CASES])
def test_experiment(name, args, words, place, capsys):
    module = importlib.import_module(f"experiments.{name}")
    args = [a.replace("{W}", str(place)) for a in args]
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
    assert {n for n, _, _ in EXPERIMENT_CASES} == set(EXPERIMENTS)  # every experiment script


def test_a_shorter_cifar_run_moves_the_recipe_milestones(capsys):
    args = cli.build_parser().parse_args(["train", "--model", "resnet8", "--dataset", "cifar100", "--epochs", "24"])
    assert cli.recipe_from_args(args).milestones == (15, 18, 21)
    assert "moves the cifar100 recipe's step milestones [150, 180, 210]" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["train", "--model", "resnet8", "--dataset", "cifar100", "--epochs", "1"])
    assert cli.recipe_from_args(args).milestones == (1,)
