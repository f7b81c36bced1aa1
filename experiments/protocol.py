"""Protocol v3 (issues 32, 33): what the rules of the findings re-run under it share. A finding's rule reads
each budget (the recipe's epochs, and twice them with the same seeds: the budget arm) as holds, contradicted
or open, each reading naming the contrasts it rests on; `verdict` turns the two readings, the stability of
those contrasts at the doubled budget and the paper's premise into one of the v3 verdicts. A finding lists
the functions here that its rule uses in its RULE_CODE, so that a change here is a changed rule for it.

KDAS Finding 3, the pilot, keeps its own copies (hashed into its rule 6cf2b631 with its committed rows) until
its next rule change.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kd import analysis, regime
from kd.analysis import Outputs

BUDGETS = (1, 2)  # the recipe's epochs, and twice them (the same seeds)
VERDICTS = {"holds": "reproduced", "contradicted": "not reproduced", "open": "inconclusive"}


def label(condition: str, budget: int) -> str:
    return condition if budget == 1 else f"{condition} ({budget}x budget)"


def budget_of(condition: str) -> int:
    return next((b for b in BUDGETS[1:] if condition.endswith(f"({b}x budget)")), 1)


def late_curves(rows: pd.DataFrame, out: Outputs) -> dict:
    """(condition, seed) -> the late-phase curve of that run (kd.regime.late_curve), from its history."""
    return {(r.condition, r.seed): regime.late_curve(pd.read_csv(out.history(r.run_id))) for r in rows.itertuples()}


def curves_of(curves: dict, condition: str) -> dict:
    """seed -> the late-phase curve of that condition's run."""
    return {seed: curve for (c, seed), curve in curves.items() if c == condition}


def stability(doubled: dict, pairs: dict, curves: dict) -> tuple[dict, dict]:
    """Per contrast at the doubled budget (`pairs`: its name -> (a, b)): the paired late-phase drift of a - b
    (kd.regime.drift) and whether its far end keeps the contrast on its side of its flip point (0, or minus
    the margin of a non-inferiority form: kd.regime.budget_stable)."""
    last = BUDGETS[-1]
    drifts = {k: regime.drift(*(curves_of(curves, label(x, last)) for x in pair)) for k, pair in pairs.items()}
    stable = {k: regime.budget_stable(c.diff, drifts[k], -c.margin if c.margin is not None else 0.0)
              for k, c in doubled.items()}
    return drifts, stable


def teacher_premise(rows: pd.DataFrame, criterion: dict, lr_below: float) -> list[tuple[str, str, str, bool]]:
    """(what, value, criterion, met) of the teacher the rows were distilled from: it fits its pool (train
    top-1 on clean views at least min_train_gap above test) and has converged (kd.regime.plateau once its LR
    is at most `lr_below` of its peak; the far end of its interval over another such stretch adds less than
    max_gain pp)."""
    first = rows.iloc[0].reindex(["teacher_plateau", "teacher_plateau_low", "teacher_plateau_high",
                                  "teacher_plateau_n", "teacher_plateau_span", "teacher_train_top1",
                                  "teacher_test_top1"])  # nan where a teacher has no training history
    slope = regime.Slope(*first.iloc[:3], int(np.nan_to_num(first.iloc[3])), first.iloc[4])
    gap = first.teacher_train_top1 - first.teacher_test_top1
    return [("teacher train top-1 (clean views of its pool) minus test top-1", f"{gap:.2f}",
             f">= {criterion['min_train_gap']:g}", gap >= criterion["min_train_gap"]),
            (f"teacher plateau: test top-1 slope once its LR is <= {lr_below:g} x its peak; upper end over another "
             f"such stretch", f"{slope}; {slope.extended():+.2f} pp", f"< {criterion['max_gain']:g} pp",
             regime.converged(slope, criterion["max_gain"]))]


def teachers_premise(parts: dict, criterion: dict, lr_below: float) -> list[tuple[str, str, str, bool]]:
    """teacher_premise of each teacher (`parts`: its name -> the rows distilled from it), each line named by
    it; timm's pretrained weights (the paper scale's ImageNet teachers) are taken as converged."""
    lines = []
    for name, r in parts.items():
        if r.get("teacher.pretrained", pd.Series([False])).fillna(False).astype(bool).iloc[0]:
            lines.append((f"{name}: timm's pretrained weights", "trained by their publisher; not checked here", "", True))
        else:
            lines += [(f"{name}: {what}", value, bound, met)
                      for what, value, bound, met in teacher_premise(r, criterion, lr_below)]
    return lines


