"""Bigger models are not better teachers (Cho & Hariharan, "On the Efficacy of Knowledge Distillation",
ICCV 2019, Sec. 4).

Distil the same student from a smaller and a bigger, more accurate teacher of one family (depth), at the
recipe's epochs and at twice them, and compare the students.

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

import dataclasses

import pandas as pd

from experiments import cho_common, dist_stronger_teacher, protocol
from experiments.cho_common import teacher
from experiments.protocol import label
from kd import analysis, harness, regime
from kd.analysis import Outputs
from kd.run import distill_on_pool

NAME = "bigger_teachers"
TITLE = "Bigger models are not better teachers"
CLAIM = ("Growing the teacher in depth or width raises the teacher's accuracy, but the student's accuracy "
         "rises and then falls; a higher temperature does not change that. The student cannot mimic a large "
         "teacher: its KD loss grows with the teacher's size.")
PAPER = ("CIFAR-10 and ImageNet: teacher accuracy rises with depth and width while the student peaks at an "
         "intermediate teacher; the same at higher temperature (no numbers recovered: we compare shapes).")

# ------------------------------------------------------------------------------------------ the rule
# Protocol v3 (issue 33). v2 (rule e5f866a1, table_v2_e5f866a1.md) judged the largest teacher of a depth and a
# width ladder (7 sizes, 120-epoch teachers, student seed k from teacher seed k % 2) against each smaller one
# behind a regime gate: on 1,200 images the teachers stopped gaining accuracy after resnet14 (resnet56 82.40 /
# 83.65%), so the ladder did not rise and the premise of the claim failed, and no published teacher of it
# plateaus (docs/v3_designs.md). The design the issue asks, a ladder with one teacher per student seed, costs
# about 400 min of runs and 520 min of new teachers at --jobs 2 (7 sizes x 10 seeds), over both the 75-minute
# and the 3-hour targets. The smaller honest design tests the claim's core, "a bigger teacher is not a better
# teacher", on one step of depth whose teachers rise and plateau: DIST's published 240-epoch resnet8 (83.97%)
# and resnet32 (85.46%), pinned, with Cho's student and recipe (half-width resnet8, 192 epochs), at the
# recipe's epochs and at twice them. It is read as DIST reads "KD gains nothing from the stronger teacher":
# holds when the smaller teacher's student is shown not worse than the bigger one's by more than 0.5 pp
# (non-inferiority), contradicted when the bigger teacher's student is better (the plain test; the two forms
# count once). Not tested here: the rise before the fall (two rungs), the width ladder, T = 16, and the
# teachers' seed-to-seed spread (one teacher per rung: the interval holds the students' spread only). The
# capacity-mismatch half (the KD loss grows with the teacher) is shown, not judged. v2's paired spread
# between resnet32 and resnet8 (0.61 pp) asks 14 seeds for 0.5 pp (docs/v3_designs.md); 10 run ('underpowered' is
# possible).
SMALL, BIG = "smaller teacher", "bigger teacher"
NOT_BETTER = f"{SMALL} vs {BIG}, margin 0.5 pp"  # non-inferiority: the bigger teacher adds no more than that
BETTER = f"{BIG} vs {SMALL}"
RULE = {"alpha": 0.05, "margin_pp": 0.5, "min_step_pp": 0.5, "budgets": protocol.BUDGETS,
        "lr_below": regime.ANNEALED}
PAIRS = {NOT_BETTER: (SMALL, BIG), BETTER: (BIG, SMALL)}


def contrasts_at(rows: pd.DataFrame, budget: int) -> dict:
    acc = analysis.metric_of(rows, "condition")
    small, big = acc(label(SMALL, budget)), acc(label(BIG, budget))
    return analysis.decide({NOT_BETTER: analysis.contrast(small, big, margin=RULE["margin_pp"]),
                            BETTER: analysis.contrast(big, small)}, RULE["alpha"], forms={NOT_BETTER: BETTER})


def reading(c: dict) -> tuple[str, list[str]]:
    """One budget's reading of the claim and the contrast it rests on."""
    if c[BETTER].outcome == "better":
        return "contradicted", [BETTER]
    if c[NOT_BETTER].outcome == "not worse":
        return "holds", [NOT_BETTER]
    return "open", []


def premise(rows: pd.DataFrame, criterion: dict) -> list[tuple[str, str, str, bool]]:
    """(what, value, criterion, met): the bigger teacher is more accurate than the smaller by at least 0.5 pp
    (the ladder rises), and each fits its pool and has converged (experiments.protocol.teachers_premise)."""
    parts = {rung: rows[rows.condition.str.startswith(rung)] for rung in (SMALL, BIG)}
    top1 = {rung: r.teacher_test_top1.iloc[0] for rung, r in parts.items()}
    step = top1[BIG] - top1[SMALL]
    return [("bigger minus smaller teacher test top-1 (one factor changed: depth)",
             f"{step:+.2f} pp ({top1[SMALL]:.2f} -> {top1[BIG]:.2f})", f">= {RULE['min_step_pp']:g} pp", step >= RULE["min_step_pp"]),
            *protocol.teachers_premise({f"{rung} ({r.teacher_label.iloc[0]})": r for rung, r in parts.items()},
                                       criterion, RULE["lr_below"])]


