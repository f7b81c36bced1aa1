#!/usr/bin/env bash
# KDAS: adaptive sampling makes KD faster at equal or better accuracy. See experiments/kdas_method.py.
# Usage: bash experiments/kdas_method.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.kdas_method "$@"
