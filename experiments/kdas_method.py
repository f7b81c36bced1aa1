"""The KDAS method (Chae et al., "What to Distill?", ICCV 2025): quantity sampling + quality weighting.

KD vs KD + KDAS (the paper's settings) under protocol v3: accuracy and CPU time, at the recipe's epochs and
at twice them (the budget arm). Every run runs its teacher on every batch (the logit cache is off), as
training does in the paper, so times compare.

    bash experiments/kdas_method.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
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

from experiments import kdas_common, protocol
from experiments.protocol import label
from kd import analysis, harness, regime
from kd.analysis import Outputs
from kd.run import distill_on_pool

NAME = "kdas_method"
TITLE = "KDAS: adaptive sampling makes KD faster at equal or better accuracy"
CLAIM = ("Distilling on the top-K(t) samples by KL_TS (K from 60% to 40%) with quality-calibrated loss "
         "weights gives equal or better accuracy than plain KD at about 28% less training time (KD), and "
         "about 9-13% less time with DKD.")
PAPER = ("CIFAR-100: KD+KDAS +0.17..+2.14 pp over KD with about 28% less training time; DKD / logit-"
         "standardised KD +0.0..+1.2 pp at 9-13% less time; ImageNet about 35% less time, +0.2..+0.4 pp.")

# ------------------------------------------------------------------------------------------ the rule
# Protocol v3 (issue 33). v2 (rule 7a08e833, table_v2_7a08e833.md) judged KD + KDAS against KD at one budget
# behind a regime gate, on rows distilled from another training of the teacher than the published one, beside
# six conditions it did not judge (each component alone, the release's settings, DKD and DKD + KDAS); its five
# priced conditions at ten seeds and two budgets would cost 225 min at --jobs 2 (docs/v3_designs.md), three
# times the 75-minute target. v3 keeps the pair the claim names, KD and KD + KDAS with the paper's settings,
# at ten seeds (77 min at --jobs 2 by --dry-run, without evaluations; about 93 priced from v2's rows: over the
# target, but the power calculation asks for more seeds, not fewer: v2's paired spread, 1.3 pp, needs 47 for
# the 0.5 pp margin and 553 for the paper's smallest gain, 0.17 pp, so 'underpowered' is a possible verdict).
KD, KDAS = "KD", "KD + KDAS"
NOT_WORSE = f"{KDAS} vs {KD}, margin {0.5:g} pp"  # non-inferiority: "equal or better accuracy"
ACC_GAP, SAVED = f"{KDAS} vs {KD}", f"{KDAS}: CPU time saved (%) vs none"
RULE = {"alpha": 0.05, "margin_pp": 0.5, "min_saving_pct": 10.0, "budgets": protocol.BUDGETS,
        "lr_below": regime.ANNEALED}
PAIRS = {NOT_WORSE: (KDAS, KD), ACC_GAP: (KDAS, KD)}  # the accuracy contrasts: the budget arm reads their drift


def saving(rows: pd.DataFrame, method: str, base: str) -> pd.Series:
    """Per seed, the share of the base's CPU time the method saves (%): CPU time, which two runs sharing the
    machine cannot inflate, and which includes every teacher forward (no logit cache) and evaluation."""
    cpu = analysis.metric_of(rows, "condition", "cpu_s")
    return 100 * (1 - cpu(method) / cpu(base))


def contrasts_at(rows: pd.DataFrame, budget: int) -> dict:
    acc = analysis.metric_of(rows, "condition")
    kdas, kd = acc(label(KDAS, budget)), acc(label(KD, budget))
    spared = saving(rows, label(KDAS, budget), label(KD, budget))
    return analysis.decide({NOT_WORSE: analysis.contrast(kdas, kd, margin=RULE["margin_pp"]),
                            ACC_GAP: analysis.contrast(kdas, kd),
                            SAVED: analysis.contrast(spared, analysis.constant(spared, 0.0))},
                           RULE["alpha"], forms={NOT_WORSE: ACC_GAP})


def reading(c: dict) -> tuple[str, list[str]]:
    """One budget's reading of the claim and the contrasts it rests on."""
    against = [k for k in (ACC_GAP, SAVED) if c[k].outcome == "worse"]
    if against:
        return "contradicted", against
    if (c[NOT_WORSE].outcome == "not worse" and c[SAVED].outcome == "better"
            and c[SAVED].diff >= RULE["min_saving_pct"]):
        return "holds", [NOT_WORSE, SAVED]
    return "open", []


