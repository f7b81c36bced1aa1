#!/usr/bin/env bash
# KDAS Finding 2: a decreasing sampling ratio beats a fixed one. See experiments/kdas_finding2.py.
# Usage: bash experiments/kdas_finding2.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.kdas_finding2 "$@"
