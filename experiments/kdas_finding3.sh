#!/usr/bin/env bash
# KDAS Finding 3: distil on samples of medium teacher-label divergence. See experiments/kdas_finding3.py.
# Usage: bash experiments/kdas_finding3.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
exec python "$(dirname "$0")/kdas_finding3.py" "$@"
