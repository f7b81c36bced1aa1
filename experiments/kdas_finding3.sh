#!/usr/bin/env bash
# KDAS Finding 3: distil on samples of medium teacher-label divergence. See experiments/kdas_finding3.py.
# Usage: bash experiments/kdas_finding3.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.kdas_finding3 "$@"
