"""Library pieces of the fidelity findings (Stanton et al. 2021): ensemble teachers (mean probability,
members trained once each), a student initialised between a random init and its teacher, and fidelity on
the training data; the three fidelity scripts' smoke profiles and verdict rules on made-up rows
(tests/made_up.py)."""
import pandas as pd
import pytest
import torch

from experiments import fidelity_augmentation as fa
from experiments import fidelity_common
from experiments import fidelity_ensembles as fe
from experiments import fidelity_optimisation as fo
from kd.config import RunConfig, base_config
from kd.errors import KDError
from kd.metrics import ensemble_logits
from kd.models import blend_into, create_model
from kd.recipe import Recipe
from kd.run import Context, distill, train_fidelity
from kd.teachers import teacher_folder
from tests.made_up import NOISE, OFFSET
from tests.test_kdas import CRITERION, PLATEAU, budget_rows, f3_curves, write_histories

RECIPE = Recipe(epochs=1, batch_size=64, lr=0.05)
P = {"dataset": "fashion_mnist", "pool_fraction": 0.01, "student": "resnet8", "student_width": 0.5,
     "teacher": "resnet8", "teacher_width": 0.5, "teacher_recipe": RECIPE, "recipe": RECIPE, "loss": "kd",
     "loss_options": {"temperature": 4.0, "ce_weight": 0.0, "kd_weight": 1.0}}


def test_an_ensemble_teacher_is_the_mean_probability_of_members_trained_once_each(fmnist):
    config = base_config("test", {**P, "teacher_members": 3}, "ensemble", seed=0)
    members = RunConfig.from_dict(config).members()
    assert [m.teacher.seed for m in members] == [0, 1, 2] and "members" not in members[0].teacher.as_dict()
    single = RunConfig.from_dict(base_config("test", P, "single", seed=0))
    assert "members" not in single.teacher.as_dict() and single.members() == [single]
    ctx = Context(P, "cpu", data=fmnist)
    teacher, info = ctx.teacher(config)
    assert info["members"] == 3 and len(set(info["member_test_top1"])) == 3
    models = [ctx.teacher(m)[0].models[0] for m in members]  # the cached members, not retrained
    assert [teacher_folder(ctx.teacher_spec(m)).exists() for m in members] == [True] * 3
    x = fmnist.images("test", torch.arange(64))
    with torch.no_grad():
        expected = ensemble_logits([m(x) for m in models])
    torch.testing.assert_close(teacher.clean_logits("test", torch.arange(64)), expected)
    assert teacher.logits_dir.parent.name == "ensembles"  # its own logit cache, not a member's


def test_a_student_initialised_from_its_teacher_starts_between_the_two(fmnist):
    torch.manual_seed(0)
    a, b = create_model("resnet8", 10, 1, 0.5), create_model("resnet8", 10, 1, 0.5)
    a0 = {k: v.clone() for k, v in a.state_dict().items()}
    blend_into(a, b, 0.25)
    for k, v in a.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.75 * a0[k] + 0.25 * b.state_dict()[k])
    with pytest.raises(KDError, match="architecture"):
        blend_into(create_model("resnet8", 10, 1, 1.0), b, 0.5)
    with pytest.raises(KDError, match=r"\[0, 1\]"):
        blend_into(a, b, 1.5)
    with pytest.raises(KDError, match="one teacher"):
        RunConfig.from_dict(base_config("test", {**P, "teacher_members": 2}, "x", 0, teacher_init=0.5)).check()


def test_a_run_with_teacher_init_starts_from_the_blend(fmnist, monkeypatch):
    ctx = Context(P, "cpu", data=fmnist)
    started = {}

    class Started(Exception):
        pass

    def fit(models, *args, **kwargs):
        started.update({k: v.clone() for k, v in models[0].state_dict().items()})
        raise Started
    monkeypatch.setattr("kd.run.fit", fit)
    config = base_config("test", P, "lambda 0.5", 0, teacher_init=0.5)
    with pytest.raises(Started):
        distill(config, ctx, ctx.pool(0.01))
    teacher = ctx.teacher(config)[0].models[0].state_dict()
    torch.manual_seed(0)
    random = create_model("resnet8", 10, 1, 0.5).state_dict()
    for k, v in started.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.5 * random[k] + 0.5 * teacher[k].to(v))


