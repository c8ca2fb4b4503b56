#!/usr/bin/env bash
# The main job: check every example spec, summarize and draw LeNet-5, train it on 4,000
# MNIST digits (the spec's 20 epochs; EPOCHS=N for fewer), evaluate on the 1,000 held out,
# and predict with the saved model.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
python -m nngraph check --quiet specs/*.yaml specs/*.json && echo "all specs valid"
python -m nngraph summary specs/lenet5.yaml
python -m nngraph viz specs/lenet5.yaml -o out/lenet5.svg
python -m nngraph viz specs/inception.yaml -o out/inception.svg
python -m nngraph train specs/lenet5.yaml ${EPOCHS:+--epochs "$EPOCHS"} --out out/lenet5.nnz
python -m nngraph eval out/lenet5.nnz
python -m nngraph predict out/lenet5.nnz --limit 5
