"""VanillaKD's data-scale script passes its smoke profile: every size and method, the teacher shared by all
sizes, the stronger recipe where the profile asks for it."""
from experiments import vanillakd_data_scale as vkd


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
