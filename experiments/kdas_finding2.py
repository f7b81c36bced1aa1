"""KDAS Finding 2 (Chae et al., "What to Distill?", ICCV 2025): a curriculum of sampling ratios.

Distil on the top-K(t) samples by KL_TS with a fixed ratio of 50%, a ratio decreasing from 60% to 40% (the
paper's linear K(t) = max(K_min, K_init - alpha*t), and the release's cosine) and an increasing one (40% ->
60%): all four process the same samples on average. Protocol v3: the whole grid runs again at twice the
epochs (the budget arm), and the verdict is read at both.

    bash experiments/kdas_finding2.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
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
import numpy as np
import pandas as pd
import seaborn as sns

from experiments import kdas_common, protocol
from experiments.protocol import label
from kd import analysis, harness, regime
from kd.analysis import Outputs
from kd.run import distill_on_pool
from kd.samplers import ratio_schedule

NAME = "kdas_finding2"
TITLE = "KDAS Finding 2: a decreasing sampling ratio beats a fixed one"
CLAIM = ("Changing the sampling ratio during training beats a fixed ratio: selecting more samples early and "
         "fewer later (60% -> 40%) gives the best student.")
PAPER = ("CIFAR-100, KD: 60% -> 40% was the best schedule, above fixed ratios and increasing schedules (a "
         "figure; its numbers could not be recovered, so we compare the ranking).")

# ------------------------------------------------------------------------------------------ the rule
# Protocol v3 (issue 33). v2 (rule 4ae34ae2, table_v2_4ae34ae2.md) judged at one budget behind a gate of one
# last-quarter gain per run, could call the claim "not reproduced" only when a rival was better (never when
# the decreasing schedule was shown to be no better), and its rows came from another training of the teacher
# than the published one. Fixed 40% and 60% (other sample counts, so no test of the curriculum) and 'all' are
# dropped: every schedule kept processes the same samples on average.
SCHEDULES = {  # label: (ratio schedule, start, end)
    "fixed 50%": ("constant", 0.5, 0.5), "decreasing 60->40% (linear)": ("linear", 0.6, 0.4),
    "decreasing 60->40% (cosine)": ("cosine", 0.6, 0.4), "increasing 40->60% (linear)": ("linear", 0.4, 0.6)}
FIXED, DECREASING, RELEASE, INCREASING = SCHEDULES  # the paper's K(t) is DECREASING; the release's RELEASE
PAPER_VS_FIXED, RELEASE_VS_FIXED = f"{DECREASING} vs {FIXED}", f"{RELEASE} vs {FIXED}"
PAPER_VS_INCREASING = f"{DECREASING} vs {INCREASING}"
NO_BETTER = f"{FIXED} vs {DECREASING}, margin {0.5:g} pp"  # non-inferiority of fixed: decreasing is no better
RULE = {"alpha": 0.05, "margin_pp": 0.5, "budgets": protocol.BUDGETS, "max_samples_gap": 0.01,
        "lr_below": regime.ANNEALED}
PAIRS = {NO_BETTER: (FIXED, DECREASING), PAPER_VS_FIXED: (DECREASING, FIXED), RELEASE_VS_FIXED: (RELEASE, FIXED),
         PAPER_VS_INCREASING: (DECREASING, INCREASING)}


def contrasts_at(rows: pd.DataFrame, budget: int) -> dict:
    acc = analysis.metric_of(rows, "condition")
    at = lambda name: acc(label(name, budget))  # noqa: E731
    return analysis.decide({
        NO_BETTER: analysis.contrast(at(FIXED), at(DECREASING), margin=RULE["margin_pp"]),
        **{k: analysis.contrast(at(a), at(b)) for k, (a, b) in PAIRS.items() if k != NO_BETTER}},
        RULE["alpha"], forms={NO_BETTER: PAPER_VS_FIXED})


def reading(c: dict) -> tuple[str, list[str]]:
    """One budget's reading of the claim and the contrasts it rests on."""
    worse = [k for k in (PAPER_VS_FIXED, PAPER_VS_INCREASING) if c[k].outcome == "worse"]
    if worse:
        return "contradicted", worse
    if c[NO_BETTER].outcome == "not worse":
        return "contradicted", [NO_BETTER]
    if all(c[k].outcome == "better" for k in (PAPER_VS_FIXED, PAPER_VS_INCREASING)) \
            and c[RELEASE_VS_FIXED].outcome != "worse":
        return "holds", [PAPER_VS_FIXED, PAPER_VS_INCREASING]
    return "open", []


