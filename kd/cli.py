"""`python -m kd train ...` trains a model from labels (e.g. a teacher), `python -m kd distill ...` distils a
student from a teacher, `python -m kd eval CKPT` evaluates a saved model and `python -m kd list WHAT` lists
the models, losses, datasets and findings. Every run appends a row to <out>/runs.csv, writes its per-epoch
history to <out>/histories/<run_id>.csv and its model, final and best, to <out>/students/<run_id>/ as
safetensors files timm loads, beside the run's config and the options that rerun it (cli.yaml:
`--config cli.yaml`). A killed run resumes when started again. Input is checked before any compute is spent.

torch, timm and the library are imported by the commands, not at the top: `--help` answers at once.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from kd.errors import KDError, os_failure
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
    g.add_argument("--decode", choices=["pil", "once"], default="pil",
                   help="imagefolder: decode every epoch with PIL (the papers' views), or once into a uint8 cache "
                        "with crops on the training device (faster; crops from the centre square, kd/folder_cache.py)")
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
    g.add_argument("--out", "--results", dest="results", type=Path, default=Path("results/cli"),
                   help="folder for runs.csv, histories/ and students/ (default results/cli)")
    g.add_argument("--log", choices=["csv", "tensorboard"], default="csv",
                   help="tensorboard: also write each epoch's metrics as TensorBoard scalars (<out>/tensorboard/)")
    g.add_argument("--config", type=Path, help="a YAML file of these options (a run's cli.yaml reruns it); "
                                               "options on the command line win")
    g.add_argument("--print-config", action="store_true", help="print the options as YAML and exit")


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
    from kd import preflight, records
    from kd.datasets import DATASETS
    from kd.models import create_model
    if args.dataset not in DATASETS:
        raise KDError(f"Unknown dataset '{args.dataset}'. Valid datasets: {', '.join(DATASETS)}.")
    if getattr(args, "decode", "pil") != "pil" and args.dataset != "imagefolder":
        raise KDError(f"--decode {args.decode} is for imagefolder data; {args.dataset} is held as tensors already.")
    for name, width in models:
        create_model(name, 10, 1, width)
    for flag in ("seed", "teacher_seed"):
        if hasattr(args, flag):
            preflight.seed(getattr(args, flag), f"--{flag.replace('_', '-')}")
    preflight.environment()
    records.check_writable(args.results)
    import importlib.util
    if args.log == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise KDError("--log tensorboard writes through torch's SummaryWriter, which needs the tensorboard package: "
                      "pip install tensorboard (or leave --log at csv).")


def data_options(args) -> dict:
    return {"decode": args.decode} if getattr(args, "decode", "pil") != "pil" else {}


def _load(args):
    """Device and data first (a missing dataset is the first thing said), then the recipe."""
    from kd.datasets import load_dataset
    from kd.device import resolve_device
    device = resolve_device(args.device)
    data = load_dataset(args.dataset, args.data_dir, device, **data_options(args))
    return device, data, recipe_from_args(args)


def _record(args, config: dict, result: dict, device, out, model=None, data=None):
    """The run's row and history; its model, final and best, beside its config and the options that rerun
    it (distill saves its student inside the run; `model` is train's); TensorBoard scalars if asked."""
    import yaml

    from kd import records
    from kd.run import save_student
    row = records.make_row(config, result, args.seed, device, result.get("extra"))
    if model is not None:
        save_student(out.student(row["run_id"]), config, model, result, data)
    folder = out.student(row["run_id"])
    width = config.get("student_width", config.get("width", 1.0))
    width = f", width={width:g}" if width != 1.0 else ""
    records.write_text(folder / "cli.yaml", yaml.safe_dump(_options(args), sort_keys=False))
    records.write_history(out.history(row["run_id"]), result["history"])
    records.append_row(out.runs, row)
    for path in (out.state(row["run_id"]), records.sum_path(out.state(row["run_id"]))):
        path.unlink(missing_ok=True)  # recorded: nothing to resume any more
    if args.log == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter
        with SummaryWriter(str(args.results / "tensorboard" / row["run_id"])) as writer:
            for epoch in result["history"]:
                for k, v in epoch.items():
                    if k != "epoch" and isinstance(v, (int, float)):
                        writer.add_scalar(k, v, epoch["epoch"])
    print(f"{config['kind']} done: test top-1 {result['final']['test_top1']:.2f} (best "
          f"{result['best']['test_top1']:.2f} at epoch {result['best']['epoch']}), {result['wall_s']:.0f}s; "
          f"row {row['run_id']} in {out.runs}; model (final.safetensors, best.safetensors) in {folder}/: "
          f"timm.create_model({config.get('student') or config['model']!r}, num_classes={data.num_classes}, "
          f"in_chans={data.in_chans}{width}, checkpoint_path=...) after `import kd`")


def _outputs(args):
    from kd.analysis import Outputs
    return Outputs(args.results, None, save_students=True)


def cmd_train(args):
    from kd.teachers import teacher_spec, train_teacher
    _check_inputs(args, (args.model, args.width))
    if not 0 <= args.label_smoothing < 1:
        raise KDError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}.")
    device, data, recipe = _load(args)
    spec = teacher_spec(args.model, data, args.subset_fraction, recipe, args.seed, args.width,
                        args.label_smoothing)
    model, info, result = train_teacher(spec, data, device)
    _record(args, {"kind": "train", **spec}, result, device, _outputs(args), model, data)
    print(f"teacher checkpoint: {info['path']} (use it with --teacher-ckpt, or --teacher {args.model} with the "
          f"same options to reuse it)")


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
    if args.teacher is None and args.teacher_ckpt is None:
        raise KDError("Give the teacher as a model name (--teacher: trained here or loaded through the teacher "
                      "cache; with --teacher-pretrained, timm's pretrained weights) or as a checkpoint file "
                      "(--teacher-ckpt: this repo's, an mdistiller / RepDistiller one, or a bare state_dict, whose "
                      "model --teacher names).")
    if args.teacher_ckpt and not Path(args.teacher_ckpt).is_file():
        raise KDError(f"Teacher checkpoint {args.teacher_ckpt} does not exist.")
    ctx = Context({"dataset": args.dataset, "data": data_options(args)}, args.device, args.data_dir,
                  out=_outputs(args))
    ctx.data  # a missing dataset is the first thing said, before the recipe
    recipe = recipe_from_args(args)
    if args.loss == "dkd" and args.warmup is None:  # DKD's 20 warm-up epochs are mdistiller's 240-epoch setting
        options["warmup"] = max(1, round(20 * recipe.epochs / 240))
    objective = make_objective(args.loss, recipe.epochs, **{k: v for k, v in options.items() if k != "stop_epoch"})
    # the row records every option the loss ran with, the defaults included, not only those given
    options = {**{f.name: getattr(objective, f.name) for f in fields(objective)
                  if f.name not in ("sample_weights", "stop_epoch")}, **options}
    print(f"loss {args.loss}: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in options.items())
          + (f" (DKD's warm-up: 20 of mdistiller's 240 epochs, scaled to this run's {recipe.epochs})"
             if args.loss == "dkd" and args.warmup is None else ""))
    if args.teacher_ckpt:
        teacher = {"checkpoint": str(args.teacher_ckpt), **({"model": args.teacher} if args.teacher else {}),
                   **({"width": args.teacher_width} if args.teacher_width != 1.0 else {})}
    elif args.teacher_pretrained:
        teacher = {"model": args.teacher, "pretrained": True}
    else:
        epochs = recipe.epochs if args.teacher_epochs is None else args.teacher_epochs
        t_recipe = Recipe.from_dict({**recipe.as_dict(), "epochs": epochs,
                                     "milestones": [m for m in recipe.milestones if m <= epochs]})
        teacher = {"model": args.teacher, "width": args.teacher_width, "recipe": t_recipe.as_dict(),
                   "seed": args.teacher_seed, "pool_fraction": args.teacher_subset_fraction}
    config = {"experiment": "cli", "kind": "distill", "condition": f"{args.loss} {args.student}",
              "seed": args.seed, "dataset": args.dataset, "data_options": data_options(args),
              "pool_fraction": args.subset_fraction,
              "student": args.student, "student_width": args.width, "teacher": teacher,
              "recipe": recipe.as_dict(), "loss": args.loss, "loss_options": options}
    config = RunConfig.from_dict(config).check()
    _, info = ctx.teacher(config)
    print(f"teacher {info['arch']}: test top-1 {info['test_top1']:.2f} ({info['path']})")
    result = distill(config, ctx, ctx.pool(args.subset_fraction))
    _record(args, config.as_dict(), result, ctx.device, ctx.out, data=ctx.data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from labels (e.g. a teacher); cached for later distill")
    p.add_argument("--model", help="(required) CIFAR zoo (resnet8..110, resnet8x4, resnet32x4, wrn_*) or "
                                                  "any timm model name")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (CIFAR zoo)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="distil a student from a teacher")
    p.add_argument("--student", help="(required) the student's model name (CIFAR zoo or timm)")
    p.add_argument("--width", type=float, default=1.0, help="student width multiplier (CIFAR zoo)")
    p.add_argument("--teacher", help="teacher model name, trained with the same recipe or loaded from cache")
    p.add_argument("--teacher-width", type=float, default=1.0)
    p.add_argument("--teacher-epochs", type=int, help="teacher training epochs (default: the student's)")
    p.add_argument("--teacher-seed", type=int, default=0)
    p.add_argument("--teacher-subset-fraction", type=float, default=1.0,
                   help="the teacher's class-balanced training fraction (default: all)")
    p.add_argument("--teacher-ckpt", help="a teacher checkpoint file: this repo's, an mdistiller / RepDistiller "
                                          "CIFAR one (ckpt_epoch_240.pth), or a bare state_dict (--teacher names "
                                          "its model, --teacher-width its width)")
    p.add_argument("--teacher-pretrained", action="store_true",
                   help="--teacher is a timm name with pretrained ImageNet weights (e.g. resnet50.tv_in1k), read "
                        "from the local Hugging Face cache")
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

    p = sub.add_parser("eval", help="evaluate a saved model (top-1/5, NLL, ECE; agreement and KL with a teacher)")
    p.add_argument("checkpoint", help="a model file: a run's final/best.safetensors, a teacher, or any checkpoint "
                                      "--teacher-ckpt takes")
    p.add_argument("--model", help="its model, where the file does not say (a bare state_dict)")
    p.add_argument("--width", type=float, help="its width multiplier, where the file does not say")
    p.add_argument("--teacher-ckpt", help="a teacher to measure agreement and KL(teacher || model) against")
    p.add_argument("--teacher", help="the teacher's model, where its file does not say")
    p.add_argument("--teacher-width", type=float)
    p.add_argument("--dataset", default="fashion_mnist", help=f"one of {', '.join(DEFAULT_RECIPES)}")
    p.add_argument("--data-dir", help="dataset folder (default: $KD_DATA, then the Debian package path)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("list", help="list the models, losses, datasets or findings")
    p.add_argument("what", choices=["models", "losses", "datasets", "findings"])
    p.set_defaults(func=cmd_list)
    return parser


def _options(args) -> dict:
    """The options of a train / distill command as a config file holds them (what --config reads)."""
    skip = {"func", "config", "print_config", "command"}
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in skip}


