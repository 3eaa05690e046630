"""The scenario of an experiment: one explicit value that flows downward.

A :class:`Scenario` holds everything an experiment is about, built once by
:func:`make_scenario` (or :meth:`ScenarioSpec.build`) and then passed to
environments, agents, baselines and evaluation protocols, which never dig it
out of each other:

* ``log``: the rating log (interactions, side information, rating scale);
* ``train_users`` / ``test_users``: DRR's 80/20 split of the users;
* ``simulator``: the simulated user, fitted on **all** ratings (it plays the
  users, so it may know them);
* ``rating_model``: the PMF inside the simulator (the simulator itself for the
  PMF simulator), from which the replay and behaviour protocols build their users;
* ``embedding_model``: a PMF fitted on the **training users' ratings only**
  (``embedding_fit="train"``, the default): what agents may know. State
  encoders, the embedding action space and ``greedy-pmf`` use it, and a test
  user is represented only by what the episode has shown (fold-in, see
  :func:`fold_in_users`). ``embedding_fit="all"`` reuses the all-data rating
  model instead, as the DRR paper does; it is labelled wherever it is used
  (:attr:`Scenario.label`).

Fitting takes seconds, so fitted models are cached on disk
(``$RECGYM_CACHE_DIR/simulators``, default ``~/.cache/recgym``) under a key
made of the model's parameters and a fingerprint of the log it was fitted on,
and in memory for the life of the process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recgym.data.rating_log import RatingLog
from simulators.base import UserSimulator
from simulators.pmf import PMFSimulator

USER_SPLITS = ("train", "test", "all")
#: what the embedding model (agents' knowledge) is fitted on
EMBEDDING_FITS = ("train", "all")
EMBEDDING_FIT_LABELS = {
    "train": "leak-free: embedding model fitted on the training users' ratings only",
    "all": "all-data (DRR paper setting): embedding model fitted on every rating, test users' included",
}

_MEMORY_CACHE: dict[str, UserSimulator] = {}
_SCENARIO_CACHE: "OrderedDict[str, Scenario]" = OrderedDict()
_SCENARIO_CACHE_SIZE = 8
# simulators built on a PMF, and the constructor argument that takes a fitted one
_PMF_BASED = {"replay": "embedding_model", "behavior": "rating_model", "behavior-v1": "rating_model"}


# -- the scenario -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Scenario:
    """A log, its user split, the simulated users and what agents may know.

    Build it with :func:`make_scenario`; see the module docstring for the fields.

    :param log: the full rating log.
    :param train_users: sorted ids of the users agents train on.
    :param test_users: sorted ids of the held-out users.
    :param simulator: the fitted simulated user (fitted on all ratings).
    :param rating_model: the all-data PMF the simulator answers from.
    :param embedding_model: the PMF agents may know (training users only by default).
    :param embedding_fit: ``"train"`` or ``"all"``: what ``embedding_model`` was fitted on.
    :param spec: the arguments the scenario was built from (None when built by hand).
    """

    log: RatingLog
    train_users: np.ndarray
    test_users: np.ndarray
    simulator: UserSimulator
    rating_model: PMFSimulator
    embedding_model: PMFSimulator
    embedding_fit: str = "train"
    spec: "ScenarioSpec | None" = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.embedding_fit not in EMBEDDING_FITS:
            raise ValueError(f"embedding_fit must be one of {list(EMBEDDING_FITS)}, got {self.embedding_fit!r}")
        for name, model in (("simulator", self.simulator), ("rating_model", self.rating_model),
                            ("embedding_model", self.embedding_model)):
            if (model.n_users, model.n_items) != (self.log.n_users, self.log.n_items):
                raise ValueError(
                    f"Scenario: the {name} covers {model.n_users} users x {model.n_items} items but the log has "
                    f"{self.log.n_users} x {self.log.n_items}: fit it on a log in the same id space"
                )

    # -- users ---------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.log.n_users

    @property
    def n_items(self) -> int:
        return self.log.n_items

    def users(self, split: str | np.ndarray | list[int] | tuple[int, ...]) -> np.ndarray:
        """User ids of a split name (``"train"``, ``"test"``, ``"all"``) or an explicit list of ids."""
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

    def training_log(self) -> RatingLog:
        """The training users' ratings only, in the full id space (what baselines may fit on)."""
        df = self.log.interactions
        return self.log.with_interactions(df[np.isin(df["user"].to_numpy(), self.train_users)])

    # -- what agents may know ------------------------------------------------------------
    @property
    def label(self) -> str:
        """How the embedding model was fitted, in words (print it beside every figure)."""
        return EMBEDDING_FIT_LABELS[self.embedding_fit]

    @property
    def item_embeddings(self) -> np.ndarray:
        """``(n_items, d)`` float32 item factors ``V`` of the embedding model."""
        return self.embedding_model.item_embeddings

    @property
    def item_bias(self) -> np.ndarray:
        """``(n_items,)`` float32 item biases ``c`` of the embedding model."""
        return self.embedding_model.item_bias

    @property
    def action_item_vectors(self) -> np.ndarray:
        """``(n_items, d + 1)`` float32 vectors ``[V_j / s_V, c_j / s_c]`` that embedding actions score against.

        The embedding model predicts ``mu + b_i + c_j + U_i . V_j``; the item-bias
        column lets an action express ``c_j`` (with the factors alone, 56% of
        ``c`` on ML-100K lies outside the span of ``V``). Each block is scaled
        into ``[-1, 1]`` by its largest absolute value ``s_V``, ``s_c``, so the
        action ``[U_i s_V, s_c]`` (rescaled into the box) ranks items exactly as
        the model's predicted rating does.
        """
        v = np.asarray(self.item_embeddings, dtype=np.float64)
        c = np.asarray(self.item_bias, dtype=np.float64)[:, None]
        s_v = float(np.abs(v).max()) or 1.0
        s_c = float(np.abs(c).max()) or 1.0
        return np.ascontiguousarray(np.hstack([v / s_v, c / s_c]), dtype=np.float32)

    @property
    def item_features(self) -> Any:
        """Item side information of the log (genres, titles; None when the log has none)."""
        return self.log.item_features

    def seen_users(self) -> np.ndarray:
        """``(n_users,)`` bool: users whose ratings the embedding model was fitted on."""
        log = self.training_log() if self.embedding_fit == "train" else self.log
        return np.bincount(log.interactions["user"].to_numpy(), minlength=self.n_users) > 0

    def with_simulator(self, simulator: UserSimulator) -> "Scenario":
        """The same scenario with another (fitted) simulated user, e.g. a protocol's replay users."""
        return dataclasses.replace(self, simulator=simulator)