def test_train_fidelity_of_the_teacher_with_itself_is_perfect(fmnist):
    ctx = Context(P, "cpu", data=fmnist)
    teacher, _ = ctx.teacher(base_config("test", P, "x", 0))
    pool = ctx.pool(0.01)
    facts = train_fidelity(teacher.models[0], teacher, fmnist, pool)
    assert facts["final_train_clean_agreement"] == 100.0 and abs(facts["final_train_clean_kl_teacher_student"]) < 1e-5
    assert 0 <= facts["final_train_clean_ece"] <= 100 and 0 <= facts["final_train_clean_top1"] <= 100


def test_a_fidelity_curve_measures_the_training_pool_at_every_evaluation(fmnist):
    """fidelity_curve: train_clean_* at each evaluation, the last one the run's final_train_clean_*; without
    it, the history has none (and the config keeps its id)."""
    ctx = Context(P, "cpu", data=fmnist)
    two = {**P, "recipe": Recipe(epochs=2, batch_size=64, lr=0.05)}
    plain = base_config("test", two, "x", 0)
    result = distill({**plain, "fidelity_curve": True}, ctx, ctx.pool(0.01))
    curve = pd.DataFrame(result["history"])
    assert curve.train_clean_agreement.notna().all() and len(curve) == 2
    for k in ("agreement", "kl_teacher_student", "top1", "ece"):
        assert curve[f"train_clean_{k}"].iloc[-1] == pytest.approx(result["extra"][f"final_train_clean_{k}"])
    assert "train_clean_agreement" not in distill(plain, ctx, ctx.pool(0.01))["history"][-1]
    assert "fidelity_curve" not in RunConfig.from_dict(plain).as_dict()


def test_fidelity_ensembles_smoke_measures_agreement_on_test_and_train(smoke):
    rows = smoke("fidelity_ensembles")
    distilled = rows[rows.members > 0]
    assert sorted(distilled.members.unique()) == [1, 5] and set(rows.seed) == {100}  # apart from teacher seeds
    assert distilled.final_test_agreement.between(0, 100).all()
    assert distilled.final_train_clean_agreement.between(0, 100).all()
    assert rows[rows.members == 0].teacher_forwards.eq(0).all() and (rows.members == 0).sum() == 1  # x1 only
    assert distilled.groupby("members").teacher_test_top1.first().nunique() == 2  # two different teachers


def test_fidelity_optimisation_smoke_shares_the_first_ensemble_member(smoke):
    from experiments import fidelity_ensembles, fidelity_optimisation as fo
    rows = smoke("fidelity_optimisation")
    assert set(rows.lam) == set(fo.LAMBDAS.values()) and sorted(rows.epoch_multiple.unique()) == [1, 2, 4]
    p = fo.PROFILES["smoke"]
    one = next(c for c in fidelity_ensembles.grid(p, 1) if c["members"] == 1)
    assert fo.grid(p, 1)[0]["teacher"] == one["teacher"]  # one cached teacher for both
    longest = rows[rows.epoch_multiple == 4]
    assert len(longest) == 1 and (longest["recipe.epochs"] == 4 * p["recipe"].epochs).all()
    assert (longest.lam == 0).all() and rows.final_train_clean_agreement.between(0, 100).all()


