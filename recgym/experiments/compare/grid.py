"""The comparison grid: encoders x environments x agents x seeds, and explicit rows, validated before anything trains.

A grid file (YAML or TOML) names what to compare::

    encoders: [mean, drr-ave, sasrec, {weights: runs/pre-sasrec}]   # a name, or a `recgym pretrain` folder
    envs: [recgym/ML100K-PMF-v0, recgym/ML100K-Behavior-v1]
    agents: [dqn, drr]
    seeds: [0, 1, 2]
    reference: mean
    steps: 20000
    device: auto            # where every cell trains: auto (CUDA when available), cpu or cuda
    rows:                   # explicit (agent, encoder, settings) combinations beside the cross product
      - {label: "DRR (penalty 1)", agent: drr, encoder: drr-ave, agent_kwargs: {action_penalty: 1.0}}
      - {agent: planner, envs: [recgym/ML100K-Behavior-v1]}

:func:`load_grid` reads it and :func:`make_grid` checks it, listing every bad
name (encoder, environment, agent, baseline, metric) in one error, so a typo is
found before the first of many cells trains. :meth:`GridConfig.cells` expands
the grid into :class:`Cell` s, each a normal ``recgym train`` run
(:class:`~recgym.experiments.config.TrainConfig`) with its own run folder.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from recgym.devices import DEVICE_CHOICES
from recgym.experiments.config import (
    PROTOCOLS,
    ConfigError,
    TrainConfig,
    closest_key_hint,
    load_config_file,
    make_config,
)

#: policies scored beside the agents on every environment and seed (docs/agents.md)
DEFAULT_BASELINES = ("random", "popularity", "greedy-pmf", "oracle-greedy")
#: baselines that read the live simulator: shown for reference, never the best of a column
CHEATING_BASELINES = frozenset({"oracle-greedy", "planner"})
#: the protocols a grid cell is scored under: all of :data:`~recgym.experiments.config.PROTOCOLS` but long-term,
#: which replays the cell on its scenario's behaviour users in three modes (``recgym evaluate --protocol
#: long-term`` on a cell's run folder does it)
GRID_PROTOCOLS = tuple(p for p in PROTOCOLS if p != "long-term")
#: figures of the tables, ``protocol/metric``; the first is the main metric (heat map)
DEFAULT_METRICS = ("online/avg_reward_per_step", "offline/precision@10", "offline/ndcg@10")
#: what the online protocol reports (recgym.evaluation.online.OnlineResult.summary)
ONLINE_METRICS = ("avg_reward_per_step", "avg_reward_per_episode", "avg_episode_length", "left_fraction",
                  "distinct_first_items")
#: what the offline protocol reports (recgym.evaluation.offline.evaluate_offline), k in its DEFAULT_KS
OFFLINE_METRIC = re.compile(r"(precision|ndcg|ndcg_list|map)@(5|10|20)")
#: the largest seed numpy (and so each cell's run) accepts
MAX_SEED = 2**32 - 1
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
#: what a row of ``rows:`` may say
ROW_KEYS = ("label", "agent", "encoder", "envs", "agent_kwargs", "env_kwargs", "steps")


@dataclass(frozen=True)
class EncoderChoice:
    """One encoder of the grid: a registered name, or pretrained weights named by their folder.

    :param label: the name shown in tables and run folders (the encoder's name, or the weights folder's).
    :param encoder: the registered encoder name.
    :param weights: a folder written by ``recgym pretrain`` (None: the encoder starts from the PMF tables).
    :param freeze: with ``weights``: keep the pretrained encoder fixed (True) or fine-tune it.
    """

    label: str
    encoder: str
    weights: str | None = None
    freeze: bool = True


@dataclass(frozen=True)
class RowChoice:
    """One explicit row of the grid (``rows:``): an agent, its encoder and its own settings, beside the cross product.

    :param label: the row's name in tables (unique in the grid); its folder-safe form (:attr:`slug`) names the
        run folders and records.
    :param agent: a learning agent or a baseline.
    :param encoder: the learning agent's encoder (None for a baseline).
    :param envs: the environments the row runs on (the grid's by default).
    :param agent_kwargs: the agent's settings, over the grid's ``agent_kwargs`` for that agent.
    :param env_kwargs: environment settings, over the grid's ``env_kwargs``.
    :param steps: the row's environment steps (None: the grid's ``steps``).
    """

    label: str
    agent: str
    encoder: EncoderChoice | None
    envs: tuple[str, ...]
    agent_kwargs: Mapping[str, Any] = field(default_factory=dict)
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    steps: int | None = None

    @property
    def slug(self) -> str:
        """The label as a folder name: ``DQN (prior head)`` -> ``DQN-prior-head``."""
        return row_slug(self.label)

    def to_json(self) -> dict[str, Any]:
        encoder = None if self.encoder is None else {"label": self.encoder.label, "encoder": self.encoder.encoder,
                                                     "weights": self.encoder.weights, "freeze": self.encoder.freeze}
        return {"label": self.label, "agent": self.agent, "encoder": encoder, "envs": list(self.envs),
                "agent_kwargs": dict(self.agent_kwargs), "env_kwargs": dict(self.env_kwargs), "steps": self.steps}


def row_slug(label: str) -> str:
    """A row label as a file-name-safe word (letters, digits and ``_ . + -``)."""
    return re.sub(r"[^A-Za-z0-9_.+]+", "-", label).strip("-")


@dataclass(frozen=True)
class Cell:
    """One run of the grid: an agent (or a baseline) with an encoder on an environment with a seed.

    :param env: the environment id.
    :param agent: the agent or baseline name.
    :param encoder_label: the encoder's label, as tables and run folders show it (None for a baseline); the
        encoder's registered name is ``config.encoder``.
    :param seed: the run's seed.
    :param config: the run's validated training configuration.
    :param baseline: True for a baseline policy (no encoder; fitted from the log or not trained).
    :param skip_reason: why the encoder cannot run on this environment (the cell is reported, not run).
    :param row: the label of the explicit row (``rows:``) the cell belongs to; None for the cross product's cells.
    """

    env: str
    agent: str
    encoder_label: str | None
    seed: int
    config: TrainConfig = field(repr=False, compare=False)
    baseline: bool = False
    skip_reason: str | None = None
    row: str | None = None

    @property
    def key(self) -> str:
        """A file-name-safe identifier, unique in the grid: ``ML100K-PMF-v0__dqn__mean__seed-0`` (an explicit
        row's: ``ML100K-PMF-v0__row__DQN-prior-head__seed-0``)."""
        if self.row is not None:
            return "__".join([env_slug(self.env), "row", row_slug(self.row), f"seed-{self.seed}"])
        return "__".join([env_slug(self.env), self.agent, self.encoder_label or "baseline", f"seed-{self.seed}"])

    @property
    def run_path(self) -> Path:
        """The run folder, relative to the grid's output folder."""
        if self.row is not None:
            return Path("runs", env_slug(self.env), "rows", row_slug(self.row), f"seed-{self.seed}")
        middle = ["baselines", self.agent] if self.baseline else [self.agent, self.encoder_label or ""]
        return Path("runs", env_slug(self.env), *middle, f"seed-{self.seed}")

    @property
    def label(self) -> str:
        """``agent / encoder`` (or the baseline's name, or the explicit row's label), as the tables show it."""
        if self.row is not None:
            return self.row
        return self.agent if self.baseline else f"{self.agent} / {self.encoder_label}"


def env_slug(env_id: str) -> str:
    """The id without its namespace (``recgym/ML100K-PMF-v0`` -> ``ML100K-PMF-v0``), for folder names."""
    return env_id.split("/", 1)[-1]


@dataclass(frozen=True)
class GridConfig:
    """A validated comparison grid (build it with :func:`make_grid` or :func:`load_grid`).

    :param encoders: the encoders compared (with ``agents``: the cross product; may be empty with ``rows``).
    :param envs: registered recgym environment ids.
    :param agents: learning agents (``dqn``, ``drr``, ``ddpg``, ``deers``).
    :param seeds: seeds; seed ``s`` seeds the agent, the evaluation and (by default) the user split.
    :param reference: the encoder label every other encoder is compared with (paired over seeds; None without
        encoders).
    :param baselines: policies scored beside the agents on each environment and seed.
    :param protocols: ``online`` (always: ``recgym train`` ends with it) and ``offline`` (DRR's re-ranking).
    :param metrics: ``protocol/metric`` figures of the tables; the first is the main metric.
    :param steps: environment steps per cell.
    :param n_envs: users simulated in parallel per cell.
    :param eval_every: steps between the learning curve's test evaluations.
    :param eval_episodes: test episodes per learning-curve point.
    :param checkpoint_every: steps between checkpoints (what a killed grid loses per running cell).
    :param split_seed: ``"seed"``: each seed has its own 80/20 user split; an integer: one split for all.
    :param env_kwargs: environment settings of every cell (``max_steps``, ``history_length``, ...).
    :param per_env_kwargs: per environment id, settings of its cells over ``env_kwargs`` (a dataset's own file,
        say: ``{recgym/Jester-PMF-v0: {path: ...}}``).
    :param agent_kwargs: per agent, its settings (``{"dqn": {"learning_rate": 1e-3}}``).
    :param data_dir: local data directory (default: ``RECGYM_DATA_DIR``, then the cache).
    :param title: a title for the summary.
    :param device: where every cell's agent trains (``auto``: CUDA when available, ``cpu``, ``cuda``); a
        rerun may change it (finished cells are still reused).
    :param rows: explicit rows run beside the cross product (:class:`RowChoice`), on each of their environments
        and every seed.
    """

    encoders: tuple[EncoderChoice, ...]
    envs: tuple[str, ...]
    agents: tuple[str, ...]
    seeds: tuple[int, ...]
    reference: str | None
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    protocols: tuple[str, ...] = GRID_PROTOCOLS
    metrics: tuple[str, ...] = DEFAULT_METRICS
    steps: int = 20_000
    n_envs: int = 16
    eval_every: int = 2_000
    eval_episodes: int = 256
    checkpoint_every: int = 5_000
    split_seed: int | str = "seed"
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    agent_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    per_env_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    data_dir: str | None = None
    title: str = "Encoder comparison"
    device: str = "auto"
    rows: tuple[RowChoice, ...] = ()

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    def encoder(self, label: str) -> EncoderChoice:
        return next(e for e in self.encoders if e.label == label)

    @property
    def all_envs(self) -> tuple[str, ...]:
        """The grid's environments, then those only explicit rows name."""
        return tuple(dict.fromkeys([*self.envs, *(e for row in self.rows for e in row.envs)]))

    def cells(self) -> list[Cell]:
        """Every cell, seed by seed (a partial grid has whole seeds): within a seed and environment the baselines,
        the cross product, then the explicit rows."""
        out: list[Cell] = []
        for seed in self.seeds:
            for env in self.all_envs:
                if env in self.envs:
                    for name in self.baselines:
                        out.append(Cell(env, name, None, seed, self.train_config(env, name, None, seed), baseline=True))
                    for agent in self.agents:
                        for choice in self.encoders:
                            config = self.train_config(env, agent, choice, seed)
                            reason = incompatibility(choice, env, config.env_kwargs)
                            out.append(Cell(env, agent, choice.label, seed, config, skip_reason=reason))
                for row in self.rows:
                    if env in row.envs:
                        config = self.train_config(env, row.agent, row.encoder, seed, row)
                        reason = None if row.encoder is None else incompatibility(row.encoder, env, config.env_kwargs)
                        out.append(Cell(env, row.agent, None if row.encoder is None else row.encoder.label, seed,
                                        config, baseline=row.encoder is None, skip_reason=reason, row=row.label))
        return out

    def cell_split_seed(self, seed: int) -> int:
        return seed if self.split_seed == "seed" else int(self.split_seed)

    def cell_env_kwargs(self, seed: int, row: RowChoice | None = None, env: str | None = None) -> dict[str, Any]:
        """The environment settings of the cells of ``seed`` (on ``env``, of ``row``): the grid's, the environment's
        own (``per_env_kwargs``), the row's, the seed's user split and the data directory."""
        env_kwargs = {**self.env_kwargs, **self.per_env_kwargs.get(env or "", {}), **(row.env_kwargs if row else {}),
                      "split_seed": self.cell_split_seed(seed)}
        if self.data_dir is not None:
            env_kwargs["data_dir"] = self.data_dir
        return env_kwargs

    def train_config(self, env: str, agent: str, choice: EncoderChoice | None, seed: int,
                     row: RowChoice | None = None) -> TrainConfig:
        """The ``recgym train`` configuration of one cell (of the explicit ``row``: its settings over the grid's)."""
        env_kwargs = self.cell_env_kwargs(seed, row, env)
        agent_kwargs = {**self.agent_kwargs.get(agent, {}), **(row.agent_kwargs if row else {})}
        steps = row.steps if row is not None and row.steps is not None else self.steps
        values: dict[str, Any] = dict(
            env=env, agent=agent, steps=steps, seed=seed, n_envs=self.n_envs, eval_every=self.eval_every,
            eval_episodes=self.eval_episodes, checkpoint_every=self.checkpoint_every, env_kwargs=env_kwargs,
            agent_kwargs=agent_kwargs, device=self.device,
        )
        if choice is not None:
            values["encoder"] = choice.encoder
            if choice.weights is not None:
                values.update(encoder_weights=choice.weights, freeze_encoder=choice.freeze)
        return make_config(**values)

    def to_json(self) -> dict[str, Any]:
        """The grid as plain JSON (what ``grid.json`` in the output folder holds)."""
        return {
            "title": self.title,
            "encoders": [{"label": e.label, "encoder": e.encoder, "weights": e.weights, "freeze": e.freeze}
                         for e in self.encoders],
            "envs": list(self.envs), "agents": list(self.agents), "seeds": list(self.seeds),
            "reference": self.reference, "baselines": list(self.baselines), "protocols": list(self.protocols),
            "metrics": list(self.metrics), "steps": self.steps, "n_envs": self.n_envs, "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes, "checkpoint_every": self.checkpoint_every,
            "split_seed": self.split_seed, "env_kwargs": dict(self.env_kwargs),
            "per_env_kwargs": {k: dict(v) for k, v in self.per_env_kwargs.items()},
            "agent_kwargs": {k: dict(v) for k, v in self.agent_kwargs.items()}, "data_dir": self.data_dir,
            "device": self.device, "rows": [row.to_json() for row in self.rows],
        }


# -- compatibility of an encoder with an environment -----------------------------------------------


def _takes_content_features(encoder: str) -> bool:
    import state_encoders

    return "item_features" in inspect.signature(state_encoders.encoder_class(encoder).__init__).parameters


@functools.lru_cache(maxsize=8)
def _dataset_log(dataset: str, data_dir: str | None, path: str | None, dataset_kwargs: str) -> Any:
    """The environment's rating log (the loaders' own caches make this cheap after the first time)."""
    from recgym.data import load

    return load(dataset, data_dir=data_dir, path=path, progress=False, **json.loads(dataset_kwargs))


def environment_log(env: str, env_kwargs: Mapping[str, Any]) -> Any:
    """The rating log ``env`` with ``env_kwargs`` plays (None when it cannot be loaded here)."""
    from recgym.experiments.setup import environment_settings

    kwargs = environment_settings(env, env_kwargs)
    try:
        return _dataset_log(kwargs["dataset"], kwargs.get("data_dir"), kwargs.get("path"),
                            json.dumps(kwargs.get("dataset_kwargs") or {}, sort_keys=True))
    except Exception:  # a missing dataset is the cell's own error to report, not a reason to skip it
        return None


def incompatibility(choice: EncoderChoice, env: str, env_kwargs: Mapping[str, Any]) -> str | None:
    """Why ``choice`` cannot run on ``env`` (None when it can); such a cell is reported as skipped.

    * a content-aware encoder (FDSA, p-RNN) needs item content (genres or texts), which some
      datasets do not have;
    * pretrained weights must come from the environment's dataset, history length and user split
      (weights pretrained on another split have seen this split's test users).

    :param choice: the encoder.
    :param env: the environment id.
    :param env_kwargs: the cell's environment settings (``split_seed`` included).
    """
    if choice.weights is None:
        if _takes_content_features(choice.encoder):
            import state_encoders
            from state_encoders.features import content_kwargs

            log = environment_log(env, env_kwargs)
            if log is not None:
                try:
                    content_kwargs(state_encoders.encoder_class(choice.encoder), log)
                except ValueError as err:
                    return f"encoder {choice.encoder!r} needs item content features: {err}"
        return None
    from recgym.experiments.setup import pretrained_weights_mismatch

    problems = pretrained_weights_mismatch(choice.weights, env, env_kwargs)
    problems = [p + (" (its test users would have been seen): set split_seed in the grid to the weights' split"
                     if p.startswith("pretrained on the training users") else "") for p in problems]
    return f"weights {choice.weights}: " + "; ".join(problems) if problems else None


# -- building and checking a grid -------------------------------------------------------------------


def _as_list(values: dict[str, Any], key: str, problems: list[str], default: Any = None,
             allow_empty: bool = False) -> list[Any]:
    """A list setting; a single name (``baselines: random``) is a list of one, never split into characters."""
    value = values.get(key, default)
    if value is None:
        if allow_empty:
            return []
        problems.append(f"{key}: missing (give a list)")
        return []
    if isinstance(value, (str, int, dict)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not (value or allow_empty):
        problems.append(f"{key}: must be a {'' if allow_empty else 'non-empty '}list, got {value!r}")
        return []
    return list(value)


def _repeated(key: str, items: list[Any], problems: list[str]) -> None:
    """Refuse a name listed twice: two cells would share one run folder (and one record)."""
    twice = [x for i, x in enumerate(items) if x in items[:i]]
    if twice:
        problems.append(f"{key} repeat: {sorted(set(map(str, twice)))} listed more than once in {items!r}")


def _encoder_choice(entry: Any, problems: list[str]) -> EncoderChoice | None:
    import state_encoders
    from state_encoders.weights import PretrainedWeightsError, read_description

    if isinstance(entry, str):
        if entry not in state_encoders.available():
            problems.append(f"unknown encoder {entry!r}")
            return None
        return EncoderChoice(entry, entry)
    if not isinstance(entry, dict) or "weights" not in entry and "encoder" not in entry:
        problems.append(f"encoder entry {entry!r}: give a registered name or a mapping with `weights: DIR` "
                        "(a `recgym pretrain` folder), optionally `encoder`, `label`, `freeze`")
        return None
    unknown = sorted(set(entry) - {"weights", "encoder", "label", "freeze"})
    if unknown:
        problems.append(f"encoder entry {entry!r}: unknown keys {unknown}")
        return None
    weights, name = entry.get("weights"), entry.get("encoder")
    if weights is not None:
        try:
            saved = read_description(weights)["encoder"]
        except PretrainedWeightsError as err:
            problems.append(f"encoder weights {weights}: {err}")
            return None
        if name is not None and name != saved:
            problems.append(f"encoder weights {weights} are for {saved!r}, not {name!r}")
            return None
        name = saved
    if name not in state_encoders.available():
        problems.append(f"unknown encoder {name!r}")
        return None
    freeze = entry.get("freeze", True)
    if not isinstance(freeze, bool):
        problems.append(f"encoder entry {entry!r}: freeze must be true or false")
        return None
    label = entry.get("label") or (Path(weights).resolve().name if weights is not None else name)
    return EncoderChoice(str(label), name, None if weights is None else str(weights), freeze)


def _rows_of(values: dict[str, Any], envs: list[str], learning: list[str], labels: list[str], grid_agents: list[str],
             baselines: list[str], names: dict[str, list[str]], problems: list[str]) -> list[RowChoice]:
    """The explicit rows (``rows:``), each checked; problems are appended, unknown names go to ``names``."""
    import agents

    from recgym.experiments.setup import check_recgym_id

    entries = _as_list(values, "rows", problems, default=[], allow_empty=True)
    rows: list[RowChoice] = []
    # the cross product's table labels: a row that repeats one would repeat its cells
    taken = {f"{a} / {e}": "the cross product" for a in grid_agents for e in labels}
    taken.update({b: "the baselines" for b in baselines})
    slugs: dict[str, str] = {}
    for i, entry in enumerate(entries):
        where = f"rows[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: give a mapping with `agent` (and `encoder` for a learning agent), optionally "
                            f"{', '.join(f'`{k}`' for k in ROW_KEYS[2:])} and `label`, got {entry!r}")
            continue
        unknown = sorted(set(map(str, entry)) - set(ROW_KEYS))
        if unknown:
            problems.append(f"{where}: unknown keys {unknown} "
                            f"({'; '.join(closest_key_hint(k, set(ROW_KEYS)) for k in unknown)})")
            continue
        agent = entry.get("agent")
        if not isinstance(agent, str):
            problems.append(f"{where}: `agent` missing (a learning agent or a baseline), got {entry!r}")
            continue
        if agent not in agents.available():
            names["agent"].append(repr(agent))
            continue
        choice = None
        if agent in learning:
            if entry.get("encoder") is None:
                problems.append(f"{where}: agent {agent!r} learns from an encoder's state: give `encoder`")
                continue
            before = len(problems)
            choice = _encoder_choice(entry["encoder"], problems)
            if choice is None:
                if len(problems) > before and problems[-1].startswith("unknown encoder"):
                    names["encoder"].append(problems.pop().split(" ", 2)[2])
                continue
        elif entry.get("encoder") is not None:
            problems.append(f"{where}: {agent!r} is a baseline, which takes no encoder: leave `encoder` out")
            continue
        label = entry.get("label")
        if label is None:
            label = agent if choice is None else f"{agent} / {choice.label}"
        if not isinstance(label, str) or not row_slug(label):
            problems.append(f"{where}: label must be text with a letter or digit, got {label!r}")
            continue
        if label in taken:
            problems.append(f"row {label!r} repeats {taken[label]} (two cells would share one record): give it "
                            "another `label`, or leave it out of one of them")
            continue
        if row_slug(label) in slugs:
            problems.append(f"rows {slugs[row_slug(label)]!r} and {label!r} share the folder name "
                            f"{row_slug(label)!r}: give them labels that differ in letters or digits")
            continue
        taken[label], slugs[row_slug(label)] = "another row", label
        row_envs = [str(e) for e in _as_list(entry, "envs", problems, default=envs)]
        _repeated(f"{where} envs", row_envs, problems)
        for env in row_envs:
            if env not in envs:
                try:
                    check_recgym_id(env)
                except ValueError:
                    names["environment"].append(repr(env))
        settings: dict[str, dict[str, Any]] = {}
        for key in ("agent_kwargs", "env_kwargs"):
            value = entry.get(key) or {}
            if not isinstance(value, dict):
                problems.append(f"{where}: {key} must map settings to values, got {value!r}")
                value = {}
            settings[key] = value
        if "split_seed" in settings["env_kwargs"]:
            problems.append(f"{where}: env_kwargs sets split_seed: use the grid's own split_seed setting")
        steps = entry.get("steps")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            problems.append(f"{where}: steps must be a positive integer, got {steps!r}")
        rows.append(RowChoice(label, agent, choice, tuple(row_envs), settings["agent_kwargs"], settings["env_kwargs"],
                              steps))
    return rows


def make_grid(values: Mapping[str, Any], check_environments: bool = True) -> GridConfig:
    """Validate a grid's settings and build a :class:`GridConfig`.

    Every problem is collected and reported in one :class:`~recgym.experiments.config.ConfigError`:
    unknown encoders, environments, agents, baselines and metrics are all listed at once, with the
    valid choices.

    :param values: the settings (a grid file's mapping); relative ``weights`` folders are relative to the
        working directory, as ``recgym train --encoder-weights``.
    :param check_environments: also build each environment once with the grid's ``env_kwargs`` and
        ``data_dir`` (:func:`environment_problems`); False for a grid only reported on (``--report-only``),
        whose data need not be on this machine.
    """
    import agents
    import state_encoders
    from recgym.envs.registration import env_ids
    from recgym.experiments.setup import check_recgym_id

    values = dict(values)
    fields = set(GridConfig.__dataclass_fields__)
    problems: list[str] = [f"unknown setting {k!r} ({closest_key_hint(k, fields)})"
                           for k in sorted(set(values) - fields, key=str)]
    names: dict[str, list[str]] = {"encoder": [], "environment": [], "agent": [], "baseline": []}

    # with explicit rows the cross product may be left out (no encoders and no agents)
    has_rows = values.get("rows") not in (None, [])
    cross = not has_rows or values.get("encoders") not in (None, []) or values.get("agents") not in (None, [])
    encoders: list[EncoderChoice] = []
    for entry in (_as_list(values, "encoders", problems) if cross else []):
        before = len(problems)
        choice = _encoder_choice(entry, problems)
        if choice is None:
            if len(problems) > before and problems[-1].startswith("unknown encoder"):
                names["encoder"].append(problems.pop().split(" ", 2)[2])
            continue
        encoders.append(choice)
    labels = [e.label for e in encoders]
    duplicated = sorted({x for x in labels if labels.count(x) > 1})
    if duplicated:
        problems.append(f"encoder labels {duplicated} appear twice: give each a distinct `label`")
    problems += [f"encoder label {x!r} cannot name a folder (letters, digits, . _ + - only)"
                 for x in labels if not _LABEL.fullmatch(x)]

    envs = [str(e) for e in _as_list(values, "envs", problems)]
    _repeated("envs", envs, problems)
    for env in envs:
        try:
            check_recgym_id(env)
        except ValueError:
            names["environment"].append(repr(env))
    learning = [a for a in agents.available() if agents.spec(a).uses_encoder]
    grid_agents = [str(a) for a in (_as_list(values, "agents", problems) if cross else [])]
    _repeated("agents", grid_agents, problems)
    for agent in grid_agents:
        if agent not in learning:
            names["agent"].append(repr(agent) + (" (a baseline: list it under baselines)"
                                                 if agent in agents.available() else ""))
    baselines = [str(b) for b in _as_list(values, "baselines", problems, DEFAULT_BASELINES, allow_empty=True)]
    _repeated("baselines", baselines, problems)
    for name in baselines:
        if name not in agents.available() or name in learning:
            names["baseline"].append(repr(name))

    seeds = _as_list(values, "seeds", problems, default=[0])
    if any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED for s in seeds):
        problems.append(f"seeds must be integers in 0..{MAX_SEED} (2**32 - 1, numpy's seed range), got {seeds!r}")
    elif len(set(seeds)) != len(seeds):
        problems.append(f"seeds repeat: {seeds!r}")

    protocols = tuple(str(p) for p in _as_list(values, "protocols", problems, GRID_PROTOCOLS))
    if "online" not in protocols or any(p not in GRID_PROTOCOLS for p in protocols):
        problems.append(f"protocols must include online and be among {list(GRID_PROTOCOLS)}, got {list(protocols)}")
    metrics = tuple(_as_list(values, "metrics", problems, DEFAULT_METRICS, allow_empty=True))
    for metric in metrics:
        protocol, _, name = str(metric).partition("/")
        ok = (protocol == "online" and name in ONLINE_METRICS) or (protocol == "offline" and OFFLINE_METRIC.fullmatch(name))
        if not ok or protocol not in protocols:
            problems.append(f"unknown metric {metric!r}: use online/<{'|'.join(ONLINE_METRICS)}> or "
                            "offline/<precision|ndcg|ndcg_list|map>@<5|10|20> (its protocol listed in protocols)")
    if not metrics:
        problems.append("metrics: give at least one")

    rows = _rows_of(values, envs, learning, labels, grid_agents, baselines, names, problems)

    reference = values.get("reference", labels[0] if labels else None)
    if not labels and reference is not None:
        problems.append(f"reference {reference!r} names an encoder, but the grid has no encoders (leave it out)")
    if labels and reference not in labels:
        problems.append(f"reference {reference!r} is not one of the grid's encoders {labels}")
    device = values.get("device", "auto")
    if device not in DEVICE_CHOICES:
        problems.append(f"device must be one of {', '.join(DEVICE_CHOICES)}, got {device!r}")
    split_seed = values.get("split_seed", "seed")
    if split_seed != "seed" and (isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0):
        problems.append(f"split_seed must be 'seed' or an integer >= 0, got {split_seed!r}")
    env_kwargs = values.get("env_kwargs", {}) or {}
    if not isinstance(env_kwargs, dict):
        problems.append(f"env_kwargs must map environment settings to values, e.g. {{max_steps: 10}}, got {env_kwargs!r}")
        env_kwargs = {}
    elif "split_seed" in env_kwargs:
        # each cell's split_seed comes from the grid's split_seed: one given here would be overridden
        problems.append("env_kwargs sets split_seed: use the grid's own split_seed setting ('seed' or an integer)")
    values["env_kwargs"] = env_kwargs
    per_env_kwargs = values.get("per_env_kwargs", {}) or {}
    if not isinstance(per_env_kwargs, dict) or any(not isinstance(v, dict) for v in per_env_kwargs.values()):
        problems.append("per_env_kwargs must map each environment id to its settings, e.g. "
                        f"{{recgym/Jester-PMF-v0: {{path: ratings.csv}}}}, got {per_env_kwargs!r}")
        per_env_kwargs = {}
    for env, settings in per_env_kwargs.items():
        if env not in envs + [e for r in rows for e in r.envs]:
            problems.append(f"per_env_kwargs names {env!r}, which is not among the grid's environments")
        if "split_seed" in settings:
            problems.append(f"per_env_kwargs of {env} sets split_seed: use the grid's own split_seed setting")
    data_dir = values.get("data_dir")
    if check_environments and data_dir is not None and not Path(data_dir).is_dir():
        problems.append(f"data_dir {data_dir} is not a folder: give the folder holding the datasets "
                        "(or leave data_dir out to use RECGYM_DATA_DIR, then the cache)")
    agent_kwargs = values.get("agent_kwargs", {}) or {}
    if not isinstance(agent_kwargs, dict) or any(not isinstance(v, dict) for v in agent_kwargs.values()):
        problems.append("agent_kwargs must map each agent to its settings, e.g. {dqn: {learning_rate: 0.001}}")
        agent_kwargs = {}
    else:
        problems += [f"agent_kwargs names {a!r}, which is not among the grid's agents, baselines or rows"
                     for a in agent_kwargs if a not in grid_agents + baselines + [r.agent for r in rows]]

    choices = {"encoder": state_encoders.available(), "environment": env_ids(), "agent": learning,
               "baseline": [a for a in agents.available() if a not in learning]}
    # the unknown names first, by kind: what a typo in a long grid produces
    problems = [f"unknown {kind}{'s' if len(bad) > 1 else ''} {', '.join(bad)} (choose from {', '.join(choices[kind])})"
                for kind, bad in names.items() if bad] + problems
    if problems:
        raise ConfigError("invalid grid: " + "; ".join(problems))

    settings = {k: values[k] for k in ("steps", "n_envs", "eval_every", "eval_episodes", "checkpoint_every",
                                       "env_kwargs", "data_dir", "title", "device") if k in values}
    grid = GridConfig(encoders=tuple(encoders), envs=tuple(envs), agents=tuple(grid_agents),
                      seeds=tuple(int(s) for s in seeds), reference=None if reference is None else str(reference),
                      baselines=tuple(baselines), protocols=protocols, metrics=metrics, split_seed=split_seed,
                      agent_kwargs={k: dict(v) for k, v in agent_kwargs.items()}, rows=tuple(rows),
                      per_env_kwargs={k: dict(v) for k, v in per_env_kwargs.items()}, **settings)
    # each cell's run configuration, checked now (agent arguments, sizes); the seed changes nothing a check
    # looks at, nor does the encoder beyond its name, so one cell per environment, agent and encoder is enough
    cell_problems: list[str] = []
    for env in grid.envs:
        for agent, choices in [*[(a, grid.encoders) for a in grid.agents], *[(b, (None,)) for b in grid.baselines]]:
            for choice in choices:
                try:
                    grid.train_config(env, agent, choice, grid.seeds[0])
                except ConfigError as err:
                    message = str(err).removeprefix("invalid run configuration: ")
                    if message not in cell_problems:
                        cell_problems.append(message)
    for row in grid.rows:
        for env in row.envs:
            try:
                grid.train_config(env, row.agent, row.encoder, grid.seeds[0], row)
            except ConfigError as err:
                message = f"row {row.label!r}: " + str(err).removeprefix("invalid run configuration: ")
                if message not in cell_problems:
                    cell_problems.append(message)
    if not cell_problems and check_environments:
        cell_problems = environment_problems(grid)
    if cell_problems:
        raise ConfigError("invalid grid: " + "; ".join(cell_problems))
    return grid


