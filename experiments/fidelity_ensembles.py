"""Stanton et al., "Does Knowledge Distillation Really Work?" (NeurIPS 2021), claims 1 and 2: distillation
helps the student's accuracy, yet the student does not match its teacher, and from larger ensembles it
gets more accurate without agreeing more.

Self-distil one architecture from one teacher and from an ensemble of 5 independently seeded teachers
(soft loss only, T = 4), at the recipe's epochs and twice them, beside the student trained alone; accuracy,
agreement, KL and ECE on the test set and on the training data.

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
from experiments import protocol
from experiments.protocol import label
from experiments.settings import pool_size, seed_range
from kd import analysis, harness, regime
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

# ------------------------------------------------------------------------------------------ the rule
# Protocol v3 (issue 33). v2 (rule 88c5974a, table_v2_88c5974a.md) judged six contrasts at one budget behind a
# regime gate, from 120-epoch teachers less accurate than the scratch student (81.38 vs 82.69%): a student
# that beats its teacher alone is no test of matching it. v3 distils from fidelity_optimisation's 240-epoch
# teacher (83.06%, published, pinned) and an ensemble of it and four more members of its recipe (seeds 1-4,
# published and pinned before any student run), and checks first that each teacher is at least as accurate
# as the scratch student. The smaller honest design: the 3-teacher ensemble is dropped (the claim is judged
# between its ends, 1 and 5), and the scratch student runs at the recipe's budget only, for the premise, so
# "KD improves accuracy" is shown, not judged; with both it cost about 103 min at --jobs 2, over the 75-minute
# target. v2's paired spread of the two contrasts (0.13-0.43 pp) asks 10 seeds for 0.5 pp (docs/v3_designs.md).
# "Agreement does not rise" is read as DIST's "KD gains nothing from the stronger teacher" is: it holds when
# shown within a 0.5 pp margin (non-inferiority), and is contradicted when the 5-teacher student agrees more
# (the plain test of the same difference; the two forms count once).
SCRATCH, ONE, FIVE = "scratch", "1 teacher", "5 teachers"
MEMBERS = {SCRATCH: 0, ONE: 1, FIVE: 5}
RULE = {"alpha": 0.05, "perfect_pct": 99.0, "margin_pp": 0.5, "effect_pp": 0.5, "budgets": protocol.BUDGETS,
        "lr_below": regime.ANNEALED}
LOW_TEST, LOW_TRAIN = (f"{split} agreement: {ONE} vs {RULE['perfect_pct']:g}%" for split in ("test", "train"))
GAIN = f"test top-1: {FIVE} vs {ONE}"
NOT_MORE = f"test agreement: {ONE} vs {FIVE}, margin {RULE['margin_pp']:g} pp"  # non-inferiority: no rise
MORE = f"test agreement: {FIVE} vs {ONE}"
# each contrast's metric (a history column) and conditions; None: the fixed 99% reference
ENDS = {LOW_TEST: ("test_agreement", ONE, None), LOW_TRAIN: ("train_clean_agreement", ONE, None),
        GAIN: ("test_top1", FIVE, ONE), NOT_MORE: ("test_agreement", ONE, FIVE), MORE: ("test_agreement", FIVE, ONE)}
POWERED = {GAIN: RULE["effect_pp"], MORE: RULE["effect_pp"]}  # the contrasts between the two students


def contrasts_at(rows: pd.DataFrame, budget: int) -> dict:
    def c(k: str) -> analysis.Contrast:
        metric, a, b = ENDS[k]
        of = common.metric(rows, f"final_{metric}")
        ours = of(label(a, budget))
        return analysis.contrast(ours, of(label(b, budget)) if b else analysis.constant(ours, RULE["perfect_pct"]),
                                 RULE["margin_pp"] if k == NOT_MORE else None)
    return analysis.decide({k: c(k) for k in ENDS}, RULE["alpha"], forms={NOT_MORE: MORE})


def reading(c: dict) -> tuple[str, list[str]]:
    """One budget's reading of the claim and the contrasts it rests on."""
    against = [k for k, side in ((LOW_TEST, "better"), (LOW_TRAIN, "better"), (GAIN, "worse"), (MORE, "better"))
               if c[k].outcome == side]
    if against:
        return "contradicted", against
    if [c[k].outcome for k in (LOW_TEST, LOW_TRAIN, GAIN, NOT_MORE)] == ["worse", "worse", "better", "not worse"]:
        return "holds", [LOW_TEST, LOW_TRAIN, GAIN, NOT_MORE]
    return "open", []


