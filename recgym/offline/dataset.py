"""A recgym transition log as the arrays an offline RL learner reads: feature vectors, actions, rewards, ends.

The log's observations are recgym's Dict observations (item ids, feedback,
times), whose numbers mean nothing to a plain network. :class:`OfflineDataset`
flattens each of them with :class:`recgym.envs.features.FeatureMap`, the same
feature map as the ``observation="features"`` environments (the ``-Flat-v0``
ids), without a candidate block: the **user block** of ``2d + 5 + 2G`` numbers
(the folded-in user, the feedback-weighted taste, mean / liked / last feedback,
progress, genre taste and recency), named in ``feature_names``. The embedding
model behind it is fitted on the training users only, so a test user's
held-out ratings never reach a feature.

Per decision it also keeps the **available items** (the action mask less the
items the episode consumed, :func:`recgym.evaluation.transitions.available_items`)
at the state and at the next state: a learner's maxima and normalisations run
over those, as the policy acting in the simulator can choose only among them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recgym.envs.config import EpisodeConfig
from recgym.envs.features import FeatureMap
from recgym.evaluation.transitions import TransitionLog, available_items
from recgym.scenario import Scenario

#: the Dict observation's entries the feature map reads
FEATURE_KEYS = ("history_items", "history_mask", "history_feedback", "history_behavior", "history_time", "consumed")


def feature_map(scenario: Scenario, config: EpisodeConfig) -> FeatureMap:
    """The feature map of an offline dataset and of the policy learnt from it: the user block, no candidates."""
    if config.action_mode != "discrete" or config.candidates is not None:
        raise ValueError(f"offline RL here learns item actions over every item (action_mode='discrete', no "
                         f"candidates), got action_mode={config.action_mode!r}, candidates={config.candidates!r}")
    return FeatureMap(scenario, config)


def dataset_feature_map(data: "OfflineDataset", scenario: Scenario, config: EpisodeConfig) -> FeatureMap:
    """:func:`feature_map`, checked against ``data``: a learner refuses a dataset recorded on another scenario.

    :raises ValueError: ``data``'s items or features differ from the scenario's.
    """
    features = feature_map(scenario, config)
    if data.n_items != features.n_items or data.features.shape[1] != len(features.names):
        raise ValueError(f"the dataset's {data.n_items} items and {data.features.shape[1]} features do not match "
                         f"scenario {scenario.label} ({features.n_items} items, {len(features.names)} features): "
                         "pass the scenario and config the log was recorded on")
    return features


@dataclass
class OfflineDataset:
    """A transition log's decisions as flat arrays, one row per decision.

    :param features: ``(N, dim)`` float32, the state's features (``feature_names``).
    :param next_features: ``(N, dim)`` float32, the next state's features.
    :param actions: ``(N,)`` the logged items.
    :param rewards: ``(N,)`` float32.
    :param dones: ``(N,)`` bool, the episode ended (the user left, or ``max_steps`` ran out: the simulator's
        episodes end there too, and ``progress`` is a feature, so nothing is bootstrapped past it).
    :param available: ``(N, n_items)`` bool, the items the policy could choose at the state.
    :param next_available: ``(N, n_items)`` bool, the same at the next state (the state's own where it ended).
    :param feature_names: the name of each feature column.
    """

    features: np.ndarray
    next_features: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    available: np.ndarray
    next_available: np.ndarray
    feature_names: list[str]

    def __len__(self) -> int:
        return int(self.actions.size)

    @property
    def n_items(self) -> int:
        return int(self.available.shape[1])

    @classmethod
    def from_log(cls, log: TransitionLog, scenario: Scenario, config: EpisodeConfig) -> OfflineDataset:
        """Flatten ``log`` with the feature map of ``scenario`` and ``config`` (those the log was recorded on).

        :param log: a recorded (:func:`~recgym.evaluation.transitions.record_transitions`) or loaded
            (:func:`recgym.experiments.transition_log.load_transition_log`) transition log.
        :param scenario: the log's scenario (its card's ``scenario``): its embedding model gives the features.
        :param config: the log's episode configuration (its ``max_steps`` scales ``progress``).
        """
        log.check()
        missing = [k for k in FEATURE_KEYS if k not in log.observations or k not in log.next_observations]
        if missing:
            raise ValueError(f"the log's observations lack {missing}: offline RL reads recgym's Dict observation "
                             "(record the log with record_transitions or `recgym log`)")
        if log.action_masks.shape[1] != scenario.n_items:
            raise ValueError(f"the log's actions range over {log.action_masks.shape[1]} items but the scenario "
                             f"{scenario.label} has {scenario.n_items}: pass the scenario the log was recorded on "
                             f"(its card says {log.card.get('scenario', 'which')!r})")
        features = feature_map(scenario, config)
        available = available_items(log.observations, np.asarray(log.action_masks, dtype=bool))
        if not available[np.arange(len(log)), log.actions].all():
            raise ValueError("the log holds actions that were not available (masked or already consumed) at their "
                             "state: a policy learnt from it could not play them; record it with recgym")
        masks = np.asarray(log.action_masks, dtype=bool)
        dones = np.asarray(log.terminated, dtype=bool) | np.asarray(log.truncated, dtype=bool)
        # the next decision's mask is the next row's, within an episode; an ended row keeps its own (unused)
        inner = np.flatnonzero(~dones[:-1] & (log.episode[1:] == log.episode[:-1]))
        next_masks = masks.copy()
        next_masks[inner] = masks[inner + 1]
        return cls(
            features=features.encode(log.observations),
            next_features=features.encode(log.next_observations),
            actions=np.asarray(log.actions, dtype=np.int64),
            rewards=np.asarray(log.rewards, dtype=np.float32),
            dones=dones,
            available=available,
            next_available=available_items(log.next_observations, next_masks),
            feature_names=list(features.names),
        )
