"""Accuracy, calibration and teacher-student fidelity (Stanton et al., NeurIPS 2021), on full logit sets."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kd.losses import pearson


def topk_accuracy(logits: Tensor, targets: Tensor, k: int = 1) -> float:
    """Percent of samples whose label is among the k highest logits."""
    k = min(k, logits.shape[1])
    return 100.0 * (logits.topk(k, dim=1).indices == targets[:, None]).any(1).sum().item() / len(targets)


def nll(logits: Tensor, targets: Tensor) -> float:
    return F.cross_entropy(logits.float(), targets).item()


def ece(logits: Tensor, targets: Tensor, bins: int = 10) -> float:
    """Expected calibration error: |accuracy - confidence| over 10 equal-width bins of the max probability,
    weighted by the share of samples in each bin (Guo et al. 2017), in percent."""
    conf, pred = F.softmax(logits.float(), dim=1).max(1)
    correct = (pred == targets).float()
    which = (conf * bins).ceil().clamp(1, bins).long() - 1  # bin b holds conf in (b/bins, (b+1)/bins]
    gap = torch.zeros(bins, device=logits.device).index_add_(0, which, correct - conf)
    return 100.0 * gap.abs().sum().item() / len(targets)


def agreement(student_logits: Tensor, teacher_logits: Tensor) -> float:
    """Top-1 agreement: percent of inputs where student and teacher argmax agree."""
    return 100.0 * (student_logits.argmax(1) == teacher_logits.argmax(1)).sum().item() / len(student_logits)


def predictive_kl(student_logits: Tensor, teacher_logits: Tensor) -> float:
    """Mean KL(p_t || p_s) at T=1, in nats."""
    log_t, log_s = F.log_softmax(teacher_logits.float(), 1), F.log_softmax(student_logits.float(), 1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean").item()


def pearson_inter_intra(student_logits: Tensor, teacher_logits: Tensor) -> tuple[float, float]:
    """DIST's diagnostic of how well a student matches its teacher's relations (Huang et al. 2022, Sec. 3):
    the mean Pearson correlation of student and teacher probabilities (T=1) per sample (inter-class: across
    the classes of one input) and per class (intra-class: across the inputs, one class at a time)."""
    p_s, p_t = F.softmax(student_logits.float(), 1), F.softmax(teacher_logits.float(), 1)
    return pearson(p_s, p_t).mean().item(), pearson(p_s.T, p_t.T).mean().item()


def ensemble_logits(member_logits: list[Tensor]) -> Tensor:
    """An ensemble predicts the mean of its members' probabilities; returned as log-probabilities, which
    every metric here (and softmax) treats as logits."""
    return torch.stack([F.softmax(z.float(), 1) for z in member_logits]).mean(0).log()


def classification_metrics(logits: Tensor, targets: Tensor, teacher_logits: Tensor | None = None) -> dict:
    """The per-epoch evaluation of a model, with the fidelity metrics when a teacher is given."""
    out = {"top1": topk_accuracy(logits, targets, 1), "top5": topk_accuracy(logits, targets, 5),
           "nll": nll(logits, targets), "ece": ece(logits, targets)}
    if teacher_logits is not None:
        out["agreement"] = agreement(logits, teacher_logits)
        out["kl_teacher_student"] = predictive_kl(logits, teacher_logits)
        out["pearson_inter"], out["pearson_intra"] = pearson_inter_intra(logits, teacher_logits)
    return out
