"""KDAS Finding 2 (Chae et al., "What to Distill?", ICCV 2025): a curriculum of sampling ratios.

Distil on the top-K(t) samples by KL_TS with fixed ratios (40, 50, 60%), a ratio decreasing from 60% to
40% (the paper's linear K(t) = max(K_min, K_init - alpha*t), and the release's cosine), and an increasing
one (40% -> 60%), with all samples as reference.

    bash experiments/kdas_finding2.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from experiments import kdas_common
from kd import analysis, harness
from kd.samplers import ratio_schedule

NAME = "kdas_finding2"
TITLE = "KDAS Finding 2: a decreasing sampling ratio beats a fixed one"
CLAIM = ("Changing the sampling ratio during training beats a fixed ratio: selecting more samples early and "
         "fewer later (60% -> 40%) gives the best student.")
PAPER = ("CIFAR-100, KD: 60% -> 40% was the best schedule, above fixed ratios and increasing schedules (a "
         "figure; its numbers could not be recovered, so we compare the ranking).")

# ------------------------------------------------------------------------------------------ the grid
SCHEDULES = {  # label: (ratio schedule, start, end)
    "fixed 40%": ("constant", 0.4, 0.4), "fixed 50%": ("constant", 0.5, 0.5), "fixed 60%": ("constant", 0.6, 0.6),
    "decreasing 60->40% (linear)": ("linear", 0.6, 0.4), "decreasing 60->40% (cosine)": ("cosine", 0.6, 0.4),
    "increasing 40->60% (linear)": ("linear", 0.4, 0.6)}
DECREASING = "decreasing 60->40% (linear)"  # the paper's schedule, the one the verdict judges
PROFILES = kdas_common.profiles(period=2, direction="paper")  # re-select every 2 epochs on CPU
PROFILES["paper"]["period"] = [1, 3, 5, 10]  # the release's schedule over 240 epochs


def mean_share(kind, start, end, epochs) -> float:
    ratio = ratio_schedule(kind, start, end, epochs)
    return sum(ratio(e) for e in range(1, epochs + 1)) / epochs


def grid(p: dict, seeds: int) -> list[dict]:
    epochs = p["recipe"].epochs
    conditions = [("all", 1.0, {})] + [
        (label, mean_share(kind, start, end, epochs), {"sampler": {"ratio": kind, "start": start, "end": end,
                                                                   "period": p["period"],
                                                                   "direction": p["direction"]}})
        for label, (kind, start, end) in SCHEDULES.items()]
    return kdas_common.configs(NAME, p, seeds, conditions)


run = harness.distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
def verdict_for(rows: pd.DataFrame) -> tuple[str, dict]:
    """The rule, fixed before any result was seen: differences within two standard errors are noise.
    reproduced: decreasing 60->40% (linear) is better than fixed 50% (the same samples processed) and better
    than increasing 40->60%. not reproduced: a fixed or increasing schedule is better than decreasing.
    inconclusive: anything else."""
    acc = analysis.metric_of(rows, "condition")
    comps = {f"decreasing vs {label}": analysis.compare(acc(DECREASING), acc(label))
             for label in SCHEDULES if label != DECREASING}
    rivals = [c for name, c in comps.items() if "cosine" not in name]
    if any(c.outcome == "worse" for c in rivals):
        return "not reproduced", comps
    if (comps["decreasing vs fixed 50%"].outcome == "better"
            and comps["decreasing vs increasing 40->60% (linear)"].outcome == "better"):
        return "reproduced", comps
    return "inconclusive", comps


def report(rows: pd.DataFrame, p: dict, out: harness.Outputs) -> str:
    summary = analysis.summarise(rows, ["pair", "condition"])
    summary.to_csv(out.summary, index=False)
    overall, lines = analysis.judge(rows, "pair", verdict_for)
    table = pd.DataFrame({"pair": summary.pair, "schedule": summary.condition,
                          "samples processed": summary.samples.round().astype(int),
                          "student top-1 (mean ± std)": analysis.accuracy_cells(summary)})
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, overall,
                        analysis.rule_of(verdict_for),
                        analysis.comparisons_note(lines)
                        + f"\n\nTop-K(t) by KL_TS of the current student (clean views, direction "
                          f"'{p['direction']}'), re-selected every {p['period']} epoch(s).")
    plot(rows, summary, p, out)
    return overall


def plot(rows: pd.DataFrame, summary: pd.DataFrame, p: dict, out: harness.Outputs):
    pairs = list(dict.fromkeys(rows.pair))
    fig, axes = plt.subplots(len(pairs), 2, figsize=(13, 4.5 * len(pairs)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.6]})
    epochs = p["recipe"].epochs
    for (sched_ax, ax), pair in zip(axes, pairs):
        for label, (kind, start, end) in SCHEDULES.items():
            ratio = ratio_schedule(kind, start, end, epochs)
            sched_ax.plot(range(1, epochs + 1), [100 * ratio(e) for e in range(1, epochs + 1)], label=label)
        sched_ax.set(xlabel="epoch", ylabel="share of the pool kept (%)", title="K(t) schedules")
        sched_ax.legend(fontsize=7)
        part = rows[rows.pair == pair]
        order = [c for c in SCHEDULES] + ["all"]
        sns.pointplot(part, y="condition", x="final_test_top1", order=order, errorbar=("se", 2), linestyle="none",
                      capsize=0.2, ax=ax, color="C0")
        sns.stripplot(part, y="condition", x="final_test_top1", order=order, alpha=0.4, ax=ax, color="C1")
        ax.set(ylabel="", xlabel="student test top-1 (%)", title=f"{pair} (mean ± 2 SE, dots = seeds)")
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
