"""What a run minimises (kd/objectives.py): ESKD's stop, label smoothing of the hard-label term, DKD's warm-up,
the options each objective checks as it is made, and KDAS quality weights alone and composed with each loss."""
import pytest
import torch

from kd.errors import KDError
from kd.losses import kl_tg
from kd.objectives import DIST, DKD, KD, CrossEntropy, QualityWeights, make_objective

C = 5  # classes


def test_eskd_after_the_stop_is_the_scratch_objective():
    s, t, y, idx = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3]), torch.arange(4)
    eskd = KD(temperature=4.0, ce_weight=0.1, kd_weight=0.9, stop_epoch=2)
    assert set(eskd(s, t, y, idx, 2)) == {"ce", "kd"}
    assert torch.allclose(eskd(s, t, y, idx, 2)["ce"], 0.1 * CrossEntropy()(s, None, y, idx, 3)["ce"])
    after = eskd(s, None, y, idx, 3)
    assert set(after) == {"ce"} and torch.equal(after["ce"], CrossEntropy()(s, None, y, idx, 3)["ce"])


def test_label_smoothing_of_a_distillation_objective_smooths_its_hard_label_term_only():
    s, t, y, idx = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3]), torch.arange(4)
    smooth, plain = make_objective("dist", 10, label_smoothing=0.1), make_objective("dist", 10)
    assert torch.equal(smooth(s, t, y, idx, 1)["kd"], plain(s, t, y, idx, 1)["kd"])
    assert torch.allclose(smooth(s, t, y, idx, 1)["ce"], CrossEntropy(0.1)(s, None, y, idx, 1)["ce"])
    assert not torch.allclose(smooth(s, t, y, idx, 1)["ce"], plain(s, t, y, idx, 1)["ce"])


def test_dkd_warmup_ramps_the_term():
    s, t, y = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    dkd = DKD(warmup=4)
    assert torch.allclose(dkd.term(s, t, y, 1) * 4, dkd.term(s, t, y, 4))
    assert torch.allclose(dkd.term(s, t, y, 8), dkd.term(s, t, y, 4))


@pytest.mark.parametrize("loss, options, match", [
    ("kd", dict(temperature=0.0), "temperature must be > 0"), ("kd", dict(stop_epoch=11), "stop epoch"),
    ("dkd", dict(beta=-1.0), "beta"), ("kd", dict(direction="up"), "direction"), ("mse", {}, "Unknown loss"),
    ("dist", dict(tau=4.0), "no option tau"), ("dist", dict(temperature=-1.0), "temperature must be > 0"),
    ("kd", dict(label_smoothing=1.0), "Label smoothing")])
def test_objective_options_are_checked(loss, options, match):
    with pytest.raises(KDError, match=match):
        make_objective(loss, epochs=10, **options)


def test_quality_weights_one_inside_the_band_gamma_far_outside():
    torch.manual_seed(0)
    y = torch.zeros(100, dtype=torch.long)
    t = torch.zeros(100, C)
    t[:, 0] = torch.linspace(-4, 8, 100)  # KL_TG falls as the target logit grows
    q = kl_tg(t, y)
    lo, hi = torch.quantile(q, torch.tensor([0.2, 0.8]))
    w = QualityWeights(gamma=0.5)(t, y, epoch=5)
    inside = (q >= lo) & (q <= hi)
    assert torch.all(w[inside] == 1) and inside.sum() >= 58
    far = (q < lo - 0.01) | (q > hi + 0.01)
    assert torch.all(w[far] == 0.5)
    gentle = QualityWeights(gamma=0.0, lam=1.0)(t, y, epoch=5)  # weights fall linearly with the distance
    assert torch.allclose(gentle[~inside], (1 - ((lo - q).clamp(min=0) + (q - hi).clamp(min=0)))[~inside].clamp(0, 1))
    ramped = QualityWeights(gamma=0.0, lam=1.0, ramp=4)
    assert torch.allclose(1 - ramped(t, y, 1), (1 - gentle) / 4)
    assert torch.all(QualityWeights(start=3)(t, y, epoch=3) == 1)


def test_weights_compose_with_kd_dkd_and_dist():
    torch.manual_seed(0)
    s, t, y = torch.randn(16, C), torch.randn(16, C), torch.randint(0, C, (16,))
    for objective in (KD(), DKD(warmup=1), DIST()):
        plain = objective(s, t, y, None, 5)["kd"]
        objective.sample_weights = lambda t_, y_, e: torch.ones(len(y_))
        assert torch.allclose(objective(s, t, y, None, 5)["kd"], plain)
        objective.sample_weights = QualityWeights()
        weighted = objective(s, t, y, None, 5)["kd"]
        assert torch.isfinite(weighted) and weighted <= plain + 1e-6
