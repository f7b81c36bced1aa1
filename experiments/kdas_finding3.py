"""KDAS Finding 3 (Chae et al., "What to Distillation?", ICCV 2025): the quality of knowledge.

Rank the training set by the teacher-label divergence KL_TG (teacher trained on it, un-augmented images),
cut equal-size bands of low, medium and high KL_TG, and distil the same student with KD on each band, on
a random subset of the same size, and on all samples, for several seeds.

    bash experiments/kdas_finding3.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from kd import analysis, harness, records
from kd.data import generator
from kd.losses import kl_tg
from experiments import kdas_common

NAME = "kdas_finding3"
TITLE = "KDAS Finding 3: distil on samples of medium teacher-label divergence (KL_TG)"
CLAIM = ("Compared with distilling on all samples, distilling only on samples whose teacher-label divergence "
         "KL_TG is medium is as good or better; samples with low KL_TG (the teacher is nearly one-hot, little "
         "dark knowledge) or high KL_TG (the teacher is wrong) are worse.")
PAPER = ("CIFAR-100, KD: the medium-KL_TG subset matches or beats all samples, the low and high subsets fall "
         "below it (a figure; its numbers could not be recovered, so we compare the shape).")

# ------------------------------------------------------------------------------------------ the grid
# Bands are quantile windows of KL_TG, half of the samples each; "per_class" cuts them within each class
# (class-balanced), "global" over the whole pool, where easy classes crowd the low band (a
# Fashion-MNIST prototype found 70% of the global lowest third in four easy classes).
BANDS = {"low": (0.0, 0.5), "medium": (0.25, 0.75), "high": (0.5, 1.0)}
BANDINGS = ("per_class", "global")
VERDICT_BANDING = "per_class"
PROFILES = kdas_common.profiles(kl_direction="paper")  # data, teacher, student, recipes per scale


def grid(p: dict, seeds: int) -> list[dict]:
    conditions = [("all", 1.0), ("random", 0.5)] + [(f"{b}:{band}", 0.5) for b in BANDINGS for band in BANDS]
    return kdas_common.configs(NAME, p, seeds, [(label, share, {"kl_direction": p["kl_direction"]})
                                                for label, share in conditions])


# ------------------------------------------------------------------------------------------ one run
def kl_tg_ranking(config: dict, ctx) -> pd.DataFrame:
    """KL_TG of every pool sample under the run's teacher (un-augmented views), written to kl_tg.csv."""
    def compute():
        teacher, _ = ctx.teacher(config)
        pool = ctx.pool(config["pool_fraction"])
        labels = ctx.data.targets("train")[pool.to(ctx.data.device)]
        values = kl_tg(teacher.clean_logits("train", pool), labels, config["kl_direction"])
        frame = pd.DataFrame({"index": pool.numpy(), "label": labels.cpu().numpy(),
                              "kl_tg": values.cpu().double().numpy(), "pair": config["pair"]})
        path = ctx.out.results / f"kl_tg_{config['pair'].replace('->', '_to_')}.csv"
        records.write_history(path, frame.to_dict("records"))
        return frame
    return ctx.memo({"kl_tg": config["teacher"], "pool": config["pool_fraction"],
                     "direction": config["kl_direction"]}, compute)


