"""The experiment harness through KDAS Finding 3: smoke end to end, resume, --plot-only, --dry-run, and the
paper profile's models and recipe on generated CIFAR-100-shaped tensors (generated here, in the test only)."""
import os
import re
import socket

import pandas as pd
import pytest
import torch

from experiments import kdas_finding3 as f3
from experiments.findings import FINDINGS
from kd import analysis, harness, records
from kd.analysis import Outputs
from kd.config import RunConfig
from kd.data import TensorData
from kd.run import Context


def main(tmp_path, *args, isolate=True):
    return harness.main(f3, ["--profile", "smoke", "--device", "cpu", "--results-root", str(tmp_path / "results"),
                             "--figures-root", str(tmp_path / "figures"), *args], isolate)


def out_of(tmp_path):
    return Outputs(tmp_path / "results" / f3.NAME / "smoke", tmp_path / "figures" / f"{f3.NAME}_smoke.png")


def test_smoke_end_to_end_csv_figure_and_table_agree(tmp_path, capsys):
    assert main(tmp_path) == 0
    out = out_of(tmp_path)
    rows = pd.read_csv(out.runs)
    assert len(rows) == 10 * 2 and set(rows.status) == {"done"} and rows.run_id.is_unique
    assert {"git_commit", "command", "seed", "device", "wall_s", "samples", "kl_tg_min", "kl_tg_max"} <= set(rows)
    assert out.figure.stat().st_size > 10_000
    table = out.table.read_text()
    for condition, part in rows.groupby("condition"):
        line = next(x for x in table.splitlines() if f"| {condition} " in x)
        mean, std = part.final_test_top1.mean(), part.final_test_top1.std()
        assert f"{mean:.2f} ± {std:.2f} (n=2)" in line
    verdict = re.search(r"\*\*Verdict: (.+?)\.\*\*", table).group(1)
    assert verdict in ("reproduced", "not reproduced", "inconclusive", "budget-dependent at this scale",
                       "premise not met at this scale")
    assert capsys.readouterr().out.strip().endswith(f"verdict: {verdict}")
    summary = pd.read_csv(out.summary)
    assert summary.set_index("condition")["n"].eq(2).all()
    for r in rows.itertuples():  # each run's history ends where its row says
        history = pd.read_csv(out.history(r.run_id))
        assert history.test_top1.iloc[-1] == pytest.approx(r.final_test_top1)
    bands = rows.groupby("condition").first()
    assert bands.loc["low", "kl_tg_max"] <= bands.loc["high", "kl_tg_max"]
    assert bands.loc["low", "kl_tg_median"] <= bands.loc["medium", "kl_tg_median"] <= bands.loc["high", "kl_tg_median"]
    assert bands.loc["all", "train_size"] == 2 * bands.loc["random", "train_size"]
    assert bands.loc["medium", "samples"] == bands.loc["all", "samples"]  # a half trains as many steps as all
    assert bands.loc["medium (2x budget)", "samples"] == 2 * bands.loc["medium", "samples"]  # the budget arm
    assert rows.rule_id.nunique() == 1 and f"Rule `{rows.rule_id[0]}`" in table


def test_rows_of_another_rule_are_shown_but_not_judged(tmp_path, monkeypatch, capsys):
    assert main(tmp_path, "--seeds", "1", isolate=False) == 0
    out = out_of(tmp_path)
    before = pd.read_csv(out.runs)
    monkeypatch.setattr(f3, "RULE", {**f3.RULE, "margin_pp": 0.25})  # a changed rule, after the runs
    assert main(tmp_path, "--seeds", "1", "--plot-only", isolate=False) == 0
    table = out.table.read_text()
    assert "**Verdict: none.**" in table and f"rule {before.rule_id[0]}, not the current one" in table
    assert capsys.readouterr().out.strip().endswith("verdict: none (rule changed)")
    pd.testing.assert_frame_equal(pd.read_csv(out.runs), before)  # old rows are kept, never re-judged


def test_resume_after_an_interrupted_sweep(tmp_path, monkeypatch):
    real_run, calls = f3.run, []

    def interrupted(config, ctx):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(config.condition)
        return real_run(config, ctx)

    monkeypatch.setattr(f3, "run", interrupted)
    assert main(tmp_path, "--seeds", "1", isolate=False) == 130  # in this process, so that the patched run is used
    rows = pd.read_csv(out_of(tmp_path).runs)
    assert rows.status.tolist() == ["done"] * 3 + ["interrupted"]  # the run in flight is said, with no numbers
    assert rows.final_test_top1.isna().tolist() == [False] * 3 + [True]

    calls.clear()
    monkeypatch.setattr(f3, "run", lambda config, ctx: calls.append(config.condition) or real_run(config, ctx))
    assert main(tmp_path, "--seeds", "1", isolate=False) == 0
    done = rows[rows.status == "done"]
    assert len(calls) == 7 and not set(calls) & set(done.condition)  # only the missing and interrupted runs
    assert len(pd.read_csv(out_of(tmp_path).runs)) == 10


