"""The analysis of a finding: where its results and figure go, summaries per condition, comparisons of
conditions, verdict lines, the comparison table and the figure style. Every finding's `report` builds on
these; the statistics of its verdict live here.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from kd.records import atomic_write, write_csv, write_text  # noqa: F401 (write_csv: for the findings)


# ----------------------------------------------------------------------------------------- outputs
@dataclass
class Outputs:
    results: Path      # results/<name>/<profile>/
    figure: Path       # figures/<name>_<profile>.png
    rule_id: str = ""  # the pre-registered rule and grid the table is judged under (see harness.rule_id)
    stale: str = ""    # why the rows cannot be judged under it ("" when they can)
    teachers: str = ""  # what the rows say of the teacher weights they were distilled from (see harness._report)
    save_students: bool = False  # each run also saves its student (see student())

    @property
    def runs(self) -> Path:
        return self.results / "runs.csv"

    @property
    def table(self) -> Path:
        return self.results / "table.md"

    @property
    def summary(self) -> Path:
        return self.results / "summary.csv"

    def history(self, run_id: str) -> Path:
        return self.results / "histories" / f"{run_id}.csv"

    def student(self, run_id: str) -> Path:
        """Where a run saves its trained student (final and best safetensors, config.json): kd.checkpoints."""
        return self.results / "students" / run_id

    def state(self, run_id: str) -> Path:
        """Where an unfinished run keeps what it needs to resume (removed once its row is written)."""
        return self.results / "resume" / f"{run_id}.pt"


# ----------------------------------------------------------------------------------------- analysis
def summarise(rows: pd.DataFrame, by, metric: str = "final_test_top1") -> pd.DataFrame:
    """mean, std, standard error and n of a metric per group, with the mean samples processed."""
    g = rows.groupby(by, sort=False)
    out = g[metric].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    out["se"] = out["std"] / out["n"].pow(0.5)
    out["samples"] = g["samples"].mean()
    return out.reset_index()


def constant(series: pd.Series, value: float) -> pd.Series:
    """A fixed reference (e.g. 99% agreement, or no saving) with a series' seeds, for a one-sample paired
    contrast."""
    return pd.Series(value, index=series.index)


def metric_of(rows: pd.DataFrame, by: str, metric: str = "final_test_top1"):
    """label -> the metric over the rows whose `by` column holds that label, indexed by seed."""
    return lambda label: rows.loc[rows[by] == label].set_index("seed")[metric]


# ----------------------------------------------------------------------------------------- statistics
ALPHA, POWER = 0.05, 0.8


@dataclass
class Contrast:
    """a - b over seeds: paired where both sides ran the same seeds (scipy's ttest_rel on the per-seed
    differences), else Welch (ttest_ind, unequal variances). With a `margin` it is a non-inferiority test of
    H0: a - b <= -margin (one-sided). `decide` fills p_holm, mde and outcome for the comparisons that decide
    one verdict together."""
    diff: float          # mean per-seed difference (paired) or difference of means (Welch), in pp
    se: float            # its standard error (nan with fewer than two seeds a side)
    df: float            # degrees of freedom of its t distribution
    n: int               # seeds (paired) or the smaller side (Welch)
    paired: bool
    margin: float | None = None
    low: float = math.nan   # its 95% confidence interval
    high: float = math.nan
    p: float = math.nan     # two-sided p of a - b = 0; for a non-inferiority test, one-sided p of a - b <= -margin
    sides: tuple = ()       # Welch: the seeds of a and of b
    p_holm: float = math.nan
    mde: float = math.nan
    outcome: str = "within noise"

    def interval(self) -> tuple[float, float]:
        return self.low, self.high

    def __str__(self):
        test = f"non-inferiority, margin {self.margin:g} pp, " if self.margin is not None else ""
        return (f"{self.diff:+.2f} pp [95% CI {self.low:+.2f}, {self.high:+.2f}], {test}p_Holm {self.p_holm:.3f}, "
                f"n {self.n} {'paired' if self.paired else 'unpaired (Welch)'}, MDE {self.mde:.2f} pp: "
                f"{self.outcome}")


def contrast(a: pd.Series, b: pd.Series, margin: float | None = None) -> Contrast:
    """a - b for two conditions' metric indexed by seed (see metric_of)."""
    paired = bool(len(a)) and set(a.index) == set(b.index)
    b = b.loc[a.index] if paired else b
    n = len(a) if paired else min(len(a), len(b))
    diff = (a - b).mean() if paired else (a.mean() - b.mean() if n else math.nan)
    if n < 2:  # a missing condition or a single seed: no noise estimate
        return Contrast(diff, math.nan, math.nan, n, paired, margin, sides=(len(a), len(b)))
    if paired and (a - b).std() == 0:  # every seed gave the same difference: it is certain
        certain = float(diff + margin <= 0) if margin is not None else float(diff == 0)
        return Contrast(diff, 0.0, n - 1, n, True, margin, diff, diff, certain)
    test = stats.ttest_rel if paired else lambda x, y, **kw: stats.ttest_ind(x, y, equal_var=False, **kw)
    both = test(a, b)
    # the t statistic's denominator, from the data: diff / statistic is undefined where diff is exactly 0
    se = (a - b).std() / math.sqrt(n) if paired else math.sqrt(a.var() / len(a) + b.var() / len(b))
    low, high = both.confidence_interval(1 - ALPHA)
    p = both.pvalue if margin is None else test(a + margin, b, alternative="greater").pvalue
    return Contrast(diff, se, float(both.df), n, paired, margin, float(low), float(high), float(p), (len(a), len(b)))