def verdict(readings: tuple, rests_on: tuple, stable: dict, premise: list, underpowered: bool = False
            ) -> tuple[str, list[str]]:
    """The v3 verdict and the contrasts that decide it. premise not met at this scale, if a premise check
    (its last field) fails; budget-dependent at this scale, if the two budgets' readings differ, or both are
    contradicted by no contrast in common, or a contrast both rest on is not budget-stable at the doubled
    budget; underpowered at this scale, if both are open and `underpowered` (the design cannot detect the
    effect it targets); else reproduced / not reproduced / inconclusive for holds / contradicted / open."""
    first, last = readings
    decisive = [k for k in rests_on[0] if k in rests_on[-1]]
    if not all(met for *_, met in premise):
        return "premise not met at this scale", decisive
    if first != last or (first == "contradicted" and not decisive) or not all(stable[k] for k in decisive):
        return "budget-dependent at this scale", decisive
    if first == "open" and underpowered:
        return "underpowered at this scale", decisive
    return VERDICTS[first], decisive


def judge(rows: pd.DataFrame, curves: dict, contrasts_at, reading, pairs: dict, premise: list, powered: dict
          ) -> tuple[str, dict]:
    """A v3 rule from its parts: `contrasts_at(rows, budget)` (its Holm family at one budget), `reading` (one
    budget's holds / contradicted / open and the contrasts it rests on), `pairs` (contrast -> (a, b), for the
    budget arm's drift), the premise's lines, and `powered` (contrast -> the effect it must detect: both
    readings open with an MDE above it at either budget is 'underpowered'). Returns the verdict and its facts.
    KDAS Findings 1, 2 and 4 keep their own copies of this body (hashed into their rules) until their next
    rule change."""
    at = {b: contrasts_at(rows, b) for b in BUDGETS}
    readings, rests_on = zip(*(reading(at[b]) for b in BUDGETS))
    drifts, stable = stability(at[BUDGETS[-1]], pairs, curves)
    facts = {"contrasts": at, "readings": readings, "drifts": drifts, "stable": stable, "premise": premise}
    underpowered = any(not at[b][k].mde <= effect for b in BUDGETS for k, effect in powered.items())
    outcome, facts["decisive"] = verdict(readings, rests_on, stable, premise, underpowered)
    return outcome, facts


def metric_curves(rows: pd.DataFrame, out: Outputs, metrics) -> dict:
    """(metric, condition, seed) -> the late-phase curve of that metric in that run (kd.regime.late_curve),
    for a rule whose contrasts are on other metrics than test top-1 (its history read once per run)."""
    histories = {r.run_id: pd.read_csv(out.history(r.run_id)) for r in rows.itertuples()}
    return {(m, r.condition, r.seed): regime.late_curve(histories[r.run_id], m) for m in metrics
            for r in rows.itertuples()}


def metric_stability(doubled: dict, ends: dict, curves: dict) -> tuple[dict, dict]:
    """`stability` for contrasts on several metrics (`ends`: contrast -> (metric, a, b), b None for a fixed
    reference such as 99% agreement, whose drift is a's own; `curves` from metric_curves)."""
    last = BUDGETS[-1]

    def of(metric: str, condition: str) -> dict:
        return {s: c for (m, cond, s), c in curves.items() if m == metric and cond == label(condition, last)}
    drifts = {}
    for k, (metric, a, b) in ends.items():
        ours = of(metric, a)
        drifts[k] = regime.drift(ours, of(metric, b) if b else {s: 0 * c for s, c in ours.items()})
    stable = {k: regime.budget_stable(c.diff, drifts[k], -c.margin if c.margin is not None else 0.0)
              for k, c in doubled.items()}
    return drifts, stable


def judge_with(rows: pd.DataFrame, contrasts_at, reading, stability_of, premise: list, powered: dict
               ) -> tuple[str, dict]:
    """`judge` with the budget arm's stability as a function of the contrasts at the doubled budget
    (`stability_of(doubled) -> (drifts, stable)`, e.g. metric_stability's): the form for rules from
    fidelity_ensembles' v3 on; `judge` stays as the rules that hash it were fixed."""
    at = {b: contrasts_at(rows, b) for b in BUDGETS}
    readings, rests_on = zip(*(reading(at[b]) for b in BUDGETS))
    drifts, stable = stability_of(at[BUDGETS[-1]])
    facts = {"contrasts": at, "readings": readings, "drifts": drifts, "stable": stable, "premise": premise}
    underpowered = any(not at[b][k].mde <= effect for b in BUDGETS for k, effect in powered.items())
    outcome, facts["decisive"] = verdict(readings, rests_on, stable, premise, underpowered)
    return outcome, facts