def premise(rows: pd.DataFrame, criterion: dict) -> list[tuple[str, str, str, bool]]:
    """(what, value, criterion, met): each teacher (the single one, the 5-member ensemble) is at least as
    accurate as the scratch student at the recipe's budget (the scratch students are not shown more accurate:
    the 95% interval of teacher minus scratch over their seeds is not wholly below 0), and the single teacher,
    the ensemble's first member, fits its pool and has converged (experiments.protocol.teacher_premise)."""
    scratch = common.metric(rows, "final_test_top1")(SCRATCH)
    lines = []
    for name in (ONE, FIVE):
        top1 = rows.loc[rows.condition == name, "teacher_test_top1"].max()  # one teacher per condition
        gap = analysis.contrast(analysis.constant(scratch, top1), scratch)
        lines.append((f"teacher of '{name}': test top-1 ({top1:.2f}%) minus the scratch students' (x1) [95% CI]",
                      analysis.ci_cell(gap), "interval not wholly below 0", gap.high >= 0))
    return lines + protocol.teacher_premise(rows[rows.condition == ONE], criterion, RULE["lr_below"])


def verdict_for(rows: pd.DataFrame, curves: dict, criterion: dict) -> tuple[str, dict]:
    """Protocol v3, fixed before the runs. Per budget (the recipe's epochs x1 and x2, the same seeds), per-seed
    paired differences with 95% t intervals and Holm's correction (alpha 0.05) over four contrasts: the 1-teacher
    student's top-1 agreement with its teacher on the test set against 99% (a perfect match), and on the clean
    training pool against 99%; the 5-teacher student's test top-1 against the 1-teacher one's; and its test
    agreement (with the ensemble's mean-probability prediction) against the 1-teacher one's, whose non-inferiority
    form (the 1-teacher student agrees not less than the 5-teacher one minus a 0.5 pp margin: agreement does not
    rise) counts once with it. A budget's reading: contradicted when the 1-teacher student agrees above 99% on the
    test set or the training pool, or the 5-teacher student is less accurate than the 1-teacher one, or agrees more
    (it rests on those); holds when both agreements are below 99%, the 5-teacher student is more accurate and
    agreement is shown not to rise by more than the margin (it rests on the four); else open. Premise, checked
    first: at the recipe's budget the single teacher and the ensemble are each at least as accurate as the scratch
    student (the 95% interval of the teacher's test top-1 minus the scratch students' is not wholly below 0); the
    single teacher fits its pool (train top-1 at least min_train_gap above test) and has converged (the upper end
    of the 95% interval of its test top-1's slope once its LR is at most 0.1 of its peak, continued over another
    such stretch, adds less than max_gain pp). Verdict: premise not met at this scale, if the premise fails;
    budget-dependent at this scale, if the two budgets' readings differ, or both are contradicted by no contrast in
    common, or a contrast both rest on is not budget-stable at the doubled one (kd.regime: the far end of the
    paired late-phase drift of its metric, over another 40% of training, would take it across 0, or across minus
    the margin for the non-inferiority form); underpowered at this scale, if both are open and the accuracy or the
    agreement contrast between the two students has an MDE above 0.5 pp at either budget. Else, reproduced: both
    hold. not reproduced: both are contradicted. inconclusive: both are open."""
    x1 = rows[rows["recipe.epochs"] == rows["recipe.epochs"].min()]
    return protocol.judge_with(rows, contrasts_at, reading,
                               lambda doubled: protocol.metric_stability(doubled, ENDS, curves),
                               premise(x1, criterion), POWERED)


RULE_CODE = (verdict_for, reading, premise, contrasts_at, protocol.judge_with, protocol.metric_stability,
             *protocol.RULE_CODE)

# ------------------------------------------------------------------------------------------ the grid
# fidelity_common's cpu scale with its v3 teacher (fidelity_optimisation's, the ensemble's first member) and
# late evaluations, fresh seeds 180-189 (v2 ran 100-104). The ensemble's members are seeded 0-4 with the
# teacher's recipe; their weights, published, are pinned as one (their SHA-256 in member order).
PROFILES = common.v3_profiles(first_seed=180, seeds=10)
# published at 8c948da (members 1-4, about 5 min each beside a sweep; test top-1 84.06, 83.28, 83.08, 84.08)
PROFILES["cpu"]["ensemble_weights"] = (
    "39e5f03939924e9d175c953b237615c5221d1debb7026086bff429379fec6d02 "
    "628059d41919812330e0912220442cdd9b63e5a2acf41d078e76774d793c4e6d "
    "894b642569f10aa7813b818eff2961b38bfa1f73d4141d576161b4d1d5311b18 "
    "86f61b7dd36e991dadbee5f7c03de932454316016b9944c68982c89bbc411f1e "
    "b9fe904bce454de607af07c485109866e381685c4667758178c1856b8ab8b7e3")


