"""KDAS Finding 3 (Chae et al., "What to Distill?", ICCV 2025): the quality of knowledge.

Rank the training pool by the teacher-label divergence KL_TG (the published teacher, un-augmented images),
cut equal-size bands of low, medium and high KL_TG within each class, and distil the same student with KD on
each band, on a random half of the same size, and on all samples, for the same seeds. A half trains for as
many steps as 'all' (twice the epochs). Protocol v3: the whole grid runs again at twice the epochs (the
budget arm), and the verdict is read at both.

    bash experiments/kdas_finding3.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
"""
from __future__ import annotations

import sys

if not __package__:  # `python experiments/<name>.py`: run it as `python -m experiments.<name>` does
    import pathlib
    import runpy
    sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])
    runpy.run_module(f"experiments.{pathlib.Path(__file__).stem}", run_name="__main__", alter_sys=True)
    sys.exit()

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from experiments import kdas_common, protocol
from experiments.settings import REGIME, SMOKE_REGIME
from kd import analysis, harness, records, regime
from kd.analysis import Outputs
from kd.config import RunConfig
from kd.data import generator
from kd.losses import kl_tg
from kd.run import distill

NAME = "kdas_finding3"
TITLE = "KDAS Finding 3: distil on samples of medium teacher-label divergence (KL_TG)"
CLAIM = ("Compared with distilling on all samples, distilling only on samples whose teacher-label divergence "
         "KL_TG is medium is as good or better; samples with low KL_TG (the teacher is nearly one-hot, little "
         "dark knowledge) or high KL_TG (the teacher is wrong) are worse.")
PAPER = ("CIFAR-100, KD: the medium-KL_TG subset matches or beats all samples, the low and high subsets fall "
         "below it (a figure; its numbers could not be recovered, so we compare the shape).")

# ------------------------------------------------------------------------------------------ the rule
# Protocol v3 (issue 32). v2 (rule 9639fe7e, table_v2_9639fe7e.md) judged medium vs all, which mixes the
# samples' quality with their number (a random half was 1.57 pp below all too), at one budget, behind a gate
# of one last-quarter gain per run; its rows came from another training of the teacher than the published one.
MEDIUM_VS_ALL = f"medium vs all, margin {0.5:g} pp"  # the non-inferiority form of "medium vs all"
RULE = {"alpha": 0.05, "margin_pp": 0.5, "budgets": (1, 2), "band_ratio": 2.0, "lr_below": regime.ANNEALED}
HOLDS = {MEDIUM_VS_ALL: "not worse", "medium vs random": "better", "low vs medium": "worse",
         "high vs medium": "worse"}
CONTRADICTS = {"medium vs all": "worse", "medium vs random": "worse", "low vs medium": "better",
               "high vs medium": "better"}


def label(condition: str, budget: int) -> str:
    return condition if budget == 1 else f"{condition} ({budget}x budget)"


def contrasts_at(rows: pd.DataFrame, budget: int) -> dict:
    acc = analysis.metric_of(rows, "condition")
    at = lambda name: acc(label(name, budget))  # noqa: E731
    return analysis.decide({
        MEDIUM_VS_ALL: analysis.contrast(at("medium"), at("all"), margin=RULE["margin_pp"]),
        "medium vs all": analysis.contrast(at("medium"), at("all")),
        "medium vs random": analysis.contrast(at("medium"), at("random")),
        "low vs medium": analysis.contrast(at("low"), at("medium")),
        "high vs medium": analysis.contrast(at("high"), at("medium"))}, RULE["alpha"], forms={MEDIUM_VS_ALL: "medium vs all"})


def reading(c: dict) -> tuple[str, list[str]]:
    """One budget's reading of the claim and the contrasts it rests on."""
    against = [k for k, outcome in CONTRADICTS.items() if c[k].outcome == outcome]
    if against:
        return "contradicted", against
    if all(c[k].outcome == outcome for k, outcome in HOLDS.items()):
        return "holds", list(HOLDS)
    return "open", []


