"""DIST's stronger-teacher script passes its smoke profile with its diagnostics; pretrained teachers fail
clearly where their weights cannot be had; its grid, and its verdict rule on made-up rows (tests/made_up.py)."""
import pandas as pd
import pytest
import timm

from experiments import dist_stronger_teacher as dist
from experiments import kdas_common
from experiments import kdas_finding3 as f3
from kd.errors import KDError
from kd.teachers import pretrained_teacher
from tests.made_up import NOISE, OFFSET


def test_dist_smoke_records_the_discrepancy_of_every_distilled_student(smoke):
    rows = smoke("dist_stronger_teacher")
    distilled = rows[rows.method != "scratch"]
    assert set(rows.method) == {"scratch", "KD", "DIST", "DKD"}
    assert distilled.final_test_kl_teacher_student.notna().all()
    assert distilled.final_test_pearson_inter.between(-1, 1).all()
    assert distilled.final_test_pearson_intra.between(-1, 1).all()
    assert rows[rows.method == "scratch"].teacher_forwards.eq(0).all()
    smoothed = rows[rows.student_recipe == "strong"]
    assert len(smoothed) == 3 and smoothed.teacher_label.isin(["none", "resnet8 LS"]).all()


def test_a_pretrained_teacher_needs_imagenet_classes(fmnist):
    with pytest.raises(KDError, match="1000 classes"):
        pretrained_teacher("resnet18", fmnist, "cpu")


def test_a_pretrained_teacher_without_its_weights_is_one_clear_error(monkeypatch):
    """Not in the local Hugging Face cache: one sentence at once, no download tried; in the cache but
    unreadable: timm's own first line in that sentence."""
    from kd import teachers

    class ImageNetShaped:
        num_classes, in_chans = 1000, 3

    def unreadable(*args, **kwargs):
        raise OSError("Error while deserializing header\nmore lines")
    monkeypatch.setattr(timm, "create_model", unreadable)
    monkeypatch.setattr(teachers, "pretrained_file", lambda name: None)
    with pytest.raises(KDError, match="not in the local Hugging Face cache") as err:
        pretrained_teacher("resnet50", ImageNetShaped(), "cpu")
    assert "\n" not in str(err.value)
    monkeypatch.setattr(teachers, "pretrained_file", lambda name: "/cache/model.safetensors")
    with pytest.raises(KDError, match="Hugging Face cache") as err:
        pretrained_teacher("resnet50", ImageNetShaped(), "cpu")
    assert "\n" not in str(err.value) and "deserializing header" in str(err.value)


# ------------------------------------------------------------------------------------------ DIST: the verdict rule on made-up rows
LADDER = ["t8", "t14", "t20", "t32"]


def dist_rows(kd=(80.0, 80.5, 81.0, 81.0), dist_=(80.5, 81.3, 82.0, 82.5), scratch_s=80.0, kd_s=80.0,
              dist_s=81.5, seeds=5, noise=NOISE, drop=()):
    """A ladder's KD and DIST students, and the strong student recipe's scratch / KD / DIST, per seed."""
    offset = OFFSET[:seeds]
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
    assert f3_teacher.pop("weights") == kdas_common.PUBLISHED_TEACHER_CPU  # v3: F3 pins the published weights
    assert by["resnet20: KD"]["teacher"] == f3_teacher  # one cached teacher for both findings
    assert by["resnet20 LS: KD"]["teacher"]["label_smoothing"] == 0.1
    assert by["resnet20 LS: KD | strong student"]["loss_options"]["label_smoothing"] == 0.1
    assert "label_smoothing" not in by["resnet20 LS: KD"]["loss_options"]
    assert by["scratch"]["teacher"] is None and by["scratch | strong student"]["loss_options"] == {
        "label_smoothing": 0.1}
    assert by["resnet32: DKD"]["loss_options"]["warmup"] == 12  # 20 of 240 epochs, scaled to 144
    top = by["resnet20, 6,000 images: KD"]["teacher"]  # the learning-curve teacher, from the cache
    assert top["pool_fraction"] == 0.1 and top["recipe"]["epochs"] == 60 and "pool_fraction" not in f3_teacher
