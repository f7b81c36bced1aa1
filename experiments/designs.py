"""Protocol v3's designs for the thirteen findings (issue 32's report, issue 33's plan): per finding the premise
it checks, the contrasts that decide it, the effect they must detect, the seeds a power calculation on the
committed v2 rows asks for, and the cost of the v3 grid (its judged conditions at the recipe's budget and at
twice the epochs), priced from the CPU seconds those rows measured. Nothing here trains; every v3 grid is coded
(issue 33), so each also has its own `--dry-run`, whose timing (random inputs, no logit cache) differs.

    python -m experiments.designs            # writes docs/v3_designs.md (tests check it is current)
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # `python experiments/<name>.py`: run it as `python -m experiments.<name>` does
    import runpy
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    runpy.run_module(f"experiments.{Path(__file__).stem}", run_name="__main__", alter_sys=True)
    sys.exit()

import pandas as pd
from statsmodels.stats.power import TTestPower

from experiments.settings import REGIME
from kd import records, regime

RESULTS = records.REPO / "results"
MARGIN = 0.5      # pp: the effect targeted where the paper gives no number (the non-inferiority margin of v2)
MAX_SEEDS = 10    # more seeds than this do not fit the 75-minute target: the verdict may say "underpowered"
BUDGET_ARM = 3    # the grid at x1 and again at x2 epochs: three times the x1 cost
TEACHER_MIN = 11.6  # measured: resnet20, 120 epochs on 1,200 images, one thread (kdas_common.CONVERGED_CPU)


@dataclass
class Design:
    name: str
    rule: str                 # the rule id of the v2 rows priced here
    premise: str
    contrasts: list           # (a, b, metric, effect in pp or None for MARGIN, one-sided?) over v2 conditions
    keep: list                # the v2 conditions the v3 grid keeps (judged, or a named diagnostic)
    new: dict = field(default_factory=dict)   # a new condition -> the v2 condition whose cost it has
    once: dict = field(default_factory=dict)  # a condition run at one budget only -> the v2 condition it costs as
    teachers: float = 0.0     # new teachers to train, in resnet20-120-epoch units (TEACHER_MIN each)
    note: str = ""
    premise_seeds: int = 0    # where a premise's own paired interval needs more seeds than the contrasts


ACC, AGREE, TRAIN_AGREE = "final_test_top1", "final_test_agreement", "final_train_clean_agreement"
DESIGNS = [
    Design("kdas_finding3", "9639fe7e", "bands differ in KL_TG (adjacent medians x2); teacher fits its pool and has plateaued",
           [("per_class:medium (equal steps)", "all", ACC, None, True),
            ("per_class:medium (equal steps)", "random (equal steps)", ACC, None, False),
            ("per_class:low (equal steps)", "per_class:medium (equal steps)", ACC, None, False),
            ("per_class:high (equal steps)", "per_class:medium (equal steps)", ACC, None, False)],
           ["all", "random (equal steps)", "per_class:low (equal steps)", "per_class:medium (equal steps)",
            "per_class:high (equal steps)"], note="the pilot: coded and run (rule in its table)"),
    Design("kdas_finding1", "696c6ab8", "top-k% has the higher mean KL_TS than random k% at its selections",
           [("top 60%", "all", ACC, None, True), ("top 60%", "random 60%", ACC, None, False)],
           ["all", "top 60%", "random 60%"],
           note="one ratio (60%): k = 40, 60, 80% cost 131 min at --jobs 2 (132 seeds asked), over the target; "
                "20%, the ablations and equal-steps 'all' dropped; random 60% now scored as top is (~+50% CPU)"),
    Design("kdas_finding2", "4ae34ae2", "the schedules process the same samples (equal mean ratio)",
           [("decreasing 60->40% (linear)", "fixed 50%", ACC, None, False),
            ("decreasing 60->40% (cosine)", "fixed 50%", ACC, None, False),
            ("decreasing 60->40% (linear)", "increasing 40->60% (linear)", ACC, None, False)],
           ["fixed 50%", "decreasing 60->40% (linear)", "decreasing 60->40% (cosine)", "increasing 40->60% (linear)"]),
    Design("kdas_finding4", "604b9cb9", "the penalty down-weights samples (share with weight < 1 reported > 0)",
           [("penalty gamma 0.5, ramp", "kd", ACC, None, False), ("penalty gamma 0.5, no ramp", "kd", ACC, None, False)],
           ["kd", "penalty gamma 0.5, ramp", "penalty gamma 0.5, no ramp"]),
    Design("kdas_method", "7a08e833", "KDAS processes fewer samples than KD (the saving happened)",
           [("KD + KDAS", "KD", ACC, None, True)], ["KD", "KD + KDAS"],
           note="the pair the claim names: with the release's settings, DKD and DKD + KDAS, 225 min at --jobs 2; "
                "the paper's smallest gain, +0.17 pp, would ask 553 seeds; the time saved is a second contrast"),
    Design("bigger_teachers", "e5f866a1", "the bigger teacher is at least 0.5 pp more accurate (one factor: depth); "
           "both fit their pool and have plateaued",
           [("resnet32 T=4", "resnet8 T=4", ACC, None, False)], ["resnet8 T=4", "resnet32 T=4"],
           note="coded (rule in its table): one step of depth, DIST's published 240-epoch resnet8 and resnet32 "
                "(pinned, both plateau), Cho's 192-epoch student; a ladder with one teacher per student seed costs "
                "about 400 min of runs and 520 of new teachers; the rise before the fall, the width series and "
                "T=16 not tested"),
    Design("eskd", "43b82fc5", "KD leads scratch early (paired at the stop epoch); the teacher fits its pool and has "
           "plateaued",
           [("resnet20: ESKD stop 96", "resnet20: full KD", ACC, None, False)],
           ["resnet20: full KD", "resnet20: ESKD stop 96"], once={"scratch": "scratch"},
           premise_seeds=7, note="coded (rule in its table): one teacher, the published resnet20 (pinned, it plateaus), "
           "one stop at half of training; 7 seeds for the premise (v2's lead at epoch 96, +3.24 pp, sd 2.38, asks 7 for "
           "its interval to clear 0 with 80% power); scratch runs at x1 only (the premise's); 'for every teacher' is "
           "tested on one"),
    Design("early_stopped_teachers", "dab0a61c", "the early-stopped teacher is at least 0.5 pp less accurate and "
           "annealed; the full teacher fits its pool and has plateaued",
           [("teacher at epoch 90", "teacher at epoch 120 (fully trained)", ACC, None, False)],
           ["teacher at epoch 90", "teacher at epoch 120 (fully trained)"], teachers=10 / TEACHER_MIN,
           note="coded (rule in its table): DIST's published 240-epoch resnet32 against its recipe compressed into "
                "60 epochs (annealed; about 10 min to train), Cho's 192-epoch student; one early teacher (three "
                "annealed resnet56 schedules and v2's snapshots: about 390 min of runs and 45 of teachers)"),
    Design("dist_stronger_teacher", "fa685759", "the strongest rung's published teacher is more accurate than the "
           "weakest's by at least the paper's smallest step (0.94 pp), one factor (depth) changed",
           [("resnet8: KD", "resnet32: KD", ACC, None, True), ("resnet32: DIST", "resnet32: KD", ACC, 1.09, False)],
           ["resnet8: KD", "resnet32: KD", "resnet32: DIST"],
           note="paper: DIST - KD 1.09 pp (CIFAR res56->res20); the judged arms only, at the ladder's ends (resnet8 "
                "83.97%, resnet32 85.46%, 240 epochs with dense late evaluations): with scratch and resnet8's DIST, 98 min at --jobs 2; the middle, "
                "data, LS and DKD rungs dropped"),
    Design("vanillakd_data_scale", "be13f477", "DKD beats KD at the smaller size; the teacher fits its pool and has "
           "plateaued",
           [(("1,600 images: DKD", "1,600 images: KD"), ("400 images: DKD", "400 images: KD"), ACC, 0.75, False)],
           ["400 images: KD", "400 images: DKD", "1,600 images: KD", "1,600 images: DKD"], teachers=45 / TEACHER_MIN,
           note="coded (rule in its table): DKD's gap to KD at 1,600 vs 400 images (the paper's shrink, 0.76 -> 0.01 "
                "pp); a resnet14 on 6,000 images, 160 epochs (about 45 min; v2's on all 60,000 and a 120-epoch one did "
                "not plateau); DIST "
                "(never ahead of KD in v2), the middle sizes, BKL, scratch and the stronger recipe dropped; over the "
                "75-min target"),
    Design("fidelity_ensembles", "88c5974a", "the single teacher and the 5-member ensemble are each at least as "
           "accurate as a scratch student; the teacher fits its pool and has plateaued",
           [("5 teachers", "1 teacher", ACC, None, False), ("5 teachers", "1 teacher", AGREE, None, False)],
           ["1 teacher", "5 teachers"], once={"scratch": "scratch"}, teachers=4 * 10 / TEACHER_MIN,
           note="coded (rule in its table): fidelity_optimisation's 240-epoch teacher and an ensemble of it and 4 "
                "more members of its recipe (about 10 min each, published and pinned before any student run); the "
                "3-teacher ensemble dropped, scratch at x1 only (the premise's; 'KD improves accuracy' shown, not "
                "judged): with both, about 103 min at --jobs 2"),
    Design("fidelity_optimisation", "b2848423", "the self-distillation teacher fits its pool and has plateaued",
           [("lambda 1", "lambda 0", TRAIN_AGREE, None, False), ("lambda 0, 2x epochs", "lambda 1", TRAIN_AGREE, None, False),
            ("lambda 0, 4x epochs", "lambda 1", TRAIN_AGREE, None, False)],
           ["lambda 0", "lambda 1"], once={"lambda 0 (4x budget)": "lambda 0, 4x epochs"}, teachers=0.5,
           note="coded (rule in its table; its 240-epoch half-width resnet8 teacher published and pinned: resnet8-e6a678c264c8; "
                "about 10 min): lambda 0 and 1 at x1 and x2, the longer arm read as lambda 0 at twice each budget (so one "
                "lambda-0 run at x4 per seed); lambdas 0.25 / 0.75 and 'agreement "
                "rises' dropped: 58 seeds asked, about 120 min at --jobs 2 with 10"),
    Design("fidelity_augmentation", "59277ff2", "MixUp changes what the student is fitted on (final train KD loss "
           "differs); the teacher fits its pool and has plateaued",
           [("+ MixUp", "crop + flip", AGREE, None, False), ("+ MixUp", "crop + flip", TRAIN_AGREE, None, False)],
           ["crop + flip", "+ MixUp"],
           note="coded (rule in its table; fidelity_optimisation's 240-epoch teacher): MixUp against the baseline, "
                "both halves of the claim on it; rotation and all combined dropped (four policies: about 114 min "
                "at --jobs 2), so 'MixUp most of all' is tested against the baseline only"),
]


def paired_sd(rows: pd.DataFrame, a, b, metric: str) -> float:
    """The spread over seeds of a - b; a side given as (c, d) is the paired gap c - d (an interaction)."""
    def side(x) -> pd.Series:
        if isinstance(x, tuple):
            return side(x[0]) - side(x[1])
        return rows[rows.condition == x].set_index("seed")[metric]
    x, y = side(a), side(b)
    return float((x - y.loc[x.index]).std()) if set(x.index) == set(y.index) else float("nan")


def seeds_for(effect: float, sd: float, level: float, one_sided: bool) -> float:
    """Seeds for 80% power to detect `effect` (pp) with a paired t at `level` (the exact noncentral t)."""
    if not sd > 0:
        return float("nan")
    n = TTestPower().solve_power(effect_size=effect / sd, alpha=level, power=0.8,
                                 alternative="larger" if one_sided else "two-sided")
    return max(2.0, math.ceil(n))


def plan(d: Design) -> dict:
    rows = records.read_rows(RESULTS / d.name / "cpu" / "runs.csv", required=("run_id",))
    rows = rows[rows.rule_id == d.rule]
    level = 0.05 / len(d.contrasts)  # Holm's first step over the finding's family
    sds, needs = [], []
    for a, b, metric, effect, one_sided in d.contrasts:
        sd = paired_sd(rows, a, b, metric)
        sds.append(sd)
        needs.append(seeds_for(effect if effect is not None else MARGIN, sd, level, one_sided))
    need = max(needs)
    mde5 = max(TTestPower().solve_power(nobs=5, alpha=level, power=0.8, alternative="larger" if c[-1] else
                                        "two-sided") * sd for c, sd in zip(d.contrasts, sds))
    seeds = int(min(max(5, need, d.premise_seeds), MAX_SEEDS))
    cost = rows.groupby("condition")["cpu_s"].mean()
    per_seed = sum(cost[c] for c in d.keep) + sum(cost[c] for c in d.new.values())
    runs_min = seeds * (per_seed * BUDGET_ARM + sum(cost[c] for c in d.once.values())) / 60
    return {"finding": d.name, "premise": d.premise, "contrasts": len(d.contrasts),
            "paired sd, v2 (pp)": f"{min(sds):.2f}-{max(sds):.2f}",
            "effect targeted (pp)": ", ".join(sorted({f"{e if e is not None else MARGIN:g}" for *_, e, _ in d.contrasts})),
            "MDE at 5 seeds (pp)": f"{mde5:.2f}", "seeds for 80% power": f"{need:.0f}", "seeds": seeds,
            "runs": seeds * ((len(d.keep) + len(d.new)) * 2 + len(d.once)),
            "CPU-min of runs": round(runs_min), "teacher min": round(d.teachers * TEACHER_MIN),
            "min at --jobs 2": round(runs_min / 2 * 1.1),  # +10%: the late-phase evaluations (F3: measured)
            "min at 5 seeds": round(runs_min / seeds * 5 / 2 * 1.1),
            "underpowered": "yes" if need > MAX_SEEDS else "", "note": d.note}


def table() -> pd.DataFrame:
    return pd.DataFrame([plan(d) for d in DESIGNS])


def teacher_plateaus() -> pd.DataFrame:
    """The v3 teacher premise's plateau check (kd.regime.plateau once the LR is at most 0.1 of its peak,
    extended over another such stretch) on every published teacher's training history."""
    published = records.read_rows(RESULTS / "teachers" / "teachers.csv", required=("run_id",))
    out = []
    for t in published.itertuples():
        slope = regime.plateau(records.load_saved(RESULTS / "teachers" / t.run_id / "history.pt"), lr_below=regime.ANNEALED)
        out.append({"teacher": t.run_id, "seed": t.seed, "test top-1": t.test_top1, "trained on": t.trained_on,
                    "evaluations once annealed": slope.n, "slope, pp per schedule [95% CI]": str(slope).split(", n")[0],
                    "upper end over another stretch (pp)": f"{slope.extended():+.2f}",
                    f"plateau (< {REGIME['max_gain']:g} pp)": "yes" if regime.converged(slope, REGIME["max_gain"]) else "no"})
    return pd.DataFrame(out)


