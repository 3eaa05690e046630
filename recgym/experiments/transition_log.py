"""``recgym log``: a policy's transitions on chosen users, written as a Minari dataset with a dataset card.

The policy is a baseline by name, a trained run folder, or either mixed with exploration: a softmax over a
baseline's scores at a stated temperature (``--temperature``), or an epsilon mixture with the uniform
policy (``--epsilon``). It plays one episode per user (:func:`~recgym.evaluation.transitions.record_transitions`)
and every decision is written to a `Minari <https://minari.farama.org>`_ dataset (``minari[hdf5]``,
the ``offline`` extra), readable by ``minari.MinariDataset(OUT / "data")`` and the libraries that read
Minari. Per episode Minari holds ``observations`` (the env's Dict observation, ``T + 1`` entries: the
last is the one that ended the episode), ``actions``, ``rewards``, ``terminations``, ``truncations``
(``T`` each) and ``infos`` aligned with the observations (``T + 1`` rows):

* ``infos["propensity"][t]``: the logging policy's probability of ``actions[t]`` at ``observations[t]``
  (NaN on the last row: no decision is taken there);
* ``infos["action_mask"][t]``: the environment's available items at ``observations[t]`` (all False on the
  last row).

``OUT/card.json`` is the dataset card: scenario, environment id and settings, users, logging policy,
temperature / epsilon, seed, episodes and steps, mean return. :func:`load_transition_log` reads a dataset
back as a :class:`~recgym.evaluation.transitions.TransitionLog` for :mod:`recgym.evaluation.ope`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from recgym.evaluation.transitions import (
    ActionProbabilities,
    EpsilonMixture,
    GreedyProbabilities,
    SoftmaxProbabilities,
    TransitionLog,
    UniformProbabilities,
    record_transitions,
)
from recgym.experiments.setup import RunSetup

#: the dataset card, beside Minari's ``data`` folder
CARD = "card.json"
#: Minari's folder of a dataset (``minari.MinariDataset(OUT / DATA)``)
DATA = "data"
INSTALL_HINT = "pip install 'recgym[offline]' (Minari with its HDF5 backend: minari[hdf5])"


def _minari() -> Any:
    """The ``minari`` module, or an ImportError saying how to install it."""
    try:
        import minari
    except ImportError as err:
        raise ImportError(f"writing and reading Minari datasets needs minari ({err}): {INSTALL_HINT}") from None
    try:
        import h5py  # noqa: F401  (Minari's default storage backend)
    except ImportError:
        raise ImportError(f"Minari's HDF5 backend needs h5py: {INSTALL_HINT}") from None
    return minari


# -- the logging policy -------------------------------------------------------------------------


def logging_policy(policy: str, run: RunSetup, temperature: float | None = None, epsilon: float | None = None,
                   seed: int = 0) -> tuple[ActionProbabilities, dict[str, Any]]:
    """The logging policy named by ``policy`` and its description for the card.

    :param policy: a registered discrete baseline's name (``greedy-pmf``, ``popularity``, ``random``, ...).
    :param run: the scenario and episode configuration the policy acts in.
    :param temperature: a softmax over the baseline's scores at this temperature (in the scores' units:
        rating units for ``greedy-pmf``) instead of its greedy choice.
    :param epsilon: mix with the uniform policy: ``(1 - epsilon) * policy + epsilon * uniform``.
    :param seed: the baseline's seed.
    """
    import agents
    from recgym.experiments.evaluate import make_baseline

    from agents.baselines import BaselineAgent

    spec = agents.spec(policy)  # an unknown name raises, listing the agents
    if not issubclass(spec.agent_class, BaselineAgent) or spec.action_mode != "discrete":
        raise ValueError(f"--policy {policy!r} is a learning agent: give a trained run folder (recgym train --out "
                         "DIR) or a baseline name (e.g. greedy-pmf, popularity, random)")
    baseline, _ = make_baseline(policy, run, seed, 0)
    if getattr(baseline, "needs_live_env", False):
        raise ValueError(f"--policy {policy!r} reads the live simulator, not the observation, so its "
                         "probabilities cannot be recomputed from a log: choose greedy-pmf, greedy-pmf-topics, "
                         "popularity or random")
    if policy == "random":
        if temperature is not None:
            raise ValueError("--temperature needs a baseline whose scores mean something; random is already uniform")
        probabilities: ActionProbabilities = UniformProbabilities()
    elif temperature is not None:
        probabilities = SoftmaxProbabilities(baseline, temperature)
    else:
        probabilities = GreedyProbabilities(baseline, run.scenario.n_items)
    if epsilon is not None:
        probabilities = EpsilonMixture(probabilities, epsilon)
    return probabilities, {"policy": policy, "temperature": temperature, "epsilon": epsilon}


def run_logging_policy(run_folder: Path, epsilon: float | None, device: str = "cpu"
                       ) -> tuple[ActionProbabilities, dict[str, Any], RunSetup]:
    """A trained run's newest checkpoint (greedy, optionally epsilon-mixed) and its run setup."""
    import agents
    from recgym.experiments.evaluate import run_config
    from recgym.experiments.setup import make_run_setup
    from recgym.experiments.run_dir import RunDir

    rd = RunDir(run_folder)
    config = run_config(rd)
    spec = agents.spec(config.agent)
    if spec.action_mode != "discrete":
        raise ValueError(f"run {run_folder} trained {config.agent}, which acts in {spec.action_mode!r} mode: a "
                         "transition log records item choices (discrete agents: dqn, deers, baselines)")
    run = make_run_setup(config.env, config.env_kwargs, "discrete")
    folder = rd.latest_checkpoint()
    if folder is None:
        raise FileNotFoundError(f"{rd.root} holds no checkpoint yet: train it first")
    model = agents.load(folder / "model.zip", run.training_env(1), device=device)
    probabilities: ActionProbabilities = GreedyProbabilities(model, run.scenario.n_items)
    if epsilon is not None:
        probabilities = EpsilonMixture(probabilities, epsilon)
    return probabilities, {"policy": f"run:{Path(run_folder).resolve()}", "agent": config.agent,
                           "checkpoint": folder.name, "temperature": None, "epsilon": epsilon}, run