def fold_in(
    item_factors: torch.Tensor,
    item_bias: torch.Tensor,
    global_mean: float,
    inverse_penalty: torch.Tensor,
    items: torch.Tensor,
    ratings: torch.Tensor,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one fold-in of recgym: a user's ``(U (B, d), b (B,))`` from the ratings an episode has shown.

    Given the item side of a fitted PMF (``mu + b_i + c_j + U_i . V_j``, :mod:`simulators.pmf`),
    the MAP estimate of ``[U_i, b_i]`` is the ridge regression of ``r_ij - mu - c_j`` on
    ``[V_j, 1]`` with penalties ``D = diag(reg I, bias_reg)`` (one ALS half-step, PMF eq. 4).
    With ``N`` observed items it is solved in its ``N x N`` dual form
    ``x = D^-1 Y^T (Y D^-1 Y^T + I)^-1 r`` (push-through identity), which is exact and costs
    nothing for the short windows of an observation. It runs in torch, in the dtype and on the
    device of ``item_factors``, so a state encoder (:class:`state_encoders.base.UserFoldIn`)
    calls it inside its forward pass and numpy callers go through :func:`fold_in_users`.

    :param item_factors: ``(n_items, d)`` ``V`` (rows past ``n_items`` are never read).
    :param item_bias: ``(n_items,)`` ``c`` (or longer; only the first ``n_items`` are read).
    :param global_mean: ``mu``.
    :param inverse_penalty: ``(d + 1,)`` ``D^-1 = [1/reg, ..., 1/reg, 1/bias_reg]``.
    :param items: ``(B, N)`` item ids; slots with ``mask`` 0 or an id outside ``[0, n_items)`` are unobserved.
    :param ratings: ``(B, N)`` ratings on the log's scale.
    :param mask: ``(B, N)`` 1 for an observed slot.
    """
    n_items, dim = item_factors.shape
    dtype, device = item_factors.dtype, item_factors.device
    items = items.to(device=device, dtype=torch.long)
    observed = mask.to(device).bool() & (items >= 0) & (items < n_items)
    ids = torch.where(observed, items, torch.zeros_like(items))
    weight = observed.to(dtype)  # [B, N]
    residual = (ratings.to(device=device, dtype=dtype) - global_mean - item_bias[ids]) * weight
    design = torch.cat([item_factors[ids], torch.ones_like(weight).unsqueeze(-1)], dim=-1)
    design = design * weight.unsqueeze(-1)  # [B, N, d + 1]; unobserved slots contribute nothing
    scaled = design * inverse_penalty.to(dtype)  # Y D^-1
    kernel = scaled @ design.transpose(1, 2) + torch.eye(items.shape[1], dtype=dtype, device=device)  # Y D^-1 Y^T + I
    alpha = torch.linalg.solve(kernel, residual.unsqueeze(-1))  # [B, N, 1]
    solution = (scaled.transpose(1, 2) @ alpha).squeeze(-1)  # [B, d + 1]
    return solution[:, :dim], solution[:, dim]


def fold_in_users(
    model: PMFSimulator, items: np.ndarray, ratings: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fold_in` for numpy callers, in float64: ``(U (B, d), b (B,))`` of users folded into ``model``.

    :param model: the fitted embedding model.
    :param items: ``(B, N)`` item ids (any value where ``mask`` is 0).
    :param ratings: ``(B, N)`` ratings on the log's scale.
    :param mask: ``(B, N)`` 1 for an observed slot.
    """
    factors, bias = fold_in(
        torch.from_numpy(np.asarray(model.item_embeddings, dtype=np.float64)),
        torch.from_numpy(np.asarray(model.item_bias, dtype=np.float64)),
        float(model.global_mean),
        torch.from_numpy(1.0 / np.r_[np.full(model.dim, model.reg), model.bias_reg]),
        torch.from_numpy(np.asarray(items, dtype=np.int64)),
        torch.from_numpy(np.asarray(ratings, dtype=np.float64)),
        torch.from_numpy(np.asarray(mask).astype(bool)),
    )
    return factors.numpy(), bias.numpy()


# -- building a scenario ------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioSpec:
    """The arguments that define a scenario (the data half of an environment's keywords).

    :param dataset: dataset name for :func:`recgym.data.load` or a :class:`RatingLog`.
    :param simulator: ``"pmf"``, ``"replay"``, ``"behavior"``, ``"behavior-v1"`` or a fitted :class:`UserSimulator`.
    :param data_dir: local data directory (default ``RECGYM_DATA_DIR``, then the cache).
    :param path: a specific data file (Jester's Dataset 1 layout).
    :param dataset_kwargs: extra loader arguments (e.g. synthetic sizes).
    :param simulator_kwargs: simulator constructor arguments (``pmf_params`` for the shared PMF).
    :param test_fraction: fraction of users held out for evaluation (DRR: 0.2).
    :param split_seed: seed of the user split (an integer >= 0).
    :param embedding_fit: ``"train"`` (default, leak-free) or ``"all"`` (the DRR paper's setting).
    :param cache: read and write the fitted-model caches.
    """

    dataset: Any = "ml-100k"
    simulator: Any = "pmf"
    data_dir: str | Path | None = None
    path: str | Path | None = None
    dataset_kwargs: dict[str, Any] | None = None
    simulator_kwargs: dict[str, Any] | None = None
    test_fraction: float = 0.2
    split_seed: int = 0
    embedding_fit: str = "train"
    cache: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, (str, RatingLog)):
            raise ValueError(f"dataset must be a dataset name or a RatingLog, got {self.dataset!r}")
        if not isinstance(self.simulator, (str, UserSimulator)):
            raise ValueError(f"simulator must be a simulator name ('pmf', 'replay', 'behavior') or a fitted "
                             f"UserSimulator, got {self.simulator!r}")
        for name in ("dataset_kwargs", "simulator_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"{name} must be a dict of keyword arguments, got {type(value).__name__}")
        if isinstance(self.test_fraction, bool) or not isinstance(self.test_fraction, (int, float)) \
                or not 0.0 < float(self.test_fraction) < 1.0:
            raise ValueError(f"test_fraction must be a number in (0, 1), got {self.test_fraction!r}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, (int, np.integer)) or self.split_seed < 0:
            raise ValueError(f"split_seed must be an integer >= 0, got {self.split_seed!r}")
        if self.embedding_fit not in EMBEDDING_FITS:
            raise ValueError(f"embedding_fit must be one of {list(EMBEDDING_FITS)}, got {self.embedding_fit!r}")

    def build(self) -> Scenario:
        """Load, split and fit (or take from the caches): see :func:`make_scenario`."""
        key = self._cache_key()
        if key is not None and self.cache and key in _SCENARIO_CACHE:
            _SCENARIO_CACHE.move_to_end(key)
            return _SCENARIO_CACHE[key]
        scenario = _build(self)
        if key is not None and self.cache:
            _SCENARIO_CACHE[key] = scenario
            while len(_SCENARIO_CACHE) > _SCENARIO_CACHE_SIZE:
                _SCENARIO_CACHE.popitem(last=False)
        return scenario

    def _cache_key(self) -> str | None:
        # scenarios over objects (a log, a fitted simulator) are not cached: the objects may change
        if not isinstance(self.dataset, str) or not isinstance(self.simulator, str):
            return None
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["data_dir"] = str(Path(self.data_dir).resolve()) if self.data_dir else os.environ.get("RECGYM_DATA_DIR")
        try:
            return json.dumps(fields, sort_keys=True, default=str)
        except (TypeError, ValueError):
            return None


#: the keyword names of :class:`ScenarioSpec` (the data half of an environment's keywords)
SCENARIO_KEYWORDS = tuple(f.name for f in dataclasses.fields(ScenarioSpec))


def make_scenario(dataset: str | RatingLog = "ml-100k", simulator: str | UserSimulator = "pmf", **kwargs: Any) -> Scenario:
    """Load a dataset, split its users 80/20, fit the simulated users and the embedding model.

    :param dataset: a dataset name (``"ml-100k"``, ``"ml-1m"``, ``"yahoo-r3"``,
        ``"jester"``, ``"jester-4"``, ``"synthetic"``) or a :class:`RatingLog`.
    :param simulator: ``"pmf"``, ``"replay"``, ``"behavior"`` or a fitted simulator.
    :param kwargs: the other fields of :class:`ScenarioSpec` (``embedding_fit``,
        ``split_seed``, ``data_dir``, ...).
    """
    return ScenarioSpec(dataset=dataset, simulator=simulator, **kwargs).build()


def _build(spec: ScenarioSpec) -> Scenario:
    from recgym.data import load, split_by_users

    if isinstance(spec.dataset, RatingLog):
        log = spec.dataset
    else:
        log = load(spec.dataset, data_dir=spec.data_dir, path=spec.path, **(spec.dataset_kwargs or {}))
    train, test = split_by_users(log, test_fraction=float(spec.test_fraction), seed=int(spec.split_seed))
    train_users = np.unique(train.interactions["user"].to_numpy())
    test_users = np.unique(test.interactions["user"].to_numpy())
    sim_kwargs = dict(spec.simulator_kwargs or {})
    pmf_params = _pmf_params(spec.simulator, sim_kwargs)
    sim = fit_simulator(log, spec.simulator, sim_kwargs, use_cache=spec.cache)
    rating_model = _rating_model_of(sim, log, pmf_params, spec.cache)
    if spec.embedding_fit == "all":
        embedding_model = rating_model
    else:
        train_log = log.with_interactions(train.interactions)
        embedding_model = fit_simulator(train_log, "pmf", pmf_params, use_cache=spec.cache)
    return Scenario(log=log, train_users=train_users, test_users=test_users, simulator=sim,
                    rating_model=rating_model, embedding_model=embedding_model,
                    embedding_fit=spec.embedding_fit, spec=spec)


def _pmf_params(simulator: str | UserSimulator, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The PMF arguments of a scenario: the PMF simulator's own, or ``pmf_params`` of the others."""
    if isinstance(simulator, PMFSimulator):
        return {k: v for k, v in simulator.get_params().items() if k in ("dim", "reg", "bias_reg", "n_iters", "seed")}
    if isinstance(simulator, str) and simulator.lower() == "pmf":
        return {k: v for k, v in kwargs.items() if k in ("dim", "reg", "bias_reg", "n_iters", "seed")}
    return dict(kwargs.get("pmf_params") or {})


def _rating_model_of(sim: UserSimulator, log: RatingLog, pmf_params: dict[str, Any], use_cache: bool) -> PMFSimulator:
    """The PMF a simulator answers from; a PMF fitted on the same log when it has none."""
    if isinstance(sim, PMFSimulator):
        return sim
    for model in (getattr(sim, "rating_model", None), getattr(sim, "embedding_model", None)):
        if isinstance(model, PMFSimulator):
            return model
    return fit_simulator(log, "pmf", pmf_params, use_cache=use_cache)


# -- the fitted-model cache ----------------------------------------------------------------


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


def cache_file_name(log_name: str, simulator: str, key: str) -> str:
    """A file name for a cached model that stays inside the cache folder whatever the log is called.

    Anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_`` (so ``../``
    and absolute paths cannot escape), and the name is cut to 64 characters;
    the key keeps different logs apart.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{log_name}-{simulator}").lstrip(".")[:64] or "log"
    return f"{safe}-{key}.npz"


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
    path = cache_dir() / "simulators" / cache_file_name(log.name, simulator, key)
    loaded = None
    if path.exists() and not path.is_file():
        # not a file recgym wrote (a folder, say): never deleted, and it would block the cache write
        raise ValueError(f"the simulator cache entry {path} is not a file: move or delete it (recgym then fits the "
                         "model again and caches it there), or set RECGYM_CACHE_DIR to another folder")
    if path.exists():
        try:
            loaded = type(sim).load(path, **kwargs)
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # a corrupt or truncated cache entry is refitted, not trusted
        if loaded is not None and (getattr(loaded, "n_users", None), getattr(loaded, "n_items", None)) != (
                log.n_users, log.n_items):
            # a readable model of another log under this log's cache name (copied there by hand): refused, not
            # overwritten, since it may be someone's file
            raise ValueError(
                f"the simulator cache entry {path} holds a model of {loaded.n_users} users x {loaded.n_items} items, "
                f"but {log.name!r} has {log.n_users} x {log.n_items}: it was fitted on another log. Delete it "
                "(recgym then fits the model again and caches it there), or set RECGYM_CACHE_DIR to another folder"
            )
    if loaded is None:
        loaded = _fit_sharing_pmf(sim, simulator, log, kwargs, use_cache)
        try:
            loaded.save(path)
        except (OSError, NotImplementedError):
            pass  # a read-only cache only costs a refit next time
    _MEMORY_CACHE[key] = loaded
    return loaded


def _fit_sharing_pmf(
    sim: UserSimulator, name: str, log: RatingLog, kwargs: dict[str, Any], use_cache: bool
) -> UserSimulator:
    """Fit ``sim``; PMF-based simulators reuse the (cached) PMF of the same log and parameters.

    Sharing the PMF means ``recgym/X-Replay-v0`` and ``recgym/X-Behavior-v0`` answer
    from exactly the PMF of ``recgym/X-PMF-v0``, and the PMF is fitted once.
    """
    argument = _PMF_BASED.get(name)
    if argument is None or kwargs.get(argument) is not None:
        return sim.fit(log)
    from simulators import make_simulator

    pmf = fit_simulator(log, "pmf", dict(kwargs.get("pmf_params") or {}), use_cache=use_cache)
    return make_simulator(name, **{**kwargs, argument: pmf}).fit(log)
