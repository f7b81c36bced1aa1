"""Losses against values derived by hand from the papers' definitions, and their properties."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kd import losses

logit_rows = arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(2, 7)),
                    elements=st.floats(-8, 8, allow_nan=False))


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def t64(a):
    return torch.tensor(a, dtype=torch.float64)


def close(a, b, rel=1e-6):
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-12)


def test_kd_hand_value():
    # p_t = softmax([0, ln 3]/1) = [1/4, 3/4], p_s = [1/2, 1/2]: KL = 1/4 ln(1/2) + 3/4 ln(3/2)
    s, t = t64([[0.0, 0.0]]), t64([[0.0, math.log(3)]])
    assert close(losses.kd_loss(s, t, 1.0), 0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    # T = 2 scales logits by 1/2 and the loss by 4
    p = softmax(np.array([0.0, math.log(3) / 2]))
    assert close(losses.kd_loss(s, t, 2.0), 4 * (p * np.log(p / 0.5)).sum())


@settings(max_examples=60, deadline=None)
@given(logit_rows, st.floats(0.5, 8))
def test_kd_nonnegative_and_zero_only_for_equal(z, temperature):
    z = t64(z)
    assert close(losses.kd_loss(z, z, temperature), 0.0)
    other = z.flip(1) + 1.0
    value = losses.kd_loss(other, z, temperature, reduction="none")
    p_s, p_t = F.softmax(other / temperature, 1), F.softmax(z / temperature, 1)
    same = torch.isclose(p_s, p_t, atol=1e-9).all(1)
    assert (value >= -1e-12).all()
    assert (value[~same] > 0).all()


def test_kd_matches_reference_kl_div():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(32, 100, generator=g, dtype=torch.float64) * 3, torch.randn(32, 100, generator=g,
                                                                                   dtype=torch.float64) * 3
    ref = F.kl_div(F.log_softmax(s / 4, 1), F.softmax(t / 4, 1), reduction="batchmean") * 16
    assert close(losses.kd_loss(s, t, 4.0), ref)
    rev = F.kl_div(F.log_softmax(t / 4, 1), F.softmax(s / 4, 1), reduction="batchmean") * 16
    assert close(losses.kd_loss(s, t, 4.0, direction="reverse"), rev)


def dkd_reference(s, t, y, alpha, beta, temperature):
    """DKD from the paper's definitions, one sample at a time in numpy."""
    out = []
    for zs, zt, k in zip(s, t, y):
        ps, pt = softmax(zs / temperature), softmax(zt / temperature)
        rest = np.arange(len(zs)) != k  # b = [p_target, sum of the other p] (not 1 - p: no cancellation)
        bs, bt = np.array([ps[k], ps[rest].sum()]), np.array([pt[k], pt[rest].sum()])
        tckd = (bt * np.log(bt / bs)).sum()
        hs, ht = softmax(zs[rest] / temperature), softmax(zt[rest] / temperature)
        nckd = (ht * np.log(ht / hs)).sum()
        out.append(temperature**2 * (alpha * tckd + beta * nckd))
    return np.array(out)


@settings(max_examples=40, deadline=None)
@given(logit_rows, st.floats(0.5, 8), st.integers(0, 100))
def test_dkd_equals_definition_and_kd_identity(z, temperature, seed):
    rng = np.random.default_rng(seed)
    s, t = z, z[::-1].copy() + rng.normal(size=z.shape)
    y = rng.integers(0, z.shape[1], size=z.shape[0])
    ours = losses.dkd_loss(t64(s), t64(t), torch.tensor(y), 1.0, 8.0, temperature, reduction="none")
    assert np.allclose(ours.numpy(), dkd_reference(s, t, y, 1.0, 8.0, temperature), rtol=1e-6, atol=1e-10)
    # KD = TCKD + (1 - p_t[target]) * NCKD, same temperature (Zhao et al., eq. 4)
    tckd = losses.dkd_loss(t64(s), t64(t), torch.tensor(y), 1.0, 0.0, temperature, reduction="none")
    nckd = losses.dkd_loss(t64(s), t64(t), torch.tensor(y), 0.0, 1.0, temperature, reduction="none")
    p_target = F.softmax(t64(t) / temperature, 1)[torch.arange(len(y)), torch.tensor(y)]
    kd = losses.kd_loss(t64(s), t64(t), temperature, reduction="none")
    assert torch.allclose(kd, tckd + (1 - p_target) * nckd, rtol=1e-6, atol=1e-10)