# -- Minari files -------------------------------------------------------------------------------


@contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    """Point Minari's dataset root (its documented ``MINARI_DATASETS_PATH``) at ``root`` for a while."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def _episode_buffers(log: TransitionLog) -> list[Any]:
    from minari.data_collector import EpisodeBuffer

    buffers = []
    starts = np.flatnonzero(log.step == 0)
    ends = np.append(starts[1:], len(log))
    n_items = log.action_masks.shape[1]
    for number, (start, end) in enumerate(zip(starts, ends)):
        observations = {k: np.concatenate([v[start:end], log.next_observations[k][end - 1: end]])
                        for k, v in log.observations.items()}
        infos = {"propensity": np.append(log.propensities[start:end], np.nan),
                 "action_mask": np.concatenate([log.action_masks[start:end], np.zeros((1, n_items), dtype=bool)])}
        buffers.append(EpisodeBuffer(id=number, observations=observations, actions=log.actions[start:end],
                                     rewards=log.rewards[start:end], terminations=log.terminated[start:end],
                                     truncations=log.truncated[start:end], infos=infos))
    return buffers


def save_transition_log(log: TransitionLog, out: str | Path, observation_space: Any, action_space: Any,
                        dataset_id: str = "recgym/transitions-v0") -> Path:
    """Write ``log`` to the folder ``out`` as a Minari dataset (``out/data``) with its card (``out/card.json``).

    The dataset is built in a temporary folder beside ``out`` and renamed into place, so an interrupted
    write leaves no half dataset at ``out``. ``out`` must not exist: nothing is overwritten.

    :param log: the transitions (its ``card`` is written).
    :param out: the folder to create.
    :param observation_space: the environment's (single) observation space.
    :param action_space: the environment's (single) action space.
    :param dataset_id: Minari's id of the dataset, ``namespace/name-vN``.
    :returns: ``out``.
    """
    minari = _minari()
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists: choose another --out (a transition log is a new folder; nothing is "
                              "overwritten)")
    log.check()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    if staging.exists():  # our own leftover from an interrupted write in this process id
        shutil.rmtree(staging)
    try:
        with _minari_root(staging), warnings.catch_warnings():
            # Minari warns about metadata recgym cannot know (author e-mail, code permalink, eval env)
            warnings.simplefilter("ignore", UserWarning)
            minari.create_dataset_from_buffers(
                dataset_id, _episode_buffers(log), observation_space=observation_space, action_space=action_space,
                algorithm_name=log.card.get("policy_label", "recgym logging policy"), author="recgym",
                description=json.dumps(log.card), data_format="hdf5")
        built = staging / dataset_id
        (built / CARD).write_text(json.dumps(log.card, indent=2) + "\n")
        os.replace(built, out)  # atomic on one file system: out appears whole or not at all
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def load_transition_log(path: str | Path) -> TransitionLog:
    """A dataset written by :func:`save_transition_log` (or ``recgym log``) as a :class:`TransitionLog`.

    :param path: the dataset folder (holding ``data/`` and ``card.json``).
    :raises ValueError: not such a folder, or episodes without the propensities and masks recgym writes.
    """
    minari = _minari()
    path = Path(path)
    if not (path / DATA / "metadata.json").is_file():
        raise ValueError(f"{path} is not a Minari dataset folder (no {DATA}/metadata.json): write one with "
                         "`recgym log --out DIR`")
    card_file = path / CARD
    card = json.loads(card_file.read_text()) if card_file.is_file() else {}
    dataset = minari.MinariDataset(path / DATA)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("actions", "rewards", "terminated", "truncated",
                                                           "propensities", "action_masks", "episode", "step")}
    obs_parts, next_parts = [], []
    for number, episode in enumerate(dataset.iterate_episodes()):
        infos = episode.infos or {}
        if "propensity" not in infos or "action_mask" not in infos:
            raise ValueError(f"{path}: episode {episode.id} has no propensity / action_mask infos: not a recgym "
                             "transition log (record one with `recgym log`)")
        steps = len(episode)
        obs_parts.append({k: v[:steps] for k, v in episode.observations.items()})
        next_parts.append({k: v[1: steps + 1] for k, v in episode.observations.items()})
        parts["actions"].append(np.asarray(episode.actions, dtype=np.int64))
        parts["rewards"].append(np.asarray(episode.rewards, dtype=np.float64))
        parts["terminated"].append(np.asarray(episode.terminations, dtype=bool))
        parts["truncated"].append(np.asarray(episode.truncations, dtype=bool))
        parts["propensities"].append(np.asarray(infos["propensity"][:steps], dtype=np.float64))
        parts["action_masks"].append(np.asarray(infos["action_mask"][:steps], dtype=bool))
        parts["episode"].append(np.full(steps, number, dtype=np.int64))
        parts["step"].append(np.arange(steps, dtype=np.int64))
    if not obs_parts:
        raise ValueError(f"{path} holds no episodes")
    keys = obs_parts[0].keys()
    flat = {k: np.concatenate(v) for k, v in parts.items()}
    log = TransitionLog(observations={k: np.concatenate([p[k] for p in obs_parts]) for k in keys},
                        next_observations={k: np.concatenate([p[k] for p in next_parts]) for k in keys},
                        actions=flat["actions"], rewards=flat["rewards"], terminated=flat["terminated"],
                        truncated=flat["truncated"], propensities=flat["propensities"],
                        action_masks=flat["action_masks"], episode=flat["episode"], step=flat["step"], card=card)
    log.check()
    return log


# -- the command line ---------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``log`` sub-command."""
    p = subparsers.add_parser(
        "log",
        help="record a policy's transitions (with propensities and action masks) as a Minari dataset",
        description="Roll a logging policy (a baseline, a trained run, or a softmax / epsilon mixture of one) over "
        "a chosen user set of a registered environment, one episode per user, and write every decision "
        "(observation, action, reward, next observation, terminated, truncated, propensity, action mask) to the "
        f"folder OUT as a Minari dataset with a dataset card (OUT/{CARD}). Needs {INSTALL_HINT}. Read it back "
        "with recgym.experiments.transition_log.load_transition_log or minari.MinariDataset(OUT/'data').",
    )
    p.add_argument("--env", default=None, help="a registered recgym id (default recgym/ML100K-PMF-v0, or the run's)")
    p.add_argument("--policy", required=True,
                   help="a baseline name (greedy-pmf, greedy-pmf-topics, popularity, random, ...) or a trained run folder")
    p.add_argument("--temperature", type=float, default=None,
                   help="softmax over the baseline's scores at this temperature (greedy-pmf: rating units)")
    p.add_argument("--epsilon", type=float, default=None, help="mix with the uniform policy with this probability")
    p.add_argument("--users", default="test", help="test (default), train or all")
    p.add_argument("--n-users", type=int, default=None, help="only the first N users of the set")
    p.add_argument("--max-steps", type=int, default=None, help="steps per episode (default: the environment's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the users' responses and the policy's draws")
    p.add_argument("--out", type=Path, required=True, help="the dataset folder to create (must not exist)")
    p.set_defaults(func=run_log)


