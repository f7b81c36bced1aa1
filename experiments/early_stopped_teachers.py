"""Early-stopped teachers make better teachers (Cho & Hariharan, "On the Efficacy of Knowledge
Distillation", ICCV 2019, Sec. 6).

Distil the same student from checkpoints of one teacher taken at several epochs of its own training
(the teacher cache keeps them) and from the fully trained teacher.

    bash experiments/early_stopped_teachers.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
"""
from __future__ import annotations

import sys

if not __package__:  # `python experiments/<name>.py`: run it as `python -m experiments.<name>` does
    import pathlib
    import runpy
    sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])
    runpy.run_module(f"experiments.{pathlib.Path(__file__).stem}", run_name="__main__", alter_sys=True)
    sys.exit()

import matplotlib.pyplot as plt
import pandas as pd

from experiments import cho_common
from kd import analysis, harness
from kd.analysis import Outputs
from kd.run import distill_on_pool

RULE = {"alpha": 0.05}
NAME = "early_stopped_teachers"
TITLE = "Early-stopped teachers make better teachers"
CLAIM = ("A large teacher taken from an early epoch of its training (before it converges) makes a better "
         "student than the same teacher fully trained.")
PAPER = ("CIFAR-10 and ImageNet: every early-stopped teacher gave a better student than its fully trained "
         "counterpart (no numbers recovered: we compare the sign).")

# ------------------------------------------------------------------------------------------ the grid
PROFILES = {
    "smoke": {**cho_common.PROFILES["smoke"], "teacher_label": "resnet14 x0.5", "epochs": [1, 2]},
    # v2: snapshots at 25 / 50 / 75% of the largest depth teacher's 120 epochs (kept by the sweep, which
    # trains the teacher once with every snapshot its runs need), two teacher seeds
    "cpu": {**cho_common.PROFILES["cpu"], "teacher_label": "resnet56", "epochs": [30, 60, 90]},
    "paper": {**cho_common.PROFILES["paper"], "teacher_label": "resnet110", "epochs": [60, 120, 180]},
}


def grid(p: dict, seeds: int) -> list[dict]:
    t = next(t for t in p["teachers"] if t["label"] == p["teacher_label"])
    last = p["teacher_recipe"].epochs
    conditions = []
    for epoch in [*p["epochs"], last]:
        label = f"teacher at epoch {epoch}" + (" (fully trained)" if epoch == last else "")
        conditions.append((label, t, 1.0, {}))
    configs = cho_common.configs(NAME, p, seeds, conditions)
    for c in configs:
        epoch = int(c["condition"].split()[3])
        c["teacher"] = {**c["teacher"], "epoch": None if epoch == last else epoch}
    return configs


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
def verdict_for(rows: pd.DataFrame, p: dict) -> tuple[str, dict]:
    """The rule, fixed before the runs: per-seed paired differences of the students' test top-1 (seed k
    distils from teacher seed k % 2, at every snapshot), 95% t intervals, Holm's correction over the
    comparisons of each early snapshot's student with the fully trained teacher's (alpha 0.05).
    reproduced: at least one early snapshot gives a better student than the fully trained teacher, and none
    a worse one.
    not reproduced: no early snapshot gives a better student, and at least one a worse one.
    inconclusive: anything else, and any verdict outside the paper's regime (see the regime block)."""
    acc = analysis.metric_of(rows, "condition")
    full = next(c for c in dict.fromkeys(rows.condition) if c.endswith("(fully trained)"))
    c = analysis.decide({f"teacher at epoch {e} vs fully trained": analysis.contrast(
        acc(f"teacher at epoch {e}"), acc(full)) for e in p["epochs"]}, RULE["alpha"])
    outcomes = [x.outcome for x in c.values()]
    if "better" in outcomes and "worse" not in outcomes:
        return "reproduced", c
    if "worse" in outcomes and "better" not in outcomes:
        return "not reproduced", c
    return "inconclusive", c


def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    summary = analysis.summarise(rows, ["condition"])
    teacher_acc = rows.groupby("condition", sort=False).teacher_test_top1.mean().reset_index()
    summary = summary.merge(teacher_acc, on="condition")
    analysis.write_csv(summary, out.summary)
    full = summary.condition.iloc[-1]
    met, regime = analysis.regime(rows[rows.condition == full], p["regime"], full)
    verdict, c = verdict_for(rows, p)
    overall = verdict if met else "inconclusive"
    acc = analysis.metric_of(rows, "condition")
    vs = [analysis.contrast(acc(x), acc(full)) if x != full else None for x in summary.condition]
    table = pd.DataFrame({"teacher": summary.condition,
                          "teacher top-1 (mean of its seeds)": summary.teacher_test_top1.round(2),
                          "student top-1 (mean ± std)": analysis.accuracy_cells(summary),
                          "minus the fully trained teacher's student, paired [95% CI]": [
                              analysis.ci_cell(v) for v in vs]})
    analysis.write_table(
        out, TITLE, CLAIM, PAPER, table, overall, analysis.rule_of(verdict_for),
        f"Teacher {p['teacher_label']}, snapshots of its {p['teacher_recipe'].epochs}-epoch schedule.\n\n"
        + analysis.evidence([regime], [analysis.verdict_line("snapshots", verdict, c)], "all",
                            "checked on the fully trained teacher, seed 0, and its students")
        + "\n\n" + cho_common.unconfirmed(p))
    plot(rows, summary, p, out)
    return overall


def plot(rows: pd.DataFrame, summary: pd.DataFrame, p: dict, out: Outputs):
    epochs = summary.condition.str.split().str[3].astype(int)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar(epochs, summary["mean"], yerr=2 * summary.se.fillna(0), marker="o", capsize=3,
                label="student (mean ± 2 SE)")
    seeds = rows.assign(epoch=rows.condition.str.split().str[3].astype(int))
    ax.scatter(seeds.epoch, seeds.final_test_top1, alpha=0.35, color="C0")
    twin = ax.twinx()
    twin.plot(epochs, summary.teacher_test_top1, marker="s", color="C3", label="teacher")
    twin.set_ylabel("teacher test top-1 (%)", color="C3")
    ax.set(xlabel=f"epoch of {p['teacher_label']}'s training the teacher was taken from",
           ylabel="student test top-1 (%)", title="Early-stopped teachers")
    ax.legend(loc="lower right", fontsize=8)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
