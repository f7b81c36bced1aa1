"""--replicate: a finding's committed grid trained again elsewhere and compared run by run. A replica of an
unchanged tree replicates; one distilled from a deliberately changed teacher does not, and says so; nothing
committed to compare with is said before any compute; a re-run of a finished grid names --replicate."""
import pandas as pd
import torch

from experiments import kdas_finding3 as f3
from kd import harness, records


def main(tmp_path, *args):
    return harness.main(f3, ["--profile", "smoke", "--seeds", "1", "--device", "cpu", "--results-root",
                             str(tmp_path / "committed" / "results"), *args], isolate=False)


def replica(tmp_path):
    return tmp_path / "replica" / "results" / f3.NAME / "smoke"


def test_a_replica_of_an_unchanged_tree_replicates(tmp_path, capsys):
    assert main(tmp_path) == 0
    assert "nothing to train" not in capsys.readouterr().out
    assert main(tmp_path) == 0  # everything committed: said in one line that names --replicate
    again = capsys.readouterr().out
    assert "nothing to train" in again and "--replicate [--seeds 2]" in again
    committed = pd.read_csv(tmp_path / "committed" / "results" / f3.NAME / "smoke" / "runs.csv")
    table = (tmp_path / "committed" / "results" / f3.NAME / "smoke" / "table.md").read_text()
    assert main(tmp_path, "--replicate", "--out", str(tmp_path / "replica")) == 0
    out = capsys.readouterr().out
    assert "replicated: the same verdict" in out and f"{len(committed)} of {len(committed)} runs within" in out
    report = (replica(tmp_path) / "replica_vs_committed.md").read_text()
    assert "Committed rows: cpu" in report and "Replica: cpu" in report
    record = pd.read_csv(tmp_path / "replica" / "results" / "replications.csv")  # the row for results/replications.csv
    assert record.finding.tolist() == [f3.NAME] and record.replicated.tolist() == [True]
    assert record.replica_devices[0].startswith("cpu") and record.outcome[0].startswith("replicated")
    assert pd.read_csv(replica(tmp_path) / "runs.csv").run_id.tolist() == committed.run_id.tolist()
    # the committed rows and table are untouched
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "committed" / "results" / f3.NAME / "smoke" / "runs.csv"),
                                  committed)
    assert (tmp_path / "committed" / "results" / f3.NAME / "smoke" / "table.md").read_text() == table


def test_a_replica_from_another_teacher_does_not_replicate_and_says_so(tmp_path, capsys):
    assert main(tmp_path) == 0
    for final in (tmp_path / "cache").rglob("final.pt"):  # the smoke teacher, trained again "elsewhere"
        saved = records.load_saved(final)
        saved["state_dict"] = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v
                               for k, v in saved["state_dict"].items()}
        records.atomic_save(saved, final)
    for logits in (tmp_path / "cache").rglob("*.logits"):  # its logit cache belongs to the old weights
        for f in sorted(logits.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        logits.rmdir()
    capsys.readouterr()
    assert main(tmp_path, "--replicate", "--out", str(tmp_path / "replica")) == 0
    out = capsys.readouterr().out
    assert "not replicated: distilled from other teacher weights" in out and "teacher_sha256" in out


def test_nothing_committed_to_replicate_is_said_before_any_compute(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(f3, "run", lambda config, ctx: (_ for _ in ()).throw(AssertionError("must not train")))
    assert main(tmp_path, "--replicate", "--out", str(tmp_path / "replica")) == 2
    assert "are not committed under the current rule" in capsys.readouterr().err
    assert not (tmp_path / "replica").exists()