def test_failed_runs_are_recorded_and_redone(tmp_path, monkeypatch):
    real_run = f3.run

    def flaky(config, ctx):
        if config.condition == "random":
            raise RuntimeError("simulated crash")
        return real_run(config, ctx)

    monkeypatch.setattr(f3, "run", flaky)
    assert main(tmp_path, "--seeds", "1", isolate=False) == 1
    rows = pd.read_csv(out_of(tmp_path).runs)
    assert rows.set_index("condition").loc["random", "status"] == "failed"
    monkeypatch.setattr(f3, "run", real_run)
    assert main(tmp_path, "--seeds", "1", isolate=False) == 0
    rows = pd.read_csv(out_of(tmp_path).runs)
    assert len(rows) == 10 and set(rows.status) == {"done"}


def test_plot_only_and_dry_run_train_nothing(tmp_path, monkeypatch, capsys):
    assert main(tmp_path, "--plot-only") == 2  # nothing to plot yet: a clear error
    assert "without --plot-only first" in capsys.readouterr().err
    assert main(tmp_path, "--dry-run") == 0
    listing = capsys.readouterr().out
    assert "20 runs, 0 done, 20 to run" in listing and "medium (2x budget)" in listing and "estimated" in listing
    assert not (tmp_path / "results").exists()

    assert main(tmp_path, "--seeds", "1", isolate=False) == 0
    out = out_of(tmp_path)
    out.figure.unlink()
    out.table.unlink()
    monkeypatch.setattr(f3, "run", lambda config, ctx: pytest.fail("--plot-only must not train"))
    assert main(tmp_path, "--seeds", "1", "--plot-only") == 0
    assert out.figure.exists() and out.table.exists()
    assert main(tmp_path, "--seeds", "1", "--dry-run") == 0
    assert "10 runs, 10 done, 0 to run" in capsys.readouterr().out

    # a run missing because a live sweep is training it: --plot-only says so, and what to do
    rows = pd.read_csv(out.runs)
    rows.iloc[1:].to_csv(out.runs, index=False)
    claim = out.results / "resume" / f"{rows.run_id.iloc[0]}.claim"
    claim.parent.mkdir(parents=True, exist_ok=True)
    claim.write_text(f"{socket.gethostname()} {os.getpid()}")  # this process: alive
    main(tmp_path, "--seeds", "1", "--plot-only")
    err = capsys.readouterr().err
    assert "1 of 10 runs" in err and "a live sweep is training 1 of them now" in err
    claim.write_text(f"{socket.gethostname()} 999999999")  # a stale claim: no such process
    main(tmp_path, "--seeds", "1", "--plot-only")
    assert "without --plot-only to finish the grid" in capsys.readouterr().err