def band(ranked: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """The samples between quantiles lo and hi of KL_TG (by rank; ties broken by index)."""
    order = ranked.sort_values(["kl_tg", "index"], kind="stable")
    n = len(order)
    return order.iloc[round(lo * n):round(hi * n)]


def subset(config: dict, ctx) -> pd.DataFrame:
    ranked = kl_tg_ranking(config, ctx)
    condition = config["condition"]
    if condition == "all":
        return ranked
    if condition == "random":  # class-balanced, half of each class, drawn per seed
        g = generator(config["seed"], 0, 3)
        return pd.concat([c.iloc[torch.randperm(len(c), generator=g)[:len(c) // 2].numpy()]
                          for _, c in ranked.groupby("label")])
    banding, name = condition.split(":")
    lo, hi = BANDS[name]
    if banding == "global":
        return band(ranked, lo, hi)
    return pd.concat([band(c, lo, hi) for _, c in ranked.groupby("label")])


def run(config: dict, ctx) -> dict:
    chosen = subset(config, ctx)
    result = harness.distill(config, ctx, torch.tensor(np.sort(chosen["index"].to_numpy())))
    shares = chosen["label"].value_counts(normalize=True)
    result["extra"].update({"kl_tg_min": chosen.kl_tg.min(), "kl_tg_median": chosen.kl_tg.median(),
                            "kl_tg_max": chosen.kl_tg.max(), "top_class_share": shares.iloc[0],
                            "top_class": int(shares.index[0])})
    return result


# ------------------------------------------------------------------------------------------ analysis
def verdict_for(rows: pd.DataFrame, banding: str) -> tuple[str, dict]:
    """The rule, fixed before any result was seen: differences within two standard errors are noise.
    reproduced: medium is not worse than all, and low and high are both worse than medium.
    not reproduced: medium is worse than all, or low or high is better than medium.
    inconclusive: anything else."""
    acc = analysis.metric_of(rows, "condition")
    c = {"medium vs all": analysis.compare(acc(f"{banding}:medium"), acc("all")),
         "low vs medium": analysis.compare(acc(f"{banding}:low"), acc(f"{banding}:medium")),
         "high vs medium": analysis.compare(acc(f"{banding}:high"), acc(f"{banding}:medium")),
         "medium vs random (same size)": analysis.compare(acc(f"{banding}:medium"), acc("random"))}
    if c["medium vs all"].outcome == "worse" or "better" in (c["low vs medium"].outcome,
                                                             c["high vs medium"].outcome):
        return "not reproduced", c
    if c["low vs medium"].outcome == "worse" and c["high vs medium"].outcome == "worse":
        return "reproduced", c
    return "inconclusive", c


def report(rows: pd.DataFrame, p: dict, out: harness.Outputs) -> str:
    summary = analysis.summarise(rows, ["pair", "condition"])
    ranges = rows.groupby(["pair", "condition"], sort=False)[["kl_tg_min", "kl_tg_max", "top_class_share",
                                                              "train_size"]].first().reset_index()
    summary = summary.merge(ranges, on=["pair", "condition"])
    summary.to_csv(out.summary, index=False)

    verdicts, lines = {}, []
    for banding in BANDINGS:
        verdicts[banding], banding_lines = analysis.judge(rows, "pair", verdict_for, banding,
                                                         suffix=f", {banding} bands")
        lines += banding_lines
    overall = verdicts[VERDICT_BANDING]
    s = summary
    table = pd.DataFrame({
        "pair": s.pair, "condition": s.condition, "train size": s.train_size,
        "samples processed": s.samples.round().astype(int),
        "KL_TG range (nats)": [f"{a:.1e} .. {b:.1e}" for a, b in zip(s.kl_tg_min, s.kl_tg_max)],
        "largest class share": (100 * s.top_class_share).round().astype(int).astype(str) + "%",
        "student top-1 (mean ± std)": analysis.accuracy_cells(s)})
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, overall,
                        f"The verdict uses the {VERDICT_BANDING.replace('_', '-')} bands. "
                        + analysis.rule_of(verdict_for),
                        analysis.comparisons_note(lines)
                        + f"\n\nStudents train for the same number of epochs, so a band sees half the samples of "
                          f"'all'; 'random' is the same-size control. Direction of KL_TG: {p['kl_direction']}.")
    plot(rows, summary, out)
    return overall


def plot(rows: pd.DataFrame, summary: pd.DataFrame, out: harness.Outputs):
    pairs = list(dict.fromkeys(rows.pair))
    fig, axes = plt.subplots(len(pairs), 2, figsize=(12, 4.2 * len(pairs)), squeeze=False)
    for (ax, dist_ax), pair in zip(axes, pairs):
        part = rows[rows.pair == pair].copy()
        banded = part[part.condition.str.contains(":")].copy()
        banded[["banding", "band"]] = banded.condition.str.split(":", expand=True)
        order = list(BANDS)
        sns.stripplot(banded, x="band", y="final_test_top1", hue="banding", order=order, dodge=True, alpha=0.5,
                      ax=ax, legend=False)
        sns.pointplot(banded, x="band", y="final_test_top1", hue="banding", order=order, dodge=0.4,
                      errorbar=("se", 2), linestyle="none", capsize=0.1, ax=ax, marker="D")
        for condition, style in (("all", "-"), ("random", "--")):
            analysis.baseline(ax, summary[(summary.pair == pair) & (summary.condition == condition)].iloc[0],
                              f"{condition} samples", style)
        ax.set(xlabel="KL_TG band (quantile window 0-50 / 25-75 / 50-100%)", ylabel="student test top-1 (%)",
               title=f"{pair}: student accuracy per band (mean ± 2 SE, dots = seeds)")
        ax.legend(fontsize=8)
        ranked = pd.read_csv(out.results / f"kl_tg_{pair.replace('->', '_to_')}.csv")
        logs = np.log10(ranked.kl_tg.clip(lower=1e-12))
        sns.histplot(logs, bins=60, ax=dist_ax, color="0.5")
        for q in (0.25, 0.5, 0.75):
            dist_ax.axvline(np.quantile(logs, q), color="C3", linestyle=":", linewidth=1.2)
        dist_ax.set(xlabel="log10 KL_TG (nats) of the training pool", ylabel="samples",
                    title="KL_TG distribution; dotted: global band edges (25/50/75%)")
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