def test_fidelity_augmentation_smoke_distils_both_policies_from_one_cached_teacher(smoke):
    from experiments import fidelity_augmentation as fa, fidelity_optimisation
    rows = smoke("fidelity_augmentation").set_index("condition")
    assert sorted(rows.index) == sorted(fa.label(c, b) for c in fa.POLICIES for b in (1, 2))
    p = fa.PROFILES["smoke"]
    assert fa.grid(p, 1)[0]["teacher"] == fidelity_optimisation.grid(p, 1)[0]["teacher"]
    assert fa.PROFILES["cpu"]["teacher_recipe"] == fidelity_optimisation.PROFILES["cpu"]["teacher_recipe"]
    # keyed views come from the logit cache (at most one forward per distinct view); MixUp batches all go
    # through the teacher: every sample of every epoch
    assert rows.loc[fa.MIXUP, "teacher_forwards"] == rows.loc[fa.MIXUP, "samples"]
    assert rows.loc[fa.BASE, "teacher_forwards"] <= rows.loc[fa.BASE, "samples"]
    assert rows.final_train_clean_agreement.between(0, 100).all()
    assert (rows.teacher_mflops == rows.student_mflops).all() and rows.student_mflops.gt(1).all()  # self-distillation


# ------------------------------------------------------------------------------------------ fidelity_ensembles: the v3 rule
ENSEMBLE = {fe.ONE: (83.3, 92.0, 94.0), fe.FIVE: (84.0, 92.0, 94.2)}  # test top-1, test / train agreement (%)


def ensemble_rows(x1=None, x2=None, seeds=10, noise=NOISE / 4, scratch=82.7, teachers=(83.06, 84.5), plateau=None):
    """Scratch at x1 and both students at both budgets; x1 / x2 change a student's (top-1, test, train)."""
    rows = [{"condition": fe.SCRATCH, "seed": 180 + s, "recipe.epochs": 144, "members": 0,
             "final_test_top1": scratch + OFFSET[s % 5] + noise[s % 5]} for s in range(seeds)]
    for budget, change in ((1, x1), (2, x2)):
        for i, (name, (top1, test, train)) in enumerate({**ENSEMBLE, **(change or {})}.items()):
            rows += [{"condition": fe.label(name, budget), "seed": 180 + s, "recipe.epochs": 144 * budget,
                      "members": fe.MEMBERS[name], "final_test_top1": top1 + OFFSET[s % 5] + noise[(s + i) % 5],
                      "final_test_agreement": test + OFFSET[s % 5] / 3 + noise[(s + i + 1) % 5],
                      "final_train_clean_agreement": train + OFFSET[s % 5] / 3 + noise[(s + i + 2) % 5],
                      "teacher_train_top1": 99.0, "teacher_test_top1": teachers[i], **PLATEAU, **(plateau or {})}
                     for s in range(seeds)]
    return pd.DataFrame(rows)


def ensemble_curves(rows, slopes=None):
    """Flat late-phase curves of every metric the rule reads, ending at each student's final value (f3_curves),
    unless `slopes` gives a (metric, condition)'s slope."""
    students, curves = rows[rows.members > 0], {}
    for metric in {m for m, *_ in fe.ENDS.values()}:
        own = {c: v for (m, c), v in (slopes or {}).items() if m == metric}
        flat = f3_curves(students.assign(final_test_top1=students[f"final_{metric}"]), own)
        curves.update({(metric, *key): curve for key, curve in flat.items()})
    return curves


def ensembles(rows, slopes=None):
    return fe.verdict_for(rows, ensemble_curves(rows, slopes), CRITERION)


def test_fidelity_ensembles_reproduced_when_both_budgets_hold():
    verdict, facts = ensembles(ensemble_rows())
    assert verdict == "reproduced" and facts["decisive"] == [fe.LOW_TEST, fe.LOW_TRAIN, fe.GAIN, fe.NOT_MORE]
    assert {k: c.outcome for k, c in facts["contrasts"][2].items()} == {
        fe.LOW_TEST: "worse", fe.LOW_TRAIN: "worse", fe.GAIN: "better", fe.NOT_MORE: "not worse",
        fe.MORE: "within noise"}


@pytest.mark.parametrize("student", [(83.3, 99.8, 99.9),   # the 1-teacher student matches its teacher
                                     (82.0, 92.1, 94.2),   # the ensemble's student is less accurate
                                     (84.0, 94.0, 94.2)])  # and agrees more
