"""Request length distributions (prompt and output tokens), sampled from a seeded Generator.

A length is a plain number (every request gets it) or a `LengthDist`:
fixed, lognormal (mean and sigma of the underlying normal's shape), uniform
(min..max) or exponential (mean). Samples are rounded to integers and clipped
to [min or 1, max].
"""
from __future__ import annotations

import numpy as np

from simulator.errors import InputError
from simulator.schema.scenario import LengthDist

# Default lognormal shape when none is given: sigma = 1 gives a coefficient of
# variation sqrt(exp(1) - 1) = 1.31, the heavy right tail of chat traces.
DEFAULT_LOGNORMAL_SIGMA = 1.0


def as_dist(spec: float | LengthDist) -> LengthDist:
    """A number means every request has that length."""
    if isinstance(spec, LengthDist):
        return spec
    return LengthDist(kind="fixed", mean=float(spec))


def sample_lengths(spec: float | LengthDist, n: int, rng: np.random.Generator,
                   field: str = "serving.prompt_tokens") -> np.ndarray:
    """`n` integer lengths >= 1 drawn from `spec`."""
    d = as_dist(spec)
    lo = d.min if d.min is not None else 1.0
    hi = d.max if d.max is not None else np.inf
    if lo > hi:
        raise InputError(f"min {lo:g} is above max {hi:g}", field=field)
    if d.kind == "fixed":
        x = np.full(n, d.mean)
    elif d.kind == "lognormal":
        sigma = d.sigma if d.sigma is not None else DEFAULT_LOGNORMAL_SIGMA
        mu = np.log(d.mean) - sigma**2 / 2.0          # E[X] = exp(mu + sigma^2/2) = mean
        x = rng.lognormal(mu, sigma, size=n)
    elif d.kind == "uniform":
        a = lo
        b = d.max if d.max is not None else 2.0 * d.mean - a
        if b < a:
            raise InputError("uniform lengths need max >= min (or mean above min)", field=field)
        x = rng.uniform(a, b, size=n)
    elif d.kind == "exponential":
        x = rng.exponential(d.mean, size=n)
    else:  # pragma: no cover - the schema's Literal forbids it
        raise InputError(f"unknown length distribution {d.kind!r}", field=field)
    return np.clip(np.rint(x), max(lo, 1.0), hi).astype(np.int64)


def mean_length(spec: float | LengthDist) -> float:
    """The nominal mean (before clipping), for sizing and reports."""
    return float(as_dist(spec).mean)