def dist_reference(s, t, beta, gamma, temperature):
    ys, yt = softmax(s / temperature), softmax(t / temperature)
    inter = np.mean([1 - np.corrcoef(a, b)[0, 1] for a, b in zip(ys, yt)])
    intra = np.mean([1 - np.corrcoef(a, b)[0, 1] for a, b in zip(ys.T, yt.T)])
    return temperature**2 * (beta * inter + gamma * intra)


def test_dist_matches_pearson_definition():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(16, 10)) * 2, rng.normal(size=(16, 10)) * 2
    ours = losses.dist_loss(t64(s), t64(t), beta=2.0, gamma=2.0, temperature=4.0)
    assert close(ours, dist_reference(s, t, 2.0, 2.0, 4.0), rel=1e-6)
    per_sample = losses.dist_loss(t64(s), t64(t), 2.0, 2.0, 4.0, reduction="none")
    assert per_sample.shape == (16,) and close(per_sample.mean(), ours)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 5), st.integers(3, 8)), elements=st.floats(-5, 5)),
       st.floats(0.1, 10), st.floats(-10, 10), st.integers(0, 1000))
def test_pearson_distance_invariant_to_positive_affine_maps(u, scale, shift, seed):
    v = np.random.default_rng(seed).normal(size=u.shape)
    spread = lambda x: np.linalg.norm(x - x.mean(1, keepdims=True), axis=1)  # noqa: E731
    # a (nearly) constant row has no correlation: pearson's eps (1e-8) in the denominator moves rho by up to
    # eps / (|a| |b|), so both rows' norm products stay above 1e-2 for a 1e-6 tolerance
    assume((spread(u) * spread(v) > 1e-2).all() and (spread(u * scale) * spread(v) > 1e-2).all())
    base = losses.pearson(t64(u), t64(v))
    moved = losses.pearson(t64(u * scale + shift), t64(v))
    assert torch.allclose(base, moved, atol=1e-6)


def test_bkl_is_binary_kl_and_differs_from_official_bce_by_teacher_entropy():
    # one class, p_t = 1/2 vs q = sigmoid(0) = 1/2 -> 0; by hand for q = sigmoid(ln 3) = 3/4
    s, t = t64([[math.log(3), 0.0]]), t64([[0.0, 0.0]])
    q = np.array([0.75, 0.5])
    by_hand = np.mean(0.5 * np.log(0.5 / q) + 0.5 * np.log(0.5 / (1 - q)))
    assert close(losses.bkl_loss(s, t), by_hand)
    rng = np.random.default_rng(1)
    s, t = t64(rng.normal(size=(8, 10)) * 3), t64(rng.normal(size=(8, 10)) * 3)
    p = F.softmax(t, 1)
    entropy = -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)).mean()
    official = F.binary_cross_entropy_with_logits(s, p)
    assert close(losses.bkl_loss(s, t) + entropy, official)


def test_kdas_quantities():
    s, t = t64([[0.0, 0.0]]), t64([[0.0, math.log(3)]])
    pt, ps = np.array([0.25, 0.75]), np.array([0.5, 0.5])
    assert close(losses.kl_ts(s, t, "paper"), (ps * np.log(ps / pt)).sum())      # KL(P_S || P_T)
    assert close(losses.kl_ts(s, t, "official"), (pt * np.log(pt / ps)).sum())   # KL(P_T || P_S)
    eps = 1e-6
    g = np.array([eps, 1 - eps])  # label 1, two classes: eps / (C - 1) = eps off the target
    y = torch.tensor([1])
    assert close(losses.kl_tg(t, y, "paper"), (pt * np.log(pt / g)).sum())
    assert close(losses.kl_tg(t, y, "official"), (g * np.log(g / pt)).sum())
    assert close(losses.kl_tg(t, y, "official"), -math.log(0.75), rel=1e-4)  # about -log p_t[y]


def test_reduction_none_is_per_sample():
    z = torch.randn(5, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (5,))
    t = z.flip(0)
    for loss in (lambda r: losses.kd_loss(z, t, 2.0, r), lambda r: losses.dkd_loss(z, t, y, 1, 8, 4, r),
                 lambda r: losses.dist_loss(z, t, 2.0, 2.0, 4.0, r), lambda r: losses.bkl_loss(z, t, r),
                 lambda r: losses.cross_entropy(z, y, reduction=r)):
        per_sample = loss("none")
        assert per_sample.shape == (5,) and close(per_sample.mean(), loss("mean"))
    with pytest.raises(ValueError):
        losses.kd_loss(z, z, 1.0, reduction="sum")