def premise(rows: pd.DataFrame, criterion: dict) -> list[tuple[str, str, str, bool]]:
    """(what, value, criterion, met): the schedules process the same samples as fixed 50% of their budget (so
    the curriculum, not the sample count, is compared), and the teacher fits its pool and has converged
    (experiments.protocol.teacher_premise)."""
    samples = rows.groupby("condition", sort=False).samples.mean()
    gaps = {c: samples[c] / samples[label(FIXED, protocol.budget_of(c))] - 1 for c in samples.index
            if label(FIXED, protocol.budget_of(c)) in samples.index}
    worst = max(map(abs, gaps.values())) if gaps else np.nan
    return [("samples processed per run relative to fixed 50% of its budget (largest gap over the schedules "
             "and budgets)", f"{worst:+.2%}" if gaps else "n/a", f"<= {RULE['max_samples_gap']:.0%}",
             worst <= RULE["max_samples_gap"]),
            *protocol.teacher_premise(rows, criterion, RULE["lr_below"])]


def verdict_for(rows: pd.DataFrame, curves: dict, criterion: dict) -> tuple[str, dict]:
    """Protocol v3, fixed before the runs. Per budget (the recipe's epochs x1 and x2, the same seeds), per-seed
    paired differences of test top-1 with 95% t intervals and Holm's correction (alpha 0.05) over three
    contrasts: the paper's decreasing schedule (60% -> 40%, linear) vs fixed 50%, its plain form and its
    non-superiority form (fixed 50% not worse than decreasing by more than a 0.5 pp margin: decreasing is no
    better than that) counting once; the release's decreasing schedule (cosine) vs fixed 50%; and the paper's
    decreasing vs increasing (40% -> 60%, linear). A budget's reading: contradicted when the paper's
    decreasing schedule is worse than fixed 50% or than increasing (it rests on those), or shown no better
    than fixed 50% by more than the margin (it rests on that); holds when it is better than both and the
    release's is not worse than fixed 50% (it rests on the two); else open. Premise, checked first: every
    schedule processes the same samples as fixed 50% of its budget (mean samples per run within 1%), the
    teacher fits its pool (train top-1 at least min_train_gap above test) and has converged (the upper end
    of the 95% interval of its test top-1's slope once its LR is at most 0.1 of its peak, continued over
    another such stretch, adds less than max_gain pp). Verdict: premise not met at this scale, if the premise
    fails; budget-dependent at this scale, if the two budgets' readings differ, or both are contradicted by no
    contrast in common, or a contrast both rest on is not budget-stable at the doubled one (kd.regime: the far
    end of its paired late-phase drift, over another 40% of training, would take it across 0, or across minus
    the margin for the non-superiority form); underpowered at this scale, if both are open and the paper's
    decreasing vs fixed 50% has an MDE above the margin at either budget. Else, reproduced: both hold. not
    reproduced: both are contradicted. inconclusive: both are open."""
    at = {b: contrasts_at(rows, b) for b in RULE["budgets"]}
    readings, rests_on = zip(*(reading(at[b]) for b in RULE["budgets"]))
    drifts, stable = protocol.stability(at[RULE["budgets"][-1]], PAIRS, curves)
    facts = {"contrasts": at, "readings": readings, "drifts": drifts, "stable": stable,
             "premise": premise(rows, criterion)}
    underpowered = any(not at[b][PAPER_VS_FIXED].mde <= RULE["margin_pp"] for b in RULE["budgets"])
    verdict, facts["decisive"] = protocol.verdict(readings, rests_on, stable, facts["premise"], underpowered)
    return verdict, facts


RULE_CODE = (verdict_for, reading, premise, contrasts_at, *protocol.RULE_CODE)

# ------------------------------------------------------------------------------------------ the grid
PROFILES = kdas_common.profiles(period=1, direction="paper")  # re-rank every epoch on CPU (1,200 images)
PROFILES["paper"]["period"] = [1, 3, 5, 10]  # the release's schedule over 240 epochs
# v3: v2's converged cpu regime (kdas_common.CONVERGED_CPU: 1,200 images, teacher 120 epochs, students 144)
# with the published teacher pinned, evaluations every 4 epochs over the late phase, fresh seeds 110-119: the
# power calculation on v2's paired spread (0.52-1.36 pp) asks 81 seeds for 0.5 pp, more than the 10 this
# machine affords, so 'underpowered at this scale' is a possible verdict (docs/v3_designs.md).
PROFILES = kdas_common.v3_profiles(PROFILES, first_seed=110)


