"""Distillation losses: pure functions of logits (B x C) and labels, one screen each.

`reduction="mean"` averages over the batch (the papers' form); `reduction="none"` returns one value per
sample where the loss decomposes per sample, so that sample weights (KDAS) can multiply it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p || q) per row from log-probabilities; entries where p is 0 contribute 0 (and NaNs stay NaN)."""
    return torch.where(log_p.isneginf(), 0.0, log_p.exp() * (log_p - log_q)).sum(1)


def cross_entropy(logits: Tensor, targets: Tensor, label_smoothing: float = 0.0, reduction="mean") -> Tensor:
    """CE with optional label smoothing (Szegedy et al. 2016, eq. of section 7)."""
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing, reduction=reduction)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float, reduction="mean",
            direction: str = "forward") -> Tensor:
    """Hinton et al. (2015): T^2 KL(p_t^T || p_s^T), summed over classes.

    `direction="reverse"` gives T^2 KL(p_s^T || p_t^T), what the KDAS release computes (an option only).
    """
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = _kl(log_t, log_s) if direction == "forward" else _kl(log_s, log_t)
    return _reduce(kl * temperature**2, reduction)


def dkd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, alpha: float, beta: float,
             temperature: float, reduction="mean") -> Tensor:
    """Decoupled KD (Zhao et al., CVPR 2022, eq. 7): alpha*TCKD + beta*NCKD.

    TCKD = T^2 KL(b_t || b_s) with b = [p_target, 1 - p_target]; NCKD = T^2 KL(p_hat_t || p_hat_s) over the
    non-target classes renormalised. Warm-up and the CE term belong to the objective, not here.
    """
    gt = F.one_hot(targets, student_logits.shape[1]).bool()
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=1)

    def binary(log_p):  # log [p_target, 1 - p_target], the second term computed stably
        log_pt = log_p.masked_select(gt).unsqueeze(1)
        log_rest = log_p.masked_fill(gt, float("-inf")).logsumexp(1, keepdim=True)
        return torch.cat([log_pt, log_rest], dim=1)

    tckd = _kl(binary(log_t), binary(log_s))
    hat_s = F.log_softmax((student_logits / temperature).masked_fill(gt, float("-inf")), dim=1)
    hat_t = F.log_softmax((teacher_logits / temperature).masked_fill(gt, float("-inf")), dim=1)
    nckd = _kl(hat_t, hat_s)
    return _reduce((alpha * tckd + beta * nckd) * temperature**2, reduction)


def pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Pearson correlation of rows: cosine of mean-centred vectors (eps as in the official DIST code)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist_loss(student_logits: Tensor, teacher_logits: Tensor, beta: float = 1.0, gamma: float = 1.0,
              temperature: float = 1.0, reduction="mean") -> Tensor:
    """DIST (Huang et al., NeurIPS 2022, eq. 8-10), official form: softmax(z/T) first, then
    T^2 * (beta * inter + gamma * intra), inter = mean_i (1 - rho(y_s[i], y_t[i])) over samples and
    intra = mean_c (1 - rho(y_s[:, c], y_t[:, c])) over classes.

    The intra term is a batch quantity; `reduction="none"` returns T^2 (beta*inter_i + gamma*intra), whose
    mean is the batch loss.
    """
    y_s = F.softmax(student_logits / temperature, dim=1)
    y_t = F.softmax(teacher_logits / temperature, dim=1)
    inter = 1 - pearson(y_s, y_t)
    intra = (1 - pearson(y_s.T, y_t.T)).mean()
    return _reduce(temperature**2 * (beta * inter + gamma * intra), reduction)


def bkl_loss(student_logits: Tensor, teacher_logits: Tensor, reduction="mean") -> Tensor:
    """Binary KL of the VanillaKD ablation (Hao et al., NeurIPS 2023): per class,
    KL(Bern(p_t,c) || Bern(sigmoid(z_s,c))) with p_t = softmax(z_t), averaged over classes (and batch).

    The official code's BCE_with_logits(z_s, p_t) equals this plus the teacher's mean binary entropy:
    the same gradient, a different value.
    """
    p_t = F.softmax(teacher_logits, dim=1)
    log_q, log_1mq = F.logsigmoid(student_logits), F.logsigmoid(-student_logits)
    kl = torch.xlogy(p_t, p_t) - p_t * log_q + torch.xlogy(1 - p_t, 1 - p_t) - (1 - p_t) * log_1mq
    return _reduce(kl.mean(1), reduction)


def kl_ts(student_logits: Tensor, teacher_logits: Tensor, direction: str = "paper") -> Tensor:
    """KDAS knowledge quantity per sample at T=1. Paper: KL(P_S || P_T); official code: KL(P_T || P_S)."""
    log_s, log_t = F.log_softmax(student_logits, dim=1), F.log_softmax(teacher_logits, dim=1)
    return _kl(log_s, log_t) if direction == "paper" else _kl(log_t, log_s)


def kl_tg(teacher_logits: Tensor, targets: Tensor, direction: str = "paper", eps: float = 1e-6) -> Tensor:
    """KDAS knowledge quality per sample: divergence between the teacher and the label distribution G,
    a one-hot smoothed as in the official code (1 - eps on the target, eps/(C-1) elsewhere).
    Paper: KL(P_T || G); official code: KL(G || P_T) (about -log p_t[y])."""
    num_classes = teacher_logits.shape[1]
    log_g = torch.full_like(teacher_logits, eps / (num_classes - 1)).scatter_(
        1, targets.unsqueeze(1), 1 - eps).log()
    log_t = F.log_softmax(teacher_logits, dim=1)
    return _kl(log_t, log_g) if direction == "paper" else _kl(log_g, log_t)
