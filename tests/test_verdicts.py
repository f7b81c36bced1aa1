"""Verdict rules on made-up rows: every outcome reachable, and the boundaries (one seed, a CI touching
zero, ties, a missing condition, outside the paper's regime)."""
import numpy as np
import pandas as pd
import pytest
import torch

from experiments import kdas_finding3 as f3

STEPS = f3.EQUAL_STEPS
NOISE = np.array([0.3, -0.2, 0.1, -0.3, 0.1])


def f3_rows(all_=80.0, low=78.0, medium=80.0, high=78.0, seeds=5, noise=NOISE, drop=()):
    """One pair's runs: per seed a shared offset (paired designs cancel it) plus the condition's mean."""
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
    means = {"all": all_, f"per_class:low{STEPS}": low, f"per_class:medium{STEPS}": medium,
             f"per_class:high{STEPS}": high}
    rows = [{"pair": "t->s", "condition": c, "seed": s, "final_test_top1": m + offset[s] + noise[(s + i) % 5]}
            for i, (c, m) in enumerate(means.items()) if c not in drop for s in range(seeds)]
    return pd.DataFrame(rows)


def verdict(rows):
    return f3.verdict_for(rows, "per_class", STEPS)[0]


def test_kdas_f3_reproduced():
    assert verdict(f3_rows()) == "reproduced"


@pytest.mark.parametrize("change", [dict(medium=77.0), dict(low=82.0), dict(high=82.0)])
def test_kdas_f3_not_reproduced(change):
    assert verdict(f3_rows(**change)) == "not reproduced"


@pytest.mark.parametrize("change", [
    dict(medium=79.6, noise=4 * NOISE),  # neither shown within the margin of all nor worse than all
    dict(low=79.9),            # low ties medium
    dict(seeds=1),             # one seed: no noise estimate
    dict(drop=(f"per_class:high{STEPS}",)),  # a missing condition
])
def test_kdas_f3_inconclusive(change):
    assert verdict(f3_rows(**change)) == "inconclusive"


def test_kdas_f3_ci_touching_zero_is_not_a_direction():
    _, c = f3.verdict_for(f3_rows(low=79.7, noise=np.array([0.6, -0.5, 0.2, -0.6, 0.3])), "per_class", STEPS)
    low = c["low vs medium"]
    assert low.interval()[0] < 0 < low.interval()[1] and low.outcome == "within noise"


def test_kdas_f3_outside_the_regime_is_inconclusive(tmp_path, monkeypatch):
    rows = f3_rows()
    rows["kl_tg_min"] = rows["kl_tg_max"] = rows["top_class_share"] = 0.1
    rows["train_size"], rows["samples"] = 100, 1000
    rows["teacher_test_top1"], rows["teacher_train_top1"] = 90.0, 99.0
    rows["teacher_last_quarter_gain"], rows["student_last_quarter_gain"] = 0.1, 0.1
    out = f3.Outputs(tmp_path, tmp_path / "f.png")
    p = {"regime": {"max_gain": 0.3, "min_train_gap": 2.0}, "kl_direction": "paper"}
    monkeypatch.setattr(f3, "plot", lambda *a: None)  # the figure needs the ranking file; the verdict not
    assert f3.report(rows, p, out) == "reproduced"
    rows["student_last_quarter_gain"] = 1.0  # the student was still learning
    assert f3.report(rows, p, out) == "inconclusive"
    assert "| **no** |" in out.table.read_text()


# ------------------------------------------------------------------------------------------ DIST
from experiments import dist_stronger_teacher as dist  # noqa: E402

LADDER = ["t8", "t14", "t20", "t32"]