def environment_problems(grid: GridConfig) -> list[str]:
    """Build each environment of the grid once per action mode its agents and baselines need, with the grid's
    ``env_kwargs`` and ``data_dir``: what each cell would build first, so that an unknown or invalid environment
    setting, or missing data, is reported before the first cell trains rather than by every cell.

    The environment's own resolver (:func:`recgym.envs.config.resolve_env_kwargs`, through
    :func:`~recgym.experiments.setup.make_run_setup`) judges the settings; the models it fits are
    cached, so the cells do not fit them again.
    """
    import agents
    from recgym.experiments.setup import make_run_setup

    problems: list[str] = []
    # each environment with each distinct set of settings (the grid's, and each row's own) and action mode
    builds: dict[tuple[str, str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
    for env in grid.envs:
        for name in (*grid.agents, *grid.baselines):
            builds.setdefault((env, "{}", agents.spec(name).action_mode),
                              (grid.cell_env_kwargs(grid.seeds[0], None, env),
                               {**grid.env_kwargs, **grid.per_env_kwargs.get(env, {})}))
    for row in grid.rows:
        for env in row.envs:
            shown = {**grid.env_kwargs, **grid.per_env_kwargs.get(env, {}), **row.env_kwargs}
            builds.setdefault((env, json.dumps(row.env_kwargs, sort_keys=True, default=str),
                               agents.spec(row.agent).action_mode), (grid.cell_env_kwargs(grid.seeds[0], row, env), shown))
    failed: set[tuple[str, str]] = set()
    for (env, settings, mode), (env_kwargs, shown) in builds.items():
        if (env, settings) in failed:
            continue
        try:
            make_run_setup(env, env_kwargs, mode).training_env(1).close()
        except Exception as err:  # whatever stops the environment would stop every cell on it
            failed.add((env, settings))
            message = f"environment {env} with env_kwargs {shown}: {err}"
            if message not in problems:
                problems.append(message)
    return problems


def load_grid(path: str | Path | None, overrides: Mapping[str, Any] | None = None,
              check_environments: bool = True) -> GridConfig:
    """Read a grid file (YAML or TOML), apply ``overrides`` (command-line settings), and validate it.

    :param check_environments: build each environment once (see :func:`make_grid`).
    """
    values = load_config_file(path) if path is not None else {}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return make_grid(values, check_environments=check_environments)
