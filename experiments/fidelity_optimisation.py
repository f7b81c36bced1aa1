"""Stanton et al., "Does Knowledge Distillation Really Work?" (NeurIPS 2021), claim 4: the student fails to
match its teacher because distillation is hard to optimise, not for lack of data.

Self-distil from one teacher with the student initialised at lambda * teacher + (1 - lambda) * a random
init; agreement with the teacher on the training data against lambda, and from a random init with twice the
epochs. Protocol v3: the whole grid again at twice the epochs (the budget arm), and the verdict is read at
both.

    bash experiments/fidelity_optimisation.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
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
from experiments import protocol
from experiments.protocol import label
from experiments.settings import pool_size, seed_range
from kd import analysis, harness, regime
from kd.analysis import Outputs
from kd.config import base_config
from kd.run import distill_on_pool

NAME = "fidelity_optimisation"
TITLE = "Fidelity: an optimisation problem"
CLAIM = ("Students fail to match their teachers because distillation is hard to optimise: a student initialised "
         "as lambda * teacher + (1 - lambda) * random reaches near-perfect agreement above a threshold of lambda "
         "and not below it, and training longer from a random init does not close the gap.")
PAPER = ("CIFAR-100, ResNet-56 self-distillation: train agreement near 100% once lambda passes a threshold "
         "(between 0.25 and 0.5 in its figure), far below it from a random init, also after longer training "
         "(figures: the shape is compared, not the numbers).")

# ------------------------------------------------------------------------------------------ the rule
# Protocol v3 (issue 33). v2 (rule b2848423, table_v2_b2848423.md) judged four contrasts of train agreement at
# one budget behind a regime gate, beside three lambdas it did not judge, from a 120-epoch teacher evaluated
# every 5 epochs, which cannot show a plateau (docs/v3_designs.md). v3 reads "training longer from a random
# init" at each budget as the lambda-0 student of twice that budget's epochs (x2's for x1, one more run at x4
# for x2: v2's 2x and 4x arms), and measures train agreement at every evaluation (fidelity_curve), so the
# budget arm reads its own drift. The teacher is trained again for 240 epochs with an evaluation every epoch
# over its late phase, published and pinned before any student run. The smaller honest design: v2's spread in
# train agreement asks 58 seeds for 0.5 pp between lambda 0.75 and 0.25 (94.67 +- 1.20% vs 94.03 +- 0.13: at
# this scale the threshold, if any, is above 0.75), and with it the grid costs about 120 min at --jobs 2 with
# 10 seeds, over the 75-minute target; so lambdas 0.25 and 0.75 and the "agreement rises with lambda"
# contrast are dropped (the contrast that left v2 inconclusive: the threshold's place is not tested here),
# and the claim is judged at its ends, lambda 0 and 1, with 10 seeds (v2's spread asks 11-16 for the three
# contrasts: 'underpowered' is possible).
ZERO, ONE = "lambda 0", "lambda 1"
LAMBDAS = {ZERO: 0.0, ONE: 1.0}
RULE = {"alpha": 0.05, "perfect_pct": 99.0, "margin_pp": 1.0, "effect_pp": 0.5, "budgets": protocol.BUDGETS,
        "lr_below": regime.ANNEALED}
INIT = f"{ONE} vs {ZERO}"
PERFECT = f"{ONE} vs {RULE['perfect_pct']:g}%, margin {RULE['margin_pp']:g} pp"  # non-inferiority: near-perfect
LONGER = f"{ZERO} at twice the epochs vs {ONE}"
AGREEMENT = "train_clean_agreement"  # on the clean views of the training pool: the paper's fidelity


def ends(budget: int) -> dict:
    """Each contrast's two conditions at a budget (None: the fixed 99% reference)."""
    return {INIT: (label(ONE, budget), label(ZERO, budget)), PERFECT: (label(ONE, budget), None),
            LONGER: (label(ZERO, 2 * budget), label(ONE, budget))}


