"""Offline RL on recgym's transition logs: behaviour cloning, discrete CQL and discrete BCQ (docs/offline.md).

A log (:func:`recgym.evaluation.transitions.record_transitions`, ``recgym log``)
becomes an :class:`OfflineDataset` of feature vectors; :func:`train_offline`
learns an :class:`OfflinePolicy` from it, whose ``predict`` plays the best
available item, so :func:`recgym.evaluation.evaluate_online` scores it in the
simulator like any agent.
"""

from recgym.offline.dataset import OfflineDataset
from recgym.offline.learners import ALGORITHMS, OfflinePolicy, train_offline

__all__ = ["ALGORITHMS", "OfflineDataset", "OfflinePolicy", "train_offline"]
