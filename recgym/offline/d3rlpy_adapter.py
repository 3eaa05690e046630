"""A recgym transition log through d3rlpy's DiscreteCQL / DiscreteBCQ, and the learnt policy back in the simulator.

d3rlpy (``pip install 'recgym[offline]'``, pinned ``>=2.7,<2.8``: d3rlpy 2.8
pins ``gymnasium==1.0.0`` while recgym needs ``gymnasium>=1.1``) is imported
lazily, so recgym imports without it.

The path (docs/offline.md):

1. :meth:`recgym.offline.OfflineDataset.from_log` flattens the log's Dict
   observations with the feature map's user block;
2. :func:`to_mdp_dataset` makes it a ``d3rlpy.dataset.MDPDataset`` (discrete
   actions over every item; every episode end is a terminal, as in
   :class:`~recgym.offline.OfflineDataset`: the simulator's episode ends at
   ``max_steps`` too and ``progress`` is a feature, so nothing bootstraps past it);
3. :func:`train_d3rlpy` fits ``DiscreteCQL`` or ``DiscreteBCQ`` on it;
4. :class:`D3rlpyPolicy` plays d3rlpy's greedy item where it is available and
   otherwise the available item with the highest Q-value (d3rlpy's critics,
   ``algo.impl.q_function``, checked against its ``predict_value``), so :func:`recgym.evaluation.evaluate_online` scores it
   with the environment's action masks like any agent.

d3rlpy's learners themselves do not see the masks: their TD targets maximise
over every item, consumed ones included. recgym's own learners
(:func:`recgym.offline.train_offline`) maximise over the available items only.
"""

from __future__ import annotations

import contextlib
import importlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from recgym.envs.config import EpisodeConfig
from recgym.envs.features import FeatureMap
from recgym.evaluation.transitions import available_items
from recgym.offline.dataset import OfflineDataset, dataset_feature_map
from recgym.scenario import Scenario

#: d3rlpy's algorithms this adapter trains, by recgym's name
D3RLPY_ALGORITHMS = ("cql", "bcq")

INSTALL_HINT = ("d3rlpy is not installed: `pip install 'recgym[offline]'` (d3rlpy>=2.7,<2.8; 2.8 pins "
                "gymnasium==1.0.0, which recgym's gymnasium>=1.1 excludes)")


def import_d3rlpy() -> Any:
    """d3rlpy, or an ImportError that says how to install it."""
    try:
        return importlib.import_module("d3rlpy")
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error


@contextlib.contextmanager
def _callers_seeds_kept() -> Iterator[None]:
    """Restore Python's, numpy's and torch's global generators (and cudnn's flag) that ``d3rlpy.seed`` sets."""
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    deterministic = torch.backends.cudnn.deterministic
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            torch.backends.cudnn.deterministic = deterministic


def to_mdp_dataset(data: OfflineDataset) -> Any:
    """``data`` as a d3rlpy ``MDPDataset``: the feature vectors, the logged items (discrete, ``n_items`` actions)."""
    d3rlpy = import_d3rlpy()
    if len(data) == 0 or not data.dones[-1]:
        raise ValueError("the dataset must hold whole episodes (its last decision ends one): build it with "
                         "OfflineDataset.from_log from a recorded log")
    return d3rlpy.dataset.MDPDataset(
        observations=np.asarray(data.features, dtype=np.float32),
        actions=np.asarray(data.actions, dtype=np.int64),
        rewards=np.asarray(data.rewards, dtype=np.float32),
        terminals=np.asarray(data.dones, dtype=np.float32),
        action_space=d3rlpy.ActionSpace.DISCRETE,
        action_size=data.n_items,
    )


