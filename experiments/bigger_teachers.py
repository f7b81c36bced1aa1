"""Bigger models are not better teachers (Cho & Hariharan, "On the Efficacy of Knowledge Distillation",
ICCV 2019, Sec. 4).

Grow the teacher in depth and in width, train each (cached), and distil the same student from each at the
usual temperature and at a higher one, with a student trained from labels alone as reference.

    bash experiments/bigger_teachers.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
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
import seaborn as sns

from experiments import cho_common
from kd import analysis, harness
from kd.analysis import Outputs
from kd.run import distill_on_pool

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
RULE = {"alpha": 0.05, "temperature": VERDICT_TEMPERATURE}
PROFILES = cho_common.PROFILES


def grid(p: dict, seeds: int) -> list[dict]:
    conditions = [("scratch", None, 1.0, {})]
    for t in p["teachers"]:
        for temperature in TEMPERATURES:
            conditions.append((f"{t['label']} T={temperature:g}", t, 1.0,
                               {"loss_options": {**p["loss_options"], "temperature": temperature}}))
    return cho_common.configs(NAME, p, seeds, conditions)


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis


def series_labels(p: dict, series: str) -> list[str]:
    """The teachers of one series (depth or width), smallest first (the profile lists them by size)."""
    return [t["label"] for t in p["teachers"] if series in t["series"]]


def series_table(rows: pd.DataFrame, p: dict, series: str, temperature: float) -> pd.DataFrame:
    labels = series_labels(p, series)
    part = rows[rows.condition.isin([f"{label} T={temperature:g}" for label in labels])]
    s = analysis.summarise(part, ["teacher_label"])
    extra = part.groupby("teacher_label")[["teacher_params", "teacher_test_top1", "final_train_kd"]].mean()
    s = s.merge(extra.reset_index(), on="teacher_label").sort_values("teacher_params")
    return s.assign(series=series, temperature=temperature)


def verdict_for(rows: pd.DataFrame, p: dict, temperature: float = VERDICT_TEMPERATURE) -> tuple[str, dict]:
    """The rule, fixed before the runs: per-seed paired differences of the students' test top-1 (seed k
    distils from teacher seed k % 2 of every size, so the seeds' spread holds the teachers' variance), 95% t
    intervals, Holm's correction over every comparison below together (alpha 0.05), at T = 4: in each series
    (depth, width), the largest teacher's student against each smaller teacher's student.
    reproduced: in both series, the largest teacher's student is worse than at least one smaller teacher's.
    not reproduced: in some series, the largest teacher's student is better than the smallest teacher's and
    worse than none (bigger is better).
    inconclusive: anything else, and any verdict outside the paper's regime (see the regime block)."""
    acc = analysis.metric_of(rows, "condition")
    at = lambda label: acc(f"{label} T={temperature:g}")  # noqa: E731
    judged = {}
    for series in ("depth", "width"):
        *smaller, largest = series_labels(p, series)
        for label in smaller:
            judged[f"{series}: {largest} vs {label}"] = analysis.contrast(at(largest), at(label))
    c = analysis.decide(judged, RULE["alpha"])
    verdicts = []
    for series in ("depth", "width"):
        outcomes = [x.outcome for name, x in c.items() if name.startswith(series + ":")]
        if "worse" in outcomes:
            verdicts.append("reproduced")
        elif outcomes[0] == "better" and "worse" not in outcomes:  # the first: against the smallest
            verdicts.append("not reproduced")
        else:
            verdicts.append("inconclusive")
    if "not reproduced" in verdicts:
        return "not reproduced", c
    return ("reproduced" if verdicts == ["reproduced"] * 2 else "inconclusive"), c


def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    tables = [series_table(rows, p, series, t) for series in ("depth", "width") for t in TEMPERATURES]
    summary = pd.concat(tables)
    analysis.write_csv(summary, out.summary)
    largest = f"{series_labels(p, 'depth')[-1]} T={VERDICT_TEMPERATURE:g}"  # the slowest teacher to converge
    met, regime = analysis.regime(rows[rows.condition == largest], p["regime"], largest)
    lines = []
    for temperature in TEMPERATURES:
        verdict, c = verdict_for(rows, p, temperature)
        if temperature == VERDICT_TEMPERATURE:
            judged = verdict
        lines.append(analysis.verdict_line(f"T={temperature:g}" + ("" if temperature == VERDICT_TEMPERATURE
                                                                   else " (shown, not judged)"), verdict, c))
    overall = judged if met else "inconclusive"
    acc = analysis.metric_of(rows, "condition")

    def vs_largest(row) -> str:
        biggest = series_labels(p, row.series)[-1]
        if row.teacher_label == biggest:
            return ""
        t = f" T={row.temperature:g}"
        return analysis.ci_cell(analysis.contrast(acc(biggest + t), acc(row.teacher_label + t)))

    scratch = rows[rows.condition == "scratch"].final_test_top1
    table = pd.DataFrame({"series": summary.series, "T": summary.temperature, "teacher": summary.teacher_label,
                          "teacher params": summary.teacher_params.astype(int),
                          "teacher top-1 (mean of 2 seeds)": summary.teacher_test_top1.round(2),
                          "student final train KD term": summary.final_train_kd.round(4),
                          "student top-1 (mean ± std)": analysis.accuracy_cells(summary),
                          "largest teacher's student minus this, paired [95% CI]": [
                              vs_largest(r) for r in summary.itertuples()]})
    analysis.write_table(
        out, TITLE, CLAIM, PAPER, table, overall, analysis.rule_of(verdict_for),
        analysis.evidence([regime], lines, "the six of each line",
                          "checked on the largest teacher of the depth series, seed 0, and its students")
        + f"\n\nScratch student (labels only): {analysis.fmt(scratch.mean(), scratch.std(), len(scratch))}. "
          "The KD term is kd_weight * T^2 KL at the end of training, averaged over the last epoch's batches.\n\n"
        + cho_common.unconfirmed(p))
    plot(rows, summary, scratch, out)
    return overall


def plot(rows: pd.DataFrame, summary: pd.DataFrame, scratch: pd.Series, out: Outputs):
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
                   title=f"{series}: student accuracy (mean ± 2 SE over seeds and teacher seeds)")
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
