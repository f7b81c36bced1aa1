"""Early-stopped teachers make better teachers (Cho & Hariharan, "On the Efficacy of Knowledge
Distillation", ICCV 2019, Sec. 6).

Distil the same student from checkpoints of one teacher taken at several epochs of its own training
(the teacher cache keeps them) and from the fully trained teacher.

    bash experiments/early_stopped_teachers.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import pandas as pd

from experiments import cho_common
from kd import analysis, harness

NAME = "early_stopped_teachers"
TITLE = "Early-stopped teachers make better teachers"
CLAIM = ("A large teacher taken from an early epoch of its training (before it converges) makes a better "
         "student than the same teacher fully trained.")
PAPER = ("CIFAR-10 and ImageNet: every early-stopped teacher gave a better student than its fully trained "
         "counterpart (no numbers recovered: we compare the sign).")

# ------------------------------------------------------------------------------------------ the grid
PROFILES = {
    "smoke": {**cho_common.PROFILES["smoke"], "teacher_label": "resnet14 x0.5", "epochs": [1, 2],
              "verdict_epoch": 2},
    "cpu": {**cho_common.PROFILES["cpu"], "teacher_label": "resnet32", "epochs": [2, 4, 6], "verdict_epoch": 4},
    "paper": {**cho_common.PROFILES["paper"], "teacher_label": "resnet110", "epochs": [60, 120, 180],
              "verdict_epoch": 120},
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


run = harness.distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
def verdict_for(rows: pd.DataFrame, p: dict) -> tuple[str, dict]:
    """The rule, fixed before any result was seen: differences within two standard errors are noise.
    reproduced: the student of the teacher stopped at the profile's verdict epoch is better than the
    student of the fully trained teacher. not reproduced: it is worse. inconclusive: within noise."""
    full = rows[rows.condition.str.endswith("(fully trained)")].final_test_top1
    comps = {c: analysis.compare(part.final_test_top1, full) for c, part in rows.groupby("condition", sort=False)
             if not c.endswith("(fully trained)")}
    outcome = comps[f"teacher at epoch {p['verdict_epoch']}"].outcome
    return {"better": "reproduced", "worse": "not reproduced"}.get(outcome, "inconclusive"), comps


def report(rows: pd.DataFrame, p: dict, out: harness.Outputs) -> str:
    summary = analysis.summarise(rows, ["condition"])
    teacher_acc = rows.groupby("condition", sort=False).teacher_test_top1.first().reset_index()
    summary = summary.merge(teacher_acc, on="condition")
    summary.to_csv(out.summary, index=False)
    verdict, comps = verdict_for(rows, p)
    table = pd.DataFrame({"teacher": summary.condition, "teacher top-1": summary.teacher_test_top1.round(2),
                          "student top-1 (mean ± std)": analysis.accuracy_cells(summary)})
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, verdict,
                        f"Teacher {p['teacher_label']}; the verdict uses its epoch-{p['verdict_epoch']} checkpoint. "
                        + analysis.rule_of(verdict_for),
                        "Each early teacher vs the fully trained one (student top-1, two standard errors): "
                        + "; ".join(f"{k} {c}" for k, c in comps.items()))
    plot(rows, summary, p, out)
    return verdict


def plot(rows: pd.DataFrame, summary: pd.DataFrame, p: dict, out: harness.Outputs):
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
