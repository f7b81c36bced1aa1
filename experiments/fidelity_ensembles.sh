#!/usr/bin/env bash
# Fidelity (Stanton et al.): self-distillation from ensembles of 1, 3, 5 teachers. See experiments/fidelity_ensembles.py.
# Usage: bash experiments/fidelity_ensembles.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.fidelity_ensembles "$@"
