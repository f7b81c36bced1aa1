#!/usr/bin/env bash
# Early-stopped teachers make better teachers (Cho & Hariharan, ICCV 2019). See experiments/early_stopped_teachers.py.
# Usage: bash experiments/early_stopped_teachers.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
exec python "$(dirname "$0")/early_stopped_teachers.py" "$@"
