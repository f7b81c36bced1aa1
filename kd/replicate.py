"""`--replicate`: how close a re-run of a finding here comes to its committed rows. The harness trains the
committed grid (all seeds, or the first N of each condition) into a folder outside the tracked results, judges
it, and judges the committed rows of the same seeds under the same rule; this compares the two, run by run
(the same run id is the same config), per condition against the committed seed spread, and by verdict, and
says in one line whether the finding replicated."""
from __future__ import annotations

import time

import pandas as pd
from scipy import stats

from kd import records

METRIC = "final_test_top1"


def _devices(rows: pd.DataFrame) -> str:
    return "; ".join(sorted(rows["device"].dropna().unique())) if "device" in rows else "unknown"


def _teachers(rows: pd.DataFrame) -> set:
    return set(rows["teacher_sha256"].dropna()) if "teacher_sha256" in rows else set()


def compare(committed: pd.DataFrame, replica: pd.DataFrame, verdicts: dict[str, str], metric: str = METRIC
            ) -> tuple[str, str]:
    """(the one-line outcome, the markdown report) of a replica against the committed rows. `committed`: every
    committed row of the grid's rule (all its seeds, for the spread); `replica`: the rows trained here;
    `verdicts`: "committed" (all its seeds), "committed, same seeds" and "replica"."""
    runs = replica[["run_id", "condition", "seed", metric]].merge(committed[["run_id", metric]], on="run_id",
                                                                   suffixes=("", "_committed"))
    runs["difference"] = runs[metric] - runs[f"{metric}_committed"]
    spread = committed.groupby("condition", sort=False)[metric].agg(["mean", "std", "count", "min", "max"])
    runs["within spread"] = [spread.loc[c, "min"] <= v <= spread.loc[c, "max"] for c, v in zip(runs.condition, runs[metric])]
    per_condition = []
    for condition, part in runs.groupby("condition", sort=False):
        s = spread.loc[condition]
        half = stats.t.ppf(0.975, s["count"] - 1) * s["std"] / s["count"] ** 0.5 if s["count"] > 1 else float("nan")
        per_condition.append({"condition": condition, "committed mean [95% CI]": f"{s['mean']:.2f} [{s['mean'] - half:.2f}, "
                              f"{s['mean'] + half:.2f}] (n={int(s['count'])})",
                              "committed seed spread": f"{s['min']:.2f} .. {s['max']:.2f}",
                              f"replica mean (n={len(part)})": round(part[metric].mean(), 2),
                              "replica minus committed, same runs": round(part["difference"].mean(), 2),
                              "runs within the spread": f"{int(part['within spread'].sum())} of {len(part)}"})
    within = int(runs["within spread"].sum())
    theirs = _teachers(committed.loc[committed.run_id.isin(replica.run_id)])
    same_teacher = not theirs or _teachers(replica) == theirs  # rows before protocol v3 name no weights
    same = verdicts["replica"] == verdicts["committed, same seeds"]
    facts = [f"{within} of {len(runs)} runs within the committed seed spread of their condition",
             f"the mean run differs by {runs['difference'].mean():+.2f} pp (largest {runs['difference'].abs().max():.2f})"]
    if not theirs:
        facts.append("the committed rows name no teacher weights (before protocol v3), so the teachers are not compared")
    if not same_teacher:  # other weights make other runs, whatever the verdict says
        facts.append("the teacher weights (teacher_sha256) differ from those the committed rows name")
        head = (f"not replicated: distilled from other teacher weights (verdict '{verdicts['replica']}' here, "
                f"'{verdicts['committed, same seeds']}' from the committed rows of the same seeds)")
    elif same:
        head = f"replicated: the same verdict ({verdicts['replica']}) as the committed rows of the same seeds"
    else:
        head = (f"not replicated: '{verdicts['replica']}' here, '{verdicts['committed, same seeds']}' from the "
                f"committed rows of the same seeds")
    line = head + "; " + "; ".join(facts) + "."
    table = runs[["condition", "seed", "run_id", f"{metric}_committed", metric, "difference", "within spread"]]
    text = (f"# Replica vs committed rows\n\n**{line}**\n\n"
            f"Committed rows: {_devices(committed)}. Replica: {_devices(replica)}.\n\n"
            f"Verdicts: committed (all {committed.seed.nunique()} seeds): {verdicts['committed']}; committed, the "
            f"replica's {replica.seed.nunique()} seeds: {verdicts['committed, same seeds']}; replica: "
            f"{verdicts['replica']}.\n\n## Per condition ({metric})\n\n"
            f"{pd.DataFrame(per_condition).to_markdown(index=False, floatfmt='.2f')}\n\n## Per run\n\n"
            f"{table.to_markdown(index=False, floatfmt='.2f')}\n")
    return line, text


def record_row(name: str, profile: str, committed: pd.DataFrame, replica: pd.DataFrame, line: str) -> dict:
    """A replica's outcome as a row of replications.csv: which finding, how many runs and seeds, the CPU kinds
    of both sides, the outcome line, and the commit and command that made it."""
    return {"run_id": records.run_id({"replica": name, "profile": profile, "time": time.time()}),
            "finding": name, "profile": profile, "runs": len(replica), "seeds": replica.seed.nunique(),
            "replicated": line.startswith("replicated"), "replica_devices": _devices(replica),
            "committed_devices": _devices(committed.loc[committed.run_id.isin(replica.run_id)]),
            "outcome": line, "git_commit": records.git_commit(), "command": records.command_line(),
            "date": time.strftime("%Y-%m-%d")}
