"""Builds what an environment simulates: the log, the fitted simulator, the user split.

Fitting a simulator takes seconds to a minute, so fitted simulators are cached
on disk (``$RECGYM_CACHE_DIR/simulators``, default ``~/.cache/recgym``) under
a key made of the simulator's parameters and a fingerprint of the log, and in
memory for the life of the process: the second ``gymnasium.make`` of an id is
fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recgym.data.rating_log import RatingLog
from simulators.base import UserSimulator

USER_SPLITS = ("train", "test", "all")

_MEMORY_CACHE: dict[str, UserSimulator] = {}


@dataclass
class World:
    """A rating log, a simulator fitted on it, and DRR's 80/20 split of its users.

    :param log: the full log: episodes start from it and the simulator is fitted on it.
    :param simulator: the fitted simulated user.
    :param train_users: users whose episodes agents train on.
    :param test_users: held-out users for evaluation.
    """

    log: RatingLog
    simulator: UserSimulator
    train_users: np.ndarray
    test_users: np.ndarray

    def users(self, split: str | np.ndarray | list[int]) -> np.ndarray:
        """User ids of a split name (``"train"``, ``"test"``, ``"all"``) or an explicit list."""
        if isinstance(split, str):
            if split == "train":
                return self.train_users
            if split == "test":
                return self.test_users
            if split == "all":
                return np.arange(self.log.n_users)
            raise ValueError(f"unknown user split {split!r}; choose one of {list(USER_SPLITS)} or pass user ids")
        users = np.unique(np.asarray(split, dtype=np.int64))
        bad = users[(users < 0) | (users >= self.log.n_users)]
        if users.size == 0 or bad.size:
            raise ValueError(
                f"user ids must be a non-empty list within 0..{self.log.n_users - 1}; got invalid {bad[:5].tolist()}"
            )
        return users


def cache_dir() -> Path:
    """recgym's cache directory: ``$RECGYM_CACHE_DIR`` or ``~/.cache/recgym``."""
    return Path(os.environ.get("RECGYM_CACHE_DIR", Path.home() / ".cache" / "recgym"))


def log_fingerprint(log: RatingLog) -> str:
    """A short hash of a log's interactions (ids, ratings) and sizes."""
    h = hashlib.sha256()
    h.update(f"{log.name}|{log.n_users}|{log.n_items}|{log.scale}".encode())
    df = log.interactions
    for col in ("user", "item", "rating"):
        h.update(np.ascontiguousarray(df[col].to_numpy()).tobytes())
    return h.hexdigest()[:16]


def fit_simulator(
    log: RatingLog,
    simulator: str | UserSimulator,
    simulator_kwargs: dict[str, Any] | None = None,
    use_cache: bool = True,
) -> UserSimulator:
    """Fit (or fetch from the cache) a simulator on ``log``.

    :param simulator: a registered simulator name (``"pmf"``, ``"replay"``,
        ``"behavior"``) or an already fitted instance (returned as is).
    :param simulator_kwargs: constructor arguments of a named simulator.
    :param use_cache: read and write the on-disk and in-memory caches.
    """
    if isinstance(simulator, UserSimulator):
        if not simulator.is_fitted:
            simulator.fit(log)
        return simulator
    from simulators import make_simulator

    kwargs = dict(simulator_kwargs or {})
    sim = make_simulator(simulator, **kwargs)
    if not use_cache:
        return _fit_sharing_pmf(sim, simulator, log, kwargs, use_cache)
    params = json.dumps({"sim": simulator, **sim.get_params()}, sort_keys=True, default=str)
    key = hashlib.sha256(f"{params}|{log_fingerprint(log)}".encode()).hexdigest()[:20]
    if key in _MEMORY_CACHE:
        return _MEMORY_CACHE[key]
    path = cache_dir() / "simulators" / f"{log.name}-{simulator}-{key}.npz"
    if path.exists():
        try:
            sim = type(sim).load(path, **kwargs)
        except (ValueError, KeyError):
            path.unlink(missing_ok=True)  # a corrupt cache entry is refitted, not trusted
            sim = _fit_sharing_pmf(sim, simulator, log, kwargs, use_cache)
            sim.save(path)
    else:
        sim = _fit_sharing_pmf(sim, simulator, log, kwargs, use_cache)
        try:
            sim.save(path)
        except (OSError, NotImplementedError):
            pass  # a read-only cache only costs a refit next time
    _MEMORY_CACHE[key] = sim
    return sim


# simulators built on a PMF, and the constructor argument that takes a fitted one
_PMF_BASED = {"replay": "embedding_model", "behavior": "rating_model"}


def _fit_sharing_pmf(
    sim: UserSimulator, name: str, log: RatingLog, kwargs: dict[str, Any], use_cache: bool
) -> UserSimulator:
    """Fit ``sim``; PMF-based simulators reuse the (cached) PMF of the same log and parameters.

    Sharing the PMF means ``recgym/X-Replay-v0`` and ``recgym/X-Behavior-v0`` embed
    items exactly as ``recgym/X-PMF-v0`` does, so an embedding-space actor trained
    on one means the same thing on the others, and the PMF is fitted once.
    """
    argument = _PMF_BASED.get(name)
    if argument is None or kwargs.get(argument) is not None:
        return sim.fit(log)
    from simulators import make_simulator

    pmf = fit_simulator(log, "pmf", dict(kwargs.get("pmf_params") or {}), use_cache=use_cache)
    return make_simulator(name, **{**kwargs, argument: pmf}).fit(log)


def build_world(
    dataset: str | RatingLog = "ml-100k",
    simulator: str | UserSimulator = "pmf",
    *,
    data_dir: str | Path | None = None,
    path: str | Path | None = None,
    dataset_kwargs: dict[str, Any] | None = None,
    simulator_kwargs: dict[str, Any] | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    use_cache: bool = True,
) -> World:
    """Load a dataset, fit its simulator and split its users (DRR: 80/20 by users).

    :param dataset: a dataset name for :func:`recgym.data.load` or a :class:`RatingLog`.
    :param simulator: simulator name or fitted instance.
    :param data_dir: local data directory (default ``RECGYM_DATA_DIR``, then the cache).
    :param path: a specific data file (Jester's Dataset 1 layout).
    :param dataset_kwargs: extra arguments of the loader (e.g. synthetic sizes).
    :param test_fraction: fraction of users held out for evaluation.
    :param split_seed: seed of the user split.
    """
    from recgym.data import load, split_by_users

    if isinstance(dataset, RatingLog):
        log = dataset
    else:
        log = load(dataset, data_dir=data_dir, path=path, **(dataset_kwargs or {}))
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train, test = split_by_users(log, test_fraction=test_fraction, seed=split_seed)
    sim = fit_simulator(log, simulator, simulator_kwargs, use_cache=use_cache)
    return World(
        log=log,
        simulator=sim,
        train_users=np.unique(train.interactions["user"].to_numpy()),
        test_users=np.unique(test.interactions["user"].to_numpy()),
    )
