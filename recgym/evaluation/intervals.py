"""95% intervals over a few independent runs (seeds): Student-t, and the paired difference of two policies.

Intervals over test users within one run are bootstrap intervals
(:func:`recgym.evaluation.offline.bootstrap_interval`); over seeds, with three
to ten values, the Student-t interval is the standard one; its quantiles come
from :func:`scipy.stats.t.ppf`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

def t_quantile_975(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom (:func:`scipy.stats.t.ppf`)."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    # imported here: scipy.stats takes a noticeable part of a second to import, and most runs never need it
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def student_t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t interval of the mean (half-width 0 for a single value).

    NaN values are left out.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size < 2:
        return float(x.mean()), 0.0
    return float(x.mean()), float(t_quantile_975(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def paired_difference(values: Sequence[float], reference: Sequence[float]) -> tuple[float, float, float, int]:
    """Mean of ``values - reference`` over pairs (same seed), its 95% t interval, and the pairs used.

    Pairs with a NaN on either side are left out. The difference is significant at 5% (a paired
    t-test) exactly when the interval excludes 0.

    :returns: ``(mean, low, high, n_pairs)``; low = high = mean for one pair.
    """
    a, b = np.asarray(values, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same length, got {a.size} and {b.size}")
    diff = (a - b)[~(np.isnan(a) | np.isnan(b))]
    mean, half = student_t_interval(diff)
    return mean, mean - half, mean + half, int(diff.size)


def mean_and_sample_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``n - 1`` in the denominator; 0 for a single value) of ``values``.

    :raises ValueError: ``values`` is empty.
    """
    if len(values) == 0:
        raise ValueError("the mean of no values is undefined: pass at least one value")
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def mean_std_text(values: Sequence[float | None], signed: bool = False) -> str:
    """``"mean ± std"`` over seeds to 4 decimals, for the result tables (None and NaN values left out).

    One value prints as its mean alone, none as ``-``.

    :param values: one figure per seed.
    :param signed: print the mean with its sign (``+0.0123``), for differences.
    """
    kept = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not kept:
        return "-"
    mean, std = mean_and_sample_std(kept)
    fmt = "+.4f" if signed else ".4f"
    return f"{mean:{fmt}}" if len(kept) == 1 else f"{mean:{fmt}} ± {std:.4f}"