def dist_rows(kd=(80.0, 80.5, 81.0, 81.0), dist_=(80.5, 81.3, 82.0, 82.5), scratch_s=80.0, kd_s=80.0,
              dist_s=81.5, seeds=5, noise=NOISE, drop=()):
    """A ladder's KD and DIST students, and the strong student recipe's scratch / KD / DIST, per seed."""
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
    means = {**{f"{t}: KD": m for t, m in zip(LADDER, kd)}, **{f"{t}: DIST": m for t, m in zip(LADDER, dist_)},
             "scratch | strong student": scratch_s, "tLS: KD | strong student": kd_s,
             "tLS: DIST | strong student": dist_s}
    return pd.DataFrame([{"condition": c, "seed": s, "final_test_top1": m + offset[s] + noise[(s + i) % 5]}
                         for i, (c, m) in enumerate(means.items()) if c not in drop for s in range(seeds)])


def dist_verdict(rows):
    return dist.verdict_for(rows, LADDER, "tLS")[0]


def test_dist_reproduced():
    assert dist_verdict(dist_rows(noise=NOISE / 4)) == "reproduced"  # n = 5 needs little noise for 4 claims


@pytest.mark.parametrize("change", [
    dict(kd=(80.0, 80.5, 81.0, 83.0)),            # KD keeps rising to the strongest teacher
    dict(dist_=(82.5, 82.0, 81.5, 80.0)),         # DIST - KD shrinks as the teacher gets stronger
    dict(kd_s=82.0),                              # KD above its baseline under the strong student recipe
    dict(dist_s=78.0),                            # DIST below it
])
def test_dist_not_reproduced(change):
    assert dist_verdict(dist_rows(**change)) == "not reproduced"


@pytest.mark.parametrize("change", [
    dict(noise=6 * NOISE),                        # too noisy to show anything
    dict(dist_s=80.1),                            # DIST ties the strong scratch student
    dict(seeds=1),                                # one seed: no noise estimate
    dict(drop=("tLS: DIST | strong student",)),   # a missing condition
])
def test_dist_inconclusive(change):
    assert dist_verdict(dist_rows(**change)) == "inconclusive"


def test_dist_the_ladder_is_ordered_by_measured_teacher_accuracy():
    rows = pd.DataFrame({"teacher_label": ["b", "a", "c", "LS"], "teacher_test_top1": [85.0, 86.0, 84.0, 90.0]})
    p = {"ladder": [{"label": x} for x in ("a", "b", "c")]}
    assert dist.ladder_order(rows, p) == ["c", "b", "a"]


def test_dist_grid_shares_the_f3_teacher_and_smooths_only_the_strong_student():
    p = dist.PROFILES["cpu"]
    configs = dist.grid(p, 1)
    by = {c["condition"]: c for c in configs}
    assert len(configs) == 2 + 3 * len(p["ladder"]) + 2 * len(dist.STRONG_METHODS)
    f3_teacher = f3.grid(f3.PROFILES["cpu"], 1)[0]["teacher"]
    assert by["resnet20: KD"]["teacher"] == f3_teacher  # one cached teacher for both findings
    assert by["resnet20 LS: KD"]["teacher"]["label_smoothing"] == 0.1
    assert by["resnet20 LS: KD | strong student"]["loss_options"]["label_smoothing"] == 0.1
    assert "label_smoothing" not in by["resnet20 LS: KD"]["loss_options"]
    assert by["scratch"]["teacher"] is None and by["scratch | strong student"]["loss_options"] == {
        "label_smoothing": 0.1}
    assert by["resnet32: DKD"]["loss_options"]["warmup"] == 12  # 20 of 240 epochs, scaled to 144
    top = by["resnet20, 6,000 images: KD"]["teacher"]  # the learning-curve teacher, from the cache
    assert top["pool_fraction"] == 0.1 and top["recipe"]["epochs"] == 60 and "pool_fraction" not in f3_teacher


def test_a_teacher_not_trained_here_is_na_in_the_regime_but_an_unmeasured_student_is_not_met():
    from kd import analysis
    rows = pd.DataFrame({"condition": ["KD"] * 2, "teacher_test_top1": 80.0, "teacher_train_top1": np.nan,
                         "teacher_last_quarter_gain": np.nan, "student_last_quarter_gain": [0.1, 0.2]})
    criterion = {"max_gain": 0.3, "min_train_gap": 2.0}
    met, block = analysis.regime(rows, criterion, "KD")
    assert met and block.count("| n/a |") == 2
    met, block = analysis.regime(rows.assign(student_last_quarter_gain=np.nan), criterion, "KD")
    assert not met


