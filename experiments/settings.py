"""Settings every finding shares, written once: the KD loss options of the papers and the pool size of a
profile. The papers' training recipes are kd.recipe.CIFAR_RECIPE and IMAGENET_RECIPE."""
from __future__ import annotations

from kd.data import DATASETS

# Hinton KD as the CIFAR-100 papers run it (CRD / mdistiller, DKD, DIST, KDAS): T = 4, CE weight 0.1,
# KD weight 0.9.
KD_OPTIONS = {"temperature": 4.0, "ce_weight": 0.1, "kd_weight": 0.9}


def pool_size(p: dict) -> int:
    """Training samples of a profile: its dataset's training set times its pool fraction."""
    return round(DATASETS[p["dataset"]].num_train * p["pool_fraction"])
