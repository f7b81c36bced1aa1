#!/usr/bin/env bash
# Early-stopped KD (ESKD) beats full KD (Cho & Hariharan, ICCV 2019). See experiments/eskd.py.
# Usage: bash experiments/eskd.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
exec python "$(dirname "$0")/eskd.py" "$@"
