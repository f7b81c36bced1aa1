"""Stanton et al., "Does Knowledge Distillation Really Work?" (NeurIPS 2021), claims 1 and 2: distillation
helps the student's accuracy, yet the student does not match its teacher, and from larger ensembles it
gets more accurate without agreeing more.

Self-distil one architecture from ensembles of 1, 3 and 5 independently seeded teachers (soft loss only,
T = 4), beside the student trained alone; accuracy, agreement, KL and ECE on the test set and on the
training data.

    bash experiments/fidelity_ensembles.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
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

from experiments import fidelity_common as common
from experiments.settings import pool_size, seed_range
from kd import analysis, harness
from kd.analysis import Outputs
from kd.config import base_config
from kd.run import distill_on_pool

NAME = "fidelity_ensembles"
TITLE = "Fidelity: students do not match their teachers, even from ensembles"
CLAIM = ("Knowledge distillation improves the student's accuracy, but the student rarely matches its teacher: "
         "top-1 agreement and KL stay far from perfect, even in self-distillation and even on the training "
         "data; distilled from ensembles of 1, 3 and 5 teachers, the student grows more accurate while its "
         "agreement with the teacher does not rise.")
PAPER = ("CIFAR-100, ResNet-56 teachers and student, T = 4, soft loss only: test agreement around 80-86% for "
         "ensembles of 1 to 5 teachers, not rising with the ensemble while the student's accuracy does (a "
         "figure: the shape is compared, not the numbers).")

# ------------------------------------------------------------------------------------------ the grid
MEMBERS = (1, 3, 5)
PROFILES = common.PROFILES
RULE = {"alpha": 0.05, "perfect_pct": 99.0, "margin_pp": 0.5}


def label(members: int) -> str:
    return f"{members} teacher{'s' if members > 1 else ''}"


def grid(p: dict, seeds: int) -> list[dict]:
    conditions = [("scratch", {"loss": "ce", "loss_options": {}}, None)]
    conditions += [(label(k), {"loss": "kd", "loss_options": dict(common.KD_SOFT)}, k) for k in MEMBERS]
    out = []
    for name, fields, members in conditions:
        q = {**p, "teacher_members": members or 1}
        for seed in seed_range(p, seeds):
            c = base_config(NAME, q, name, seed, train_size=pool_size(p), **fields)
            c["members"] = members or 0
            if members is None:
                c["teacher"] = None
            out.append(c)
    return out


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
def verdict_for(rows: pd.DataFrame) -> tuple[str, dict]:
    """The rule, fixed before the runs: per-seed paired differences, 95% t intervals, Holm's correction over
    the six comparisons below (alpha 0.05); agreement is top-1 agreement with the teacher (the ensemble's
    mean-probability prediction), "train" on the clean training pool; 99% stands for a perfect match.
    reproduced: the 1-teacher student is more accurate than the scratch student, its test and its train
    agreement are both below 99%, the 5-teacher student is more accurate than the 1-teacher one, and its test
    agreement is shown not higher than the 1-teacher student's by more than 0.5 pp (non-inferiority of 1 vs 5).
    not reproduced: the 1-teacher student is less accurate than scratch, or its test or train agreement is
    above 99%, or the 5-teacher student is less accurate than the 1-teacher one, or agrees more with its
    teacher.
    inconclusive: anything else, and any verdict outside the paper's regime (see the regime block)."""
    acc, agree = common.metric(rows, "final_test_top1"), common.metric(rows, "final_test_agreement")
    train_agree = common.metric(rows, "final_train_clean_agreement")
    one, five, perfect, margin = label(1), label(5), RULE["perfect_pct"], RULE["margin_pp"]
    c = analysis.decide({
        "test top-1: 1 teacher vs scratch": analysis.contrast(acc(one), acc("scratch")),
        f"test agreement, 1 teacher vs {perfect:g}%": analysis.contrast(agree(one),
                                                                       analysis.constant(agree(one), perfect)),
        f"train agreement, 1 teacher vs {perfect:g}%": analysis.contrast(
            train_agree(one), analysis.constant(train_agree(one), perfect)),
        "test top-1: 5 vs 1 teachers": analysis.contrast(acc(five), acc(one)),
        f"test agreement: 1 vs 5 teachers, margin {margin:g} pp": analysis.contrast(agree(one), agree(five), margin),
        "test agreement: 5 vs 1 teachers": analysis.contrast(agree(five), agree(one))}, RULE["alpha"])
    kd_gain, test_perfect, train_perfect, ens_gain, not_more, more = (x.outcome for x in c.values())
    if kd_gain == "worse" or "better" in (test_perfect, train_perfect) or ens_gain == "worse" or more == "better":
        return "not reproduced", c
    if (kd_gain, test_perfect, train_perfect, ens_gain, not_more) == ("better", "worse", "worse", "better",
                                                                       "not worse"):
        return "reproduced", c
    return "inconclusive", c


def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    conditions = list(dict.fromkeys(rows.condition))
    summary = analysis.summarise(rows, "condition").merge(
        rows.groupby("condition", sort=False)[["members", "teacher_test_top1"]].first().reset_index(), on="condition")
    analysis.write_csv(summary, out.summary)
    met, regime = analysis.regime(rows[rows.members == 1], p["regime"], label(1))
    verdict, c = verdict_for(rows)
    overall = verdict if met else "inconclusive"
    table = common.table(rows, conditions)
    table.insert(1, "teacher test top-1", [f"{x:.2f}" if x == x else "" for x in summary.teacher_test_top1])
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, overall, analysis.rule_of(verdict_for),
                         f"Student and teachers: {p['student']} x{p.get('student_width', 1.0):g}, "
                         f"{pool_size(p):,} training images; teachers seeded 0..4, students "
                         f"{p['first_seed']}..; soft loss only at T = 4. Teacher regime: the ensemble's first "
                         "member (its history); its train top-1 is the ensemble's.\n\n"
                         + analysis.evidence([regime], [analysis.verdict_line("ensembles", verdict, c)], "the six"))
    plot(rows, summary, out)
    return overall


def plot(rows: pd.DataFrame, summary: pd.DataFrame, out: Outputs):
    fig, (acc_ax, agree_ax, kl_ax) = plt.subplots(1, 3, figsize=(15, 4.5))
    distilled = rows[rows.members > 0]
    sns.pointplot(distilled, x="members", y="final_test_top1", errorbar=("ci", 95), seed=0, ax=acc_ax, label="student")
    teachers = summary[summary.members > 0]
    acc_ax.plot(range(len(teachers)), teachers.teacher_test_top1, "k^--", label="teacher (ensemble)")
    analysis.baseline(acc_ax, summary.set_index("condition").loc["scratch"], "scratch student", "--")
    acc_ax.set(xlabel="teachers in the ensemble", ylabel="test top-1 (%)", title="Accuracy")
    acc_ax.legend(fontsize=8)
    for column, name, ax in (("agreement", "agreement (%)", agree_ax), ("kl_teacher_student", "KL(p_t || p_s)", kl_ax)):
        long = pd.concat([distilled.assign(split=split, value=distilled[f"final_{prefix}_{column}"])
                          for split, prefix in (("test", "test"), ("train", "train_clean"))])
        sns.pointplot(long, x="members", y="value", hue="split", errorbar=("ci", 95), seed=0, ax=ax, dodge=0.2)
        ax.set(xlabel="teachers in the ensemble", ylabel=name, title=f"Fidelity: {name}")
    agree_ax.axhline(RULE["perfect_pct"], color="k", linewidth=1, linestyle=":", label="99%")
    sns.despine(fig)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
