#!/usr/bin/env bash
# KDAS Finding 2: a decreasing sampling ratio beats a fixed one. See experiments/kdas_finding2.py.
# Usage: bash experiments/kdas_finding2.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
exec python "$(dirname "$0")/kdas_finding2.py" "$@"