def test_fidelity_ensembles_not_reproduced_when_both_budgets_contradict(student):
    name = fe.ONE if student[1] > 99 else fe.FIVE
    change = {name: student}
    assert ensembles(ensemble_rows(change, change))[0] == "not reproduced"


def test_fidelity_ensembles_budget_dependent_when_the_budgets_disagree_or_drift():
    assert ensembles(ensemble_rows(None, {fe.FIVE: (82.0, 92.1, 94.2)}))[0] == "budget-dependent at this scale"
    # the ensemble's student gaining agreement 10 pp per schedule at x2: another 40% would cross the margin
    verdict, facts = ensembles(ensemble_rows(), {("test_agreement", fe.label(fe.FIVE, 2)): 10.0})
    assert verdict == "budget-dependent at this scale" and not facts["stable"][fe.NOT_MORE]


@pytest.mark.parametrize("change", [dict(teachers=(81.4, 84.5)),  # v2's: the scratch student beats the teacher
                                    dict(plateau={"teacher_plateau_high": 2.0})])  # the teacher still gains
def test_fidelity_ensembles_premise_not_met_is_its_own_verdict(change):
    verdict, facts = ensembles(ensemble_rows(**change))
    assert verdict == "premise not met at this scale"
    assert [met for *_, met in facts["premise"]].count(False) == 1


def test_fidelity_ensembles_open_readings_are_underpowered_or_inconclusive():
    assert ensembles(ensemble_rows(noise=20 * NOISE))[0] == "underpowered at this scale"
    same = {fe.FIVE: (83.3, 92.0, 94.2)}  # the ensemble does not help accuracy
    assert ensembles(ensemble_rows(same, same, noise=NOISE / 10))[0] == "inconclusive"
    assert ensembles(ensemble_rows().query("condition != '5 teachers'"))[0] == "premise not met at this scale"


def test_fidelity_ensembles_report_reads_each_metrics_curve(tmp_path):
    rows = ensemble_rows().assign(final_test_kl_teacher_student=0.05, samples=172800)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = fe.Outputs(tmp_path, tmp_path / "f.png")
    curves = ensemble_curves(rows)
    for r in rows.itertuples():
        out.history(r.run_id).parent.mkdir(parents=True, exist_ok=True)
        own = {m: curves[(m, r.condition, r.seed)] for m in {m for m, *_ in fe.ENDS.values()} if r.members}
        epochs = (next(iter(own.values())).index * 144).round().astype(int) if own else [144]
        pd.DataFrame({"epoch": epochs, **{m: c.to_numpy() for m, c in own.items()}}).to_csv(out.history(r.run_id),
                                                                                         index=False)
    assert fe.report(rows, {"regime": CRITERION, **fe.PROFILES["cpu"]}, out) == "reproduced"
    table = out.table.read_text()
    arm = next(line for line in table.splitlines() if line.startswith(f"| {fe.NOT_MORE} | not worse | not worse |"))
    assert arm.endswith("| yes |")  # the contrast the verdict rests on keeps its side
    assert "Not judged" in table and (tmp_path / "f.png").is_file()


def test_fidelity_ensembles_grid_pins_both_teachers_and_runs_scratch_at_x1_only():
    configs = fe.grid({**fe.PROFILES["cpu"], "ensemble_weights": "a b c d e"}, 1)
    assert [(c["condition"], c["recipe"]["epochs"], c["members"]) for c in configs] == [
        (fe.SCRATCH, 144, 0), (fe.ONE, 144, 1), (fe.FIVE, 144, 5), (fe.label(fe.ONE, 2), 288, 1),
        (fe.label(fe.FIVE, 2), 288, 5)]
    one, five = configs[1]["teacher"], configs[2]["teacher"]
    assert one["weights"] == fidelity_common.v3_profiles(0, 1)["cpu"]["teacher_weights"] and "members" not in one
    assert five["weights"] == "a b c d e" and five["members"] == 5 and configs[0]["teacher"] is None
    assert {k: v for k, v in five.items() if k not in ("members", "weights")} == {
        k: v for k, v in one.items() if k != "weights"}  # member 0 is the single teacher
    assert all(c["fidelity_curve"] for c in configs[1:]) and "fidelity_curve" not in configs[0]


