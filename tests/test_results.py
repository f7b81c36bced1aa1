"""The committed results agree with the README: every script has a row in the README's findings table,
and where a `cpu` table is committed, its verdict is the README's, its figure exists and its runs are complete."""
import re
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p.stem for p in (REPO / "experiments").glob("*.sh") if p.stem != "all")


def readme_verdicts() -> dict[str, str]:
    rows = re.findall(r"\| `bash experiments/(\w+)\.sh` \| ([^|]*?) \|", (REPO / "README.md").read_text())
    return dict(rows)


def test_every_script_is_in_the_readme():
    assert set(SCRIPTS) <= set(readme_verdicts())


def test_the_readme_findings_table_is_the_generated_one():
    from experiments import report
    text = (REPO / "README.md").read_text()
    start, end = (text.index(m) for m in report.README_MARKS)
    assert text[start + len(report.README_MARKS[0]):end].strip() == report.readme_table(), \
        "run: python -m experiments.report"


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


def test_the_column_migration_renames_headers_only_and_refuses_clashes(tmp_path):
    from kd.migrations import migrate
    runs = tmp_path / "a" / "runs.csv"
    runs.parent.mkdir()
    runs.write_text("run_id,final_test_kl_ts,best_test_kl_ts,x\nr1,0.1234567890123,0.2,\"a,b\"\n")
    history = tmp_path / "h.csv"
    history.write_text("epoch,test_kl_ts\n1,1e-05\n")
    assert migrate(tmp_path) == [runs, history]
    assert runs.read_text() == ("run_id,final_test_kl_teacher_student,best_test_kl_teacher_student,x\n"
                                "r1,0.1234567890123,0.2,\"a,b\"\n")
    assert history.read_text() == "epoch,test_kl_teacher_student\n1,1e-05\n"
    assert migrate(tmp_path) == []  # idempotent
    clash = tmp_path / "clash.csv"
    clash.write_text("test_kl_ts,test_kl_teacher_student\n1,2\n")
    with pytest.raises(SystemExit, match="both an old column"):
        migrate(tmp_path)
    assert clash.read_text() == "test_kl_ts,test_kl_teacher_student\n1,2\n"


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_committed_rows_are_the_runs_the_code_builds(name):
    """Every committed cpu row judged under the finding's current rule is a run of the grid the code builds
    now: its run id (the hash of its config) and its config fields; the rule id is the one the code hashes.
    Rows of earlier rules (grids no code builds any more) each have their table beside the current one."""
    from experiments.findings import module_of
    from kd import harness, records
    folder = REPO / "results" / name / "cpu"
    if not (folder / "runs.csv").exists():
        return
    module = module_of(name)
    configs = harness.planned_runs(module, dict(module.PROFILES["cpu"]), None, check=False)
    rule = harness.rule_id(module, configs)
    rows = pd.read_csv(folder / "runs.csv")
    current = rows[rows.rule_id == rule].set_index("run_id")
    planned = sorted(c.run_id for c in configs)
    if len(current) < len(planned):  # pending: a rule is committed before its runs, or a stopped sweep's first
        assert not (folder / "table.md").exists(), name  # rows; no table until every run is done
        assert set(current.index) <= set(planned), name
    else:
        assert sorted(current.index) == planned
    for c in (c for c in configs if c.run_id in current.index):
        row = current.loc[c.run_id]
        for key, value in records.flatten(c.as_dict()).items():
            if key == "train_size":  # a row's train_size is the pool size the run reports (KDAS: not the plan's)
                continue
            recorded = row[key]
            assert (value is None and pd.isna(recorded)) or recorded == value or str(recorded) == str(value), \
                (name, key, value, recorded)
    for old in set(rows.rule_id.fillna("v1")) - {rule}:
        tables = [f"table_{old}.md", f"table_v2_{old}.md"] if old != "v1" else ["table_v1.md"]
        assert any((folder / t).exists() for t in tables), (name, old)


def test_every_committed_row_that_names_its_teacher_weights_names_published_ones():
    """Protocol v3: a row records the SHA-256 of the weights it was distilled from, and those are weights of
    results/teachers (a fresh clone distils from the same ones); rows before v3 record none, and their
    tables say so."""
    published = pd.read_csv(REPO / "results" / "teachers" / "teachers.csv", keep_default_na=False)
    known = set(published.weights_sha256) | {h for hs in published.snapshot_sha256 for h in hs.split()}
    for runs in sorted((REPO / "results").glob("*/*/runs.csv")):
        rows = pd.read_csv(runs)
        distilled = rows[rows["teacher.model"].notna()] if "teacher.model" in rows else rows.iloc[:0]
        named = distilled.teacher_sha256.dropna() if "teacher_sha256" in distilled else []
        assert {h for hs in named for h in hs.split()} <= known, runs
        if len(named) < len(distilled):
            tables = sorted(runs.parent.glob("table*.md"))  # the current table, or an earlier rule's
            assert any("do not record the weights they were distilled from" in t.read_text() for t in tables), runs


def test_the_v3_design_table_is_the_committed_rows_priced():
    from experiments import designs
    assert (REPO / "docs" / "v3_designs.md").read_text() == designs.render(), "run: python -m experiments.designs"
    t = designs.table()
    assert len(t) == 13 and (t.seeds >= 5).all() and (t.seeds <= designs.MAX_SEEDS).all()
    assert ((t["underpowered"] == "yes") == (t["seeds for 80% power"].astype(float) > designs.MAX_SEEDS)).all()
    plateaus = designs.teacher_plateaus().set_index("teacher")  # every published teacher against the premise
    assert len(plateaus) == len(list((REPO / "results" / "teachers").glob("*/final.pt")))
    assert plateaus.loc["resnet20-06b4abd0b4a7", "plateau (< 0.3 pp)"] == "yes"  # the KDAS findings' teacher
