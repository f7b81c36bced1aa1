"""Each paper profile end to end on fixture data (tests/paper_fixtures.py): CIFAR-format files of random
pixels written here, every recipe squeezed into a few epochs, the grid's first run with a teacher trained
with the profile's real models, batch sizes and schedule shape. Three findings that cover the paper
profiles' distinct machinery run by default (KDAS sampling with DKD, teacher snapshots, ensemble teachers);
KD_PAPER_FIXTURES=all runs every CIFAR finding (about a minute each on two cores). The ImageNet profiles
(eskd, dist_stronger_teacher, vanillakd_data_scale) need timm's pretrained weights and 224-pixel images and
are checked at the planning level only (tests/test_harness.py)."""
import os

import pandas as pd
import pytest

from tests.paper_fixtures import CIFAR_FINDINGS, EPOCHS, run_paper_profile, write_cifar

DEFAULT = ("kdas_method", "early_stopped_teachers", "fidelity_ensembles")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_fixture")
    write_cifar(root / "data", 100, train_per_class=1, test_per_class=1)
    write_cifar(root / "data", 10, train_per_class=10, test_per_class=2)
    return root


@pytest.mark.parametrize("name", CIFAR_FINDINGS)
def test_paper_profile_runs_on_fixture_data(name, root):
    if name not in DEFAULT and os.environ.get("KD_PAPER_FIXTURES") != "all":
        pytest.skip("KD_PAPER_FIXTURES=all runs every finding's paper profile")
    assert run_paper_profile(name, root, "cpu", one_run=True) == 0
    rows = pd.read_csv(root / "results" / name / "paper" / "runs.csv")
    assert list(rows.status) == ["done"] and rows["profile"].eq("paper").all()
    assert rows["recipe.epochs"].iloc[0] <= 2 * EPOCHS and rows["dataset"].iloc[0] in ("cifar10", "cifar100")
    assert not (root / "figures").exists() or not any((root / "figures").iterdir())  # one run: no report
