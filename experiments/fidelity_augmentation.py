"""Stanton et al., "Does Knowledge Distillation Really Work?" (NeurIPS 2021), claim 3: augmenting the
distillation data (MixUp above all) raises the student's fidelity on test data, while heavier augmentation
lowers it on the training data.

Self-distil from one teacher (the first member of fidelity_ensembles' ensembles, from the cache) on the same
pool under four policies for the distillation data: crop + flip (the baseline), + rotation, + MixUp, and all
combined; agreement with the teacher on the test set and on the clean training pool.

    bash experiments/fidelity_augmentation.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
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

NAME = "fidelity_augmentation"
TITLE = "Fidelity: augmenting the distillation data"
CLAIM = ("Augmenting the data the student is distilled on raises its fidelity to the teacher on test data, MixUp "
         "most of all, while heavier augmentation lowers its fidelity on the training data.")
PAPER = ("CIFAR-100, ResNet-56 self-distillation, T = 4: of crop + flip, vertical flip, colour jitter, their "
         "combination, MixUp and GAN samples, MixUp gives the highest test agreement, and the heavier policies "
         "the lowest train agreement (figures: the shape is compared, not the numbers).")

# ------------------------------------------------------------------------------------------ the grid
# The policies of the paper that make sense on grayscale images: its colour jitter has no colour to act on,
# and a vertical flip turns a shirt upside down, so rotation stands in for the geometric one (+-15 degrees,
# 7 keyed angles, so the teacher-logit cache stays exact). MixUp: alpha 1, one lambda per batch (the official
# code's mixup_data); its batches go through the teacher. Every policy keeps the baseline's crop and flip.
ROTATE, MIXUP = 15.0, 1.0
POLICIES = {"crop + flip": {}, "+ rotation": {"rotate": ROTATE}, "+ MixUp": {"mixup": MIXUP},
            "all combined": {"rotate": ROTATE, "mixup": MIXUP}}
PROFILES = common.PROFILES
RULE = {"alpha": 0.05}


def grid(p: dict, seeds: int) -> list[dict]:
    out = []
    for name, augment in POLICIES.items():
        for seed in seed_range(p, seeds):
            c = base_config(NAME, p, name, seed, train_size=pool_size(p), loss="kd",
                                    loss_options=dict(common.KD_SOFT))
            if augment:  # the baseline keeps the config (and run id) of a run without the option
                c["augment"] = dict(augment)
            c["policy"] = name
            out.append(c)
    return out


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
def verdict_for(rows: pd.DataFrame) -> tuple[str, dict]:
    """The rule, fixed before the runs: per-seed paired differences of top-1 agreement with the teacher (test
    set; "train" on the clean views of the training pool), 95% t intervals, Holm's correction over the three
    comparisons below (alpha 0.05).
    reproduced: the MixUp student agrees more with its teacher on test data than the crop + flip student and
    than the rotation student, and the all-combined student agrees less on the training data than the crop +
    flip student.
    not reproduced: the MixUp student agrees less on test data than the crop + flip or the rotation student,
    or the all-combined student agrees more on the training data than the crop + flip student.
    inconclusive: anything else, and any verdict outside the paper's regime (see the regime block)."""
    test, train = common.metric(rows, "final_test_agreement"), common.metric(rows, "final_train_clean_agreement")
    c = analysis.decide({
        "test agreement: + MixUp vs crop + flip": analysis.contrast(test("+ MixUp"), test("crop + flip")),
        "test agreement: + MixUp vs + rotation": analysis.contrast(test("+ MixUp"), test("+ rotation")),
        "train agreement: all combined vs crop + flip": analysis.contrast(train("all combined"),
                                                                          train("crop + flip"))}, RULE["alpha"])
    over_base, over_rotation, heavier = (x.outcome for x in c.values())
    if "worse" in (over_base, over_rotation) or heavier == "better":
        return "not reproduced", c
    if (over_base, over_rotation, heavier) == ("better", "better", "worse"):
        return "reproduced", c
    return "inconclusive", c


def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    conditions = [c for c in POLICIES if c in set(rows.condition)]
    summary = analysis.summarise(rows, "condition").merge(
        rows.groupby("condition", sort=False)[["teacher_test_top1", "samples", "teacher_forwards"]].mean()
        .reset_index(), on="condition")
    analysis.write_csv(summary, out.summary)
    met, regime = analysis.regime(rows, p["regime"], "crop + flip")
    verdict, c = verdict_for(rows)
    overall = verdict if met else "inconclusive"
    table = common.table(rows, conditions)
    table.insert(1, "augmentation", [", ".join(f"{k} {v:g}" for k, v in POLICIES[c].items()) or "crop + flip only"
                                     for c in conditions])
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, overall, analysis.rule_of(verdict_for),
                         f"Student and teacher: {p['student']} x{p.get('student_width', 1.0):g}, {pool_size(p):,} "
                         f"training images, soft loss only at T = 4; teacher test top-1 "
                         f"{rows.teacher_test_top1.iloc[0]:.2f} (trained with crop + flip). Rotation: one of 7 "
                         f"angles in +-{ROTATE:g} degrees per view; MixUp: alpha {MIXUP:g}, one lambda per batch, "
                         "partners a seeded permutation of the batch. Runs of a seed share the student's "
                         "initialisation and the crops and flips of every epoch. Train agreement: on the clean "
                         "views of the training pool.\n\n"
                         + analysis.evidence([regime], [analysis.verdict_line("augmentation", verdict, c)],
                                             "the three", which="the student check is the crop + flip student"))
    plot(rows, conditions, out)
    return overall


def plot(rows: pd.DataFrame, conditions: list[str], out: Outputs):
    fig, (agree_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    long = pd.concat([rows.assign(split=split, value=rows[f"final_{prefix}_agreement"])
                      for split, prefix in (("test", "test"), ("train", "train_clean"))])
    sns.pointplot(long, x="condition", y="value", hue="split", order=conditions, errorbar=("ci", 95), seed=0, dodge=0.2,
                  ax=agree_ax)
    agree_ax.set(xlabel="augmentation of the distillation data", ylabel="agreement with teacher (%)",
                 title="Train vs test agreement per policy")
    sns.pointplot(rows, x="condition", y="final_test_top1", order=conditions, errorbar=("ci", 95), seed=0, ax=acc_ax,
                  label="student")
    acc_ax.axhline(rows.teacher_test_top1.iloc[0], color="k", linestyle="--", linewidth=1, label="teacher")
    acc_ax.set(xlabel="augmentation of the distillation data", ylabel="test top-1 (%)", title="Accuracy")
    acc_ax.legend(fontsize=8)
    sns.despine(fig)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
