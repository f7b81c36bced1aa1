#!/usr/bin/env bash
# Bigger models are not better teachers (Cho & Hariharan, ICCV 2019). See experiments/bigger_teachers.py.
# Usage: bash experiments/bigger_teachers.sh [--profile smoke|cpu|paper] [--seeds N] [--dry-run] [--plot-only]
exec python "$(dirname "$0")/bigger_teachers.py" "$@"
