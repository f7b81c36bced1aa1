"""Each paper profile end to end on fixture data (tests/paper_fixtures.py): CIFAR-format files and an
ImageNet-style tree of random pixels written here, every recipe squeezed into a few epochs, the grid's first
run with a teacher with the profile's real models, batch sizes and schedule shape. Four findings that cover
the paper profiles' distinct machinery run by default (KDAS sampling with DKD, teacher snapshots, ensemble
teachers, ImageFolder data with timm-pretrained teachers); KD_PAPER_FIXTURES=all runs every finding (about
a minute each on two cores; ImageNet profiles at 32 pixels)."""
import os

import pandas as pd
import pytest

from tests.paper_fixtures import (CIFAR_FINDINGS, EPOCHS, IMAGENET_FINDINGS, run_paper_profile, write_cifar,
                                  write_imagefolder)

DEFAULT = ("kdas_method", "early_stopped_teachers", "fidelity_ensembles", "eskd")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_fixture")
    write_cifar(root / "data", 100, train_per_class=1, test_per_class=1)
    write_cifar(root / "data", 10, train_per_class=10, test_per_class=2)
    write_imagefolder(root / "imagenet", classes=1000, per_class=1)
    return root


@pytest.mark.parametrize("name", CIFAR_FINDINGS + IMAGENET_FINDINGS)
def test_paper_profile_runs_on_fixture_data(name, root):
    if name not in DEFAULT and os.environ.get("KD_PAPER_FIXTURES") != "all":
        pytest.skip("KD_PAPER_FIXTURES=all runs every finding's paper profile")
    assert run_paper_profile(name, root, "cpu", one_run=True) == 0
    rows = pd.read_csv(root / "results" / name / "paper" / "runs.csv")
    assert list(rows.status) == ["done"] and rows["profile"].eq("paper").all()
    assert rows["recipe.epochs"].iloc[0] <= 2 * EPOCHS
    assert rows["dataset"].iloc[0] == ("imagefolder" if name in IMAGENET_FINDINGS else "cifar10" if name in (
        "bigger_teachers", "early_stopped_teachers") else "cifar100")
    if name in IMAGENET_FINDINGS:  # a teacher of timm's pretrained weights (fixture ones), measured on 1,000 classes
        assert rows["teacher.pretrained"].iloc[0] and 0 <= rows["teacher_test_top1"].iloc[0] <= 100
    assert not (root / "figures").exists() or not any((root / "figures").iterdir())  # one run: no report