def decide(contrasts: dict[str, Contrast], alpha: float = ALPHA, forms: dict[str, str] | None = None
           ) -> dict[str, Contrast]:
    """Judge the contrasts behind one verdict together: Holm's correction over their p values (statsmodels;
    a contrast without a p counts in the family, as p = 1), and each one's minimum detectable effect: the
    true difference found with 80% power at the level Holm's first step uses (alpha / m), from the exact
    noncentral t (statsmodels' TTestPower; Welch: TTestIndPower). Outcome: "better" / "worse" when the
    Holm-adjusted p < alpha (else "within noise"); a non-inferiority test is "not worse" when its adjusted
    p < alpha, else "not shown". `forms` (v3) maps a contrast to the one it is another form of (the
    non-inferiority and plain tests of one difference): the two count once in the family, each adjusted with
    its own p in that place."""
    forms = forms or {}
    family = [name for name in contrasts if name not in forms]
    m = len(family)
    ps = {name: c.p if not math.isnan(c.p) else 1.0 for name, c in contrasts.items()}

    def holm(name: str) -> float:
        place = family.index(forms.get(name, name))
        family_ps = [ps[name] if i == place else ps[other] for i, other in enumerate(family)]
        return float(multipletests(family_ps, alpha=alpha, method="holm")[1][place])
    for name, c in contrasts.items():
        c.p_holm = holm(name) if not math.isnan(c.p) else math.nan
        c.mde = minimum_detectable(c, alpha / m)
        significant = c.p_holm < alpha
        if c.margin is not None:
            c.outcome = "not worse" if significant else "not shown"
        else:
            c.outcome = ("better" if c.diff > 0 else "worse") if significant else "within noise"
    return contrasts


def minimum_detectable(c: Contrast, level: float) -> float:
    """The smallest true difference this contrast detects with 80% power at `level` (in pp): the detectable
    standardised effect of the exact noncentral t times the difference's spread."""
    if not c.se > 0:
        return math.nan
    side = "larger" if c.margin is not None else "two-sided"
    if c.paired:  # a one-sample t on the per-seed differences, whose sd is se * sqrt(n)
        return detectable_effect(c.n, 0, level, side) * c.se * math.sqrt(c.n)
    n_a, n_b = c.sides  # Welch: the difference's se is sd * sqrt(1 / n_a + 1 / n_b)
    return detectable_effect(n_a, n_b, level, side) * c.se / math.sqrt(1 / n_a + 1 / n_b)