def mean_share(kind, start, end, epochs) -> float:
    ratio = ratio_schedule(kind, start, end, epochs)
    return sum(ratio(e) for e in range(1, epochs + 1)) / epochs


def grid(p: dict, seeds: int) -> list[dict]:
    conditions = []
    for budget in RULE["budgets"]:
        r = p["recipe"].scaled(budget)
        conditions += [(label(name, budget), mean_share(kind, start, end, r.epochs),
                        {"recipe": r.as_dict(), "sampler": {"ratio": kind, "start": start, "end": end,
                                                            "period": p["period"], "direction": p["direction"]}})
                       for name, (kind, start, end) in SCHEDULES.items()]
    return kdas_common.configs(NAME, p, seeds, conditions)


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
# Pairing: runs of one seed share the student's initialisation and every sample's augmented views; they
# differ only in how many of the pool's samples (top-K(t) by KL_TS) each epoch trains on.
def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    summary = analysis.summarise(rows, ["condition"])
    summary = summary.merge(rows.groupby("condition", sort=False)["recipe.epochs"].mean().reset_index(), on="condition")
    analysis.write_csv(summary, out.summary)
    verdict, facts = verdict_for(rows, protocol.late_curves(rows, out), p["regime"])
    acc = analysis.metric_of(rows, "condition")
    s = summary
    vs_fixed = [analysis.contrast(acc(c), acc(label(FIXED, b))) if not c.startswith(FIXED) else None
                for c, b in zip(s.condition, map(protocol.budget_of, s.condition))]
    table = pd.DataFrame({"schedule": s.condition, "epochs": s["recipe.epochs"].astype(int),
                          "samples processed": s.samples.round().astype(int),
                          "student top-1 (mean ± std)": analysis.accuracy_cells(s),
                          "minus fixed 50% of its budget, paired [95% CI]": [analysis.ci_cell(v) for v in vs_fixed]})
    notes = ("**Premise** (checked before the claim):\n\n" + protocol.premise_block(facts["premise"])
             + "\n\n**Regime** (v3, the budget arm: every contrast again at twice the epochs, the same seeds; its "
               "drift over the last 40% of training, per schedule, and whether its far end keeps the contrast's "
               "side):\n\n" + protocol.budget_arm_block(rows, facts, PAIRS)
             + "\n\n**Comparisons** (a - b over seeds; Holm over the three of each budget, the two forms of "
               "decreasing vs fixed 50% counting once; MDE: the smallest true difference found with 80% power at "
               f"this n, beside the {RULE['margin_pp']:g} pp margin, as the paper gives no number):\n"
             + protocol.comparison_lines(rows, facts, FIXED)
             + f"\n\nTop-K(t) by KL_TS of the current student (clean views, direction '{p['direction']}'), "
               f"re-ranked every {p['period']} epoch(s); each schedule spans its own budget's epochs. Runs of a "
               "seed share the student's initialisation and every sample's augmented views.\n\n"
             + kdas_common.UNCONFIRMED)
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, verdict, analysis.rule_of(verdict_for), notes)
    plot(rows, facts, p, out)
    return verdict


def plot(rows: pd.DataFrame, facts: dict, p: dict, out: Outputs):
    fig, (sched_ax, acc_ax, diff_ax) = plt.subplots(1, 3, figsize=(18, 4.8), gridspec_kw={"width_ratios": [1, 1.2, 1.4]})
    epochs = p["recipe"].epochs
    for name, (kind, start, end) in SCHEDULES.items():
        ratio = ratio_schedule(kind, start, end, epochs)
        sched_ax.plot(np.arange(1, epochs + 1) / epochs, [100 * ratio(e) for e in range(1, epochs + 1)], label=name)
    sched_ax.set(xlabel="fraction of training (either budget)", ylabel="share of the pool kept (%)",
                 title="K(t) schedules")
    sched_ax.legend(fontsize=7)
    rows = rows.assign(budget=[f"x{protocol.budget_of(c)}" for c in rows.condition],
                       schedule=rows.condition.str.replace(r" \(\dx budget\)", "", regex=True))
    sns.stripplot(rows, y="schedule", x="final_test_top1", hue="budget", order=list(SCHEDULES), dodge=True,
                  alpha=0.6, ax=acc_ax)
    acc_ax.set(ylabel="", xlabel="student test top-1 (%)", title="per seed (dots), by budget")
    acc_ax.tick_params(axis="y", labelsize=8)
    protocol.contrast_panel(diff_ax, facts["contrasts"], RULE["margin_pp"], wrap=True)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