def premise(rows: pd.DataFrame, criterion: dict) -> list[tuple[str, str, str, bool]]:
    """(what, value, criterion, met): KD + KDAS processed fewer samples than KD at each budget (the saving its
    sampler is for), and the teacher fits its pool and has converged (experiments.protocol.teacher_premise)."""
    samples = rows.groupby("condition").samples.mean()
    ratio = {b: samples.get(label(KDAS, b), float("nan")) / samples.get(label(KD, b), float("nan"))
             for b in RULE["budgets"]}
    return [("samples processed, KD + KDAS / KD (mean over seeds) at " + " and ".join(f"x{b}" for b in ratio),
             "; ".join(f"{r:.3f}" for r in ratio.values()), "< 1 at each budget", all(r < 1 for r in ratio.values())),
            *protocol.teacher_premise(rows, criterion, RULE["lr_below"])]


def verdict_for(rows: pd.DataFrame, curves: dict, criterion: dict) -> tuple[str, dict]:
    """Protocol v3, fixed before the runs. Per budget (the recipe's epochs x1 and x2, the same seeds), per-seed
    paired differences with 95% t intervals and Holm's correction (alpha 0.05) over two contrasts: KD + KDAS
    (the paper's settings: top-K(t) by KL_TS, K linear 60% -> 40%, and its quality weights) vs KD in test
    top-1, its plain form and its non-inferiority form (KD + KDAS not worse than KD by more than a 0.5 pp
    margin) counting once; and the share of KD's CPU time that KD + KDAS saves (1 - CPU time(KD + KDAS) /
    CPU time(KD), per seed, vs none). A budget's reading: contradicted when KD + KDAS is less accurate than
    KD or takes more CPU time (it rests on those); holds when KD + KDAS is shown not worse than KD by more
    than the margin and saves time, at least 10% on average (it rests on the two); else open. Premise,
    checked first: KD + KDAS processed fewer samples than KD at each budget, the teacher fits its pool (train
    top-1 at least min_train_gap above test) and has converged (the upper end of the 95% interval of its test
    top-1's slope once its LR is at most 0.1 of its peak, continued over another such stretch, adds less
    than max_gain pp). Verdict: premise not met at this scale, if the premise fails; budget-dependent at
    this scale, if the two budgets' readings differ, or both are contradicted by no contrast in common, or an
    accuracy contrast both rest on is not budget-stable at the doubled one (kd.regime: the far end of its
    paired late-phase drift, over another 40% of training, would take it across 0, or across minus the
    margin for the non-inferiority form; the time saved has no learning curve, each budget measures its
    own); underpowered at this scale, if both are open and the accuracy contrast has an MDE above the
    margin at either budget. Else, reproduced: both hold. not reproduced: both are contradicted.
    inconclusive: both are open."""
    at = {b: contrasts_at(rows, b) for b in RULE["budgets"]}
    readings, rests_on = zip(*(reading(at[b]) for b in RULE["budgets"]))
    doubled = at[RULE["budgets"][-1]]
    drifts, stable = protocol.stability({k: doubled[k] for k in PAIRS}, PAIRS, curves)
    stable[SAVED] = True  # CPU time does not converge over training: each budget measures its own saving
    facts = {"contrasts": at, "readings": readings, "drifts": drifts, "stable": stable,
             "premise": premise(rows, criterion)}
    underpowered = any(not at[b][ACC_GAP].mde <= RULE["margin_pp"] for b in RULE["budgets"])
    verdict, facts["decisive"] = protocol.verdict(readings, rests_on, stable, facts["premise"], underpowered)
    return verdict, facts


RULE_CODE = (verdict_for, reading, premise, contrasts_at, saving, *protocol.RULE_CODE)

# ------------------------------------------------------------------------------------------ the grid
PROFILES = kdas_common.profiles(period=1, ramp_share=0.5)
PROFILES["paper"]["period"] = [1, 3, 5, 10]
# v3: v2's converged cpu regime (kdas_common.CONVERGED_CPU: 1,200 images, teacher 120 epochs, students 144)
# with the published teacher pinned, evaluations every 4 epochs over the late phase, fresh seeds 140-149 (v2
# ran 70-74).
PROFILES = kdas_common.v3_profiles(PROFILES, first_seed=140)
# The rule reads one row per condition and seed: the paper profile judges the paper's first CIFAR pair,
# resnet56 -> resnet20.
PROFILES["paper"]["pairs"] = PROFILES["paper"]["pairs"][:1]


def paper_sampler(p: dict) -> dict:
    return {"ratio": "linear", "start": 0.6, "end": 0.4, "period": p["period"], "direction": "paper"}


def paper_weights(p: dict, epochs: int) -> dict:
    """The quality weights, ramped up over the profile's share of the run's own epochs."""
    return {"gamma": 0.5, "lam": 1000.0, "ramp": round(p["ramp_share"] * epochs), "direction": "paper"}


def grid(p: dict, seeds: int) -> list[dict]:
    conditions = []
    for budget in RULE["budgets"]:
        recipe = p["recipe"].scaled(budget)
        at = {"recipe": recipe.as_dict()}
        conditions += [(label(KD, budget), 1.0, at),
                       (label(KDAS, budget), 0.5, {**at, "sampler": paper_sampler(p),
                                                   "weights": paper_weights(p, recipe.epochs)})]
    return [{**c, "logit_cache": False} for c in kdas_common.configs(NAME, p, seeds, conditions)]


