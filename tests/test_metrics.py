import math

import numpy as np
import torch

from kd import metrics


def test_topk_and_agreement():
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])
    y = torch.tensor([0, 2, 0])
    assert metrics.topk_accuracy(logits, y, 1) == 100 / 3
    assert math.isclose(metrics.topk_accuracy(logits, y, 2), 200 / 3)
    teacher = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert math.isclose(metrics.agreement(logits, teacher), 200 / 3)


def test_ece_by_hand():
    # confidences 0.9 (right), 0.9 (wrong), 0.6 (right): bins (0.8, 0.9] -> |0.5 - 0.9| * 2/3,
    # (0.5, 0.6] -> |1 - 0.6| * 1/3
    p = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
    y = torch.tensor([0, 1, 0])
    expected = 100 * (abs(0.5 - 0.9) * 2 / 3 + abs(1 - 0.6) / 3)
    assert math.isclose(metrics.ece(p.log(), y), expected, rel_tol=1e-5)


def test_predictive_kl_and_ensemble():
    t = torch.tensor([[0.0, math.log(3)]])
    s = torch.zeros(1, 2)
    assert math.isclose(metrics.predictive_kl(s, t), 0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel_tol=1e-5)
    a, b = torch.tensor([[10.0, 0.0]]), torch.tensor([[0.0, 10.0]])
    ens = metrics.ensemble_logits([a, b]).softmax(1)
    assert torch.allclose(ens, torch.tensor([[0.5, 0.5]]), atol=1e-4)  # mean of probabilities
    out = metrics.classification_metrics(s, torch.tensor([1]), t)
    assert set(out) == {"top1", "top5", "nll", "ece", "agreement", "kl_teacher_student", "pearson_inter",
                        "pearson_intra"}


def test_pearson_inter_intra_against_numpy():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(50, 7, generator=g), torch.randn(50, 7, generator=g)
    inter, intra = metrics.pearson_inter_intra(s, t)
    p_s, p_t = s.softmax(1).double().numpy(), t.softmax(1).double().numpy()
    corr = lambda a, b: float(np.corrcoef(a, b)[0, 1])  # noqa: E731
    assert math.isclose(inter, np.mean([corr(p_s[i], p_t[i]) for i in range(50)]), abs_tol=1e-5)
    assert math.isclose(intra, np.mean([corr(p_s[:, c], p_t[:, c]) for c in range(7)]), abs_tol=1e-5)
    assert all(math.isclose(v, 1.0, abs_tol=1e-5) for v in metrics.pearson_inter_intra(t, t))
