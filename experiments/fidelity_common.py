"""What the fidelity findings (Stanton et al., "Does Knowledge Distillation Really Work?", NeurIPS 2021; official
code: gnosis) share: self-distillation of one architecture with the soft loss alone at T = 4 (the paper's
alpha = 0), its teachers (members of ensembles are independently seeded teachers, shared through the
cache), the fidelity metrics as the official code computes them, and their table columns.

Metrics: top-1 agreement of student and teacher argmax; KL(p_t || p_s) at T = 1; ECE over 10 equal-width
bins; an ensemble predicts the mean of its members' probabilities. "test" is the test set, "train" the
clean views of the student's own training pool.
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from experiments.settings import REGIME, SMOKE_REGIME
from kd import analysis
from kd.recipe import Recipe

PAPER_SOURCE = "Stanton et al., NeurIPS 2021 (ResNet-56 on CIFAR-100; its numbers are read off figures)"
KD_SOFT = {"temperature": 4.0, "ce_weight": 0.0, "kd_weight": 1.0}  # soft targets only, as the paper
# Student seeds apart from the teachers' (0, 1, ...): a student of a teacher's seed and architecture would
# start from that teacher's initialisation.
FIRST_STUDENT_SEED = 100

PROFILES = {
    "smoke": dict(dataset="fashion_mnist", data={"test_per_class": 50}, pool_fraction=0.01, seeds=2,
                  first_seed=FIRST_STUDENT_SEED, student="resnet8", student_width=0.5, teacher="resnet8",
                  teacher_width=0.5, teacher_recipe=Recipe(epochs=2, batch_size=64, lr=0.05),
                  recipe=Recipe(epochs=2, batch_size=64, lr=0.05),
                  regime=SMOKE_REGIME),
    # Self-distillation of the cpu-profile student (half-width resnet8) in KDAS Finding 3's converged regime
    # (1,200 images; teachers 120 epochs, students 144: figures/learning_curves_cpu.png).
    "cpu": dict(dataset="fashion_mnist", pool_fraction=0.02, seeds=5, first_seed=FIRST_STUDENT_SEED,
                student="resnet8", student_width=0.5, teacher="resnet8", teacher_width=0.5,
                teacher_recipe=Recipe(epochs=120, batch_size=128, lr=0.05, eval_every=5),
                recipe=Recipe(epochs=144, batch_size=128, lr=0.05, eval_every=36),
                regime=REGIME),
    # The paper: CIFAR-100, ResNet-56 teachers and student, gnosis defaults (300 epochs, SGD Nesterov 0.05,
    # weight decay 1e-4, cosine, batch 128).
    "paper": dict(dataset="cifar100", pool_fraction=1.0, seeds=3, first_seed=FIRST_STUDENT_SEED,
                  student="resnet56", teacher="resnet56",
                  teacher_recipe=Recipe(epochs=300, batch_size=128, lr=0.05, nesterov=True, weight_decay=1e-4),
                  recipe=Recipe(epochs=300, batch_size=128, lr=0.05, nesterov=True, weight_decay=1e-4),
                  regime=REGIME),
}



def v3_profiles(first_seed: int, seeds: int) -> dict:
    """A fidelity finding's scales under protocol v3: at cpu, a 240-epoch teacher evaluated every epoch over
    its late phase (its plateau is the premise; the 120-epoch one, evaluated every 5 epochs, cannot show one),
    published and pinned (results/teachers/resnet8-e6a678c264c8, 83.06%, trained at 76398ac on an AMD EPYC
    with AVX-512), students evaluated every 4 epochs over theirs (the budget arm's drift), fresh seeds; smoke
    as before."""
    def late(p: dict) -> dict:
        return {**p, "recipe": dataclasses.replace(p["recipe"], late_eval_every=4)}
    return {"smoke": PROFILES["smoke"],
            "cpu": {**late(PROFILES["cpu"]), "seeds": seeds, "first_seed": first_seed,
                    "teacher_recipe": Recipe(epochs=240, batch_size=128, lr=0.05, eval_every=5, late_eval_every=1),
                    "teacher_weights": "39e5f03939924e9d175c953b237615c5221d1debb7026086bff429379fec6d02"},
            "paper": late(PROFILES["paper"])}


METRICS = {"final_test_top1": "test top-1", "final_test_agreement": "test agreement",
           "final_train_clean_agreement": "train agreement", "final_test_kl_teacher_student": "test KL",
           "final_train_clean_kl_teacher_student": "train KL", "final_test_ece": "test ECE"}


def metric(rows: pd.DataFrame, name: str):
    """label -> that condition's metric per seed (analysis.metric_of for any column)."""
    return analysis.metric_of(rows, "condition", name)


def table(rows: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """One line per condition: mean ± std over seeds of every fidelity metric present."""
    out = {"condition": conditions}
    for column, title in METRICS.items():
        if column in rows:
            s = analysis.summarise(rows.assign(value=rows[column]), "condition", "value").set_index("condition")
            out[title] = [analysis.fmt(s.loc[c, "mean"], s.loc[c, "std"], int(s.loc[c, "n"]))
                          if c in s.index and s.loc[c, "n"] > 0 else "" for c in conditions]
    return pd.DataFrame(out)