def grid(p: dict, seeds: int) -> list[dict]:
    out = []
    for budget in RULE["budgets"]:
        for name, members in MEMBERS.items():
            if name == SCRATCH and budget > 1:  # the premise's: at the recipe's budget only
                continue
            q = {**p, "recipe": p["recipe"].scaled(budget), "teacher_members": max(members, 1)}
            if members > 1:
                q["teacher_weights"] = p.get("ensemble_weights")
            fields = {"loss": "ce", "loss_options": {}} if name == SCRATCH else {
                "loss": "kd", "loss_options": dict(common.KD_SOFT), "fidelity_curve": True}
            for seed in seed_range(p, seeds):
                c = base_config(NAME, q, label(name, budget), seed, train_size=pool_size(p), **fields)
                c["members"] = members
                if name == SCRATCH:
                    c["teacher"] = None
                out.append(c)
    return out


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
# Pairing: runs of one seed share the student's initialisation, the data order and the augmented views; they
# differ in the teacher (and, across budgets, the epochs).
def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    conditions = list(dict.fromkeys(rows.condition))
    summary = analysis.summarise(rows, "condition").merge(
        rows.groupby("condition", sort=False)[["members", "teacher_test_top1", "recipe.epochs"]].first()
        .reset_index(), on="condition")
    analysis.write_csv(summary, out.summary)
    distilled = rows[rows.members > 0]
    verdict, facts = verdict_for(rows, protocol.metric_curves(distilled, out, {m for m, *_ in ENDS.values()}),
                                 p["regime"])
    table = common.table(rows, conditions)
    table.insert(1, "epochs", summary["recipe.epochs"].astype(int).to_numpy())
    table.insert(2, "teacher test top-1", [f"{x:.2f}" if x == x else "" for x in summary.teacher_test_top1])
    acc = common.metric(rows, "final_test_top1")
    kd_gain = analysis.contrast(acc(ONE), acc(SCRATCH))
    notes = (f"Student and teachers: {p['student']} x{p.get('student_width', 1.0):g}, {pool_size(p):,} training "
             f"images, soft loss only at T = 4; the ensemble's members seeded 0-4 (the single teacher is member 0), "
             "its prediction their mean probability. Agreement: top-1 agreement with the teacher, on the test set "
             "and on the clean views of the training pool, at every evaluation.\n\n**Premise** (checked before "
             "the claim):\n\n" + protocol.premise_block(facts["premise"])
             + "\n\n**Regime** (v3, the budget arm: every contrast again at twice the epochs, the same seeds; the "
               "drift of its metric over the last 40% of training, per condition, and whether its far end keeps "
               "the contrast's side):\n\n" + protocol.drift_block(facts)
             + "\n\n**Comparisons** (a - b over seeds; Holm over the four of each budget, the two forms of the "
               "agreement contrast counting once; MDE: the smallest true difference found with 80% power at this "
               f"n, beside the {RULE['effect_pp']:g} pp targeted):\n" + protocol.comparison_lines(rows, facts, ONE)
             + f"\n\nNot judged (the claim's 'KD improves accuracy'; scratch runs at x1 only): {ONE} minus scratch, "
               f"test top-1, x1, paired: {analysis.ci_cell(kd_gain)} pp. The 3-teacher ensemble ran in v2 "
               "(table_v2_88c5974a.md), not here.")
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, verdict, analysis.rule_of(verdict_for), notes)
    plot(rows, facts, out)
    return verdict


def plot(rows: pd.DataFrame, facts: dict, out: Outputs):
    fig, (acc_ax, agree_ax, diff_ax) = plt.subplots(1, 3, figsize=(19, 4.8), gridspec_kw={"width_ratios": [1, 1, 1.5]})
    rows = rows.assign(budget=[f"x{protocol.budget_of(c)}" for c in rows.condition],
                       teacher=rows.condition.str.replace(r" \(\dx budget\)", "", regex=True))
    sns.pointplot(rows, x="teacher", y="final_test_top1", hue="budget", order=list(MEMBERS), errorbar=("ci", 95),
                  seed=0, dodge=0.2, ax=acc_ax)
    top1 = rows.groupby("teacher").teacher_test_top1.first()
    acc_ax.plot([list(MEMBERS).index(t) for t in top1.dropna().index], top1.dropna(), "k^", label="teacher")
    acc_ax.set(xlabel="", ylabel="test top-1 (%)", title="Accuracy: students (by budget) and teachers")
    acc_ax.legend(fontsize=8)
    distilled = rows[rows.members > 0]
    long = pd.concat([distilled.assign(split=f"{split}, " + distilled.budget, value=distilled[f"final_{prefix}_agreement"])
                      for split, prefix in (("test", "test"), ("train", "train_clean"))])
    sns.pointplot(long, x="teacher", y="value", hue="split", order=[ONE, FIVE], errorbar=("ci", 95), seed=0,
                  dodge=0.3, ax=agree_ax)
    agree_ax.set(xlabel="", ylabel="agreement with teacher (%)", title="Fidelity: top-1 agreement")
    protocol.contrast_panel(diff_ax, facts["contrasts"], RULE["margin_pp"], wrap=True)
    sns.despine(fig)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
