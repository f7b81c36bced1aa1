"""`python -m kd train ...` trains a model from labels (e.g. a teacher) and `python -m kd distill ...`
distils a student from a teacher. Every run appends a row to <results>/runs.csv and writes its per-epoch
history to <results>/histories/<run_id>.csv. Input is checked before any compute is spent.

torch, timm and the library are imported by the commands, not at the top: `--help` answers at once.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from kd.errors import KDError
from kd.recipe import CIFAR_RECIPE, IMAGENET_RECIPE, Recipe

# The losses distill takes (kd.objectives.LOSSES but "ce", labels only); a test keeps them in step.
DISTILL_LOSSES = ("kd", "dkd", "dist", "bkl")

# Per-dataset default recipes (one per dataset of kd.datasets.DATASETS; a test keeps them in step): the
# papers' for CIFAR and ImageNet; a short one for the offline Fashion-MNIST scale.
DEFAULT_RECIPES = {"fashion_mnist": Recipe(epochs=10, batch_size=128, lr=0.05, schedule="cosine"),
                   "cifar10": CIFAR_RECIPE, "cifar100": CIFAR_RECIPE, "imagefolder": IMAGENET_RECIPE}


def _common(p: argparse.ArgumentParser):
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="fashion_mnist", help=f"one of {', '.join(DEFAULT_RECIPES)}")
    g.add_argument("--data-dir", help="dataset folder (default: $KD_DATA, then the Debian package path)")
    g.add_argument("--subset-fraction", type=float, default=1.0,
                   help="train on a seeded class-balanced fraction of the training set, in (0, 1]")
    g = p.add_argument_group("optimisation (defaults: the dataset's recipe)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--momentum", type=float)
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--schedule", choices=["cosine", "step"])
    g.add_argument("--milestones", type=int, nargs="*", help="epochs after which a step schedule decays")
    g.add_argument("--warmup-epochs", type=int)
    g.add_argument("--eval-every", type=int)
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:N]")
    g.add_argument("--results", type=Path, default=Path("results/cli"),
                   help="folder for runs.csv and histories/ (default results/cli)")


def recipe_from_args(args) -> Recipe:
    """The dataset's recipe with the options given; a shorter or longer --epochs without --milestones
    moves the recipe's step milestones to the same fractions of the run (and says so)."""
    default = DEFAULT_RECIPES[args.dataset]
    base = default.as_dict()
    for key in base:
        value = getattr(args, key, None)
        if value is not None:
            base[key] = value
    if args.milestones is None and args.epochs is not None and args.epochs != default.epochs and default.milestones:
        base["milestones"] = sorted({min(max(1, round(m * args.epochs / default.epochs)), args.epochs)
                                     for m in default.milestones}) if args.epochs >= 1 else []
        print(f"note: --epochs {args.epochs} moves the {args.dataset} recipe's step milestones "
              f"{list(default.milestones)} (of {default.epochs} epochs) to {base['milestones']}", file=sys.stderr)
    return Recipe.from_dict(base)


def _check_inputs(args, *models: tuple[str, float]):
    """Names, numbers and the results folder, before any data is loaded or compute spent."""
    from kd import records
    from kd.datasets import DATASETS
    from kd.models import create_model
    if args.dataset not in DATASETS:
        raise KDError(f"Unknown dataset '{args.dataset}'. Valid datasets: {', '.join(DATASETS)}.")
    for name, width in models:
        create_model(name, 10, 1, width)
    records.check_writable(args.results)


def _load(args):
    """Device and data first (a missing dataset is the first thing said), then the recipe."""
    from kd.datasets import load_dataset
    from kd.device import resolve_device
    device = resolve_device(args.device)
    data = load_dataset(args.dataset, args.data_dir, device)
    return device, data, recipe_from_args(args)


def _record(args, config: dict, result: dict, device):
    from kd import records
    row = records.make_row(config, result, args.seed, device, result.get("extra"))
    records.write_history(args.results / "histories" / f"{row['run_id']}.csv", result["history"])
    records.append_row(args.results / "runs.csv", row)
    print(f"{config['kind']} done: test top-1 {result['final']['test_top1']:.2f} (best "
          f"{result['best']['test_top1']:.2f} at epoch {result['best']['epoch']}), {result['wall_s']:.0f}s; "
          f"row {row['run_id']} in {args.results / 'runs.csv'}")


def cmd_train(args):
    from kd.teachers import teacher_spec, train_teacher
    _check_inputs(args, (args.model, args.width))
    if not 0 <= args.label_smoothing < 1:
        raise KDError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}.")
    device, data, recipe = _load(args)
    spec = teacher_spec(args.model, data, args.subset_fraction, recipe, args.seed, args.width,
                        args.label_smoothing)
    _, info, result = train_teacher(spec, data, device)
    _record(args, {"kind": "train", **spec}, result, device)
    print(f"checkpoint: {info['path']} (use it with --teacher-ckpt, or --teacher {args.model} with the same "
          f"options to reuse it)")


