"""DIST's stronger-teacher script passes its smoke profile with its diagnostics; pretrained teachers fail
clearly where their weights cannot be had; its grid, and its v3 rule on made-up rows (tests/made_up.py)."""
import pytest
import timm

from experiments import dist_stronger_teacher as dist
from kd.errors import KDError
from kd.teachers import pretrained_teacher
from tests.made_up import NOISE
from tests.test_kdas import CRITERION, PLATEAU, budget_rows, f3_curves, write_histories


def test_dist_smoke_records_the_discrepancy_of_every_distilled_student(smoke):
    rows = smoke("dist_stronger_teacher")
    assert set(rows.method) == {"KD", "DIST"} and set(rows["recipe.epochs"]) == {2, 4}
    assert rows.final_test_kl_teacher_student.notna().all()
    assert rows.final_test_pearson_inter.between(-1, 1).all() and rows.final_test_pearson_intra.between(-1, 1).all()
    rungs = rows.groupby("teacher_label").teacher_sha256.nunique()  # one teacher per rung, its weights in the rows
    assert set(rungs.index) == {"resnet8 x0.5", "resnet14"} and (rungs == 1).all()


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


# ------------------------------------------------------------------------------------------ DIST: the v3 rule on made-up rows
HOLDING = {dist.WEAK_KD: 80.0, dist.STRONG_KD: 80.1, dist.STRONG_DIST: 81.5}
TEACHERS = {"weakest": ("t8", 83.74), "strongest": ("t32", 84.89)}


def dist_rows(x1=None, x2=None, seeds=8, noise=NOISE, teachers=None, plateau=None):
    """Both budgets' runs of the three arms (shared offsets per seed, a little noise); x1 / x2 change the
    holding means of one budget; `teachers`: rung -> (label, test top-1)."""
    teachers = {**TEACHERS, **(teachers or {})}

    def fields(condition, budget):
        rung, method = dist.CONDITIONS[condition]
        name, top1 = teachers[rung]
        return {"teacher_label": name, "method": method, "teacher_test_top1": top1, "teacher_train_top1": 99.0, **PLATEAU,
                **(plateau or {})}
    return budget_rows(HOLDING, x1, x2, seeds, noise, 130, fields)


def dist_verdict(rows, slopes=None):
    return dist.verdict_for(rows, f3_curves(rows, slopes), CRITERION)[0]


def test_dist_reproduced_when_both_budgets_hold():
    assert dist_verdict(dist_rows()) == "reproduced"


@pytest.mark.parametrize("change", [{dist.STRONG_KD: 81.5},  # KD gains from the stronger teacher
                                    {dist.STRONG_DIST: 79.0}])  # DIST below KD from the strongest teacher
def test_dist_not_reproduced_when_both_budgets_contradict(change):
    verdict, facts = dist.verdict_for(dist_rows(change, change), f3_curves(dist_rows(change, change)), CRITERION)
    assert verdict == "not reproduced" and facts["decisive"]


def test_dist_budget_dependent_when_the_budgets_disagree_or_drift():
    assert dist_verdict(dist_rows(None, {dist.STRONG_KD: 81.5})) == "budget-dependent at this scale"
    rows = dist_rows()
    # DIST's lead falling by 5 pp per schedule at x2: another 40% would take it below KD
    verdict, facts = dist.verdict_for(rows, f3_curves(rows, {dist.label(dist.STRONG_DIST, 2): -5.0}), CRITERION)
    assert verdict == "budget-dependent at this scale" and not facts["stable"][dist.DIST_VS_KD]


@pytest.mark.parametrize("change", [dict(teachers={"strongest": ("t32", 84.43)}),  # a 0.69 pp step: below 0.94
                                    dict(plateau={"teacher_plateau_high": 2.0})])  # a teacher still gains
def test_dist_premise_not_met_is_its_own_verdict(change):
    assert dist_verdict(dist_rows(**change)) == "premise not met at this scale"
    assert dist_verdict(dist_rows({dist.STRONG_KD: 81.5}, {dist.STRONG_KD: 81.5}, **change)) == \
        "premise not met at this scale"


def test_dist_pretrained_teachers_are_taken_as_converged():
    rows = dist_rows(plateau={"teacher_plateau_high": float("nan")}).assign(**{"teacher.pretrained": True})
    verdict, facts = dist.verdict_for(rows, f3_curves(rows), CRITERION)
    assert verdict == "reproduced" and len(facts["premise"]) == 3


def test_dist_open_readings_are_underpowered_or_inconclusive():
    assert dist_verdict(dist_rows(noise=6 * NOISE)) == "underpowered at this scale"
    small = {dist.STRONG_DIST: 80.2}  # KD flat, DIST +0.1 over it: open, and powered for the paper's 1.09 pp
    assert dist_verdict(dist_rows(small, small, noise=NOISE / 2)) == "inconclusive"


def test_dist_holm_counts_the_two_forms_once_and_one_seed_decides_nothing():
    c = dist.contrasts_at(dist_rows(), 1)
    assert {k: v.outcome for k, v in c.items()} == {dist.KD_NOT_BETTER: "not worse", dist.KD_GAINS: "within noise",
                                                    dist.DIST_VS_KD: "better"}
    assert dist_verdict(dist_rows(seeds=1)) == "underpowered at this scale"


def test_dist_report_shows_premise_budget_arm_and_figure(tmp_path):
    rows = dist_rows().assign(samples=172800)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = dist.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows, out)
    assert dist.report(rows, {"regime": CRITERION}, out) == "reproduced"
    table = out.table.read_text()
    premise, budget_arm = table.split("**Regime** (v3, the budget arm")
    assert "**Premise**" in premise and "| **no** |" not in premise and "| better | better |" in budget_arm
    assert "+1.15 pp (83.74 -> 84.89)" in table and (tmp_path / "f.png").is_file()


def test_dist_grid_pins_each_rungs_published_teacher_at_both_budgets():
    configs = dist.grid(dist.PROFILES["cpu"], 1)
    by = {c["condition"]: c for c in configs}
    assert len(configs) == 6 and {c["recipe"]["epochs"] for c in configs} == {144, 288}
    weak, strong = by[dist.WEAK_KD]["teacher"], by[dist.STRONG_KD]["teacher"]
    assert (weak["model"], strong["model"]) == ("resnet8", "resnet32") and weak["recipe"] == strong["recipe"]
    assert weak["recipe"]["late_eval_every"] == 1  # dense evaluations over the late phase: the plateau premise
    assert weak["recipe"]["epochs"] == 240 and by[dist.STRONG_DIST]["teacher"] == strong
    assert weak["weights"] != strong["weights"] and len(weak["weights"]) == 64
    assert by[dist.STRONG_DIST]["loss"] == "dist" and by[dist.label(dist.WEAK_KD, 2)]["teacher"] == weak
