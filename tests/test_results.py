"""The committed results agree with the README: every script has a row in the README's findings table,
and where a `cpu` table is committed, its verdict is the README's, its figure exists and its runs are complete."""
import re
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p.stem for p in (REPO / "experiments").glob("*.sh"))


def readme_verdicts() -> dict[str, str]:
    rows = re.findall(r"\| `bash experiments/(\w+)\.sh` \| ([^|]*?) \|", (REPO / "README.md").read_text())
    return dict(rows)


def test_every_script_is_in_the_readme():
    assert set(SCRIPTS) <= set(readme_verdicts())


@pytest.mark.parametrize("name", SCRIPTS)
def test_readme_verdict_matches_the_committed_table(name):
    table = REPO / "results" / name / "cpu" / "table.md"
    if not table.exists():
        assert readme_verdicts()[name] == "pending"
        return
    verdict = re.search(r"\*\*Verdict: (.+?)\.\*\*", table.read_text()).group(1)
    assert readme_verdicts()[name] == verdict
    assert (REPO / "figures" / f"{name}_cpu.png").exists()
    runs = pd.read_csv(table.parent / "runs.csv")
    assert set(runs.status) == {"done"} and runs.run_id.is_unique
    assert {"git_commit", "command", "seed", "device", "wall_s"} <= set(runs)