# ------------------------------------------------------------------------------------------ fidelity_optimisation: the v3 rule
HOLDING = {fo.ZERO: 92.0, fo.ONE: 99.5}  # train agreement (%)
LONGER_ARM = 93.0  # the lambda-0 student at four times the recipe's epochs


def optimisation_rows(x1=None, x2=None, longer=LONGER_ARM, seeds=10, noise=NOISE / 4, plateau=None):
    """Both budgets' runs and the x4 lambda-0 arm; agreement is also each run's final_test_top1 (f3_curves
    draws the late-phase curve towards it)."""
    rows = budget_rows(HOLDING, x1, x2, seeds, noise, 160, lambda c, b: {
        "teacher_train_top1": 99.0, "teacher_test_top1": 84.0, **PLATEAU, **(plateau or {})})
    four = rows[rows.condition == fo.label(fo.ZERO, 2)].assign(
        condition=fo.label(fo.ZERO, 4), final_test_top1=lambda r: r.final_test_top1 - HOLDING[fo.ZERO] + longer)
    rows = pd.concat([rows, four], ignore_index=True)
    return rows.assign(final_train_clean_agreement=rows.final_test_top1)


def optimisation(rows, slopes=None):
    return fo.verdict_for(rows, f3_curves(rows, slopes), CRITERION)


def test_fidelity_optimisation_reproduced_when_both_budgets_hold():
    verdict, facts = optimisation(optimisation_rows())
    assert verdict == "reproduced" and facts["decisive"] == [fo.INIT, fo.PERFECT, fo.LONGER]
    assert {k: c.outcome for k, c in facts["contrasts"][1].items()} == {
        fo.INIT: "better", fo.PERFECT: "not worse", fo.LONGER: "worse"}


@pytest.mark.parametrize("x1, x2, longer", [
    ({fo.ZERO: 99.8}, {fo.ZERO: 99.8}, LONGER_ARM),  # the teacher's init does not help
    (None, {fo.ZERO: 99.9}, 99.9),  # twice the epochs from a random init agree more than lambda 1, at both budgets
])
def test_fidelity_optimisation_not_reproduced_when_both_budgets_contradict(x1, x2, longer):
    verdict, facts = optimisation(optimisation_rows(x1, x2, longer=longer))
    assert verdict == "not reproduced" and facts["decisive"]


def test_fidelity_optimisation_budget_dependent_when_the_budgets_disagree_or_drift():
    assert optimisation(optimisation_rows(None, {fo.ONE: 91.0}))[0] == "budget-dependent at this scale"
    rows = optimisation_rows()
    # the x4 lambda-0 student still gaining 20 pp per schedule over lambda 1: it would pass it
    verdict, facts = optimisation(rows, {fo.label(fo.ZERO, 4): 20.0})
    assert verdict == "budget-dependent at this scale" and not facts["stable"][fo.LONGER]
    # lambda 1's agreement falling 10 pp per schedule: the near-perfect form would cross 99% - 1 pp
    verdict, facts = optimisation(rows, {fo.label(fo.ONE, 2): -10.0})
    assert verdict == "budget-dependent at this scale" and not facts["stable"][fo.PERFECT]


def test_fidelity_optimisation_premise_not_met_is_its_own_verdict():
    rows = optimisation_rows(plateau={"teacher_plateau_high": 2.0})  # the teacher still gains
    assert optimisation(rows)[0] == "premise not met at this scale"