# ------------------------------------------------------------------------------------------ KDAS Finding 1
from experiments import kdas_finding1 as f1  # noqa: E402


def f1_verdict(top=(80.0, 80.1, 80.0), random=(79.0, 79.0, 79.0), all_=80.0, seeds=5, noise=NOISE, drop=()):
    """'all' and, for k = 40 / 60 / 80%, top-k and random-k per seed (shared offsets, a little noise)."""
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
    means = {"all": all_}
    for k, t, r in zip(f1.CLAIM_RATIOS, top, random):
        means.update({f1.label(k): t, f1.label(k, "random"): r})
    rows = pd.DataFrame([{"condition": c, "seed": s, "final_test_top1": m + offset[s] + noise[(s + i) % 5]}
                         for i, (c, m) in enumerate(means.items()) if c not in drop for s in range(seeds)])
    return f1.verdict_for(rows)[0]


def test_kdas_f1_reproduced():
    assert f1_verdict(noise=NOISE / 4) == "reproduced"


@pytest.mark.parametrize("change", [
    dict(top=(77.0, 80.0, 80.0)),                 # top 40% falls below all samples
    dict(random=(80.0, 82.0, 80.0), noise=NOISE / 4),  # random 60% beats top 60%
])
def test_kdas_f1_not_reproduced(change):
    assert f1_verdict(**change) == "not reproduced"


@pytest.mark.parametrize("change", [
    dict(noise=6 * NOISE),                        # too noisy: non-inferiority not shown, nothing worse
    dict(seeds=1),
    dict(drop=(f1.label(0.8),)),
])
def test_kdas_f1_inconclusive(change):
    assert f1_verdict(**change) == "inconclusive"


# ------------------------------------------------------------------------------------------ KDAS Finding 2
from experiments import kdas_finding2 as f2  # noqa: E402


def f2_verdict(decreasing=82.0, rivals=(80.0, 80.5, 81.0, 79.0), seeds=5, noise=NOISE, drop=()):
    """decreasing 60->40% and its four rivals (fixed 40 / 50 / 60%, increasing) per seed."""
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
    means = {f2.DECREASING: decreasing, **dict(zip(f2.RIVALS, rivals))}
    rows = pd.DataFrame([{"condition": c, "seed": s, "final_test_top1": m + offset[s] + noise[(s + i) % 5]}
                         for i, (c, m) in enumerate(means.items()) if c not in drop for s in range(seeds)])
    return f2.verdict_for(rows)[0]


def test_kdas_f2_reproduced():
    assert f2_verdict() == "reproduced"


@pytest.mark.parametrize("change", [dict(rivals=(80.0, 80.5, 84.0, 79.0)), dict(rivals=(80.0, 80.5, 81.0, 84.0))])
def test_kdas_f2_not_reproduced(change):
    assert f2_verdict(**change) == "not reproduced"


@pytest.mark.parametrize("change", [
    dict(rivals=(80.0, 82.0, 81.0, 79.0)),        # fixed 50% ties the decreasing schedule
    dict(noise=6 * NOISE, rivals=(81.5, 81.5, 81.5, 81.5)),
    dict(seeds=1),
    dict(drop=("fixed 50%",)),
])
def test_kdas_f2_inconclusive(change):
    assert f2_verdict(**change) == "inconclusive"


# ------------------------------------------------------------------------------------------ KDAS Finding 4
from experiments import kdas_finding4 as f4  # noqa: E402


def f4_verdict(kd=80.0, paper=81.5, release=81.0, seeds=5, noise=NOISE, drop=()):
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
    means = {"kd": kd, f4.PAPER_CONDITION: paper, f4.RELEASE_CONDITION: release}
    rows = pd.DataFrame([{"condition": c, "seed": s, "final_test_top1": m + offset[s] + noise[(s + i) % 5]}
                         for i, (c, m) in enumerate(means.items()) if c not in drop for s in range(seeds)])
    return f4.verdict_for(rows)[0]