def render() -> str:
    t = table()
    return (f"# Protocol v3: the designs of the thirteen findings\n\nGenerated by `python -m experiments.designs` from "
            f"the committed v2 rows (their paired spread and measured CPU seconds); do not edit by hand. Per finding: "
            f"the premise v3 checks before the claim, the contrasts that decide it (Holm over them), the effect they "
            f"must detect (the paper's where it gives one, else {MARGIN:g} pp), the detectable effect at 5 seeds, the "
            f"seeds a paired t needs for 80% power at Holm's first level (exact noncentral t, statsmodels), the "
            f"seeds chosen (at least 5, at most {MAX_SEEDS}: 'underpowered' marks where the power calculation asks "
            f"more), and the cost of the grid at the recipe's budget and at twice its epochs (the budget arm) on the "
            f"2-core machine, from the v2 rows' CPU seconds of the conditions kept, +10% for the late-phase "
            f"evaluations; new teachers in resnet20-units of {TEACHER_MIN} min. All thirteen have their v3 grids coded "
            f"(KDAS Finding 3 was the pilot), so their costs also have a `--dry-run` (F3: "
            f"60 min at --jobs 2 estimated; F4: 79; F2: 73; F1: 67; DIST: 101; method: 77; ESKD: 73; bigger teachers: 184 and early-stopped teachers: 205 (their teachers' inference priced without the logit cache: about 70 each from DIST's measured runs of the same teachers); fidelity_optimisation: 81, fidelity_augmentation: 56 and fidelity_ensembles: 67, all three beside a sweep; VanillaKD: 129 beside a sweep; timed on random inputs "
            f"without the logit cache and without evaluations; see "
            f"their tables for the measured ones).\n\n{t.to_markdown(index=False)}\n\n"
            f"All thirteen: {t['min at --jobs 2'].sum() / 60:.1f} h of runs at --jobs 2 with the seeds chosen "
            f"({t['min at 5 seeds'].sum() / 60:.1f} h at 5 seeds each), {t['teacher min'].sum() / 60:.1f} h of new "
            f"teachers (one thread each); issue 33's targets are 75 min per finding and 12 h in all.\n\n"
            f"## The published teachers against the teacher premise\n\nThe plateau half of the v3 teacher premise "
            f"(experiments.protocol.teacher_premise) on each published teacher's history: the slope of its test "
            f"top-1 once its LR is at most {regime.ANNEALED:g} of its peak, and the upper end of its 95% interval "
            f"over another such stretch. A teacher evaluated every 5 epochs has 5 such evaluations, 3 degrees of "
            f"freedom: even a flat curve's interval is wide, so the check reads noise as gain; teachers for new v3 "
            f"rules are evaluated every epoch over their late phase (DIST's first).\n\n"
            f"{teacher_plateaus().to_markdown(index=False)}\n")


def write(path: Path = records.REPO / "docs" / "v3_designs.md") -> Path:
    records.write_text(path, render())
    return path


if __name__ == "__main__":
    print(write().read_text())