def contrasts_at(rows: pd.DataFrame, budget: int) -> dict:
    agree = analysis.metric_of(rows, "condition", f"final_{AGREEMENT}")
    return analysis.decide({k: analysis.contrast(agree(a), agree(b)) if b else analysis.contrast(
        agree(a), analysis.constant(agree(a), RULE["perfect_pct"]), RULE["margin_pp"])
        for k, (a, b) in ends(budget).items()}, RULE["alpha"])


def reading(c: dict) -> tuple[str, list[str]]:
    """One budget's reading of the claim and the contrasts it rests on."""
    against = [k for k, side in ((INIT, "worse"), (LONGER, "better")) if c[k].outcome == side]
    if against:
        return "contradicted", against
    if [c[k].outcome for k in (INIT, PERFECT, LONGER)] == ["better", "not worse", "worse"]:
        return "holds", [INIT, PERFECT, LONGER]
    return "open", []


def stability(doubled: dict, curves: dict) -> tuple[dict, dict]:
    """Per contrast at the doubled budget: the paired late-phase drift of its train agreement (against a flat
    99% for the near-perfect form) and whether its far end keeps the contrast on its side (kd.regime)."""
    drifts, stable = {}, {}
    for k, (a, b) in ends(RULE["budgets"][-1]).items():
        ours = protocol.curves_of(curves, a)
        drifts[k] = regime.drift(ours, protocol.curves_of(curves, b) if b else {s: 0 * c for s, c in ours.items()})
        c = doubled[k]
        stable[k] = regime.budget_stable(c.diff, drifts[k], -c.margin if c.margin is not None else 0.0)
    return drifts, stable


def verdict_for(rows: pd.DataFrame, curves: dict, criterion: dict) -> tuple[str, dict]:
    """Protocol v3, fixed before the runs. Per budget (the recipe's epochs x1 and x2, the same seeds), per-seed
    paired differences of top-1 agreement with the teacher on the clean training pool, 95% t intervals and
    Holm's correction (alpha 0.05) over three contrasts: lambda 1 vs lambda 0 (the teacher's init helps);
    lambda 1 vs 99%, non-inferiority with a 1 pp margin (near-perfect); the lambda-0 student trained for
    twice the budget's epochs vs the lambda-1 student of the budget (longer training does not close the gap).
    A budget's reading: contradicted when lambda 1 agrees less than lambda 0, or the longer-trained lambda-0
    student more than the lambda-1 student (it rests on those); holds when lambda 1 agrees more than lambda
    0, is shown within 1 pp of 99%, and the longer-trained lambda-0 student agrees less than lambda 1 (it
    rests on the three); else open. Premise, checked first: the teacher fits
    its pool (train top-1 at least min_train_gap above test) and has converged (the upper end of the 95%
    interval of its test top-1's slope once its LR is at most 0.1 of its peak, continued over another such
    stretch, adds less than max_gain pp). Verdict: premise not met at this scale, if the premise fails;
    budget-dependent at this scale, if the two budgets' readings differ, or both are contradicted by no
    contrast in common, or a contrast both rest on is not budget-stable at the doubled one (kd.regime: the
    far end of its paired late-phase drift in train agreement, over another 40% of training, would take it
    across 0, or across minus the margin for the near-perfect form); underpowered at this scale, if both
    are open and a plain contrast has an MDE above 0.5 pp at either budget. Else, reproduced: both hold.
    not reproduced: both are contradicted. inconclusive: both are open."""
    at = {b: contrasts_at(rows, b) for b in RULE["budgets"]}
    readings, rests_on = zip(*(reading(at[b]) for b in RULE["budgets"]))
    drifts, stable = stability(at[RULE["budgets"][-1]], curves)
    facts = {"contrasts": at, "readings": readings, "drifts": drifts, "stable": stable,
             "premise": protocol.teacher_premise(rows, criterion, RULE["lr_below"])}
    underpowered = any(not at[b][k].mde <= RULE["effect_pp"] for b in RULE["budgets"] for k in (INIT, LONGER))
    verdict, facts["decisive"] = protocol.verdict(readings, rests_on, stable, facts["premise"], underpowered)
    return verdict, facts