def test_kdas_f4_reproduced():
    assert f4_verdict() == "reproduced"


def test_kdas_f4_not_reproduced():
    assert f4_verdict(paper=78.5) == "not reproduced"


@pytest.mark.parametrize("change", [dict(paper=80.1), dict(release=78.0), dict(seeds=1),
                                    dict(drop=(f4.RELEASE_CONDITION,))])
def test_kdas_f4_inconclusive(change):
    assert f4_verdict(**change) == "inconclusive"


# ------------------------------------------------------------------------------------------ KDAS method
from experiments import kdas_method as km  # noqa: E402


def method_verdict(acc=(80.0, 80.2), cpu=(100.0, 70.0), seeds=5, noise=NOISE, drop=()):
    """KD and KD + KDAS per seed: test top-1 and CPU seconds (the latter with 1% noise per seed)."""
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
    rows = pd.DataFrame([{"condition": c, "seed": s, "final_test_top1": a + offset[s] + noise[(s + i) % 5],
                          "cpu_s": t * (1 + noise[(s + 2 * i) % 5] / 30)}
                         for i, (c, a, t) in enumerate(zip(("KD", "KD + KDAS"), acc, cpu)) if c not in drop
                         for s in range(seeds)])
    return km.verdict_for(rows)[0]


def test_kdas_method_reproduced():
    assert method_verdict() == "reproduced"


@pytest.mark.parametrize("change", [dict(acc=(80.0, 78.0)), dict(cpu=(100.0, 115.0))])
def test_kdas_method_not_reproduced(change):
    assert method_verdict(**change) == "not reproduced"


@pytest.mark.parametrize("change", [dict(cpu=(100.0, 95.0)),  # saves time, but less than 10%
                                    dict(noise=6 * NOISE), dict(seeds=1), dict(drop=("KD + KDAS",))])
def test_kdas_method_inconclusive(change):
    assert method_verdict(**change) == "inconclusive"


# ------------------------------------------------------------------------------------------ Cho & Hariharan
from experiments import bigger_teachers as bt  # noqa: E402
from experiments import early_stopped_teachers as est  # noqa: E402
from experiments import eskd  # noqa: E402


def seeded(means: dict, seeds=5, noise=NOISE, drop=(), column="final_test_top1", extra=None):
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
    rows = [{"condition": c, "seed": s, column: m + offset[s] + noise[(s + i) % 5],
             **({k: v[c] + offset[s] + noise[(s + i + 1) % 5] for k, v in extra.items()} if extra else {})}
            for i, (c, m) in enumerate(means.items()) if c not in drop for s in range(seeds)]
    return pd.DataFrame(rows)


BT = bt.PROFILES["cpu"]


def bigger(depth=(80.0, 81.0, 81.5, 81.0, 79.5), width=(79.0, 80.0, 78.5), temperature=4.0, **kw):
    """Students per teacher of each series, smallest to largest (resnet8 sits in both)."""
    means = dict(zip(bt.series_labels(BT, "depth"), depth))
    means.update(zip(bt.series_labels(BT, "width"), width))
    means["resnet8"] = depth[0]
    rows = seeded({f"{label} T={temperature:g}": m for label, m in means.items()}, **kw)
    return bt.verdict_for(rows, BT)[0]


def test_bigger_teachers_reproduced():
    assert bigger() == "reproduced"


def test_bigger_teachers_not_reproduced():
    assert bigger(width=(79.0, 80.0, 82.0)) == "not reproduced"  # the widest teacher is best


@pytest.mark.parametrize("change", [dict(depth=(80.0, 80.3, 80.2, 80.3, 80.1)),  # flat: nothing falls or rises
                                    dict(noise=8 * NOISE), dict(seeds=1)])
def test_bigger_teachers_inconclusive(change):
    assert bigger(**change) == "inconclusive"


ESKD = eskd.PROFILES["cpu"]