def premise(rows: pd.DataFrame, criterion: dict) -> list[tuple[str, str, str, bool]]:
    """(what, value, criterion, met): the bands differ in KL_TG, and the teacher fits its pool and has
    converged (its plateau once its LR annealed, kd.regime.plateau)."""
    median = {b: rows.loc[rows.condition == b, "kl_tg_median"].max() for b in ("low", "medium", "high")}  # one value
    ratios = [median["medium"] / median["low"], median["high"] / median["medium"]]
    first = rows.iloc[0].reindex(["teacher_plateau", "teacher_plateau_low", "teacher_plateau_high",
                                  "teacher_plateau_n", "teacher_plateau_span", "teacher_train_top1",
                                  "teacher_test_top1"])  # nan where a teacher has no training history
    slope = regime.Slope(*first.iloc[:3], int(np.nan_to_num(first.iloc[3])), first.iloc[4])
    gap = first.teacher_train_top1 - first.teacher_test_top1
    return [("median KL_TG of the bands, low / medium / high (nats)",
             " / ".join(f"{median[b]:.2e}" for b in median), "", True),
            ("ratio of adjacent band medians, medium/low and high/medium", " and ".join(f"{r:.1f}" for r in ratios),
             f">= {RULE['band_ratio']:g} each", min(ratios) >= RULE["band_ratio"]),
            ("teacher train top-1 (clean views of its pool) minus test top-1", f"{gap:.2f}",
             f">= {criterion['min_train_gap']:g}", gap >= criterion["min_train_gap"]),
            (f"teacher plateau: test top-1 slope once its LR is <= {RULE['lr_below']:g} x its peak; upper end over "
             f"another such stretch", f"{slope}; {slope.extended():+.2f} pp", f"< {criterion['max_gain']:g} pp",
             regime.converged(slope, criterion["max_gain"]))]


def verdict_for(rows: pd.DataFrame, curves: dict, criterion: dict) -> tuple[str, dict]:
    """Protocol v3, fixed before the runs. Per budget (the recipe's epochs x1 and x2, the same seeds; a half
    trains for as many steps as 'all'), per-seed paired differences of test top-1 with 95% t intervals and
    Holm's correction (alpha 0.05) over four contrasts: medium vs all (its non-inferiority form, margin 0.5
    pp, and its plain form count once), medium vs random (quality at equal size), low vs medium, high vs
    medium. A budget's reading: holds when medium is shown not worse than all by more than the margin, better
    than random, and low and high are both worse than medium (it rests on all four); contradicted when medium
    is worse than all or than random, or low or high is better than medium (it rests on those); else open.
    Premise, checked first: the per-class bands' median KL_TG rise by a factor of at least 2 from band to
    band; the teacher fits its pool (train top-1 at least min_train_gap above test) and has converged (the
    upper end of the 95% interval of its test top-1's slope once its LR is at most 0.1 of its peak, continued
    over another such stretch, adds less than max_gain pp). Verdict: premise not met at this scale, if the
    premise fails; budget-dependent at this scale, if the two budgets' readings differ, or both are
    contradicted but by no contrast in common (no contrast decides at both budgets), or a contrast the
    verdict rests on at both budgets is not budget-stable at the doubled one (kd.regime: the far end of its
    paired late-phase drift, over another 40% of training, would take it across 0, or across minus the
    margin for the non-inferiority form). Else, reproduced: both hold. not reproduced: both are contradicted.
    inconclusive: both are open."""
    at = {b: contrasts_at(rows, b) for b in RULE["budgets"]}
    (first, on_first), (last, on_last) = (reading(at[b]) for b in RULE["budgets"])
    decisive = [k for k in on_first if k in on_last]  # the same outcome at both budgets, by the readings' rules
    doubled = at[RULE["budgets"][-1]]
    drifts = {k: regime.drift(*(curves_of(curves, label(x, RULE["budgets"][-1])) for x in pair))
              for k, pair in PAIRS.items()}
    stable = {k: regime.budget_stable(c.diff, drifts[k], -c.margin if c.margin is not None else 0.0)
              for k, c in doubled.items()}
    facts = {"contrasts": at, "readings": (first, last), "drifts": drifts, "stable": stable,
             "premise": premise(rows, criterion)}
    if not all(met for *_, met in facts["premise"]):
        return "premise not met at this scale", facts
    facts["decisive"] = decisive
    if first != last or (first == "contradicted" and not decisive) or not all(stable[k] for k in decisive):
        return "budget-dependent at this scale", facts
    return {"holds": "reproduced", "contradicted": "not reproduced", "open": "inconclusive"}[first], facts


PAIRS = {MEDIUM_VS_ALL: ("medium", "all"), "medium vs all": ("medium", "all"), "medium vs random": ("medium", "random"),
         "low vs medium": ("low", "medium"), "high vs medium": ("high", "medium")}


def curves_of(curves: dict, condition: str) -> dict:
    """seed -> the late-phase curve of that condition's run (curves: (condition, seed) -> kd.regime.late_curve)."""
    return {seed: curve for (c, seed), curve in curves.items() if c == condition}


RULE_CODE = (verdict_for, reading, premise, contrasts_at, regime.drift, regime.budget_stable, regime.plateau,
             regime.converged, regime.late_curve)

