"""VanillaKD's data-scale script passes its smoke profile: every size and method, the teacher shared by all
sizes, the stronger recipe where the profile asks for it; its grid, and its verdict rule on made-up rows
(tests/made_up.py)."""
import pandas as pd
import pytest
import torch

from experiments import vanillakd_data_scale as vkd
from tests.made_up import NOISE, OFFSET


def test_vanillakd_smoke_distils_every_size_from_one_teacher(smoke):
    rows = smoke("vanillakd_data_scale")
    p = vkd.PROFILES["smoke"]
    assert sorted(rows.scale.unique()) == [vkd.size_of(p, f) for f in p["scales"]]
    assert set(rows.method_name) == {"KD", "DKD", "DIST", "BKL", "scratch"}
    distilled = rows[rows.method_name != "scratch"]
    assert distilled.teacher_test_top1.nunique() == 1 and distilled["teacher.pool_fraction"].eq(0.05).all()
    assert rows[rows.method_name == "scratch"].teacher_forwards.eq(0).all()
    strong = rows[rows.recipe_arm == "strong"]
    assert set(strong.scale) == {vkd.size_of(p, f) for f in p["strong_scales"]}
    assert strong["loss_options.label_smoothing"].eq(0.1).all()
    # same steps at every size: samples processed within a batch of the profile's steps x batch
    plain = rows[rows.recipe_arm == "plain"]
    assert (plain.samples - p["steps"] * p["recipe"].batch_size).abs().max() <= plain.scale.max() / 2


# ------------------------------------------------------------------------------------------ VanillaKD: the verdict rule on made-up rows
SIZES, RECIPE_SIZES = [600, 3000, 12000], [600, 12000]


def vkd_rows(dkd=(1.5, 0.8, 0.0), dist_=(2.0, 1.0, -0.3), strong=(-1.0, -0.5), seeds=5, noise=NOISE, drop=()):
    """KD, DKD and DIST per size (gaps to KD given per size), and the stronger recipe's at two sizes (its
    change of both gaps given per recipe size), per seed."""
    offset = OFFSET[:seeds]
    means = {}
    for size, g_dkd, g_dist in zip(SIZES, dkd, dist_):
        kd = 80.0 + size / 1000
        means.update({vkd.label(size, "KD", False): kd, vkd.label(size, "DKD", False): kd + g_dkd,
                      vkd.label(size, "DIST", False): kd + g_dist})
        if size in RECIPE_SIZES:
            shift = strong[RECIPE_SIZES.index(size)]
            means.update({vkd.label(size, "KD", True): kd + 1, vkd.label(size, "DKD", True): kd + 1 + g_dkd + shift,
                          vkd.label(size, "DIST", True): kd + 1 + g_dist + shift})
    return pd.DataFrame([{"condition": c, "seed": s, "final_test_top1": m + offset[s] + noise[(s + i) % 5]}
                         for i, (c, m) in enumerate(means.items()) if c not in drop for s in range(seeds)])


def vkd_verdict(rows):
    return vkd.verdict_for(rows, SIZES, RECIPE_SIZES)[0]


def test_vanillakd_reproduced():
    assert vkd_verdict(vkd_rows(noise=NOISE / 4)) == "reproduced"


@pytest.mark.parametrize("change", [
    dict(dist_=(-1.0, 0.0, 1.0)),                 # DIST's gap grows with the data
    dict(dkd=(0.0, 1.0, 3.0)),                    # DKD's too
    dict(strong=(-1.0, 1.5)),                     # the stronger recipe widens the gaps at 12,000 images
])
def test_vanillakd_not_reproduced(change):
    assert vkd_verdict(vkd_rows(**change)) == "not reproduced"


@pytest.mark.parametrize("change", [
    dict(noise=6 * NOISE),                        # too noisy to show anything
    dict(strong=(0.0, 0.0), noise=NOISE / 4),     # the recipe moves no gap
    dict(dkd=(0.2, 0.1, 0.1), noise=NOISE / 4),   # DKD's gap stays put
    dict(seeds=1),                                # one seed: no noise estimate
    dict(drop=(vkd.label(12000, "DIST", True),)),  # a missing condition
])
def test_vanillakd_inconclusive(change):
    assert vkd_verdict(vkd_rows(**change)) == "inconclusive"


def test_vanillakd_grid_trains_every_size_for_the_same_steps_on_nested_pools():
    from kd.data import training_pool
    p = vkd.PROFILES["cpu"]
    configs = vkd.grid(p, 1)
    by = {c["condition"]: c for c in configs}
    sizes = [vkd.size_of(p, f) for f in p["scales"]]
    assert max(sizes) / min(sizes) >= 20 and len(sizes) >= 5
    assert len(configs) == 3 * len(sizes) + 2 * len(p["side_scales"]) + 3 * len(p["strong_scales"])
    for size in sizes:
        kd = by[vkd.label(size, "KD", False)]
        steps = kd["recipe"]["epochs"] * size / kd["recipe"]["batch_size"]
        assert abs(steps - p["steps"]) / p["steps"] < 0.05, (size, steps)
        assert kd["teacher"] == by[vkd.label(sizes[0], "KD", False)]["teacher"]  # one teacher, all 60,000 images
        assert kd["teacher"]["pool_fraction"] == 1.0
    strong = by[vkd.label(sizes[-1], "DKD", True)]
    assert strong["recipe"]["epochs"] == 2 * by[vkd.label(sizes[-1], "DKD", False)]["recipe"]["epochs"]
    assert strong["loss_options"]["label_smoothing"] == 0.1
    assert "label_smoothing" not in by[vkd.label(sizes[-1], "DKD", False)]["loss_options"]
    assert by[vkd.label(sizes[0], "scratch", False)]["teacher"] is None
    targets = torch.arange(60000) % 10
    pools = [set(training_pool(targets, f).tolist()) for f in p["scales"]]
    assert all(a < b for a, b in zip(pools, pools[1:]))  # nested: each size holds the smaller ones
