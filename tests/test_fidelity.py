"""Library pieces of the fidelity findings (Stanton et al. 2021): ensemble teachers (mean probability,
members trained once each), a student initialised between a random init and its teacher, and fidelity on
the training data; the three fidelity scripts' smoke profiles and verdict rules on made-up rows
(tests/made_up.py)."""
import pandas as pd
import pytest
import torch

from experiments import fidelity_augmentation as fa
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
    assert sorted(distilled.members.unique()) == [1, 3, 5] and set(rows.seed) == {100}  # apart from teacher seeds
    assert distilled.final_test_agreement.between(0, 100).all()
    assert distilled.final_train_clean_agreement.between(0, 100).all()
    assert rows[rows.members == 0].teacher_forwards.eq(0).all()
    assert distilled.groupby("members").teacher_test_top1.first().nunique() == 3  # three different ensembles


def test_fidelity_optimisation_smoke_shares_the_first_ensemble_member(smoke):
    from experiments import fidelity_ensembles, fidelity_optimisation
    rows = smoke("fidelity_optimisation")
    assert set(rows.lam) == set(fidelity_optimisation.LAMBDAS)
    assert sorted(rows.epoch_multiple.unique()) == [1, *fidelity_optimisation.LONGER]
    p = fidelity_optimisation.PROFILES["smoke"]
    one = next(c for c in fidelity_ensembles.grid(p, 1) if c["members"] == 1)
    assert fidelity_optimisation.grid(p, 1)[0]["teacher"] == one["teacher"]  # one cached teacher for both
    longest = rows[rows.epoch_multiple == fidelity_optimisation.LONGER[-1]]
    assert (longest["recipe.epochs"] == fidelity_optimisation.LONGER[-1] * p["recipe"].epochs).all()


def test_fidelity_augmentation_smoke_distils_every_policy_from_one_cached_teacher(smoke):
    from experiments import fidelity_augmentation, fidelity_optimisation
    rows = smoke("fidelity_augmentation")
    assert sorted(rows.condition) == sorted(fidelity_augmentation.POLICIES)  # rows land as their runs finish
    p = fidelity_augmentation.PROFILES["smoke"]
    assert fidelity_augmentation.grid(p, 1)[0]["teacher"] == fidelity_optimisation.grid(p, 1)[0]["teacher"]
    forwards = rows.set_index("condition").teacher_forwards
    # keyed views come from the logit cache (at most one forward per distinct view); MixUp batches all go
    # through the teacher: every sample of every epoch
    assert forwards["+ MixUp"] == forwards["all combined"] == rows.samples.iloc[0]
    assert forwards["crop + flip"] <= rows.samples.iloc[0] and forwards["+ rotation"] <= rows.samples.iloc[0]
    assert rows.final_train_clean_agreement.between(0, 100).all()
    assert (rows.teacher_mflops == rows.student_mflops).all() and rows.student_mflops.gt(1).all()  # self-distillation


# ------------------------------------------------------------------------------------------ fidelity: the verdict rule on made-up rows
def fidelity_rows(values: dict, seeds=5, noise=NOISE, drop=()):
    """condition -> {column: mean}, per seed with a shared offset and a little noise per column."""
    offset = OFFSET[:seeds]
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