def _with_config(parser, argv) -> argparse.Namespace:
    """The command line over a --config file's options (the file's keys are the options' names, with _)."""
    args = parser.parse_args(argv)
    if getattr(args, "config", None) is None:
        return args
    import yaml
    try:
        given = yaml.safe_load(Path(args.config).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KDError(f"--config {args.config} could not be read as YAML ({type(exc).__name__}).") from None
    if not isinstance(given, dict):
        raise KDError(f"--config {args.config} could not be read as YAML options: it holds no mapping of option "
                      f"names to values (write one as --print-config does).")
    known = set(_options(args))
    unknown = sorted(set(given) - known)
    if unknown:
        raise KDError(f"--config {args.config}: unknown option(s) {', '.join(unknown)}; the file's keys are "
                      f"{args.command}'s options: {', '.join(sorted(known))}.")
    sub = parser._subparsers._group_actions[0].choices[args.command]  # the command's own parser
    sub.set_defaults(**{k: Path(v) if k in ("results", "data_dir") and v is not None else v for k, v in given.items()})
    return parser.parse_args(argv)


REQUIRED = {"train": "model", "distill": "student"}  # on the command line or in --config


def _check_required(args):
    name = REQUIRED.get(args.command)
    if name is not None and getattr(args, name) is None:
        raise KDError(f"{args.command} needs --{name} (on the command line or in the --config file).")


def cmd_list(args):
    """The names each option takes."""
    if args.what == "models":
        from kd.models import CIFAR_MODELS
        print("CIFAR zoo (this repo):", ", ".join(CIFAR_MODELS))
        print("and every timm model: python -c \"import timm; print(timm.list_models())\"")
    elif args.what == "losses":
        print("\n".join(DISTILL_LOSSES) + "\n(train from labels: python -m kd train)")
    elif args.what == "datasets":
        print("\n".join(DEFAULT_RECIPES))
    else:  # the scripts, read from the folder (the library never imports a finding)
        from kd.records import REPO
        print("\n".join(f"{p.stem}: bash experiments/{p.name}" for p in sorted((REPO / "experiments").glob("*.sh"))
                        if p.stem != "all"))


def cmd_eval(args):
    """A saved model on a dataset's test set: top-1/5, NLL, ECE, and agreement / KL with a teacher if given."""
    from kd.metrics import classification_metrics
    from kd.run import Context
    from kd.teachers import load_checkpoint
    from kd.train import predict
    ctx = Context({"dataset": args.dataset}, args.device, args.data_dir)
    model, info = load_checkpoint(args.checkpoint, ctx.data, ctx.device, args.model, args.width)
    teacher = (load_checkpoint(args.teacher_ckpt, ctx.data, ctx.device, args.teacher, args.teacher_width)[0]
               if args.teacher_ckpt else None)
    targets = ctx.data.targets("test")
    metrics = classification_metrics(predict(model, ctx.data, "test"), targets,
                                      predict(teacher, ctx.data, "test") if teacher is not None else None)
    print(f"{args.checkpoint} ({info['arch']}, width {info['width']:g}) on {args.dataset} test ({len(targets)} images):")
    for k, v in metrics.items():
        print(f"  {k}: {v:.4f}")


def main(argv=None) -> int:
    try:
        args = _with_config(build_parser(), argv)
        _check_required(args)
        if getattr(args, "print_config", False):
            import yaml
            print(yaml.safe_dump(_options(args), sort_keys=False), end="")
            return 0
        for flag in ("subset_fraction", "teacher_subset_fraction"):
            value = getattr(args, flag, 1.0)
            if not 0 < value <= 1:
                raise KDError(f"--{flag.replace('_', '-')} must be in (0, 1], got {value}.")
        args.func(args)
    except KDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # only what can happen after the checks: a disk that fills up, a folder taken away
        print(f"error: {os_failure(exc)}", file=sys.stderr)
        return 1
    return 0
