"""The library entry point: distil (or train) any timm model on your own torch Datasets with this repo's
losses and its one training loop (kd.train.fit), without the experiment harness. docs/library.md has the
walk-through; examples/ runs it.

    import kd.api
    result = kd.api.distill(student, teacher, train_set, test_set, loss="dkd", epochs=30, lr=0.05)
    result["final"]["test_top1"], result["history"]        # and result["student"], trained in place

`train_set` / `test_set`: map-style Datasets of (image tensor, label), augmentation in their transforms;
`clean_train_set`, if given, holds the training images without augmentation (train fidelity). A loss is a
name of kd.objectives.LOSSES (register your own there, see examples/new_loss.py) or an objective object.
"""
from __future__ import annotations

import torch

from kd import objectives
from kd.data import LoaderData
from kd.logit_cache import Teacher
from kd.recipe import Recipe
from kd.samplers import Shuffle
from kd.train import fit


def distill(student: torch.nn.Module, teacher: torch.nn.Module | None, train_set, test_set, loss="kd",
            epochs: int = 10, batch_size: int = 128, lr: float = 0.05, schedule: str = "cosine", seed: int = 0,
            device: str = "cpu", clean_train_set=None, num_classes: int | None = None, workers: int = 0,
            keep_best: bool = True, **loss_options) -> dict:
    """Train `student` on `train_set` with `loss` against `teacher` (None with loss "ce": from labels) for
    `epochs` of SGD (momentum 0.9, weight decay 5e-4, the given schedule), evaluating on `test_set` at the
    end of each epoch. Returns kd.train.fit's result (history, final and best metrics, best_state with
    keep_best) and the trained `student`."""
    data = LoaderData(train_set, test_set, clean_train_set, num_classes, workers=workers).to(device)
    recipe = Recipe(epochs=epochs, batch_size=batch_size, lr=lr, schedule=schedule, eval_every=1)
    objective = loss if callable(loss) else objectives.make_objective(loss, epochs, **loss_options)
    frozen = None
    if teacher is not None:
        teacher = teacher.to(device).eval().requires_grad_(False)
        frozen = Teacher([teacher], data, cache=False)  # random views are not keyed: no logit cache
    sampler = Shuffle(torch.arange(len(data.targets("train"))), batch_size, seed)
    torch.manual_seed(seed)
    result, = fit([student], [objective], data, sampler, recipe, seed, frozen, torch.device(device),
                  keep_best=keep_best)
    return {**result, "student": student}
