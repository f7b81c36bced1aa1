"""KDAS Finding 1 (Chae et al., "What to Distill?", ICCV 2025): the quantity of knowledge.

Distil the same student with KD on only the k% of samples with the highest teacher-student divergence
KL_TS (re-selected every few epochs as the student changes), on a random k% (re-drawn as often), and on
all samples, for several k and seeds.

    bash experiments/kdas_finding1.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from experiments import kdas_common
from kd import analysis, harness

NAME = "kdas_finding1"
TITLE = "KDAS Finding 1: distil only on the samples with the most knowledge (highest KL_TS)"
CLAIM = ("Training only on the samples with the highest teacher-student divergence KL_TS matches or beats "
         "training on all samples.")
PAPER = ("CIFAR-100, KD: the high-KL_TS subsets reach the accuracy of all samples or more (a figure over "
         "sampling ratios; its numbers could not be recovered, so we compare the shape).")

# ------------------------------------------------------------------------------------------ the grid
RATIOS = (0.2, 0.4, 0.6, 0.8)
CLAIM_RATIOS = (0.4, 0.6, 0.8)  # the verdict's range; 20% is shown but not judged
PROFILES = kdas_common.profiles(period=2, direction="paper")  # re-select every 2 epochs on CPU
PROFILES["paper"]["period"] = [1, 3, 5, 10]  # the release's schedule over 240 epochs


def grid(p: dict, seeds: int) -> list[dict]:
    conditions = [("all", 1.0, {})]
    for k in RATIOS:
        for kind, random in (("top", False), ("random", True)):
            sampler = {"ratio": "constant", "start": k, "end": k, "period": p["period"],
                       "direction": p["direction"], "random": random}
            conditions.append((f"{kind} {round(100 * k)}%", k, {"sampler": sampler}))
    return kdas_common.configs(NAME, p, seeds, conditions)


run = harness.distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
def verdict_for(rows: pd.DataFrame) -> tuple[str, dict]:
    """The rule, fixed before any result was seen: differences within two standard errors are noise.
    reproduced: for every k in 40, 60, 80%, top-k is not worse than all samples and not worse than random-k.
    not reproduced: top-k is worse than all samples for every such k.
    inconclusive: anything else."""
    acc = analysis.metric_of(rows, "condition")
    comps = {}
    for k in CLAIM_RATIOS:
        pct = round(100 * k)
        comps[f"top {pct}% vs all"] = analysis.compare(acc(f"top {pct}%"), acc("all"))
        comps[f"top {pct}% vs random {pct}%"] = analysis.compare(acc(f"top {pct}%"), acc(f"random {pct}%"))
    vs_all = [c for name, c in comps.items() if name.endswith("vs all")]
    if all(c.outcome == "worse" for c in vs_all):
        return "not reproduced", comps
    if all(c.outcome != "worse" for c in comps.values()):
        return "reproduced", comps
    return "inconclusive", comps


def report(rows: pd.DataFrame, p: dict, out: harness.Outputs) -> str:
    summary = analysis.summarise(rows, ["pair", "condition"])
    wall = rows.groupby(["pair", "condition"], sort=False).wall_s.mean().reset_index()
    summary = summary.merge(wall, on=["pair", "condition"])
    summary.to_csv(out.summary, index=False)
    overall, lines = analysis.judge(rows, "pair", verdict_for)
    table = pd.DataFrame({"pair": summary.pair, "condition": summary.condition,
                          "samples processed": summary.samples.round().astype(int),
                          "wall (s)": summary.wall_s.round(1),
                          "student top-1 (mean ± std)": analysis.accuracy_cells(summary)})
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, overall,
                        analysis.rule_of(verdict_for),
                        analysis.comparisons_note(lines)
                        + f"\n\nSubsets are re-selected every {p['period']} epochs (top: by KL_TS of the current "
                          f"student on clean views, direction '{p['direction']}'; random: re-drawn). All runs "
                          f"train for the same epochs, so a k% run processes k% of the samples of 'all'.")
    plot(rows, summary, out)
    return overall


def plot(rows: pd.DataFrame, summary: pd.DataFrame, out: harness.Outputs):
    pairs = list(dict.fromkeys(rows.pair))
    fig, axes = plt.subplots(1, len(pairs), figsize=(7 * len(pairs), 4.5), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        part = rows[(rows.pair == pair) & (rows.condition != "all")].copy()
        part["kind"] = part.condition.str.split(" ").str[0].map({"top": "top KL_TS", "random": "random"})
        part["ratio (%)"] = part.condition.str.split(" ").str[1].str.rstrip("%").astype(int)
        sns.lineplot(part, x="ratio (%)", y="final_test_top1", hue="kind", errorbar=("se", 2), marker="o", ax=ax)
        sns.scatterplot(part, x="ratio (%)", y="final_test_top1", hue="kind", alpha=0.35, legend=False, ax=ax)
        analysis.baseline(ax, summary[(summary.pair == pair) & (summary.condition == "all")].iloc[0], "all samples")
        ax.set(xticks=[round(100 * k) for k in RATIOS], ylabel="student test top-1 (%)",
               xlabel="share of the pool kept per epoch (%)",
               title=f"{pair}: top-KL_TS vs random subsets (mean ± 2 SE, dots = seeds)")
        ax.legend(fontsize=8)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
