"""How well a generator's samples cover a mixture of Gaussians: the scores of the
unrolled-GAN paper (Metz et al. 2017) for dataset ring8 (nngraph/datasets.py).

    >>> from nngraph.gan_metrics import mode_coverage
    >>> cov = mode_coverage(model.predict(n=2500))     # a generator of points (n, 2)
    >>> cov.covered, cov.high_quality
    (8, 0.93)
    >>> str(cov)
    '8 of 8 modes covered, 93.0% of 2,500 samples within 3 sigma of a mode'

A sample is *high quality* when it lies within `sigmas` standard deviations (Euclidean
distance) of some mode's centre; a mode is *covered* when at least `min_fraction` of the
samples (and at least one) are high quality and nearest to it. With 3 sigma, 98.9% of the
data's own points are high quality (in 2-D, P(r < 3 sigma) = 1 - exp(-9/2)); a generator
that collapses onto one mode scores 1 of 8 however sharp its samples are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .datasets import RING8_STD, ring8_modes
from .errors import DataError


@dataclass(frozen=True)
class Coverage:
    covered: int                 # modes with at least `needed` high-quality samples
    modes: int                   # modes in all
    high_quality: float          # fraction of the samples within `sigmas` std of a mode
    counts: tuple                # high-quality samples nearest to each mode
    samples: int
    needed: int                  # the count that covers a mode
    sigmas: float

    def __str__(self) -> str:
        return (f"{self.covered} of {self.modes} modes covered, {self.high_quality:.1%} of "
                f"{self.samples:,} samples within {self.sigmas:g} sigma of a mode")

    def as_dict(self) -> dict:
        """The scores as a history or report has them."""
        return {"modes_covered": self.covered, "high_quality": self.high_quality}


def mode_coverage(samples, modes=None, std: float = RING8_STD, sigmas: float = 3.0,
                  min_fraction: float = 0.01) -> Coverage:
    """Score `samples` (n, d) against the mixture whose centres are `modes` (k, d; default
    ring8's 8) and whose components have standard deviation `std`. Raises DataError for
    samples that are not an (n, d) array of finite numbers matching the modes."""
    centres = ring8_modes() if modes is None else np.asarray(modes, np.float64)
    x = _points(samples, centres.shape[1])
    if std <= 0 or sigmas <= 0 or not 0 <= min_fraction <= 1:
        raise DataError(f"std and sigmas must be > 0 and min_fraction in [0, 1], got std="
                        f"{std}, sigmas={sigmas}, min_fraction={min_fraction}")
    # squared distances to every centre, (n, k), without an (n, k, d) temporary
    d2 = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
    nearest = d2.argmin(axis=1)
    good = d2[np.arange(len(x)), nearest] <= (sigmas * std) ** 2
    counts = np.bincount(nearest[good], minlength=len(centres))
    needed = max(1, math.ceil(min_fraction * len(x)))
    return Coverage(int((counts >= needed).sum()), len(centres), float(good.mean()),
                    tuple(int(c) for c in counts), len(x), needed, float(sigmas))


def _points(samples, dims: int) -> np.ndarray:
    if isinstance(samples, dict):
        if len(samples) != 1:
            raise DataError(f"mode_coverage scores one array of points; got the outputs "
                            f"{', '.join(samples)}: pass one of them")
        (samples,) = samples.values()
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != dims or len(x) == 0:
        raise DataError(f"mode_coverage needs samples of shape (n, {dims}) with n >= 1, got "
                        f"{x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"mode_coverage: {int((~np.isfinite(x)).any(axis=1).sum())} of "
                        f"{len(x)} samples are not finite (the generator diverged)")
    return x