def test_fidelity_optimisation_open_readings_are_underpowered_or_inconclusive():
    assert optimisation(optimisation_rows(noise=20 * NOISE))[0] == "underpowered at this scale"
    short = {fo.ONE: 96.0}  # lambda 1 is not near-perfect: open, with the contrasts powered
    assert optimisation(optimisation_rows(short, short))[0] == "inconclusive"


def test_fidelity_optimisation_report_reads_train_agreement_curves(tmp_path):
    rows = optimisation_rows().assign(lam=0.0, epoch_multiple=1, final_test_agreement=90.0, final_test_top1=84.0,
                                      samples=172800)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = fo.Outputs(tmp_path, tmp_path / "f.png")
    write_histories(rows.assign(final_test_top1=rows.final_train_clean_agreement), out)
    for run_id in rows.run_id:  # the curve the rule reads is train agreement's
        history = pd.read_csv(out.history(run_id))
        history.rename(columns={"test_top1": fo.AGREEMENT}).to_csv(out.history(run_id), index=False)
    assert fo.report(rows, {"regime": CRITERION, **fo.PROFILES["cpu"]}, out) == "reproduced"
    table = out.table.read_text()
    assert "| lambda 0 at twice the epochs vs lambda 1 | worse | worse |" in table and (tmp_path / "f.png").is_file()


def test_fidelity_optimisation_grid_compares_the_longer_arm_at_twice_each_budget():
    configs = fo.grid(fo.PROFILES["cpu"], 1)
    epochs = {c["condition"]: c["recipe"]["epochs"] for c in configs}
    assert epochs == {**{name: 144 for name in fo.LAMBDAS}, **{fo.label(name, 2): 288 for name in fo.LAMBDAS},
                      fo.label(fo.ZERO, 4): 576}
    assert {fo.ends(b)[fo.LONGER][0] for b in (1, 2)} == {fo.label(fo.ZERO, 2), fo.label(fo.ZERO, 4)}
    assert all(c["fidelity_curve"] and c["recipe"]["late_eval_every"] for c in configs)
    assert configs[0]["teacher"]["recipe"]["epochs"] == 240 and configs[0]["teacher"]["recipe"]["late_eval_every"] == 1


# ------------------------------------------------------------------------------------------ fidelity_augmentation: the v3 rule
AUGMENT = {fa.BASE: (93.0, 96.0, 0.26), fa.MIXUP: (94.5, 95.0, 0.35)}  # test / train agreement, final KD loss


def augmentation_rows(x1=None, x2=None, seeds=10, noise=NOISE / 4, plateau=None):
    """Both budgets' runs; x1 / x2 change a policy's (test, train, KD loss) at one budget."""
    rows = []
    for budget, change in ((1, x1), (2, x2)):
        for i, (policy, (test, train, kd)) in enumerate({**AUGMENT, **(change or {})}.items()):
            rows += [{"condition": fa.label(policy, budget), "seed": 170 + s, "recipe.epochs": 144 * budget,
                      "final_test_agreement": test + OFFSET[s % 5] + noise[(s + i) % 5],
                      "final_train_clean_agreement": train + OFFSET[s % 5] + noise[(s + i + 1) % 5],
                      "final_train_kd": kd + noise[(s + i) % 5] / 100, "teacher_train_top1": 99.0,
                      "teacher_test_top1": 84.0, **PLATEAU, **(plateau or {})} for s in range(seeds)]
    return pd.DataFrame(rows)


def augmentation_curves(rows, slopes=None):
    """Flat late-phase curves of both metrics ending at each run's final value (f3_curves), unless `slopes`
    gives a (metric, condition)'s slope."""
    curves = {}
    for metric in fa.METRIC.values():
        own = {c: v for (m, c), v in (slopes or {}).items() if m == metric}
        flat = f3_curves(rows.assign(final_test_top1=rows[f"final_{metric}"]), own)
        curves.update({(metric, *key): curve for key, curve in flat.items()})
    return curves


def augmentation(rows, slopes=None):
    return fa.verdict_for(rows, augmentation_curves(rows, slopes), CRITERION)