def premise_block(premise: list) -> str:
    return "\n".join(["| premise | value | criterion | met |", "| --- | --- | --- | --- |"] + [
        f"| {what} | {value} | {bound} | {'' if not bound else 'yes' if met else '**no**'} |"
        for what, value, bound, met in premise])


def budget_arm_block(rows: pd.DataFrame, facts: dict, pairs: dict, by: str = "condition") -> str:
    """Per contrast: its outcome at both budgets, how it changed with the budget (paired), its late-phase
    drift at the doubled budget and whether that keeps it on its side."""
    (b1, b2), at = BUDGETS, facts["contrasts"]
    acc = analysis.metric_of(rows, by)
    lines = [f"| contrast | x{b1}: outcome | x{b2}: outcome | x{b2} minus x{b1}, paired [95% CI] | late-phase drift "
             f"at x{b2} | budget-stable |", "| --- | --- | --- | --- | --- | --- |"]
    for k, (a, b) in pairs.items():
        change = analysis.contrast(acc(label(a, b2)) - acc(label(b, b2)), acc(label(a, b1)) - acc(label(b, b1)))
        lines.append(f"| {k} | {at[b1][k].outcome} | {at[b2][k].outcome} | {analysis.ci_cell(change)} | "
                     f"{facts['drifts'][k]} | {'yes' if facts['stable'][k] else '**no**'} |")
    return "\n".join(lines)


def drift_block(facts: dict) -> str:
    """Per contrast: its outcome at both budgets, its late-phase drift at the doubled one and whether that
    keeps it on its side (budget_arm_block without the paired change, for contrasts on other metrics)."""
    (b1, b2), at = BUDGETS, facts["contrasts"]
    return "\n".join([f"| contrast | x{b1}: outcome | x{b2}: outcome | late-phase drift at x{b2} | budget-stable |",
                      "| --- | --- | --- | --- | --- |"] + [
        f"| {k} | {at[b1][k].outcome} | {at[b2][k].outcome} | {facts['drifts'][k]} | "
        f"{'yes' if facts['stable'][k] else '**no**'} |" for k in facts["drifts"]])


def comparison_lines(rows: pd.DataFrame, facts: dict, reference: str, length=None) -> str:
    """One line per budget: its reading and every contrast of its family. A budget is named by its length:
    `length(budget)` where given (a text), else the epochs of the `reference` condition at that budget."""
    def named(b):
        if length is not None:
            return length(b)
        return f"{int(rows.loc[rows.condition == label(reference, b), 'recipe.epochs'].iloc[0])} epochs"
    return "\n".join(
        analysis.verdict_line(f"x{b} budget ({named(b)}), reading: {facts['readings'][i]}", "",
                              facts["contrasts"][b]).replace(" ****;", "")
        for i, b in enumerate(BUDGETS))


def contrast_panel(ax, contrasts: dict, margin: float, wrap: bool = False):
    """A figure's panel of the verdict's contrasts at both budgets (`contrasts`: budget -> name -> Contrast),
    each with its paired 95% CI, against 0 and minus the margin (none where 0); `wrap` breaks long names before
    their margin (smaller ticks)."""
    for i, (b, at) in enumerate(contrasts.items()):
        names = list(at)
        y = np.arange(len(names)) + 0.18 * (i - 0.5)
        diffs = np.array([at[k].diff for k in names])
        err = np.array([[at[k].diff - at[k].low, at[k].high - at[k].diff] for k in names]).T
        ax.errorbar(diffs, y, xerr=err, fmt="o", capsize=3, label=f"x{b} budget")
        if wrap:
            ax.set_yticks(np.arange(len(names)), [n.replace(", margin", ",\nmargin") for n in names], fontsize=8)
        else:
            ax.set_yticks(np.arange(len(names)), names)
    ax.axvline(0, color="k", linewidth=1)
    if margin:  # a rule without a non-inferiority form has none
        ax.axvline(-margin, color="k", linestyle=":", linewidth=1, label=f"-{margin:g} pp margin")
    ax.set(xlabel="a - b, pp (paired 95% CI over seeds)", title="the verdict's contrasts at both budgets")
    ax.legend(fontsize=8)


# What a v3 rule built on this module rests on besides its own functions: a finding's RULE_CODE is
# (verdict_for, reading, premise, contrasts_at, *protocol.RULE_CODE), whose sources its rule id hashes.
RULE_CODE = (verdict, stability, teacher_premise, curves_of, regime.drift, regime.budget_stable, regime.plateau,
             regime.converged, regime.late_curve)