def verdict_for(rows: pd.DataFrame, curves: dict, criterion: dict) -> tuple[str, dict]:
    """Protocol v3, fixed before the runs. Per budget (the recipe's epochs x1 and x2, the same seeds), the per-seed
    paired difference of test top-1 between the students of the smaller and of the bigger teacher, its 95% t
    interval, in two forms that count once in Holm's family (alpha 0.05): the bigger teacher's student vs the
    smaller one's (plain), and the smaller one's not worse than the bigger one's by more than a 0.5 pp margin
    (non-inferiority: the bigger teacher adds no more than that). A budget's reading: contradicted when the bigger
    teacher's student is better (it rests on that); holds when the smaller teacher's student is shown not worse
    by more than the margin (it rests on that); else open. Premise, checked first: the bigger teacher's test
    top-1 is at least 0.5 pp above the smaller's, one factor (depth) changed; each teacher fits its pool (train
    top-1 at least min_train_gap above test) and has converged (the upper end of the 95% interval of its test
    top-1's slope once its LR is at most 0.1 of its peak, continued over another such stretch, adds less than
    max_gain pp; timm's pretrained weights are taken as converged). Verdict: premise not met at this scale, if the
    premise fails; budget-dependent at this scale, if the two budgets' readings differ, or the contrast both rest
    on is not budget-stable at the doubled one (kd.regime: the far end of its paired late-phase drift, over
    another 40% of training, would take it across 0, or across minus the margin for the non-inferiority form);
    underpowered at this scale, if both are open and the plain form's MDE is above the margin at either budget.
    Else, reproduced: both hold. not reproduced: both are contradicted. inconclusive: both are open."""
    return protocol.judge(rows, curves, contrasts_at, reading, PAIRS, premise(rows, criterion),
                          {BETTER: RULE["margin_pp"]})


RULE_CODE = (verdict_for, reading, premise, contrasts_at, protocol.judge, protocol.teachers_premise,
             *protocol.RULE_CODE)

# ------------------------------------------------------------------------------------------ the grid
_dist = dist_stronger_teacher.PROFILES["cpu"]
_late = {"late_eval_every": 4}  # evaluations every 4 epochs over the late phase: the budget arm's drift
PROFILES = {
    # the smaller rung is ESKD's smoke teacher, so that ESKD reuses its x1 runs (harness SAME_RUNS)
    "smoke": {**cho_common.PROFILES["smoke"], "ladder": {SMALL: teacher("resnet14 x0.5", "resnet14", 0.5),
                                                          BIG: teacher("resnet8 x1", "resnet8", 1.0)}},
    # Cho's converged regime (1,200 images, students of 192 epochs: cho_common) from DIST's published rungs
    # (results/teachers/resnet8-2f62eab72077 and resnet32-1a294eabd153: 240 epochs, an evaluation every epoch
    # over the late phase, trained at 7913352 on an AMD EPYC with AVX-512, pinned), fresh seeds 190-199.
    "cpu": {**cho_common.PROFILES["cpu"], "seeds": 10, "first_seed": 190, "teacher_seeds": 1,
            "ladder": {rung: {**teacher(t["label"], t["teacher"]), "teacher_weights": t["teacher_weights"]}
                       for rung, t in ((SMALL, _dist["ladder"]["weakest"]), (BIG, _dist["ladder"]["strongest"]))},
            "teacher_recipe": _dist["teacher_recipe"],
            "recipe": dataclasses.replace(cho_common.PROFILES["cpu"]["recipe"], **_late)},
    # the paper's CIFAR-10 depth ladder (cho_common), from resnet32 to its largest, resnet110
    "paper": {**cho_common.PROFILES["paper"], "ladder": {SMALL: teacher("resnet32", "resnet32"),
                                                          BIG: teacher("resnet110", "resnet110")},
              "recipe": dataclasses.replace(cho_common.PROFILES["paper"]["recipe"], **_late)},
}


def grid(p: dict, seeds: int) -> list[dict]:
    return cho_common.pair_grid(NAME, p, seeds, [SMALL, BIG])


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
# Pairing: runs of one seed share the student's initialisation, data order and augmented views; they differ
# in the teacher (and, across budgets, the epochs).
def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    table = cho_common.pair_table(rows, out, SMALL)
    verdict, facts = verdict_for(rows, protocol.late_curves(rows, out), p["regime"])
    kd_term = analysis.metric_of(rows, "condition", "final_train_kd")
    mismatch = analysis.contrast(kd_term(BIG), kd_term(SMALL))
    notes = (cho_common.pair_notes(rows, facts, PAIRS, SMALL, RULE["margin_pp"])
             + "\n\nNot judged (the paper's capacity mismatch: the student's KD loss grows with the teacher): the "
               f"final train KD term, bigger minus smaller teacher's student, x1, paired: {analysis.ci_cell(mismatch)} "
               "(kd_weight * T^2 KL, averaged over the last epoch's batches). One teacher per rung: the intervals "
               "hold the students' spread, not the teachers'.\n\n" + cho_common.unconfirmed(p))
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, verdict, analysis.rule_of(verdict_for), notes)
    cho_common.pair_plot(rows, facts, [SMALL, BIG], RULE["margin_pp"], out)
    return verdict


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