RULE_CODE = (verdict_for, reading, contrasts_at, stability, ends, *protocol.RULE_CODE)

# ------------------------------------------------------------------------------------------ the grid
# fidelity_common's cpu scale (1,200 images, half-width resnet8 teacher and students of 144 epochs) with its v3
# teacher (240 epochs) and late evaluations, fresh seeds 160-169 (v2 ran 100-104).
PROFILES = common.v3_profiles(first_seed=160, seeds=10)


def grid(p: dict, seeds: int) -> list[dict]:
    arms = [(name, budget) for budget in RULE["budgets"] for name in LAMBDAS] + [(ZERO, 2 * RULE["budgets"][-1])]
    out = []
    for name, budget in arms:
        q = {**p, "recipe": p["recipe"].scaled(budget)}
        for seed in seed_range(p, seeds):
            c = base_config(NAME, q, label(name, budget), seed, train_size=pool_size(p), loss="kd",
                            loss_options=dict(common.KD_SOFT), teacher_init=LAMBDAS[name], fidelity_curve=True)
            c.update(lam=LAMBDAS[name], epoch_multiple=budget)
            out.append(c)
    return out


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
# Pairing: runs of one seed share the random part of the student's initialisation, the data order and the
# augmented views; they differ in lambda (and the epochs).
def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    conditions = list(dict.fromkeys(rows.condition))
    summary = analysis.summarise(rows.assign(agreement=rows[f"final_{AGREEMENT}"]), "condition", "agreement")
    summary = summary.merge(rows.groupby("condition", sort=False)[["lam", "epoch_multiple"]].first().reset_index(),
                            on="condition")
    analysis.write_csv(summary, out.summary)
    curves = {(r.condition, r.seed): regime.late_curve(pd.read_csv(out.history(r.run_id)), AGREEMENT)
              for r in rows.itertuples()}
    verdict, facts = verdict_for(rows, curves, p["regime"])
    notes = (f"Student and teacher: {p['student']} x{p.get('student_width', 1.0):g}, {pool_size(p):,} training images, "
             f"soft loss only at T = 4; teacher test top-1 {rows.teacher_test_top1.iloc[0]:.2f}. The random part of "
             "a student's initialisation is its seed's. Train agreement: on the clean views of the training pool, "
             "at every evaluation.\n\n**Premise** (checked before the claim):\n\n" + protocol.premise_block(facts["premise"])
             + "\n\n**Regime** (v3, the budget arm: every contrast again at twice the epochs, the same seeds; its "
               "drift in train agreement over the last 40% of training, per condition, and whether its far end "
               "keeps the contrast's side):\n\n" + protocol.drift_block(facts)
             + "\n\n**Comparisons** (a - b over seeds; Holm over the three of each budget; MDE: the smallest true "
               f"difference found with 80% power at this n, beside the {RULE['effect_pp']:g} pp targeted):\n"
             + protocol.comparison_lines(rows, facts, ZERO))
    analysis.write_table(out, TITLE, CLAIM, PAPER, common.table(rows, conditions), verdict,
                         analysis.rule_of(verdict_for), notes)
    plot(rows, facts, out)
    return verdict


def plot(rows: pd.DataFrame, facts: dict, out: Outputs):
    fig, (lam_ax, diff_ax) = plt.subplots(1, 2, figsize=(15, 4.8))
    rows = rows.assign(epochs=rows["recipe.epochs"].astype(int).astype(str) + " epochs")
    sns.lineplot(rows, x="lam", y=f"final_{AGREEMENT}", hue="epochs", errorbar=("ci", 95), seed=0, marker="o",
                 ax=lam_ax)
    lam_ax.axhline(RULE["perfect_pct"], color="k", linewidth=1, linestyle=":")
    lam_ax.set(xlabel="lambda (init = lambda * teacher + (1 - lambda) * random)",
               ylabel="train agreement with teacher (%)", title="Agreement against the initialisation")
    protocol.contrast_panel(diff_ax, facts["contrasts"], RULE["margin_pp"], wrap=True)
    sns.despine(fig)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
