"""All findings in one command, one page of results: experiments/all.sh knows every finding, its dry run
prices them all, and results/README.md is the committed tables rendered, in step with the README."""
import re

from experiments import all as all_findings
from experiments import report
from kd import records

REPO = records.REPO


def test_all_runs_every_finding_script():
    scripts = {p.stem for p in (REPO / "experiments").glob("*.sh")} - {"all"}
    assert set(all_findings.FINDINGS) == scripts and len(set(all_findings.FINDINGS)) == len(scripts)


def test_dry_run_prices_every_finding_and_the_total(tmp_path, capsys):
    assert all_findings.main(["--dry-run", "--profile", "smoke", "--results-root", str(tmp_path), "--jobs", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"all --profile smoke: {len(all_findings.FINDINGS)} findings"
    assert [line.split()[0] for line in out[1:-1]] == list(all_findings.FINDINGS)
    assert all(re.search(r"estimated \d+ min of runs \(\d+ min with --jobs 2\)", line) for line in out[1:])
    assert out[-1].startswith("all findings: estimated")
    eskd = next(line for line in out if line.startswith("eskd "))
    assert re.match(r"eskd +10 runs, +6 to run", eskd)  # its other 4 are bigger_teachers' runs, counted there
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_dry_run_says_a_damaged_gpu_cost_table_is_damaged(tmp_path, monkeypatch, capsys):
    costs = tmp_path / "per_sample_costs.csv"
    costs.write_text("device,dataset,model,width,train_step,batch,seconds_per_sample\nG,cifar10,resnet20,1.0,True,64,x\n")
    monkeypatch.setattr("kd.costs.GPU_COSTS", costs)
    assert all_findings.main(["--dry-run", "--profile", "smoke", "--results-root", str(tmp_path / "r")]) == 2
    assert f"error: The GPU cost table {costs} is damaged" in capsys.readouterr().err


def test_results_page_is_the_committed_tables_rendered_and_agrees_with_the_readme():
    page = report.render("cpu", all_findings.FINDINGS)
    assert (REPO / "results" / "README.md").read_text() == page, "run: python -m experiments.report"
    readme = dict(re.findall(r"\| `bash experiments/(\w+)\.sh` \| ([^|]*?) \|", (REPO / "README.md").read_text()))
    for name in all_findings.FINDINGS:
        f = report.finding(name, "cpu")
        assert readme[name] == (f["verdict"] if f else "pending"), name
        if f and f["verdict"] != "pending":
            assert f"**Verdict: {f['verdict']}.**" in page


def test_a_finding_without_results_is_listed_as_such(tmp_path):
    assert "No results yet: `eskd`." in report.render("cpu", ["eskd"], tmp_path)
