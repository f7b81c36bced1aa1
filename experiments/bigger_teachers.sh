#!/usr/bin/env bash
# Bigger models are not better teachers (Cho & Hariharan, ICCV 2019). See experiments/bigger_teachers.py.
# Usage: bash experiments/bigger_teachers.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.bigger_teachers "$@"