def cmd_distill(args):
    """Build the run's config as an experiment does and run it through kd.run.distill: a CLI run and an
    experiment run of the same config train the same way."""
    from kd.config import RunConfig
    from kd.objectives import make_objective
    from kd.run import Context, distill
    _check_inputs(args, (args.student, args.width), *([(args.teacher, args.teacher_width)] if args.teacher else []))
    options = {k: getattr(args, k) for k in ("temperature", "alpha", "beta", "gamma", "warmup",
                                             "ce_weight", "kd_weight", "stop_epoch")
               if getattr(args, k) is not None}
    if args.loss == "ce":
        raise KDError(f"distill needs a distillation loss ({', '.join(DISTILL_LOSSES)}); train a model from labels with "
                      "`python -m kd train`.")
    if (args.teacher is None) == (args.teacher_ckpt is None):
        raise KDError("Give the teacher either as a model name (--teacher, trained or loaded through the "
                      "teacher cache) or as a checkpoint file (--teacher-ckpt), not both and not neither.")
    if args.teacher_ckpt and not Path(args.teacher_ckpt).is_file():
        raise KDError(f"Teacher checkpoint {args.teacher_ckpt} does not exist.")
    objective = make_objective(args.loss, 10**6, **{k: v for k, v in options.items() if k != "stop_epoch"})
    # the row records every option the loss ran with, the defaults included, not only those given
    options = {**{f.name: getattr(objective, f.name) for f in fields(objective)
                  if f.name not in ("sample_weights", "stop_epoch")}, **options}
    ctx = Context({"dataset": args.dataset}, args.device, args.data_dir)
    ctx.data  # a missing dataset is the first thing said, before the recipe
    recipe = recipe_from_args(args)
    if args.teacher_ckpt:
        teacher = {"checkpoint": str(args.teacher_ckpt)}
    else:
        epochs = recipe.epochs if args.teacher_epochs is None else args.teacher_epochs
        t_recipe = Recipe.from_dict({**recipe.as_dict(), "epochs": epochs,
                                     "milestones": [m for m in recipe.milestones if m <= epochs]})
        teacher = {"model": args.teacher, "width": args.teacher_width, "recipe": t_recipe.as_dict(),
                   "seed": args.teacher_seed, "pool_fraction": args.teacher_subset_fraction}
    config = {"experiment": "cli", "kind": "distill", "condition": f"{args.loss} {args.student}",
              "seed": args.seed, "dataset": args.dataset, "data_options": {}, "pool_fraction": args.subset_fraction,
              "student": args.student, "student_width": args.width, "teacher": teacher,
              "recipe": recipe.as_dict(), "loss": args.loss, "loss_options": options}
    config = RunConfig.from_dict(config).check()
    _, info = ctx.teacher(config)
    print(f"teacher {info['arch']}: test top-1 {info['test_top1']:.2f} ({info['path']})")
    result = distill(config, ctx, ctx.pool(args.subset_fraction))
    _record(args, config.as_dict(), result, ctx.device)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from labels (e.g. a teacher); cached for later distill")
    p.add_argument("--model", required=True, help="CIFAR zoo (resnet8..110, resnet8x4, resnet32x4, wrn_*) or "
                                                  "any timm model name")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (CIFAR zoo)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="distil a student from a teacher")
    p.add_argument("--student", required=True)
    p.add_argument("--width", type=float, default=1.0, help="student width multiplier (CIFAR zoo)")
    p.add_argument("--teacher", help="teacher model name, trained with the same recipe or loaded from cache")
    p.add_argument("--teacher-width", type=float, default=1.0)
    p.add_argument("--teacher-epochs", type=int, help="teacher training epochs (default: the student's)")
    p.add_argument("--teacher-seed", type=int, default=0)
    p.add_argument("--teacher-subset-fraction", type=float, default=1.0,
                   help="the teacher's class-balanced training fraction (default: all)")
    p.add_argument("--teacher-ckpt", help="a teacher checkpoint file instead of --teacher")
    p.add_argument("--loss", default="kd", help=f"one of {', '.join(DISTILL_LOSSES)}")
    p.add_argument("--temperature", type=float, help="T of KD, DKD and DIST (DIST's tau) (default: the loss's)")
    p.add_argument("--ce-weight", type=float, help="weight of the label term (default: the loss's official CIFAR "
                                                   "setting: KD 0.1, DKD and DIST 1)")
    p.add_argument("--kd-weight", type=float, help="weight of the distillation term (default: KD 0.9, DKD and "
                                                   "DIST 1)")
    p.add_argument("--alpha", type=float, help="DKD's TCKD weight")
    p.add_argument("--beta", type=float, help="DKD's NCKD weight, DIST's inter-class weight")
    p.add_argument("--gamma", type=float, help="DIST's intra-class weight")
    p.add_argument("--warmup", type=int, help="DKD's warm-up epochs")
    p.add_argument("--stop-epoch", type=int, help="ESKD: switch the distillation term off after this epoch")
    _common(p)
    p.set_defaults(func=cmd_distill)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for flag in ("subset_fraction", "teacher_subset_fraction"):
            value = getattr(args, flag, 1.0)
            if not 0 < value <= 1:
                raise KDError(f"--{flag.replace('_', '-')} must be in (0, 1], got {value}.")
        args.func(args)
    except KDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
