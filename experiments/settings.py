"""Settings every finding shares, written once: the KD loss options of the papers, the regime criteria, a
profile's pool size and its seeds. The papers' training recipes are kd.recipe.CIFAR_RECIPE and
IMAGENET_RECIPE."""
from __future__ import annotations

from kd.datasets import DATASETS

# Hinton KD as the CIFAR-100 papers run it (CRD / mdistiller, DKD, DIST, KDAS): T = 4, CE weight 0.1,
# KD weight 0.9.
KD_OPTIONS = {"temperature": 4.0, "ce_weight": 0.1, "kd_weight": 0.9}

# The paper's regime (kd.analysis.regime): teacher and students gain less than 0.3 pp over their last
# quarter, the teacher fits its pool at least 2 pp better than the test set. Smoke runs prove the pipeline,
# not convergence: their criterion always holds.
REGIME = {"max_gain": 0.3, "min_train_gap": 2.0}
SMOKE_REGIME = {"max_gain": 100.0, "min_train_gap": -100.0}


def pool_size(p: dict) -> int:
    """Training samples of a profile: its dataset's training set times its pool fraction."""
    return round(DATASETS[p["dataset"]].num_train * p["pool_fraction"])


def seed_range(p: dict, seeds: int) -> range:
    """A profile's student seeds: `seeds` of them from its first_seed (0 unless set; each rule runs fresh
    seeds)."""
    first = p.get("first_seed", 0)
    return range(first, first + seeds)
