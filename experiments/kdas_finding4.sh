#!/usr/bin/env bash
# KDAS Finding 4: down-weighting samples of poor knowledge quality helps KD. See experiments/kdas_finding4.py.
# Usage: bash experiments/kdas_finding4.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
exec python "$(dirname "$0")/kdas_finding4.py" "$@"
