"""KDAS: the sampler picks exactly the top-K by KL_TS, schedules give the expected ratios, quality weights
are 1 inside the band and gamma far outside, the per-enlarged-batch variant keeps exactly B per enlarged
batch, and every KDAS script passes its smoke profile; the verdict rules of the five KDAS findings on
made-up rows (tests/made_up.py)."""
import numpy as np
import pandas as pd
import pytest

from experiments import kdas_finding1 as f1
from experiments import kdas_finding2 as f2
from experiments import kdas_finding3 as f3
from experiments import kdas_finding4 as f4
from experiments import kdas_method as km
from tests.made_up import NOISE, OFFSET


@pytest.mark.parametrize("profile", ["cpu", "paper"])
def test_release_conditions_run_the_releases_settings(profile):
    """The 'release settings' conditions weigh a reversed KD by 9 and train with the release's cosine LR
    schedule, also where the profile's own recipe steps (the paper profile); the paper's KD + KDAS keeps it."""
    from experiments import kdas_method
    p = kdas_method.PROFILES[profile]
    runs = {c["condition"]: c for c in kdas_method.grid(dict(p), 1)}
    release = runs["KD + KDAS (release settings)"]
    assert release["loss_options"]["kd_weight"] == 9 and release["loss_options"]["direction"] == "reverse"
    assert release["sampler"]["ratio"] == "cosine" and release["sampler"]["mode"] == "batch"
    for name in ("KD + KDAS (release settings)", "DKD + KDAS sampling (the release's DKD)"):
        assert runs[name]["recipe"]["schedule"] == "cosine" and runs[name]["recipe"]["milestones"] == []
        assert "weights" not in runs[name] or name.startswith("KD ")  # the release's DKD samples, never weighs
    assert runs["KD + KDAS"]["recipe"] == p["recipe"].as_dict()
    assert runs["KD + KDAS"]["loss_options"]["kd_weight"] == 0.9


@pytest.mark.parametrize("name", ["kdas_finding2", "kdas_finding4", "kdas_method"])
def test_every_kdas_script_passes_its_smoke_profile(name, smoke):
    smoke(name)


def test_finding1_smoke_records_the_class_mix_of_every_selection(smoke, tmp_path):
    from experiments import kdas_finding1 as f1
    rows = smoke("kdas_finding1")
    assert set(rows.condition) == {c["condition"] for c in f1.grid(f1.PROFILES["smoke"], 1)}
    top = rows[rows.condition == f1.label(f1.ABLATED)].iloc[0]
    history = pd.read_csv(next(tmp_path.rglob(f"histories/{top.run_id}.csv")))
    counts = history.selected_per_class.str.split().apply(lambda c: sum(map(int, c)))
    assert (counts == history.selected).all() and (history.selected == round(f1.ABLATED * top.train_size)).all()
    balanced = rows[rows.condition == f1.label(f1.ABLATED, ablation="class-balanced")].iloc[0]
    mix = pd.read_csv(next(tmp_path.rglob(f"histories/{balanced.run_id}.csv"))).selected_per_class.iloc[-1].split()
    assert max(map(int, mix)) - min(map(int, mix)) <= 1  # the smoke pool is class-balanced: so is the selection
    assert (rows.student_mflops > 0).all() and (rows.teacher_mflops > 0).all()


# ------------------------------------------------------------------------------------------ KDAS Finding 3: the verdict rule on made-up rows
STEPS = f3.EQUAL_STEPS


def f3_rows(all_=80.0, low=78.0, medium=80.0, high=78.0, seeds=5, noise=NOISE, drop=()):
    """One pair's runs: per seed a shared offset (paired designs cancel it) plus the condition's mean."""
    offset = OFFSET[:seeds]
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


# ------------------------------------------------------------------------------------------ KDAS Finding 1: the verdict rule on made-up rows
def f1_verdict(top=(80.0, 80.1, 80.0), random=(79.0, 79.0, 79.0), all_=80.0, seeds=5, noise=NOISE, drop=()):
    """'all' and, for k = 40 / 60 / 80%, top-k and random-k per seed (shared offsets, a little noise)."""
    offset = OFFSET[:seeds]
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


# ------------------------------------------------------------------------------------------ KDAS Finding 2: the verdict rule on made-up rows
def f2_verdict(decreasing=82.0, rivals=(80.0, 80.5, 81.0, 79.0), seeds=5, noise=NOISE, drop=()):
    """decreasing 60->40% and its four rivals (fixed 40 / 50 / 60%, increasing) per seed."""
    offset = OFFSET[:seeds]
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


# ------------------------------------------------------------------------------------------ KDAS Finding 4: the verdict rule on made-up rows
def f4_verdict(kd=80.0, paper=81.5, release=81.0, seeds=5, noise=NOISE, drop=()):
    offset = OFFSET[:seeds]
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


# ------------------------------------------------------------------------------------------ KDAS method: the verdict rule on made-up rows
def method_verdict(acc=(80.0, 80.2), cpu=(100.0, 70.0), seeds=5, noise=NOISE, drop=()):
    """KD and KD + KDAS per seed: test top-1 and CPU seconds (the latter with 1% noise per seed)."""
    offset = OFFSET[:seeds]
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