def run_log(args: argparse.Namespace) -> int:
    from recgym.experiments.setup import make_run_setup

    _minari()  # fail before the rollout if the extra is missing
    if args.out.exists():
        raise FileExistsError(f"--out {args.out} exists: choose another folder (nothing is overwritten)")
    if args.users not in ("train", "test", "all"):
        raise ValueError(f"--users must be train, test or all, got {args.users!r}")
    if args.n_users is not None and args.n_users < 1:
        raise ValueError(f"--n-users must be a positive integer, got {args.n_users}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    tic = time.perf_counter()
    overrides = {} if args.max_steps is None else {"max_steps": args.max_steps}
    if Path(args.policy).is_dir():
        if args.temperature is not None:
            raise ValueError("--temperature softmaxes a baseline's scores; a trained run is logged greedily, mixed "
                             "with --epsilon")
        policy, described, run = run_logging_policy(Path(args.policy), args.epsilon)
        if args.env is not None and args.env != run.env_id:
            raise ValueError(f"run {args.policy} was trained on {run.env_id}, not --env {args.env}: drop --env")
        if args.max_steps is not None and args.max_steps != run.config.max_steps:
            # the observation's `consumed` list is sized by the episode length: the agent reads no other shape
            raise ValueError(f"run {args.policy} acts on episodes of max_steps={run.config.max_steps} (its "
                             "observations have that shape): drop --max-steps to log it")
    else:
        run = make_run_setup(args.env or "recgym/ML100K-PMF-v0", overrides, "discrete")
        policy, described = logging_policy(args.policy, run, args.temperature, args.epsilon, args.seed)
    users = run.scenario.users(args.users)
    if args.n_users is not None:
        users = users[: args.n_users]
    label = described["policy"] + (f" softmax T={args.temperature:g}" if args.temperature is not None else "") + (
        f" epsilon={args.epsilon:g}" if args.epsilon is not None else "")
    card = {"env": run.env_id, "episode_config": {k: v for k, v in vars(run.config).items()
                                                  if isinstance(v, (int, float, str, bool, type(None))) and k != "users"},
            "users": args.users, "n_users": int(users.size), "user_ids": users.tolist(), **described,
            "policy_label": label, "seed": args.seed, "value": "undiscounted episode return"}
    log = record_transitions(policy, run.scenario, run.config, users, seed=args.seed, card=card)
    if np.all(log.propensities == 1.0):
        print("recgym: note: the logging policy is deterministic (every propensity is 1): the log supports no "
              "off-policy estimate of another policy; add --temperature or --epsilon")
    log.card.update(episodes=log.n_episodes, steps=len(log), mean_return=float(log.episode_returns().mean()))
    env = run.training_env(1)
    save_transition_log(log, args.out, env.observation_space, env.action_space)
    print(f"logged {len(log):,} decisions in {log.n_episodes:,} episodes ({label}; mean return "
          f"{log.card['mean_return']:.3f}) in {time.perf_counter() - tic:.1f} s: {args.out} "
          f"(card: {args.out / CARD})")
    return 0