@functools.lru_cache(maxsize=None)
def detectable_effect(n_a: int, n_b: int, level: float, side: str) -> float:
    """Cohen's d found with 80% power by a paired t test of n_a seeds (n_b = 0) or a two-sample one of n_a and
    n_b (statsmodels' exact noncentral-t power; solved once per design)."""
    if not n_b:
        return float(TTestPower().solve_power(nobs=n_a, alpha=level, power=POWER, alternative=side))
    return float(TTestIndPower().solve_power(nobs1=n_a, ratio=n_b / n_a, alpha=level, power=POWER,
                                             alternative=side))


# ----------------------------------------------------------------------------------------- regime
def last_quarter_gain(history: list[dict], metric: str = "test_top1") -> float:
    """How much the metric still rose over the last quarter of training: its value at the end minus its
    value at the last evaluation at or before 3/4 of the epochs (nan if there was none)."""
    evaluated = [r for r in history if metric in r and r[metric] == r[metric]]
    last = evaluated[-1]["epoch"] if evaluated else 0
    earlier = [r for r in evaluated if r["epoch"] <= 0.75 * last]
    return evaluated[-1][metric] - earlier[-1][metric] if earlier else math.nan


def regime(rows: pd.DataFrame, criterion: dict, baseline: str) -> tuple[bool, str]:
    """Is this the paper's regime (converged teacher and student)? The teacher's test and clean train top-1
    and last-quarter gain, and the `baseline` students' last-quarter gain (mean over seeds), against the
    profile's criterion: gains below criterion["max_gain"] pp, teacher train top-1 at least
    criterion["min_train_gap"] pp above its test top-1. Returns (met, a markdown block)."""
    base = rows[rows.condition == baseline]
    facts = [("teacher test top-1", rows.teacher_test_top1.iloc[0], "", None),
             ("teacher train top-1 (clean views of its pool) minus test top-1",
              rows.teacher_train_top1.iloc[0] - rows.teacher_test_top1.iloc[0], ">=", criterion["min_train_gap"]),
             ("teacher test top-1 gain over its last quarter of epochs", rows.teacher_last_quarter_gain.iloc[0],
              "<", criterion["max_gain"]),
             (f"'{baseline}' student test top-1 gain over its last quarter (mean of {len(base)} seeds)",
              base.student_last_quarter_gain.mean(), "<", criterion["max_gain"])]
    lines, met = ["| regime | value | criterion | met |", "| --- | --- | --- | --- |"], True
    for name, value, op, bound in facts:
        # a teacher not trained here (published weights, an external checkpoint) has no history: n/a
        unknown_teacher = value != value and name.startswith("teacher")
        ok = None if bound is None or unknown_teacher else bool(value >= bound if op == ">=" else value < bound)
        met &= ok is not False
        shown = "n/a" if unknown_teacher else f"{value:.2f}"
        lines.append(f"| {name} | {shown} | {f'{op} {bound:g}' if bound is not None else ''} | "
                     f"{'' if ok is None else 'yes' if ok else '**no**'} |")
    return met, "\n".join(lines)


