#!/usr/bin/env bash
# Every finding in turn, then the results page (results/README.md). See experiments/all.py.
# Usage: bash experiments/all.sh [--profile smoke|cpu|paper] [--jobs N] [--dry-run]
# Runs as a module of this checkout (no install needed), from any working directory.
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec python -m experiments.all "$@"
