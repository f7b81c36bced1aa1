#!/usr/bin/env bash
# VanillaKD: the data scale decides which KD wins. See experiments/vanillakd_data_scale.py.
# Usage: bash experiments/vanillakd_data_scale.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.vanillakd_data_scale "$@"