run = distill_on_pool


# ------------------------------------------------------------------------------------------ analysis
# Pairing: runs of one seed share the student's initialisation and every sample's augmented view in every
# epoch; what they train on, and with what weights, differs by design.
def report(rows: pd.DataFrame, p: dict, out: Outputs) -> str:
    summary = analysis.summarise(rows, ["condition"])
    extra = rows.groupby("condition", sort=False)[["recipe.epochs", "cpu_s", "wall_s", "teacher_forwards",
                                                   "student_mflops", "teacher_mflops"]].mean()
    summary = summary.merge(extra.reset_index(), on="condition")
    analysis.write_csv(summary, out.summary)
    verdict, facts = verdict_for(rows, protocol.late_curves(rows, out), p["regime"])
    acc = analysis.metric_of(rows, "condition")
    s = summary
    kd_of = [label(KD, protocol.budget_of(c)) for c in s.condition]
    vs_kd = [analysis.contrast(acc(c), acc(kd)) if c != kd else None for c, kd in zip(s.condition, kd_of)]
    spared = [analysis.contrast(x := saving(rows, c, kd), analysis.constant(x, 0.0)) if c != kd else None
              for c, kd in zip(s.condition, kd_of)]
    table = pd.DataFrame({
        "condition": s.condition, "epochs": s["recipe.epochs"].astype(int),
        "samples processed": s.samples.round().astype(int), "teacher forwards": s.teacher_forwards.round().astype(int),
        "CPU time (s)": s.cpu_s.round(1), "CPU time saved vs KD of its budget (%) [95% CI]": list(map(analysis.ci_cell, spared)),
        "student top-1 (mean ± std)": analysis.accuracy_cells(s),
        "minus KD of its budget, paired [95% CI]": list(map(analysis.ci_cell, vs_kd))})
    flops = s.iloc[0]
    notes = ("**Premise** (checked before the claim):\n\n" + protocol.premise_block(facts["premise"])
             + "\n\n**Regime** (v3, the budget arm: every contrast again at twice the epochs, the same seeds; the "
               "accuracy contrasts' drift over the last 40% of training, per condition, and whether its far end "
               "keeps the contrast's side):\n\n" + protocol.budget_arm_block(rows, facts, PAIRS)
             + "\n\n**Comparisons** (a - b over seeds; Holm over the two of each budget, the two forms of KD + KDAS "
               "vs KD counting once; MDE: the smallest true difference found with 80% power at this n, beside "
               f"the {RULE['margin_pp']:g} pp margin; the paper's smallest gain is 0.17 pp):\n"
             + protocol.comparison_lines(rows, facts, KD)
             + f"\n\nKDAS (paper): top-K(t) by KL_TS, K linear 60% -> 40%, re-ranked every {p['period']} epoch(s) on "
               f"clean views of the whole pool; quality weights gamma 0.5, lambda 1000, band 20-80%, ramped up over "
               f"{p['ramp_share']:.0%} of each run's training (the ramp's length could not be confirmed). No logit "
               f"cache, so every training batch runs the teacher, as in the paper; CPU time counts it and every "
               f"evaluation. Cost per image (forward): teacher {flops.teacher_mflops:.1f} MFLOP, student "
               f"{flops.student_mflops:.1f} MFLOP (backward about twice the forward); the paper's pairs: resnet56 "
               f"252 / resnet20 82, resnet32x4 2166 / resnet8x4 354 (same counter, 32x32x3). Each component alone, "
               f"the release's settings and DKD ran in v2 (table_v2_7a08e833.md), not judged.\n\n"
             + kdas_common.UNCONFIRMED)
    analysis.write_table(out, TITLE, CLAIM, PAPER, table, verdict, analysis.rule_of(verdict_for), notes)
    plot(rows, facts, out)
    return verdict


def plot(rows: pd.DataFrame, facts: dict, out: Outputs):
    fig, (ours, diff_ax) = plt.subplots(1, 2, figsize=(15, 4.8))
    rows = rows[["condition", "cpu_s", "final_test_top1"]].assign(
        budget=[f"x{protocol.budget_of(c)}" for c in rows.condition],
        method=rows.condition.str.replace(r" \(\dx budget\)", "", regex=True))
    sns.scatterplot(rows, x="cpu_s", y="final_test_top1", hue="method", style="budget", alpha=0.6, ax=ours)
    ours.set(xlabel="CPU time per run (s, teacher forwards included)", ylabel="student test top-1 (%)",
             title="accuracy vs training time, per seed")
    protocol.contrast_panel(diff_ax, {b: {k: c[k] for k in PAIRS} for b, c in facts["contrasts"].items()},
                            RULE["margin_pp"], wrap=True)
    analysis.save_figure(fig, out.figure)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
