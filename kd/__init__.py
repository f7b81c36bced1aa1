"""kd: one small library for reproducing knowledge-distillation findings (losses, samplers, schedules,
one training loop, metrics, teachers, run records and the experiment harness) on timm models."""
import kd.models  # noqa: F401  (registers the CIFAR zoo with timm)