# ------------------------------------------------------------------------------------------ the grid
PROFILES = kdas_common.profiles(kl_direction="paper")  # data, teacher, student, recipes per scale
# v3: v2's converged cpu regime (kdas_common.CONVERGED_CPU: 1,200 images, teacher 120 epochs, 'all' 144) with
# the published teacher pinned, evaluations every 4 epochs of 'all' over the late phase (the halves: 8, the
# same steps), fresh seeds 30-34. Five seeds: v2's paired MDEs were 1.0-1.2 pp; the paper gives no number.
_late = {"late_eval_every": 4}
PROFILES["cpu"] = {**PROFILES["cpu"], **kdas_common.CONVERGED_CPU, "first_seed": 30,
                   "recipe": replace(kdas_common.CONVERGED_CPU["recipe"], **_late),
                   "teacher_weights": kdas_common.PUBLISHED_TEACHER_CPU}
PROFILES["smoke"] = {**PROFILES["smoke"], "regime": SMOKE_REGIME,
                     "recipe": replace(PROFILES["smoke"]["recipe"], late_eval_every=1)}
PROFILES["paper"] = {**PROFILES["paper"], "regime": REGIME,
                     "recipe": replace(PROFILES["paper"]["recipe"], **_late)}
SUBSETS = ("random", "low", "medium", "high")
BANDS = {"low": (0.0, 0.5), "medium": (0.25, 0.75), "high": (0.5, 1.0)}  # quantile windows within each class


def grid(p: dict, seeds: int) -> list[dict]:
    r, fields = p["recipe"], {"kl_direction": p["kl_direction"]}
    conditions = []
    for budget in RULE["budgets"]:
        conditions.append((label("all", budget), 1.0, {**fields, "subset": "all", "recipe": r.scaled(budget).as_dict()}))
        conditions += [(label(s, budget), 0.5, {**fields, "subset": s, "recipe": r.scaled(2 * budget).as_dict()})
                       for s in SUBSETS]
    return kdas_common.configs(NAME, p, seeds, conditions)


# ------------------------------------------------------------------------------------------ one run
def kl_tg_ranking(config: RunConfig, ctx) -> pd.DataFrame:
    """KL_TG of every pool sample under the run's teacher (un-augmented views), written to kl_tg.csv."""
    def compute():
        teacher, _ = ctx.teacher(config)
        pool = ctx.pool(config.pool_fraction)
        labels = ctx.data.targets("train")[pool.to(ctx.data.device)]
        values = kl_tg(teacher.clean_logits("train", pool), labels, own["kl_direction"])
        frame = pd.DataFrame({"index": pool.numpy(), "label": labels.cpu().numpy(),
                              "kl_tg": values.cpu().double().numpy(), "pair": own["pair"]})
        records.write_history(ranking_file(ctx.out, own["pair"]), frame.to_dict("records"))
        return frame
    own = config.finding
    return ctx.memo({"kl_tg": config.teacher.as_dict(), "pool": config.pool_fraction,
                     "direction": own["kl_direction"]}, compute)


def ranking_file(out: Outputs, pair: str):
    return out.results / f"kl_tg_{pair.replace('->', '_to_')}.csv"


