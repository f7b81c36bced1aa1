"""Run records (kd/records.py): a config's hash does not depend on key order, a row holds its config
flattened, rows are appended (a run id once) and read back, a damaged results file is a clear error that
leaves it as it was, and a saved file is checked against the size and hash written beside it."""
import pandas as pd
import pytest
import torch

from kd import records
from kd.errors import KDError


def test_a_config_hash_is_stable_and_ignores_key_order():
    a = {"seed": 1, "recipe": {"lr": 0.05, "epochs": 2}, "loss": "kd"}
    b = {"loss": "kd", "recipe": {"epochs": 2, "lr": 0.05}, "seed": 1}
    assert records.run_id(a) == records.run_id(b) and len(records.run_id(a)) == 16
    assert records.run_id({**a, "seed": 2}) != records.run_id(a)
    assert records.flatten({"recipe": {"milestones": [1, 2]}, "teacher": None}) == {
        "recipe.milestones": "[1, 2]", "teacher": None}


def test_rows_are_appended_once_per_run_and_read_back(tmp_path):
    runs = tmp_path / "r" / "runs.csv"
    records.append_row(runs, {"run_id": "a", "status": "failed"})
    records.append_row(runs, {"run_id": "b", "status": "done", "final_test_top1": 80.5})
    records.append_row(runs, {"run_id": "a", "status": "done", "final_test_top1": 81.0})  # redone: replaced
    rows = records.read_rows(runs, required=("run_id", "status"))
    assert list(rows.run_id) == ["b", "a"] and set(rows.status) == {"done"}
    assert not list(tmp_path.rglob("*.tmp"))  # written atomically: no temporary file left


def test_a_damaged_results_file_is_one_clear_error_and_left_as_it_is(tmp_path):
    runs = tmp_path / "runs.csv"
    runs.write_bytes(b"\x00\xff not, a\nresults file")
    with pytest.raises(KDError, match="is damaged"):
        records.read_rows(runs)
    pd.DataFrame({"x": [1]}).to_csv(runs, index=False)
    with pytest.raises(KDError, match="lacks the column"):
        records.read_rows(runs, required=("run_id",))
    assert runs.read_text() == "x\n1\n"


def test_a_saved_file_is_checked_against_its_size_and_hash(tmp_path):
    path = tmp_path / "state.pt"
    records.atomic_save({"w": torch.arange(4)}, path)
    assert torch.equal(records.load_saved(path)["w"], torch.arange(4))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped, the size unchanged
    path.write_bytes(bytes(data))
    with pytest.raises(records.DamagedFile, match="damaged"):
        records.load_saved(path)
    records.sum_path(path).unlink()
    with pytest.raises(records.DamagedFile, match="no record of its size and hash"):
        records.check_saved(path)
