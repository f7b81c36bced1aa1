"""Bigger models are not better teachers (Cho & Hariharan, "On the Efficacy of Knowledge Distillation",
ICCV 2019, Sec. 4).

Grow the teacher in depth and in width, train each (cached), and distil the same student from each at the
usual temperature and at a higher one, with a student trained from labels alone as reference.

    bash experiments/bigger_teachers.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from experiments import cho_common
from kd import analysis, harness

NAME = "bigger_teachers"
TITLE = "Bigger models are not better teachers"
CLAIM = ("Growing the teacher in depth or width raises the teacher's accuracy, but the student's accuracy "
         "rises and then falls; a higher temperature does not change that. The student cannot mimic a large "
         "teacher: its KD loss grows with the teacher's size.")
PAPER = ("CIFAR-10 and ImageNet: teacher accuracy rises with depth and width while the student peaks at an "
         "intermediate teacher; the same at higher temperature (no numbers recovered: we compare shapes).")

# ------------------------------------------------------------------------------------------ the grid
TEMPERATURES = (4.0, 16.0)
VERDICT_TEMPERATURE = 4.0
PROFILES = cho_common.PROFILES


def grid(p: dict, seeds: int) -> list[dict]:
    conditions = [("scratch", None, 1.0, {})]
    for t in p["teachers"]:
        for temperature in TEMPERATURES:
            conditions.append((f"{t['label']} T={temperature:g}", t, 1.0,
                               {"loss_options": {**p["loss_options"], "temperature": temperature}}))
    return cho_common.configs(NAME, p, seeds, conditions)


run = harness.distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
def series_table(rows: pd.DataFrame, p: dict, series: str, temperature: float) -> pd.DataFrame:
    labels = [t["label"] for t in p["teachers"] if series in t["series"]]
    part = rows[rows.condition.isin([f"{label} T={temperature:g}" for label in labels])]
    s = analysis.summarise(part, ["teacher_label"])
    extra = part.groupby("teacher_label")[["teacher_params", "teacher_test_top1", "final_train_kd"]].mean()
    s = s.merge(extra.reset_index(), on="teacher_label").sort_values("teacher_params")
    return s.assign(series=series, temperature=temperature)


def verdict_for(rows: pd.DataFrame, s: pd.DataFrame) -> tuple[str, dict]:
    """The rule, fixed before any result was seen (differences within two standard errors are noise), on
    the students of one series of teachers ordered by size:
    reproduced: the best student comes from a teacher smaller than the largest, and the largest teacher's
    student is worse than that best one. not reproduced: the largest teacher gives the best student and it
    is better than the smallest teacher's student (bigger is better). inconclusive: anything else."""
    acc = analysis.metric_of(rows, "teacher_label")
    best = s.loc[s["mean"].idxmax(), "teacher_label"]
    smallest, largest = s.teacher_label.iloc[0], s.teacher_label.iloc[-1]
    comps = {f"largest ({largest}) vs best ({best})": analysis.compare(acc(largest), acc(best)),
             f"largest ({largest}) vs smallest ({smallest})": analysis.compare(acc(largest), acc(smallest))}
    facts = {"teacher accuracy rises": bool(s.teacher_test_top1.is_monotonic_increasing),
             "student KD loss grows": bool(s.final_train_kd.is_monotonic_increasing)}
    if best != largest and list(comps.values())[0].outcome == "worse":
        return "reproduced", {**comps, **facts}
    if best == largest and list(comps.values())[1].outcome == "better":
        return "not reproduced", {**comps, **facts}
    return "inconclusive", {**comps, **facts}


def report(rows: pd.DataFrame, p: dict, out: harness.Outputs) -> str:
    tables, lines, verdicts = [], [], []
    for series in ("depth", "width"):
        for temperature in TEMPERATURES:
            s = series_table(rows, p, series, temperature)
            part = rows[rows.condition.str.endswith(f"T={temperature:g}") & rows.teacher_label.isin(s.teacher_label)]
            v, facts = verdict_for(part, s)
            if temperature == VERDICT_TEMPERATURE:
                verdicts.append(v)
            lines.append(analysis.verdict_line(f"{series}, T={temperature:g}", v, facts))
            tables.append(s)
    summary = pd.concat(tables)
    summary.to_csv(out.summary, index=False)
    scratch = rows[rows.condition == "scratch"].final_test_top1
    table = pd.DataFrame({"series": summary.series, "T": summary.temperature, "teacher": summary.teacher_label,
                          "teacher params": summary.teacher_params.astype(int),
                          "teacher top-1": summary.teacher_test_top1.round(2),
                          "student final train KD term": summary.final_train_kd.round(4),
                          "student top-1 (mean ± std)": analysis.accuracy_cells(summary)})
    overall = analysis.combine(verdicts)
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, overall,
                        f"The verdict needs both series (depth, width) at T={VERDICT_TEMPERATURE:g} to agree; "
                        + analysis.rule_of(verdict_for),
                        "\n".join(lines) + f"\n\nScratch student (labels only): "
                        f"{analysis.fmt(scratch.mean(), scratch.std(), len(scratch))}. The KD term is "
                        f"kd_weight * T^2 KL at the end of training, averaged over the last epoch's batches.")
    plot(rows, summary, scratch, out)
    return overall


def plot(rows: pd.DataFrame, summary: pd.DataFrame, scratch: pd.Series, out: harness.Outputs):
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    for row_axes, series in zip(axes, ("depth", "width")):
        s = summary[summary.series == series]
        acc_ax, teach_ax, loss_ax = row_axes
        for temperature, part in s.groupby("temperature"):
            acc_ax.errorbar(part.teacher_params / 1e6, part["mean"], yerr=2 * part.se.fillna(0), marker="o",
                            capsize=3, label=f"student, T={temperature:g}")
            loss_ax.plot(part.teacher_params / 1e6, part.final_train_kd, marker="o", label=f"T={temperature:g}")
        acc_ax.axhline(scratch.mean(), color="k", linestyle="--", linewidth=1, label="scratch student")
        first = s[s.temperature == s.temperature.iloc[0]]
        teach_ax.plot(first.teacher_params / 1e6, first.teacher_test_top1, marker="s", color="C3")
        for x, y, label in zip(first.teacher_params / 1e6, first.teacher_test_top1, first.teacher_label):
            teach_ax.annotate(label, (x, y), fontsize=7, xytext=(3, -10), textcoords="offset points")
        acc_ax.set(xscale="log", xlabel="teacher parameters (M)", ylabel="student test top-1 (%)",
                   title=f"{series}: student accuracy (mean ± 2 SE)")
        teach_ax.set(xscale="log", xlabel="teacher parameters (M)", ylabel="teacher test top-1 (%)",
                     title=f"{series}: teacher accuracy")
        loss_ax.set(xscale="log", xlabel="teacher parameters (M)", ylabel="final train KD term",
                    title=f"{series}: how far the student is from the teacher")
        sizes = first.teacher_params / 1e6
        for ax in row_axes:  # ticks at the teachers' sizes: log-axis minor labels overlap on a short range
            ax.set_xticks(sizes, [f"{m:.2g}" for m in sizes])
            ax.minorticks_off()
        acc_ax.legend(fontsize=8)
        loss_ax.legend(fontsize=8)
    sns.despine(fig)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
