"""Grading off-policy estimates against the simulator's truth: errors over logs, policy distance, rankings.

The pieces ``scripts/ope.py`` (docs/results/ope.md) builds its tables from, usable on any grid of
logs and targets: :func:`error_summary` (bias, RMSE and interval coverage of one estimator's estimates
of one target over several logs), :func:`policy_divergence` (how far a target is from the logging
policy, on the logged states) and :func:`ranking_agreement` (whether estimates order policies as their
true values do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recgym.evaluation.ope import CHUNK, OPEEstimate
from recgym.evaluation.transitions import ActionProbabilities, TransitionLog, available_items


def error_summary(estimates: Sequence[OPEEstimate], truth: float) -> dict[str, float]:
    """One estimator's estimates of one target over several logs, against the target's true value.

    :returns: ``mean`` estimate, ``bias`` (mean error), ``rmse``, ``coverage`` (the share of the
        intervals that hold ``truth``) and ``ess`` (the mean effective sample size; NaN for DM and FQE).
    """
    if not estimates:
        raise ValueError("no estimates to summarise")
    values = np.array([e.value for e in estimates], dtype=np.float64)
    errors = values - float(truth)
    covered = [e.low <= truth <= e.high for e in estimates]
    return {"mean": float(values.mean()), "bias": float(errors.mean()),
            "rmse": float(np.sqrt(np.mean(errors ** 2))), "coverage": float(np.mean(covered)),
            "ess": float(np.mean([e.effective_sample_size for e in estimates]))}


def policy_divergence(log: TransitionLog, target: ActionProbabilities, logging: ActionProbabilities) -> float:
    """The mean over the logged decisions of ``KL(π(·|s) ‖ μ(·|s))``, in nats, over the available items.

    For a deterministic target it is the mean of ``-log μ(π(s) | s)``: how unlikely the logging policy is
    to take the target's action. Infinite where the target puts mass on an item the logging policy never
    takes (no importance-sampling estimator is unbiased there).

    :param log: the logged transitions (their observations and masks are the states).
    :param target: the target policy's probabilities.
    :param logging: the logging policy's probabilities (those the log's propensities came from).
    """
    log.check()
    total = 0.0
    for start in range(0, len(log), CHUNK):
        rows = slice(start, min(start + CHUNK, len(log)))
        obs = {k: v[rows] for k, v in log.observations.items()}
        masks = np.asarray(log.action_masks[rows], dtype=bool)
        available = available_items(obs, masks)
        pi = np.where(available, np.asarray(target.action_probabilities(obs, masks), dtype=np.float64), 0.0)
        mu = np.where(available, np.asarray(logging.action_probabilities(obs, masks), dtype=np.float64), 0.0)
        positive = pi > 0
        if np.any(positive & (mu <= 0)):
            return float("inf")
        ratio = np.divide(pi, mu, out=np.ones_like(pi), where=positive)
        total += float((pi * np.log(ratio)).sum())
    return total / len(log)


def ranking_agreement(truth: Mapping[str, float], estimates: Mapping[str, float]) -> dict[str, Any]:
    """Whether ``estimates`` rank the policies as ``truth`` does.

    :param truth: each policy's true value.
    :param estimates: each policy's estimate (the same policies).
    :returns: ``spearman``, the rank correlation (NaN when either side is constant) and ``top1``, whether
        the policy with the highest estimate is one with the highest true value.
    """
    if set(truth) != set(estimates) or len(truth) < 2:
        raise ValueError(f"rank at least two policies, the same in truth and estimates: got {sorted(truth)} "
                         f"and {sorted(estimates)}")
    names = sorted(truth)
    true_ranks = pd.Series([truth[n] for n in names]).rank().to_numpy()
    estimated_ranks = pd.Series([estimates[n] for n in names]).rank().to_numpy()
    if np.ptp(true_ranks) == 0 or np.ptp(estimated_ranks) == 0:
        spearman = float("nan")
    else:
        spearman = float(np.corrcoef(true_ranks, estimated_ranks)[0, 1])
    best_true = max(truth.values())
    top1 = bool(truth[max(names, key=lambda n: estimates[n])] == best_true)
    return {"spearman": spearman, "top1": top1}
