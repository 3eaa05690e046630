"""Multi-behaviour logs: skips, clicks and purchases recorded under a fixed logging policy, or read from ratings.

A multi-behaviour log is a :class:`~recgym.data.rating_log.RatingLog` whose
interactions carry a :data:`~recgym.data.rating_log.BEHAVIOR_COLUMN` (the
:class:`~simulators.base.Behavior` code of each interaction); the pretraining
windows report it in ``history_behavior``, as the behaviour environment does.
Two sources:

* :func:`record_behavior_log`: run the fixed logging policy
  :class:`SoftmaxLoggingPolicy` in a scenario's behaviour environment
  (``recgym/<Dataset>-Behavior-v0``: skip / click / purchase, boredom,
  patience), one episode per user, and record everything the episode showed:
  the start items (the user's first liked items in the log, reported CLICK as
  the environment does, at times ``-N .. -1``), then each recommended item at
  its step with the user's behaviour, answered rating and the policy's
  propensity. Seeded: the same scenario, settings and seed give the same log.
  ``recgym log-behavior`` is the command (:func:`register`).
* :func:`rating_behavior_log`: a rating log's ratings read as behaviours by
  :func:`simulators.behavior.behaviors_from_ratings`, what a noise-free,
  unbored behaviour user does: with the default thresholds, 1-3 stars SKIP
  ("dislike"), 4 CLICK ("view"), 5 PURCHASE ("like").
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recgym.data.rating_log import BEHAVIOR_COLUMN, RatingLog
from recgym.envs.config import DEFAULT_HISTORY_LENGTH
from recgym.evaluation.transitions import masked_softmax, sample_actions
from recgym.scenario import Scenario
from simulators.base import Behavior
from simulators.behavior import BehaviorConfig, BehaviorSimulator, behaviors_from_ratings

#: column of a recorded log: the logging policy's probability of the recommended item (NaN for start items)
PROPENSITY_COLUMN = "propensity"
#: the logging policy's softmax temperature, in stars (rating units): an item predicted one star
#: better is e^(1 / 0.2) = 148 times more likely. A production-like policy: it mostly shows items the
#: user may like, yet explores (on ML-100K's training users with 100 steps: 22% of its recommendations
#: purchased, 47% clicked, 31% skipped; users stay 36 steps on average; docs/pretraining.md)
DEFAULT_TEMPERATURE = 0.2
#: steps of each recorded episode (most users leave sooner)
DEFAULT_LOG_STEPS = 100


@dataclass(frozen=True)
class LoggingSettings:
    """How a log was recorded (stored in the log's ``meta`` and beside a saved log).

    :param users: ``"train"`` (default: a pretrained encoder then never sees a test user),
        ``"test"`` or ``"all"``.
    :param max_steps: steps of each user's episode.
    :param history_length: N of the environment (the number of start items).
    :param temperature: the softmax temperature of the logging policy, in rating units.
    :param seed: seed of the environment and of the policy's draws.
    :param batch_size: users stepped at once (does not change the log).
    """

    users: str = "train"
    max_steps: int = DEFAULT_LOG_STEPS
    history_length: int = DEFAULT_HISTORY_LENGTH
    temperature: float = DEFAULT_TEMPERATURE
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.users not in ("train", "test", "all"):
            raise ValueError(f"users must be 'train', 'test' or 'all', got {self.users!r}")
        for name in ("max_steps", "history_length", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not (isinstance(self.temperature, (int, float)) and np.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")


class SoftmaxLoggingPolicy:
    """A fixed stochastic recommender: ``π(j | obs) ∝ exp(r̂_j / τ)`` over the available items.

    ``r̂_j`` is the rating the scenario's embedding model predicts for the
    user (the ``greedy-pmf`` baseline's score: fitted on the training users'
    ratings, a test user folded in from the episode's history), ``τ`` the
    temperature in rating units. Every available item has a positive
    probability, so the log supports off-policy estimates; the propensity of
    each choice is returned with it.

    :param env: the (vector) environment it recommends in.
    :param temperature: ``τ`` (> 0), in rating units.
    :param seed: seed of the policy's draws.
    """

    def __init__(self, env: Any, temperature: float = DEFAULT_TEMPERATURE, seed: int = 0) -> None:
        from agents.baselines import GreedyPMFAgent

        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.scorer = GreedyPMFAgent(env)
        self.temperature = float(temperature)
        self.rng = np.random.default_rng(seed)

    def probabilities(self, observations: dict[str, np.ndarray], available: np.ndarray) -> np.ndarray:
        """``(B, n_items)`` the policy's probabilities (0 for unavailable items) for a batch of observations."""
        return masked_softmax(self.scorer.predicted_ratings(observations), available, self.temperature)

    def act(self, observations: dict[str, np.ndarray], available: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sampled items ``(B,)`` and their propensities ``(B,)``."""
        probs = self.probabilities(observations, available)  # [B, n_items]
        items = sample_actions(probs, available, self.rng)
        return items, probs[np.arange(items.size), items]


def record_behavior_log(scenario: Scenario, settings: LoggingSettings = LoggingSettings()) -> RatingLog:
    """Run :class:`SoftmaxLoggingPolicy` in the scenario's behaviour environment and return what it recorded.

    One episode per user of ``settings.users`` (``settings.max_steps`` steps,
    or until the user leaves), stepped ``settings.batch_size`` users at a
    time. The log holds, per user, the start items (behaviour CLICK, the
    logged rating, times ``-N .. -1``) then every recommendation (behaviour,
    answered rating, step, propensity), in the scenario's id space, with
    :data:`BEHAVIOR_COLUMN` and :data:`PROPENSITY_COLUMN`.

    :param scenario: a scenario whose simulator is a :class:`~simulators.behavior.BehaviorSimulator`.
    :param settings: the recording's settings.
    """
    from recgym.envs.vector import RecommendationVectorEnv

    if not isinstance(scenario.simulator, BehaviorSimulator):
        raise ValueError(
            f"a behaviour log needs a behaviour user (skip / click / purchase), but the scenario's simulator is "
            f"{type(scenario.simulator).__name__}: build it with make_scenario(dataset, 'behavior') or use "
            "recgym/<Dataset>-Behavior-v0"
        )
    users = scenario.users(settings.users)
    scale = scenario.log.scale
    frames: list[pd.DataFrame] = []
    for number, start in enumerate(range(0, users.size, settings.batch_size)):
        batch = users[start : start + settings.batch_size]
        env = RecommendationVectorEnv(batch.size, scenario=scenario, users=settings.users,
                                      history_length=settings.history_length, max_steps=settings.max_steps)
        policy = SoftmaxLoggingPolicy(env, settings.temperature, seed=settings.seed * 1_000_003 + number)
        obs, _ = env.reset(seed=settings.seed * 1_000_003 + number, options={"users": batch})
        # the start items, as the first observation shows them
        valid = obs["history_mask"] == 1
        rows, cols = np.nonzero(valid)
        frames.append(pd.DataFrame({
            "user": batch[rows], "item": obs["history_items"][rows, cols],
            "rating": scale.from_reward(obs["history_feedback"][rows, cols].astype(np.float64)),
            "timestamp": obs["history_time"][rows, cols].astype(np.float64),
            BEHAVIOR_COLUMN: obs["history_behavior"][rows, cols].astype(np.int8),
            PROPENSITY_COLUMN: np.nan,
        }))
        running = np.ones(batch.size, dtype=bool)
        for step in range(settings.max_steps):
            items, propensity = policy.act(obs, env.action_masks())
            obs, _, terminated, truncated, info = env.step(items)
            rows = np.flatnonzero(running)  # rows whose own episode is still going (others were autoreset)
            frames.append(pd.DataFrame({
                "user": batch[rows], "item": info["item"][rows], "rating": info["rating"][rows].astype(np.float64),
                "timestamp": float(step), BEHAVIOR_COLUMN: info["behavior"][rows].astype(np.int8),
                PROPENSITY_COLUMN: propensity[rows],
            }))
            running &= ~(terminated | truncated)
            if not running.any():
                break
        env.close()
    interactions = pd.concat(frames, ignore_index=True).sort_values(["user", "timestamp"], kind="stable")
    log = scenario.log.with_interactions(interactions, name=f"{scenario.log.name}:behavior-log")
    log.meta["behavior_log"] = {"source": "recorded", "simulator": type(scenario.simulator).__name__,
                                "behavior_config": asdict(scenario.simulator.config), **asdict(settings)}
    return log


def rating_behavior_log(log: RatingLog, config: BehaviorConfig | None = None) -> RatingLog:
    """``log`` with a behaviour per rating (:func:`~simulators.behavior.behaviors_from_ratings`).

    With the default thresholds on 1..5 stars: 1-3 SKIP ("dislike"), 4 CLICK
    ("view"), 5 PURCHASE ("like"): the codes mean what a behaviour user's do.

    :param log: a rating log.
    :param config: the thresholds (default :class:`~simulators.behavior.BehaviorConfig`'s).
    """
    cfg = config if config is not None else BehaviorConfig()
    frame = log.interactions.copy()
    frame[BEHAVIOR_COLUMN] = behaviors_from_ratings(frame["rating"].to_numpy(), log.scale, cfg)
    out = log.with_interactions(frame, name=f"{log.name}:rating-behaviors")
    out.meta["behavior_log"] = {"source": "ratings", "click_threshold": cfg.click_threshold,
                                "purchase_threshold": cfg.purchase_threshold}
    return out


def behavior_counts(log: RatingLog) -> dict[str, int]:
    """Interactions per behaviour name of a multi-behaviour log (``{"skip": .., "click": .., "purchase": ..}``)."""
    if BEHAVIOR_COLUMN not in log.interactions.columns:
        raise ValueError(f"log {log.name!r} has no {BEHAVIOR_COLUMN!r} column: record one with "
                         "record_behavior_log or map ratings with rating_behavior_log")
    codes = log.interactions[BEHAVIOR_COLUMN].to_numpy()
    return {b.name.lower(): int((codes == int(b)).sum()) for b in Behavior if b != Behavior.PAD}


# -- files ------------------------------------------------------------------------------------


def description_path(path: str | Path) -> Path:
    """The description file written beside a saved behaviour log: ``path`` + ``.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_behavior_log(log: RatingLog, path: str | Path) -> Path:
    """Write ``log``'s interactions to ``path`` (CSV, contiguous ids) and its description to ``path.json``.

    Each file is written atomically, so an interrupted save leaves no cut-short log.

    :returns: the description's path.
    """
    from recgym.data.atomic import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["user", "item", "rating", "timestamp", BEHAVIOR_COLUMN] + (
        [PROPENSITY_COLUMN] if PROPENSITY_COLUMN in log.interactions.columns else [])
    atomic_write(path, lambda tmp: log.interactions[columns].to_csv(tmp, index=False, float_format="%.6g"))
    meta = {"log": log.name, "n_users": log.n_users, "n_items": log.n_items, "interactions": len(log),
            "behaviors": behavior_counts(log), **log.meta.get("behavior_log", {})}
    described = description_path(path)
    atomic_write(described, lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    return described


def _read_description(path: Path) -> dict[str, Any]:
    described = description_path(path)
    again = "record the log again with `recgym log-behavior`"
    if not described.is_file():
        raise ValueError(f"{path}: its description {described} is missing (written beside the log by "
                         f"`recgym log-behavior`; it is what the log is checked against): copy it along, or {again}")
    try:
        meta = json.loads(described.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{described} is unreadable ({err}): {again}") from None
    if not isinstance(meta, dict) or not all(
            isinstance(meta.get(k), int) and not isinstance(meta.get(k), bool)
            for k in ("n_users", "n_items", "interactions")) or not isinstance(meta.get("log"), str):
        raise ValueError(f"{described} is not a behaviour log's description (log, n_users, n_items, "
                         f"interactions): {again}")
    return meta


def load_behavior_log(path: str | Path, base: RatingLog) -> RatingLog:
    """A log written by :func:`save_behavior_log`, in the id space (and with the side information) of ``base``.

    The log is checked against its description (``path.json``): it must be complete
    (as many rows as recorded, the last one whole) and recorded on ``base``'s dataset.

    :param path: the CSV file.
    :param base: the dataset it was recorded on (e.g. ``make_scenario(...).log``).
    :raises ValueError: a missing or unreadable description, a cut-short or edited log, or
        one recorded on another dataset; the message says what to do.
    """
    path = Path(path)
    again = "record it again with `recgym log-behavior` (or copy it whole)"
    meta = _read_description(path)
    # the recorded log's name is "<dataset's log name>:behavior-log" (record_behavior_log)
    same_dataset = meta["log"] == base.name or meta["log"].startswith(base.name + ":")
    recorded_on = meta["log"].rsplit(":", 1)[0]
    if not same_dataset or (meta["n_users"], meta["n_items"]) != (base.n_users, base.n_items):
        raise ValueError(f"{path} was recorded on {recorded_on!r} ({meta['n_users']} users x {meta['n_items']} items, "
                         f"{description_path(path).name}), not on dataset {base.name!r} ({base.n_users} users x "
                         f"{base.n_items} items): load it with the dataset it was recorded on (pretrain "
                         f"--dataset), or record a log on {base.name!r} with `recgym log-behavior`")
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            file.seek(max(size - 1, 0))
            ends_whole = file.read(1) == b"\n"  # pandas ends every row, the last one too, with a newline
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path} cannot be read as a behaviour log ({type(err).__name__}: {err}): {again}") from None
    if not ends_whole:  # a log cut inside its last line still parses, with a shortened last value
        raise ValueError(f"{path} ends inside a line: the file was cut short (an interrupted copy or write): {again}")
    missing = [c for c in ("user", "item", "rating", "timestamp", BEHAVIOR_COLUMN) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a behaviour log (missing columns {missing}); write one with recgym log-behavior")
    if len(frame) != meta["interactions"]:
        raise ValueError(f"{path} holds {len(frame):,} rows but {meta['interactions']:,} were recorded "
                         f"({description_path(path).name}): it was cut short or edited: {again}")
    required = frame[["user", "item", "rating", "timestamp", BEHAVIOR_COLUMN]]
    # an empty or non-numeric value (a cut or edited file) would otherwise surface as a raw pandas
    # error (IntCastingNaNError) or a float id
    numeric = required.apply(lambda column: pd.to_numeric(column, errors="coerce"))
    values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    bad[:, [0, 1, 4]] |= np.isfinite(values[:, [0, 1, 4]]) & (values[:, [0, 1, 4]] != np.round(values[:, [0, 1, 4]]))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        name = required.columns[column]
        raise ValueError(f"{path}: line {row + 2} has no valid {name!r} ({required[name].iloc[row]!r}): the file "
                         f"was cut or edited: {again}")
    frame[list(required.columns)] = numeric
    frame[["user", "item"]] = frame[["user", "item"]].astype(np.int64)
    too_big = (frame["user"].max() >= base.n_users) or (frame["item"].max() >= base.n_items)
    if too_big or (frame[["user", "item"]].to_numpy() < 0).any():
        raise ValueError(f"{path}: its ids do not fit dataset {base.name!r} ({base.n_users} users x "
                         f"{base.n_items} items): load it with the dataset it was recorded on")
    frame[BEHAVIOR_COLUMN] = frame[BEHAVIOR_COLUMN].astype(np.int8)
    return base.with_interactions(frame, name=f"{base.name}:behavior-log")


# -- the command line ---------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``log-behavior`` sub-command."""
    p = subparsers.add_parser(
        "log-behavior",
        help="record a multi-behaviour log (skip / click / purchase) with a fixed logging policy",
        description="Run the fixed softmax logging policy (pi(j) ~ exp(predicted rating / T) over the available "
        "items) in a behaviour environment, one episode per user, and write every interaction with its "
        "behaviour and propensity to OUT (CSV) and a description to OUT.json. Seeded: the same arguments give "
        "the same log. Load it with recgym.experiments.behavior_log.load_behavior_log or "
        "`recgym pretrain --behavior-log OUT`.",
    )
    defaults = LoggingSettings()
    p.add_argument("--env", default="recgym/ML100K-Behavior-v0",
                   help="a behaviour environment id (default recgym/ML100K-Behavior-v0)")
    p.add_argument("--out", type=Path, required=True, help="CSV file to write")
    p.add_argument("--users", default=defaults.users, help="train (default), test or all")
    p.add_argument("--max-steps", type=int, default=defaults.max_steps,
                   help=f"steps per user's episode (default {defaults.max_steps})")
    p.add_argument("--history-length", type=int, default=defaults.history_length,
                   help=f"N, the environment's history length and number of start items (default {defaults.history_length})")
    p.add_argument("--temperature", type=float, default=defaults.temperature,
                   help=f"softmax temperature of the logging policy, in rating units (default {defaults.temperature:g})")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default 0)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/test user split (as the environment's)")
    p.add_argument("--data-dir", help="local data directory (default: RECGYM_DATA_DIR, then the cache)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT and OUT.json if they exist")
    p.set_defaults(func=run_log_behavior)


def run_log_behavior(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from recgym.envs.registration import env_ids, register_envs
    from recgym.scenario import make_scenario

    register_envs()
    behavior_ids = [i for i in env_ids() if gym.spec(i).kwargs["simulator"].startswith("behavior")]
    if args.env not in behavior_ids:
        raise ValueError(f"--env must be a behaviour environment, one of {', '.join(behavior_ids)}; got {args.env!r}")
    if args.out.is_dir():  # --overwrite replaces a file, never a folder
        raise IsADirectoryError(f"--out {args.out} is a folder: give the path of the CSV file to write "
                                f"(e.g. --out {args.out / 'behavior_log.csv'})")
    for written in (args.out, description_path(args.out)):  # the log and its description
        if written.exists() and not args.overwrite:
            raise FileExistsError(f"{written} exists (--out {args.out} writes {args.out.name} and its description "
                                  f"{description_path(args.out).name}): pass --overwrite to replace them, or choose "
                                  "another --out")
    settings = LoggingSettings(users=args.users, max_steps=args.max_steps, history_length=args.history_length,
                               temperature=args.temperature, seed=args.seed)
    dataset, simulator = gym.spec(args.env).kwargs["dataset"], gym.spec(args.env).kwargs["simulator"]
    tic = time.perf_counter()
    scenario = make_scenario(dataset, simulator, split_seed=args.split_seed, data_dir=args.data_dir)
    log = record_behavior_log(scenario, settings)
    log.meta["behavior_log"].update(env=args.env, split_seed=args.split_seed)
    described = save_behavior_log(log, args.out)
    counts = ", ".join(f"{k} {v:,}" for k, v in behavior_counts(log).items())
    print(f"recorded {len(log):,} interactions of {log.interactions['user'].nunique():,} users ({counts}) "
          f"in {time.perf_counter() - tic:.1f} s; log: {args.out}; description: {described}")
    return 0