def eskd_verdict(eskd_gain=1.0, early_lead=2.0, end_lead=0.0, **kw):
    means, early = {"scratch": 80.0}, {"scratch": 70.0}
    for t in ESKD["eskd_teachers"]:
        means[f"{t}: full KD"], early[f"{t}: full KD"] = 80.0 + end_lead, 70.0 + early_lead
        means[f"{t}: ESKD stop {ESKD['verdict_stop']}"] = 80.0 + end_lead + eskd_gain
        early[f"{t}: ESKD stop {ESKD['verdict_stop']}"] = 70.0 + early_lead
    return eskd.verdict_for(seeded(means, extra={"early_test_top1": early}, **kw), ESKD)[0]


def test_eskd_reproduced():
    assert eskd_verdict() == "reproduced"


@pytest.mark.parametrize("change", [dict(eskd_gain=-1.5), dict(early_lead=0.0, end_lead=2.0)])
def test_eskd_not_reproduced(change):
    assert eskd_verdict(**change) == "not reproduced"


@pytest.mark.parametrize("change", [dict(eskd_gain=0.0), dict(early_lead=2.0, end_lead=2.0), dict(seeds=1)])
def test_eskd_inconclusive(change):
    assert eskd_verdict(**change) == "inconclusive"


EST = est.PROFILES["cpu"]


def snapshots(early=(79.0, 81.5, 80.5), full=80.0, **kw):
    means = {f"teacher at epoch {e}": m for e, m in zip(EST["epochs"], early)}
    means[f"teacher at epoch {EST['teacher_recipe'].epochs} (fully trained)"] = full
    return est.verdict_for(seeded(means, **kw), EST)[0]


def test_early_stopped_teachers_reproduced():
    assert snapshots(early=(80.0, 81.5, 80.5)) == "reproduced"


def test_early_stopped_teachers_not_reproduced():
    assert snapshots(early=(77.0, 78.5, 80.2)) == "not reproduced"


@pytest.mark.parametrize("change", [dict(early=(78.0, 81.5, 80.5)), dict(early=(80.1, 80.0, 79.9)), dict(seeds=1)])
def test_early_stopped_teachers_inconclusive(change):
    assert snapshots(**change) == "inconclusive"


# ------------------------------------------------------------------------------------------ VanillaKD
from experiments import vanillakd_data_scale as vkd  # noqa: E402

SIZES, RECIPE_SIZES = [600, 3000, 12000], [600, 12000]


def vkd_rows(dkd=(1.5, 0.8, 0.0), dist_=(2.0, 1.0, -0.3), strong=(-1.0, -0.5), seeds=5, noise=NOISE, drop=()):
    """KD, DKD and DIST per size (gaps to KD given per size), and the stronger recipe's at two sizes (its
    change of both gaps given per recipe size), per seed."""
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
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


# ------------------------------------------------------------------------------------------ fidelity
from experiments import fidelity_augmentation as fa  # noqa: E402
from experiments import fidelity_ensembles as fe  # noqa: E402
from experiments import fidelity_optimisation as fo  # noqa: E402


def fidelity_rows(values: dict, seeds=5, noise=NOISE, drop=()):
    """condition -> {column: mean}, per seed with a shared offset and a little noise per column."""
    offset = np.array([1.5, -2.0, 0.5, 2.5, -1.0])[:seeds]
    rows = []
    for i, (c, means) in enumerate(values.items()):
        if c in drop:
            continue
        for s in range(seeds):
            rows.append({"condition": c, "seed": s, **{k: m + offset[s] / 3 + noise[(s + i + j) % 5]
                                                        for j, (k, m) in enumerate(means.items())}})
    return pd.DataFrame(rows)


def ensembles(acc=(80.0, 81.5, 82.0, 83.0), test=(93.0, 93.2, 92.8), train=95.0, **kw):
    a0, a1, a3, a5 = acc
    values = {"scratch": {"final_test_top1": a0}}
    for label, a, t in (("1 teacher", a1, test[0]), ("3 teachers", a3, test[1]), ("5 teachers", a5, test[2])):
        values[label] = {"final_test_top1": a, "final_test_agreement": t, "final_train_clean_agreement": train}
    return fe.verdict_for(fidelity_rows(values, **kw))[0]


