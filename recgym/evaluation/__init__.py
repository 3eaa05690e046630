"""Offline and online evaluation: ranking and beyond-accuracy metrics."""

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
)
from recgym.evaluation.offline import evaluate_offline, rerank_lists
from recgym.evaluation.online import OnlineResult, evaluate_online

__all__ = [
    "OnlineResult",
    "evaluate_offline",
    "evaluate_online",
    "rerank_lists",
    "average_precision",
    "coverage",
    "hit_rate_at_k",
    "intra_list_diversity",
    "item_popularity",
    "mean_average_precision",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "recall_at_k",
]