def combine(verdicts: list[str]) -> str:
    """One verdict from several (pairs, series): theirs where they agree, else "not reproduced" if any
    is, else "inconclusive"."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    return "not reproduced" if "not reproduced" in verdicts else "inconclusive"


def verdict_line(label: str, verdict: str, facts: dict) -> str:
    return f"- {label}: **{verdict}**; " + "; ".join(f"{k} {v}" for k, v in facts.items())


def judge_pairs(rows: pd.DataFrame, criterion: dict, baseline: str, verdict_for, *args
                ) -> tuple[str, list[str], list[str]]:
    """v2: for each teacher-student pair, its regime block (the teacher and the `baseline` condition's
    students) and its verdict with the comparisons behind it. Returns the combined verdict (a pair outside
    the regime counts as inconclusive), the regime blocks and the comparison lines."""
    verdicts, regimes, lines = [], [], []
    for pair, part in rows.groupby("pair", sort=False):
        met, block = regime(part, criterion, baseline)
        verdict, contrasts = verdict_for(part, *args)
        verdicts.append(verdict if met else "inconclusive")
        regimes.append(f"{pair}:\n\n{block}")
        lines.append(verdict_line(pair, verdict, contrasts))
    return combine(verdicts), regimes, lines


def evidence(regimes: list[str], lines: list[str], family: str, where: str = "", which: str = "") -> str:
    """What a v2 verdict rests on, for the table's notes: the regime block(s) (`where`: what they were
    checked on; `which`: the students they check) and the comparisons, corrected together over `family`
    (e.g. "the four")."""
    return (f"**Regime** (criterion from the profile{'; ' + where if where else ''}; outside it the verdict is "
            f"inconclusive{'; ' + which if which else ''}):\n\n" + "\n\n".join(regimes) + f"\n\n**Comparisons** (a - b over seeds; Holm over "
            f"{family}; MDE: the smallest true difference found with 80% power at this n):\n" + "\n".join(lines))


def teacher_weights_note(rows: pd.DataFrame) -> str:
    """What a table says of the teacher weights its rows were distilled from: nothing where every distilled
    row names them (SHA-256; tests/test_results checks they are published), else how many do not (the
    rows are never rewritten)."""
    distilled = rows[rows["teacher.model"].notna()] if "teacher.model" in rows else rows.iloc[:0]
    named = (distilled["teacher_sha256"].notna() if "teacher_sha256" in distilled
             else pd.Series(False, index=distilled.index))
    if named.all():
        return ""
    return (f"{(~named).sum()} of the {len(distilled)} distilled rows do not record the weights they were distilled "
            f"from (they predate protocol v3). Training is not bit-identical across CPU kinds, so the published "
            f"teacher of the same recipe (results/teachers), which a re-run distils from, may hold other weights "
            f"than these rows saw.")


def ci_cell(c: "Contrast | None") -> str:
    """A paired difference as a table cell, '+1.23 [+0.45, +2.01]' (its 95% CI); empty for none."""
    return "" if c is None else "{:+.2f} [{:+.2f}, {:+.2f}]".format(c.diff, *c.interval())


def rule_of(verdict_for) -> str:
    """A verdict rule as written in its function's docstring, whole: its first line says what noise is."""
    return " ".join(verdict_for.__doc__.split())


def accuracy_cells(summary: pd.DataFrame) -> list[str]:
    return [fmt(m, s, n) for m, s, n in zip(summary["mean"], summary["std"], summary["n"])]


def plot_style():
    import seaborn as sns
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)


def baseline(ax, row: pd.Series, label: str, linestyle: str = "-"):
    """A reference condition in a figure: a line at its mean (summarise's row) and a band of 2 SE."""
    ax.axhline(row["mean"], color="k", linestyle=linestyle, linewidth=1, label=f"{label}: {row['mean']:.2f}")
    if row["n"] > 1:
        ax.axhspan(row["mean"] - 2 * row["se"], row["mean"] + 2 * row["se"], color="k", alpha=0.06)


def save_figure(fig, path: Path):
    """A figure as a PNG, written atomically like every file here (a crash leaves the old one or the new)."""
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=130, format="png"))
    import matplotlib.pyplot as plt
    plt.close(fig)


def write_table(out: Outputs, title: str, claim: str, paper: str, table: pd.DataFrame, verdict: str,
                rule: str, notes: str = "") -> str:
    """The comparison table of a finding as markdown: claim, paper, our numbers, verdict and its rule."""
    if out.stale:  # pre-registration: rows of another rule are shown, never judged under this one
        verdict = "none"
        rule = f"{out.stale} The current rule ({out.rule_id}) would be: {rule}"
    elif out.rule_id:
        rule = f"Rule `{out.rule_id}`, fixed before the runs (its id is in every row): {rule}"
    text = (f"# {title}\n\n**Claim.** {claim}\n\n**Paper.** {paper}\n\n"
            f"**Ours.**\n\n{table.to_markdown(index=False, floatfmt='.2f')}\n\n"
            f"**Verdict: {verdict}.** {rule}\n" + (f"\n{notes}\n" if notes else "")
            + (f"\n**Teacher weights.** {out.teachers}\n" if out.teachers else ""))
    write_text(out.table, text)  # a table lands whole or not at all
    return text


def fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f} (n={n})" if n > 1 else f"{mean:.2f} (n=1)"
