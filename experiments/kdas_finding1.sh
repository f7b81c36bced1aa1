#!/usr/bin/env bash
# KDAS Finding 1: distil only on the samples with the most knowledge (highest KL_TS). See experiments/kdas_finding1.py.
# Usage: bash experiments/kdas_finding1.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.kdas_finding1 "$@"