def band(ranked: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """The samples between quantiles lo and hi of KL_TG (by rank; ties broken by index)."""
    order = ranked.sort_values(["kl_tg", "index"], kind="stable")
    n = len(order)
    return order.iloc[round(lo * n):round(hi * n)]


def subset(config: RunConfig, ctx) -> pd.DataFrame:
    ranked = kl_tg_ranking(config, ctx)
    condition = config.finding["subset"]
    if condition == "all":
        return ranked
    if condition == "random":  # class-balanced, half of each class, drawn per seed
        g = generator(config.seed, 0, 3)
        return pd.concat([c.iloc[torch.randperm(len(c), generator=g)[:len(c) // 2].numpy()]
                          for _, c in ranked.groupby("label")])
    lo, hi = BANDS[condition]
    return pd.concat([band(c, lo, hi) for _, c in ranked.groupby("label")])


def run(config: RunConfig, ctx) -> dict:
    chosen = subset(config, ctx)
    result = distill(config, ctx, torch.tensor(np.sort(chosen["index"].to_numpy())))
    shares = chosen["label"].value_counts(normalize=True)
    result["extra"].update({"kl_tg_min": chosen.kl_tg.min(), "kl_tg_median": chosen.kl_tg.median(),
                            "kl_tg_max": chosen.kl_tg.max(), "top_class_share": shares.iloc[0],
                            "top_class": int(shares.index[0])})
    return result


# ------------------------------------------------------------------------------------------ analysis
# Pairing: runs of one seed share the student's initialisation and each sample's augmented view in every
# epoch; their data order cannot be shared, as their pools differ.
def late_curves(rows: pd.DataFrame, out: Outputs) -> dict:
    return {(r.condition, r.seed): regime.late_curve(pd.read_csv(out.history(r.run_id))) for r in rows.itertuples()}


def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    summary = analysis.summarise(rows, ["condition"])
    facts_of = rows.groupby("condition", sort=False)[["kl_tg_min", "kl_tg_median", "kl_tg_max", "train_size",
                                                      "recipe.epochs"]].first()
    summary = summary.merge(facts_of.reset_index(), on="condition")
    analysis.write_csv(summary, out.summary)
    verdict, facts = verdict_for(rows, late_curves(rows, out), p["regime"])
    acc = analysis.metric_of(rows, "condition")
    s = summary
    vs_all = [analysis.contrast(acc(c), acc(label("all", b))) if not c.startswith("all") else None
              for c, b in zip(s.condition, budgets_of(s.condition))]
    table = pd.DataFrame({
        "condition": s.condition, "epochs": s["recipe.epochs"], "train size": s.train_size,
        "samples processed": s.samples.round().astype(int), "KL_TG median (range), nats": [f"{m:.1e} ({a:.1e} .. {b:.1e})" for m, a, b in
                                        zip(s.kl_tg_median, s.kl_tg_min, s.kl_tg_max)],
        "student top-1 (mean ± std)": analysis.accuracy_cells(s),
        "minus 'all' of its budget, paired [95% CI]": [analysis.ci_cell(v) for v in vs_all]})
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, verdict, analysis.rule_of(verdict_for),
                         notes(rows, facts, p) + "\n\n" + kdas_common.UNCONFIRMED)
    plot(rows, facts, out)
    return verdict


def budgets_of(conditions) -> list[int]:
    return [next((b for b in RULE["budgets"][1:] if c.endswith(f"({b}x budget)")), 1) for c in conditions]


def notes(rows: pd.DataFrame, facts: dict, p: dict) -> str:
    at, (b1, b2) = facts["contrasts"], RULE["budgets"]
    lines = [analysis.verdict_line(f"x{b} budget ({int(rows.loc[rows.condition == label('all', b), 'recipe.epochs'].iloc[0])} "
                                   f"epochs of 'all'), reading: {facts['readings'][i]}", "", at[b]).replace(" ****;", "")
             for i, b in enumerate((b1, b2))]
    return ("**Premise** (checked before the claim):\n\n" + protocol.premise_block(facts["premise"])
            + "\n\n**Regime** (v3, the budget arm: every contrast again at twice the epochs, the same seeds; its "
              "drift over the last 40% of training, per schedule, and whether its far end keeps the contrast's side):"
              "\n\n" + protocol.budget_arm_block(rows, facts, PAIRS)
            + "\n\n**Comparisons** (a - b over seeds; Holm over the four of each budget, the two forms of medium "
              "vs all counting once; MDE: the smallest true difference found with 80% power at this n, beside "
              f"the {RULE['margin_pp']:g} pp margin, as the paper gives no number):\n" + "\n".join(lines)
            + "\n\nA half (random or a band) sees half the samples of 'all' per epoch and trains twice the epochs: the "
              "same steps. Runs of a seed share the student's initialisation and every sample's augmented views; "
              f"their data order differs with their pools. Direction of KL_TG: {p['kl_direction']}.")


def plot(rows: pd.DataFrame, facts: dict, out: Outputs):
    fig, (acc_ax, diff_ax, dist_ax) = plt.subplots(1, 3, figsize=(17, 4.6))
    rows = rows.assign(budget=[f"x{b}" for b in budgets_of(rows.condition)],
                       subset=rows.condition.str.replace(r" \(\dx budget\)", "", regex=True))
    order = ["all", *SUBSETS]
    sns.stripplot(rows, x="subset", y="final_test_top1", hue="budget", order=order, dodge=True, alpha=0.6, ax=acc_ax)
    acc_ax.set(xlabel="", ylabel="student test top-1 (%)", title="per seed (dots), by budget")
    protocol.contrast_panel(diff_ax, facts["contrasts"], RULE["margin_pp"])
    for pair in dict.fromkeys(rows.pair):
        logs = np.log10(pd.read_csv(ranking_file(out, pair)).kl_tg.clip(lower=1e-12))
        sns.histplot(logs, bins=60, ax=dist_ax, color="0.5")
    for b in ("low", "medium", "high"):
        median = rows.loc[rows.condition == b, "kl_tg_median"].max()  # nan for a band not in the rows
        dist_ax.axvline(np.log10(max(median, 1e-12)), linestyle=":", linewidth=1.4, label=f"{b} band median",
                        color={"low": "C0", "medium": "C2", "high": "C3"}[b])
    dist_ax.set(xlabel="log10 KL_TG (nats) of the training pool", ylabel="samples",
                title="KL_TG of the pool; bands are cut within each class")
    dist_ax.legend(fontsize=8)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