def test_fidelity_ensembles_reproduced():
    assert ensembles(noise=NOISE / 4) == "reproduced"


@pytest.mark.parametrize("change", [
    dict(acc=(82.0, 80.0, 81.0, 81.5)),           # the distilled student is worse than scratch
    dict(train=99.9, test=(99.8, 99.8, 99.8)),    # a perfect match
    dict(test=(90.0, 92.0, 94.0)),                # agreement rises with the ensemble
])
def test_fidelity_ensembles_not_reproduced(change):
    assert ensembles(**change) == "not reproduced"


@pytest.mark.parametrize("change", [
    dict(noise=6 * NOISE),                        # too noisy
    dict(acc=(80.0, 81.5, 81.5, 81.6), noise=NOISE / 4),  # the ensemble does not help accuracy
    dict(seeds=1),                                # one seed
    dict(drop=("5 teachers",)),                   # a missing condition
])
def test_fidelity_ensembles_inconclusive(change):
    assert ensembles(**change) == "inconclusive"


def optimisation(curve=(90.0, 90.5, 92.0, 94.0, 96.0, 98.5, 99.5), longer=(91.0, 91.5), **kw):
    values = {fo.label(lam): {"final_train_clean_agreement": a} for lam, a in zip(fo.LAMBDAS, curve)}
    values.update({fo.label(0.0, t): {"final_train_clean_agreement": a} for t, a in zip(fo.LONGER, longer)})
    return fo.verdict_for(fidelity_rows(values, **kw))[0]


def test_fidelity_optimisation_reproduced():
    assert optimisation(noise=NOISE / 4) == "reproduced"


@pytest.mark.parametrize("change", [
    dict(curve=(90.0, 90.5, 92.0, 94.0, 96.0, 96.5, 97.0), longer=(98.0, 99.9)),  # longer training does better
    dict(curve=(99.5, 98.0, 97.0, 96.0, 95.0, 93.0, 90.0)),  # the teacher's init hurts agreement
])
def test_fidelity_optimisation_not_reproduced(change):
    assert optimisation(**change) == "not reproduced"


@pytest.mark.parametrize("change", [
    dict(curve=(90.0, 90.5, 92.0, 94.0, 96.0, 96.0, 96.5), noise=NOISE / 4),  # lambda 1 is not near-perfect
    dict(seeds=1),
    dict(drop=(fo.label(0.0, 4),)),
])
def test_fidelity_optimisation_inconclusive(change):
    assert optimisation(**change) == "inconclusive"


def augmentation(test=(93.0, 93.2, 94.5, 94.3), train=(96.0, 95.5, 95.0, 94.0), **kw):
    """Test and train agreement of crop + flip, + rotation, + MixUp, all combined."""
    values = {policy: {"final_test_agreement": t, "final_train_clean_agreement": a}
              for policy, t, a in zip(fa.POLICIES, test, train)}
    return fa.verdict_for(fidelity_rows(values, **kw))[0]


def test_fidelity_augmentation_reproduced():
    assert augmentation(noise=NOISE / 4) == "reproduced"


@pytest.mark.parametrize("change", [
    dict(test=(94.0, 94.0, 92.5, 93.0)),          # MixUp lowers test agreement
    dict(train=(94.0, 95.0, 95.5, 96.0)),         # heavier augmentation raises train agreement
    dict(test=(93.0, 95.5, 94.0, 94.0)),          # rotation beats MixUp
])
def test_fidelity_augmentation_not_reproduced(change):
    assert augmentation(**change) == "not reproduced"


@pytest.mark.parametrize("change", [
    dict(noise=6 * NOISE),                        # too noisy
    dict(test=(93.0, 93.0, 93.1, 93.0), noise=NOISE / 4),  # MixUp moves nothing
    dict(seeds=1),
    dict(drop=("+ MixUp",)),
])
def test_fidelity_augmentation_inconclusive(change):
    assert augmentation(**change) == "inconclusive"
