"""DIST's stronger-teacher script passes its smoke profile with its diagnostics; pretrained teachers fail
clearly where their weights cannot be had."""
import pytest
import timm

from kd.errors import KDError
from kd.teachers import pretrained_teacher


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
    class ImageNetShaped:
        num_classes, in_chans = 1000, 3

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nmore lines")
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(KDError, match="Hugging Face cache") as err:
        pretrained_teacher("resnet50", ImageNetShaped(), "cpu")
    assert "\n" not in str(err.value) and "couldn't connect" in str(err.value)
