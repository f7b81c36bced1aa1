#!/usr/bin/env bash
# KDAS Finding 4: down-weighting samples of poor knowledge quality helps KD. See experiments/kdas_finding4.py.
# Usage: bash experiments/kdas_finding4.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.kdas_finding4 "$@"
