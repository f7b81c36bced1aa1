#!/usr/bin/env bash
# Fidelity (Stanton et al.): a student initialised between random and its teacher. See experiments/fidelity_optimisation.py.
# Usage: bash experiments/fidelity_optimisation.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.fidelity_optimisation "$@"
