#!/usr/bin/env bash
# Early-stopped teachers make better teachers (Cho & Hariharan, ICCV 2019). See experiments/early_stopped_teachers.py.
# Usage: bash experiments/early_stopped_teachers.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.early_stopped_teachers "$@"
