"""Add a distillation loss in about twenty lines and run it through the command line.

    python -m examples.new_loss distill --student resnet8 --width 0.5 --teacher resnet14 --loss mse_logits \
        --epochs 2 --subset-fraction 0.05 --out results/cli_mse

A loss is a pure function of tensors; an objective adds its weights and options (a dataclass: the options
are checked as it is made, recorded in the run's row and hashed into its id). Registering the class in
kd.objectives.LOSSES makes it a `--loss` of `python -m kd distill`, of kd.api.distill and of any finding's
config.
"""
import sys
from dataclasses import dataclass

import torch

from kd import objectives
from kd.cli import main


def mse_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error between the logits (Ba & Caruana 2014; Kim et al. 2021, Eq. 3)."""
    return (student_logits - teacher_logits).pow(2).mean(dim=1)


@dataclass
class MSELogits(objectives.Distillation):
    """ce_weight CE + kd_weight mean_i MSE(z_s, z_t)."""
    ce_weight: float = 1.0
    kd_weight: float = 1.0

    def term(self, s, t, y, epoch):
        return mse_logits(s, t)


objectives.LOSSES["mse_logits"] = MSELogits

if __name__ == "__main__":
    sys.exit(main())
