"""The figures of README.md "Starting from a trained model": specs/transfer/
digits_from_mnist.yaml trained from LeNet-5's MNIST filters and from scratch, with its two
convolutions trainable and frozen, over three seeds (cpu backend).

    python tools/transfer_figures.py [--seeds 3]

Trains specs/lenet5.yaml first (into a temporary folder), as the README's first command
does; prints one line per variant: the final training and validation accuracy per seed.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import nngraph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "transfer", "digits_from_mnist.yaml")


def variant(text: str, start_from: str | None, frozen: bool) -> str:
    """The example's spec text, starting from `start_from` (None: from scratch), its two
    convolutions frozen or not."""
    text = text.replace("  init_from: lenet5.nnz", f"  init_from: {start_from}"
                        if start_from else "")
    if frozen:
        text = text.replace("activation: relu}", "activation: relu, trainable: false}", 2)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    with open(SPEC, encoding="utf-8") as f:
        text = f.read()
    with tempfile.TemporaryDirectory() as tmp:
        pretrained = os.path.join(tmp, "lenet5.nnz")
        lenet = nngraph.compile(os.path.join(ROOT, "specs", "lenet5.yaml"))
        lenet.fit(verbose=0)
        lenet.save(pretrained)
        print(f"LeNet-5 on MNIST: val_accuracy {lenet.history['val_accuracy'][-1]:.4f}")
        for name, start, frozen in (("MNIST filters", pretrained, False),
                                    ("from scratch", None, False),
                                    ("MNIST filters, frozen", pretrained, True),
                                    ("random filters, frozen", None, True)):
            path = os.path.join(tmp, "variant.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(variant(text, start, frozen))
            runs = []
            for seed in range(args.seeds):
                h = nngraph.compile(path, seed=seed).fit(verbose=0)
                runs.append(f"{h['accuracy'][-1]:.2f}/{h['val_accuracy'][-1]:.3f}")
            print(f"{name:24s} train/val accuracy per seed: {'  '.join(runs)}")


if __name__ == "__main__":
    main()
