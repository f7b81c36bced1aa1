#!/usr/bin/env bash
# Set-up in one command: the Python requirements, and Fashion-MNIST (the cpu scale's data) where it is missing.
# Used by .ci/run too. A folder of your own: KD_DATA=DIR (or --data-dir DIR on every script).
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install -q -r requirements.txt
if [ -n "${KD_DATA:-}" ] || [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist
else
  echo "Fashion-MNIST is not installed and this system has no apt-get. Put its four idx files" \
       "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz," \
       "t10k-labels-idx1-ubyte.gz) in a folder and set KD_DATA to it (or pass --data-dir)." >&2
  exit 1
fi