def test_fidelity_augmentation_reproduced_when_both_budgets_hold():
    verdict, facts = augmentation(augmentation_rows())
    assert verdict == "reproduced" and facts["decisive"] == [fa.TEST, fa.TRAIN]


@pytest.mark.parametrize("policy", [(92.0, 95.0, 0.35),  # MixUp lowers test agreement
                                    (94.5, 97.0, 0.35)])  # and raises train agreement
def test_fidelity_augmentation_not_reproduced_when_both_budgets_contradict(policy):
    change = {fa.MIXUP: policy}
    assert augmentation(augmentation_rows(change, change))[0] == "not reproduced"


def test_fidelity_augmentation_budget_dependent_when_the_budgets_disagree_or_drift():
    assert augmentation(augmentation_rows(None, {fa.MIXUP: (92.0, 95.0, 0.35)}))[0] == "budget-dependent at this scale"
    # MixUp's test agreement falling 10 pp per schedule at x2: another 40% would take it below the baseline
    verdict, facts = augmentation(augmentation_rows(), {("test_agreement", fa.label(fa.MIXUP, 2)): -10.0})
    assert verdict == "budget-dependent at this scale" and not facts["stable"][fa.TEST]


@pytest.mark.parametrize("change", [dict(x1={fa.MIXUP: (94.5, 95.0, 0.26)}),  # MixUp left the loss as it was
                                    dict(plateau={"teacher_plateau_high": 2.0})])  # the teacher still gains
def test_fidelity_augmentation_premise_not_met_is_its_own_verdict(change):
    assert augmentation(augmentation_rows(**change))[0] == "premise not met at this scale"


def test_fidelity_augmentation_open_readings_are_underpowered_or_inconclusive():
    assert augmentation(augmentation_rows(noise=20 * NOISE))[0] == "underpowered at this scale"
    same = {fa.MIXUP: (93.01, 95.99, 0.35)}  # MixUp moves neither agreement
    assert augmentation(augmentation_rows(same, same, noise=NOISE / 10))[0] == "inconclusive"


def test_fidelity_augmentation_report_reads_each_metrics_curve(tmp_path):
    rows = augmentation_rows().assign(final_test_top1=84.0, samples=172800, teacher_forwards=172800)
    rows["run_id"] = [f"r{i}" for i in range(len(rows))]
    out = fa.Outputs(tmp_path, tmp_path / "f.png")
    curves = augmentation_curves(rows)
    for r in rows.itertuples():
        out.history(r.run_id).parent.mkdir(parents=True, exist_ok=True)
        test, train = curves[("test_agreement", r.condition, r.seed)], curves[("train_clean_agreement", r.condition, r.seed)]
        pd.DataFrame({"epoch": (test.index * 144).round().astype(int), "test_agreement": test.to_numpy(),
                      "train_clean_agreement": train.to_numpy()}).to_csv(out.history(r.run_id), index=False)
    assert fa.report(rows, {"regime": CRITERION, **fa.PROFILES["cpu"]}, out) == "reproduced"
    table = out.table.read_text()
    assert f"| {fa.TRAIN} | worse | worse |" in table and "| **no** |" not in table and (tmp_path / "f.png").is_file()


def test_fidelity_augmentation_grid_runs_both_policies_at_both_budgets_with_train_curves():
    configs = fa.grid(fa.PROFILES["cpu"], 1)
    assert [(c["condition"], c["recipe"]["epochs"], c.get("augment")) for c in configs] == [
        (fa.BASE, 144, None), (fa.MIXUP, 144, {"mixup": 1.0}),
        (fa.label(fa.BASE, 2), 288, None), (fa.label(fa.MIXUP, 2), 288, {"mixup": 1.0})]
    assert all(c["fidelity_curve"] for c in configs) and configs[0]["teacher"]["recipe"]["epochs"] == 240
    assert {c["teacher"]["weights"] for c in configs} == {fidelity_common.v3_profiles(0, 1)["cpu"]["teacher_weights"]}