class D3rlpyPolicy:
    """A d3rlpy Q-learner acting in recgym: never plays a masked or consumed item.

    :param algorithm: recgym's name of the learner (``"cql"`` or ``"bcq"``).
    :param features: the feature map the learner's observations were made with.
    :param algo: the fitted d3rlpy algorithm.
    """

    def __init__(self, algorithm: str, features: FeatureMap, algo: Any) -> None:
        self.algorithm = algorithm
        self.features = features
        self.algo = algo

    def q_values(self, x: np.ndarray) -> np.ndarray:
        """``(B, n_items)`` Q-values of feature rows ``x``: the mean over d3rlpy's critics (``algo.impl.q_function``).

        The same numbers as ``algo.predict_value(x, a)`` for each item ``a``, in one forward pass per row
        rather than one per (row, item) pair.
        """
        import torch

        with torch.no_grad():
            t = torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.algo.impl.device)
            q = torch.stack([critic(t).q_value for critic in self.algo.impl.q_function]).mean(dim=0)
        return q.cpu().numpy()

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True, action_masks: np.ndarray | None = None) -> tuple[np.ndarray, None]:
        """Per row, d3rlpy's greedy item if available, else the best available one by Q-value (SB3's signature)."""
        observations = {k: np.asarray(v) for k, v in observation.items()}
        batched = observations["history_items"].ndim == 2
        if not batched:
            observations = {k: v[None] for k, v in observations.items()}
        n = observations["history_items"].shape[0]
        masks = (np.ones((n, self.features.n_items), dtype=bool) if action_masks is None
                 else np.asarray(action_masks, dtype=bool).reshape(n, -1))
        available = available_items(observations, masks)
        x = np.asarray(self.features.encode(observations), dtype=np.float32)
        actions = np.asarray(self.algo.predict(x), dtype=np.int64)
        # d3rlpy's greedy choice ranges over every item (BCQ's: those its imitator allows); where that item is
        # masked or consumed, the best available item by the learnt Q-values stands in for it
        fallback = np.flatnonzero(~available[np.arange(n), actions])
        if fallback.size:
            q = np.where(available[fallback], self.q_values(x[fallback]), -np.inf)
            actions[fallback] = q.argmax(axis=1)
        return (actions if batched else actions[0]), None


def train_d3rlpy(algorithm: str, data: OfflineDataset, scenario: Scenario, config: EpisodeConfig,
                 steps: int = 1000, batch_size: int = 64, learning_rate: float = 3e-4, gamma: float = 0.9,
                 cql_alpha: float = 1.0, bcq_threshold: float = 0.3, target_update_interval: int = 100,
                 seed: int = 0) -> D3rlpyPolicy:
    """Fit d3rlpy's ``DiscreteCQL`` or ``DiscreteBCQ`` on ``data`` for ``steps`` gradient steps, on the CPU.

    The defaults match :func:`recgym.offline.train_offline`'s (learning rate, discount, batch, target updates),
    not d3rlpy's Atari-sized ones. d3rlpy logs nothing to disk and shows no progress bar here.

    :param algorithm: ``"cql"`` or ``"bcq"``.
    :param data: the log as :meth:`OfflineDataset.from_log` made it.
    :param scenario: the scenario the log was recorded on.
    :param config: the episode configuration the log was recorded with.
    :param bcq_threshold: DiscreteBCQ's ``action_flexibility``.
    :param seed: the seed of the networks' initialisation and of the minibatches (through ``d3rlpy.seed``;
        the caller's global Python, numpy and torch generators are left as they were).
    """
    if algorithm not in D3RLPY_ALGORITHMS:
        raise ValueError(f"unknown d3rlpy algorithm {algorithm!r}: choose one of {', '.join(D3RLPY_ALGORITHMS)} "
                         "(behaviour cloning: recgym.offline.train_offline('bc', ...))")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    features = dataset_feature_map(data, scenario, config)
    d3rlpy = import_d3rlpy()
    common = dict(batch_size=int(batch_size), learning_rate=float(learning_rate), gamma=float(gamma),
                  target_update_interval=int(target_update_interval))
    if algorithm == "cql":
        config_ = d3rlpy.algos.DiscreteCQLConfig(alpha=float(cql_alpha), **common)
    else:
        config_ = d3rlpy.algos.DiscreteBCQConfig(action_flexibility=float(bcq_threshold), **common)
    with _callers_seeds_kept():
        dataset = to_mdp_dataset(data)
        d3rlpy.seed(int(seed))  # d3rlpy draws its initialisation and minibatches from the global generators
        algo = config_.create(device="cpu:0")
        algo.fit(dataset, n_steps=int(steps), n_steps_per_epoch=int(steps), show_progress=False,
                 logger_adapter=d3rlpy.logging.NoopAdapterFactory(), save_interval=int(steps) + 1)
    return D3rlpyPolicy(algorithm, features, algo)
