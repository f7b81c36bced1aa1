#!/usr/bin/env bash
# DIST's stronger-teacher gap: KD, DIST and DKD from teachers of rising accuracy. See experiments/dist_stronger_teacher.py.
# Usage: bash experiments/dist_stronger_teacher.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
# Runs the finding as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.dist_stronger_teacher "$@"
