"""The analysis of a finding: where its results and figure go, summaries per condition, comparisons of
conditions, verdict lines, the comparison table and the figure style. Every finding's `report` builds on
these; the statistics of its verdict live here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats


# ----------------------------------------------------------------------------------------- outputs
@dataclass
class Outputs:
    results: Path      # results/<name>/<profile>/
    figure: Path       # figures/<name>_<profile>.png
    rule_id: str = ""  # the pre-registered rule and grid the table is judged under (see harness.rule_id)
    stale: str = ""    # why the rows cannot be judged under it ("" when they can)

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
    """a - b over seeds: paired where both sides ran the same seeds (per-seed differences), else Welch.
    With a `margin` it is a non-inferiority test of H0: a - b <= -margin. `decide` fills p_holm, mde and
    outcome for the comparisons that decide one verdict together."""
    diff: float          # mean per-seed difference (paired) or difference of means (Welch), in pp
    se: float            # its standard error (nan with fewer than two seeds a side)
    df: float            # degrees of freedom of its t distribution
    n: int               # seeds (paired) or the smaller side (Welch)
    paired: bool
    margin: float | None = None
    p_holm: float = math.nan
    mde: float = math.nan
    outcome: str = "within noise"

    def interval(self, level: float = 1 - ALPHA) -> tuple[float, float]:
        if self.se == 0:  # every seed gave the same difference
            return self.diff, self.diff
        if not self.se > 0:
            return math.nan, math.nan
        half = stats.t.ppf(0.5 + level / 2, self.df) * self.se
        return self.diff - half, self.diff + half

    @property
    def p(self) -> float:
        """Two-sided p of a - b = 0; for a non-inferiority test, one-sided p of a - b <= -margin."""
        shift = self.margin if self.margin is not None else 0.0
        if self.se == 0:  # no spread: the difference is certain
            return float(self.diff + shift <= 0) if self.margin is not None else float(self.diff == 0)
        if not self.se > 0:
            return math.nan
        if self.margin is not None:
            return float(stats.t.sf((self.diff + self.margin) / self.se, self.df))
        return float(2 * stats.t.sf(abs(self.diff) / self.se, self.df))

    def __str__(self):
        low, high = self.interval()
        test = f"non-inferiority, margin {self.margin:g} pp, " if self.margin is not None else ""
        return (f"{self.diff:+.2f} pp [95% CI {low:+.2f}, {high:+.2f}], {test}p_Holm {self.p_holm:.3f}, "
                f"n {self.n} {'paired' if self.paired else 'unpaired (Welch)'}, MDE {self.mde:.2f} pp: "
                f"{self.outcome}")


def contrast(a: pd.Series, b: pd.Series, margin: float | None = None) -> Contrast:
    """a - b for two conditions' metric indexed by seed (see metric_of)."""
    if len(a) and set(a.index) == set(b.index):
        d = a - b.loc[a.index]
        n = len(d)
        se = d.std() / math.sqrt(n) if n > 1 else math.nan
        return Contrast(d.mean(), se, n - 1, n, True, margin)
    n = min(len(a), len(b))
    if n < 2:  # a missing condition or a single seed: no noise estimate
        return Contrast(a.mean() - b.mean() if n else math.nan, math.nan, math.nan, n, False, margin)
    va, vb = a.var() / len(a), b.var() / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else math.nan
    return Contrast(a.mean() - b.mean(), se, df, n, False, margin)


def decide(contrasts: dict[str, Contrast], alpha: float = ALPHA) -> dict[str, Contrast]:
    """Judge the contrasts behind one verdict together: Holm's correction over their p values, and each
    one's minimum detectable effect at 80% power and the level Holm's first step uses (alpha / m).
    Outcome: "better" / "worse" when the Holm-adjusted p < alpha (else "within noise"); a non-inferiority
    test is "not worse" when its adjusted p < alpha, else "not shown"."""
    m = len(contrasts)
    ranked = sorted(contrasts.values(), key=lambda c: (math.isnan(c.p), c.p))
    running = 0.0
    for i, c in enumerate(ranked):
        if not math.isnan(c.p):  # step-down: adjusted p never falls below an earlier one's
            running = max(running, min(1.0, (m - i) * c.p))
        c.p_holm = running if not math.isnan(c.p) else math.nan
        sided = 1 if c.margin is not None else 2
        if c.se > 0:
            c.mde = (stats.t.ppf(1 - alpha / (sided * m), c.df) + stats.t.ppf(POWER, c.df)) * c.se
        significant = c.p_holm < alpha
        if c.margin is not None:
            c.outcome = "not worse" if significant else "not shown"
        else:
            c.outcome = ("better" if c.diff > 0 else "worse") if significant else "within noise"
    return contrasts


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
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
            f"**Verdict: {verdict}.** {rule}\n" + (f"\n{notes}\n" if notes else ""))
    out.table.parent.mkdir(parents=True, exist_ok=True)
    out.table.write_text(text)
    return text


def fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f} (n={n})" if n > 1 else f"{mean:.2f} (n=1)"
