#!/usr/bin/env bash
# Early-stopped KD (ESKD) beats full KD (Cho & Hariharan, ICCV 2019). See experiments/eskd.py.
# Usage: bash experiments/eskd.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.eskd "$@"
