#!/usr/bin/env bash
# KDAS Finding 1: distil only on the samples with the most knowledge (highest KL_TS). See experiments/kdas_finding1.py.
# Usage: bash experiments/kdas_finding1.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
exec python "$(dirname "$0")/kdas_finding1.py" "$@"
