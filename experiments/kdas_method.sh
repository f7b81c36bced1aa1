#!/usr/bin/env bash
# KDAS: adaptive sampling makes KD faster at equal or better accuracy. See experiments/kdas_method.py.
# Usage: bash experiments/kdas_method.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
exec python "$(dirname "$0")/kdas_method.py" "$@"