def test_bad_input_before_compute(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(f3, "run", lambda config, ctx: pytest.fail("must not train"))
    assert main(tmp_path, "--seeds", "0") == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    monkeypatch.setitem(f3.PROFILES, "smoke", {**f3.PROFILES["smoke"], "loss_options": {"temperature": -1.0}})
    assert main(tmp_path) == 2
    assert "temperature must be > 0" in capsys.readouterr().err


def test_paper_profile_models_and_recipe_on_generated_cifar100_tensors(tmp_path):
    """CIFAR-100 itself is not on this machine: the paper profile's models, loss and recipe run a few
    steps on random CIFAR-100-shaped tensors created here, explicitly."""
    p = f3.PROFILES["paper"]
    assert p["dataset"] == "cifar100" and p["recipe"].epochs == p["teacher_recipe"].epochs == 240
    assert (p["recipe"].lr, p["recipe"].batch_size, p["recipe"].milestones) == (0.05, 64, (150, 180, 210))
    assert p["recipe"].weight_decay == 5e-4 and p["loss_options"] == {"temperature": 4.0, "ce_weight": 0.1,
                                                                        "kd_weight": 0.9}
    g = torch.Generator().manual_seed(0)
    fake = TensorData("generated-cifar100-shaped", torch.randint(0, 256, (128, 32, 32, 3), dtype=torch.uint8,
                                                                 generator=g),
                      torch.arange(128) % 4, torch.randint(0, 256, (100, 32, 32, 3), dtype=torch.uint8,
                                                            generator=g), torch.arange(100), 100,
                      (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), pad=4)
    configs = [c for c in f3.grid(p, 1) if c["condition"] in ("all", "per_class:medium")]
    assert {c["pair"] for c in configs} == {"resnet56->resnet20", "resnet32x4->resnet8x4"}
    out = Outputs(tmp_path, tmp_path / "fig.png")
    ctx = Context({**p, "dataset": "generated"}, "cpu", data=fake, out=out, log=lambda m: None)
    for config in configs:
        RunConfig.from_dict(config).check()
        short = {**config["recipe"], "epochs": 1, "milestones": []}  # a few steps, same lr/batch/wd
        config = {**config, "pool_fraction": 1.0, "recipe": short,
                  "teacher": {**config["teacher"], "recipe": short}}
        result = f3.run(RunConfig.from_dict(config), ctx)
        assert torch.isfinite(torch.tensor(result["final"]["train_kd"]))
        assert result["samples"] == (128 if config["condition"] == "all" else 64)
    assert records.read_rows(tmp_path / "kl_tg_resnet56_to_resnet20.csv").shape[0] == 128


EXPERIMENTS = list(FINDINGS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_lists_its_cpu_grid(name, tmp_path, capsys):
    import importlib
    module = importlib.import_module(f"experiments.{name}")
    assert harness.main(module, ["--dry-run", "--device", "cpu", "--results-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    n = len(module.grid(module.PROFILES["cpu"], module.PROFILES["cpu"]["seeds"]))
    assert f"{n} runs, 0 done, {n} to run" in out and "estimated" in out
    assert len({records.run_id(c) for c in module.grid(module.PROFILES["paper"], 3)}) == len(
        module.grid(module.PROFILES["paper"], 3))  # every paper run has its own identity


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_verdict_rule_says_what_noise_is(name):
    import importlib
    rule = analysis.rule_of(importlib.import_module(f"experiments.{name}").verdict_for)
    noise = ("two standard errors are noise", "paired difference")  # v1 rule; v2 / v3 (paired, Holm) rules
    assert any(words in rule for words in noise) and "not reproduced:" in rule, rule


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_paper_grid_is_valid_and_its_short_form_too(name):
    """Every paper config passes the checks a sweep makes before any compute (a shortened control once asked
    for LR milestones past its last epoch), and so does the few-epoch form the fixture tests run."""
    import importlib

    from tests.paper_fixtures import short_profile
    module = importlib.import_module(f"experiments.{name}")
    assert harness.planned_runs(module, dict(module.PROFILES["paper"]), 1)
    assert harness.planned_runs(module, short_profile(module.PROFILES["paper"]), 1)


def test_published_teachers_let_a_fresh_clone_distil_from_the_same_weights(tmp_path, monkeypatch, capfd):
    """--publish-teachers copies what the grid distils from (here two teachers: one recipe, and the same
    recipe stopped early) into results/teachers; a machine with an empty cache then trains no teacher and
    gets the same rows."""
    from experiments import early_stopped_teachers as est

    def run(root, *args):
        return harness.main(est, ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--jobs", "1",
                                  "--results-root", str(root), "--figures-root", str(root), *args])
    assert run(tmp_path / "a", "--publish-teachers") == 1  # nothing trained yet: said, nothing written
    assert "2 teachers not published" in capfd.readouterr().err and not (tmp_path / "published").exists()
    assert run(tmp_path / "a") == 0
    assert "training teacher" in "".join(capfd.readouterr())  # the children's output too (capfd, not capsys)
    assert run(tmp_path / "a", "--publish-teachers") == 0
    assert capfd.readouterr().out.count("published teacher") == 2
    published = pd.read_csv(tmp_path / "published" / "teachers.csv")
    assert sorted(published.epochs) == [1, 3]

    monkeypatch.setenv("KD_CACHE", str(tmp_path / "empty cache"))
    assert run(tmp_path / "b", "--dry-run") == 0
    assert "after 0 teacher jobs" in capfd.readouterr().out
    assert run(tmp_path / "b") == 0
    assert "training teacher" not in "".join(capfd.readouterr())
    first, second = (pd.read_csv(tmp_path / r / est.NAME / "smoke" / "runs.csv").sort_values("run_id")
                     for r in ("a", "b"))
    assert list(first.final_test_top1) == list(second.final_test_top1)


def test_out_puts_results_and_figure_elsewhere_and_a_results_root_keeps_its_figure_beside_it(tmp_path):
    """--out DIR holds a whole run (DIR/results, DIR/figures); a run into another results root never writes
    its figure into the repo's figures/."""
    from experiments import kdas_finding4 as f4
    args = ["--profile", "smoke", "--seeds", "1", "--device", "cpu"]
    assert harness.main(f4, [*args, "--out", str(tmp_path / "mine")], isolate=False) == 0
    assert (tmp_path / "mine" / "results" / f4.NAME / "smoke" / "table.md").is_file()
    assert (tmp_path / "mine" / "figures" / f"{f4.NAME}_smoke.png").is_file()
    parsed = harness.parse_args(f4, [*args, "--results-root", str(tmp_path / "other" / "results")])
    assert parsed.figures_root == tmp_path / "other" / "figures"
    assert harness.parse_args(f4, args).figures_root == records.REPO / "figures"


def test_a_v3_rule_id_hashes_the_code_that_decides(monkeypatch):
    """Protocol v3: the regime checks and the verdict's code are part of the rule, as its text is."""
    configs = harness.planned_runs(f3, dict(f3.PROFILES["smoke"]), 1)
    before = harness.rule_id(f3, configs)

    def another_check(rows):
        return "reproduced"
    monkeypatch.setattr(f3, "RULE_CODE", f3.RULE_CODE[:-1] + (another_check,))
    assert harness.rule_id(f3, configs) != before
    monkeypatch.setattr(f3, "RULE_CODE", ())
    assert harness.rule_id(f3, configs) != before
