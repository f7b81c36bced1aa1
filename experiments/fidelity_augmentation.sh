#!/usr/bin/env bash
# Fidelity (Stanton et al.): augmenting the distillation data. See experiments/fidelity_augmentation.py.
# Usage: bash experiments/fidelity_augmentation.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.fidelity_augmentation "$@"
