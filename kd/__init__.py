"""kd: one small library for reproducing knowledge-distillation findings (losses, samplers, schedules,
one training loop, metrics, teachers, run records and the experiment harness) on timm models.

Importing kd registers its CIFAR model zoo with timm (kd.models), so that `timm.create_model("resnet8")`
works after `import kd`; only `python -m kd` (the command line, sys.argv[0] "-m" while its package loads)
leaves that to the commands, so that `python -m kd --help` needs neither torch nor timm."""
import sys

if sys.argv[:1] != ["-m"]:
    import kd.models  # noqa: F401
