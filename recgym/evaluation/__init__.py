"""Evaluation: ranking and beyond-accuracy metrics, and the three protocols.

Each protocol builds its own environment from a :class:`~recgym.scenario.Scenario`
and the policy's :class:`~recgym.envs.config.EpisodeConfig`:

* :func:`evaluate_online`: one episode per test user on the simulated users (reward per step);
* :func:`evaluate_offline`: DRR's re-ranking of each test user's rated items (P@k, NDCG@k, MAP);
* :func:`evaluate_long_term`: behaviour users with boredom and quitting, three modes.
"""

from recgym.evaluation.long_term import LONG_TERM_MODES, evaluate_long_term
from recgym.evaluation.metrics import (
    average_precision,
    coverage,
    hit_rate_at_k,
    intra_list_diversity,
    item_popularity,
    mean_average_precision,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
    relevance_from_items,
)
from recgym.evaluation.offline import bootstrap_interval, evaluate_offline, rerank_lists
from recgym.evaluation.online import OnlineResult, evaluate_online, run_episodes

__all__ = [
    "LONG_TERM_MODES",
    "OnlineResult",
    "average_precision",
    "bootstrap_interval",
    "coverage",
    "evaluate_long_term",
    "evaluate_offline",
    "evaluate_online",
    "hit_rate_at_k",
    "intra_list_diversity",
    "item_popularity",
    "mean_average_precision",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "recall_at_k",
    "relevance_from_items",
    "rerank_lists",
    "run_episodes",
]
