"""Name -> agent registry: ``make``, ``load``, ``spec``, ``available``.

Each :class:`AgentSpec` says which action mode the agent needs, so a trainer
builds the right environment before the agent::

    spec = agents.spec("drr")
    env = RecommendationVectorEnv(32, scenario, action_mode=spec.action_mode)
    model = agents.make("drr", env, seed=0)
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch as th

import state_encoders
from agents import baselines, planner
from agents.arguments import (AgentArguments, DDPGArguments, DEERSArguments, DQNArguments, DRRArguments,
                              LinUCBArguments, OracleTopicRuleArguments, PlannerArguments, TopicRuleArguments)
from agents.categories import item_categories
from state_encoders.features import content_kwargs, item_content_features
from state_encoders.pmf_tables import pmf_encoder_kwargs
from recgym.devices import resolve_device
from recgym.scenario import Scenario
from recgym.threads import set_threads
from agents.env_access import check_action_mode, scenario_of
from agents.optim import optimizer_kwargs, replay_schedule
from agents.sb3_env import as_sb3_env
from agents.deers import DEERS, DEERS_NET_ARCH, DEERSPolicy
from agents.dqn import DQN_NET_ARCH, MaskedDQN, MaskedDQNPolicy, head_arguments
from agents.drr import DRR, DRR_NET_ARCH, make_action_noise


@dataclass(frozen=True)
class AgentSpec:
    """What a trainer needs to know about an agent before building its environment.

    :param name: registry name.
    :param action_mode: the environment's ``action_mode`` the agent needs.
    :param default_encoder: state encoder used when ``make`` gets none (None: takes no encoder).
    :param agent_class: the class whose ``load(path, env)`` restores a saved agent.
    :param build: ``build(env, scenario, encoder, seed, **kwargs)`` -> agent; the learning agents'
        also take ``device`` (a resolved ``torch.device``).
    :param description: one line for listings.
    :param arguments: the model of its arguments (``agent_kwargs``): their defaults and allowed values
        (:mod:`agents.arguments`); the base model takes none.
    """

    name: str
    action_mode: str
    default_encoder: str | None
    agent_class: type
    build: Callable[..., Any] = field(repr=False)
    description: str = ""
    arguments: type[AgentArguments] = AgentArguments

    @property
    def uses_encoder(self) -> bool:
        return self.default_encoder is not None

    @property
    def defaults(self) -> dict[str, Any]:
        """The agent's default arguments (those it derives itself, such as ``gradient_steps``, left out)."""
        return self.arguments.given_defaults()


def _update_schedule(env: Any, kwargs: dict[str, Any]) -> dict[str, int]:
    """:func:`agents.optim.replay_schedule` for the ``replay_ratio`` in ``kwargs`` (popped).

    An explicit ``train_freq`` or ``gradient_steps`` in ``kwargs`` still wins over it.
    """
    return replay_schedule(env, float(kwargs.pop("replay_ratio")))


def _policy_kwargs(scenario: Scenario, encoder: str, net_arch: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``policy_kwargs`` with the state encoder as features extractor, tables from the PMF factors."""
    freeze = kwargs.pop("freeze_embeddings")
    normalize = kwargs.pop("normalize_embeddings")
    given = dict(kwargs.pop("encoder_kwargs", {}) or {})
    if given.get("weights") is not None:
        # a pretrained encoder is rebuilt from its own saved arguments and parameters (not the PMF tables);
        # `freeze` in encoder_kwargs keeps all of it fixed (state_encoders/weights.py)
        extractor: Any = state_encoders.load_pretrained
        encoder_kwargs = {**given, "name": encoder, "weights": str(Path(given["weights"]).resolve())}
    else:
        extractor = state_encoders.encoder_class(encoder)
        content = {} if "item_features" in given else content_kwargs(extractor, scenario.log)
        encoder_kwargs = {**pmf_encoder_kwargs(scenario, freeze=freeze, normalize=normalize), **content, **given}
    policy_kwargs = {
        "features_extractor_class": extractor,
        "features_extractor_kwargs": encoder_kwargs,
        "net_arch": net_arch,
        "optimizer_kwargs": optimizer_kwargs(),
    }
    policy_kwargs.update(kwargs.pop("policy_kwargs", {}) or {})
    if "q_head" in policy_kwargs or "q_head_class" in policy_kwargs:
        # the head's scenario inputs (QHead.scenario_inputs), passed down like the PMF tables
        head, head_kwargs = head_arguments(policy_kwargs.pop("q_head", None), policy_kwargs.pop("q_head_class", None),
                                           policy_kwargs.pop("q_head_kwargs", None),
                                           policy_kwargs.pop("item_features", None),
                                           policy_kwargs.pop("prior_model", None))
        for name, source in head.scenario_inputs.items():
            if head_kwargs.get(name) is None:
                head_kwargs[name] = _scenario_input(scenario, source)
        policy_kwargs.update(q_head_class=head, q_head_kwargs=head_kwargs)
    return policy_kwargs


def _scenario_input(scenario: Scenario, source: str) -> Any:
    """What a Q-head's ``scenario_inputs`` names: ``"item_categories"``, ``"item_content"`` or ``"embedding_model"``."""
    if source == "embedding_model":
        # greedy-pmf's rating model (fitted on the training users only): the prior head's input
        return scenario.embedding_model
    if source == "item_categories":
        # DEERS's item categories (genres, else k-means clusters of the item factors)
        flags, _ = item_categories(scenario.log, scenario.embedding_model.item_embeddings)
        return flags.astype(np.float32)
    if source == "item_content":
        # the scenario's item content (genre flags, title or joke words)
        return item_content_features(scenario.log)
    raise ValueError(f"a Q-head asks for the scenario input {source!r}; agents.make knows "
                     "'item_categories', 'item_content' and 'embedding_model'")


def _build_dqn(env: Any, scenario: Scenario, encoder: str, seed: int, device: th.device | str = "cpu",
               **kwargs: Any) -> MaskedDQN:
    sb3_env = as_sb3_env(env)
    policy_kwargs = _policy_kwargs(scenario, encoder, list(DQN_NET_ARCH), kwargs)
    schedule = _update_schedule(sb3_env, kwargs)  # pops replay_ratio
    args = {**schedule, **kwargs}
    return MaskedDQN(MaskedDQNPolicy, sb3_env, policy_kwargs=policy_kwargs, seed=seed, device=device, **args)


def _build_deers(env: Any, scenario: Scenario, encoder: str, seed: int, device: th.device | str = "cpu",
                 **kwargs: Any) -> DEERS:
    sb3_env = as_sb3_env(env)
    policy_kwargs = _policy_kwargs(scenario, encoder, list(DEERS_NET_ARCH), kwargs)
    schedule = _update_schedule(sb3_env, kwargs)  # pops replay_ratio
    args = {**schedule, **kwargs}
    return DEERS(DEERSPolicy, sb3_env, policy_kwargs=policy_kwargs, seed=seed, device=device, scenario=scenario,
                 **args)


def _build_drr(env: Any, scenario: Scenario, encoder: str, seed: int, device: th.device | str = "cpu",
               **kwargs: Any) -> DRR:
    sb3_env = as_sb3_env(env)
    policy_kwargs = _policy_kwargs(scenario, encoder, dict(DRR_NET_ARCH), kwargs)
    policy_kwargs.setdefault("share_features_extractor", False)  # see agents/drr.py: the critic needs its own
    noise = kwargs.pop("action_noise", None)
    noise_type = kwargs.pop("noise")
    noise_sigma = kwargs.pop("noise_sigma")
    if noise is None:
        noise = make_action_noise(noise_type, scenario.action_item_vectors.shape[1], sigma=noise_sigma)
    schedule = _update_schedule(sb3_env, kwargs)  # pops replay_ratio
    args = {**schedule, **kwargs}
    return DRR(policy_kwargs=policy_kwargs, env=sb3_env, action_noise=noise, seed=seed, device=device, **args)


def _baseline_builder(cls: type[baselines.BaselineAgent]) -> Callable[..., baselines.BaselineAgent]:
    def build(env: Any, scenario: Scenario, encoder: str | None, seed: int, **kwargs: Any) -> baselines.BaselineAgent:
        return cls(env, seed=seed, scenario=scenario, **kwargs)

    return build


AGENTS: dict[str, AgentSpec] = {}


def register(spec: AgentSpec) -> AgentSpec:
    """Add ``spec`` to :data:`AGENTS` (names are unique)."""
    if spec.name in AGENTS:
        raise ValueError(f"agent {spec.name!r} is already registered")
    if spec.action_mode not in ("discrete", "embedding"):
        raise ValueError(f"agent {spec.name!r}: action_mode must be 'discrete' or 'embedding'")
    AGENTS[spec.name] = spec
    if isinstance(spec.agent_class, type) and issubclass(spec.agent_class, baselines.BaselineAgent):
        spec.agent_class.name = spec.name
    return spec


register(AgentSpec("dqn", "discrete", "drr-ave", MaskedDQN, _build_dqn,
                   "DQN over item ids, state encoder features, consumed items masked", DQNArguments))
register(AgentSpec("ddpg", "embedding", "mean", DRR, _build_drr,
                   "DDPG actor-critic in item-embedding space without DRR's state module (DRR's DDPG baseline)",
                   DDPGArguments))
register(AgentSpec("drr", "embedding", "drr-ave", DRR, _build_drr,
                   "DRR: DDPG with the DRR state module and prioritized replay (Liu et al. 2018)", DRRArguments))
register(AgentSpec("deers", "discrete", "deers", DEERS, _build_deers,
                   "DEERS: DQN over GRU states of liked/skipped items with the pairwise loss (Zhao et al. 2018)",
                   DEERSArguments))
register(AgentSpec("random", "discrete", None, baselines.RandomAgent, _baseline_builder(baselines.RandomAgent),
                   "uniformly random unconsumed item"))
register(AgentSpec("popularity", "discrete", None, baselines.PopularityAgent,
                   _baseline_builder(baselines.PopularityAgent), "most-rated unconsumed item (training users)"))
register(AgentSpec("greedy-pmf", "discrete", None, baselines.GreedyPMFAgent,
                   _baseline_builder(baselines.GreedyPMFAgent), "highest rating predicted by the scenario's embedding model (training users; test users folded in)"))
register(AgentSpec("greedy-pmf-topics", "discrete", None, baselines.TopicAwareGreedyAgent,
                   _baseline_builder(baselines.TopicAwareGreedyAgent),
                   "greedy-pmf minus a penalty for topics shown in the last few steps (a hand-made rule)",
                   TopicRuleArguments))
register(AgentSpec("oracle-greedy", "discrete", None, baselines.OracleGreedyAgent,
                   _baseline_builder(baselines.OracleGreedyAgent),
                   "best expected one-step reward under the live simulator (cheats: an upper bound of myopic play)"))
register(AgentSpec("oracle-greedy-topics", "discrete", None, baselines.TopicAwareOracleAgent,
                   _baseline_builder(baselines.TopicAwareOracleAgent),
                   "oracle-greedy minus greedy-pmf-topics' penalty for recent topics (cheats: knows the user, "
                   "does not plan)",
                   OracleTopicRuleArguments))
register(AgentSpec("planner", "discrete", None, planner.PlannerAgent, _baseline_builder(planner.PlannerAgent),
                   "receding-horizon planner with the live simulator's expected transitions (cheats: the "
                   "long-horizon reference for oracle-greedy)",
                   PlannerArguments))
register(AgentSpec("linucb", "discrete", None, baselines.LinUCBAgent, _baseline_builder(baselines.LinUCBAgent),
                   "disjoint LinUCB over the mean liked-item embedding (Li et al. 2010)",
                   LinUCBArguments))


def available() -> list[str]:
    """Registered agent names, sorted."""
    return sorted(AGENTS)


def spec(name: str) -> AgentSpec:
    """The :class:`AgentSpec` of ``name``.

    :raises ValueError: for an unknown name, listing the valid ones.
    """
    try:
        return AGENTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown agent {name!r}; available agents: {', '.join(available())}") from None


def make(name: str, env: Any, encoder: str | None = None, seed: int = 0, n_threads: int | None = 1,
         scenario: Scenario | None = None, device: str | th.device = "auto", **kwargs: Any) -> Any:
    """Build agent ``name`` for ``env``.

    :param name: a registered agent (:func:`available`).
    :param env: a recgym environment with the agent's action mode: a
        ``RecommendationEnv``, a ``RecommendationVectorEnv`` (wrapped in
        ``SB3VecEnvAdapter`` for training; fastest with 16-64 envs) or an SB3 ``VecEnv`` over one.
    :param encoder: state encoder name for the learning agents (default: the spec's);
        baselines take none.
    :param seed: seed of the networks, the exploration and the replay sampling.
    :param n_threads: threads for torch and numpy's BLAS, process-wide (default 1, the
        fastest for these small networks; None leaves the settings alone); see
        :func:`recgym.threads.set_threads`.
    :param scenario: the scenario the agent is built for (default: ``env``'s, read through
        :func:`agents.env_access.scenario_of`).
    :param device: where the learning agents' networks, replay samples and updates live: ``"auto"``
        (CUDA when available, else the CPU), ``"cpu"`` or ``"cuda"`` (:func:`recgym.devices.resolve_device`);
        the baselines compute in numpy and ignore it.
    :param kwargs: agent arguments (SB3 algorithm arguments, ``policy_kwargs``,
        ``encoder_kwargs``, ``freeze_embeddings``, ``normalize_embeddings``, ...).
    :returns: a model with ``learn``, ``predict``, ``save``.
    :raises ValueError: unknown agent or encoder, an environment with the wrong action mode, or
        an argument that is unknown or out of range (:func:`agents.arguments.validate_agent_kwargs`), or
        ``device="cuda"`` where torch has no CUDA.
    """
    agent = spec(name)
    resolved = resolve_device(device)
    scenario = scenario if scenario is not None else scenario_of(env)
    check_action_mode(env, agent.action_mode, name)
    if agent.uses_encoder:
        encoder = agent.default_encoder if encoder is None else encoder
        state_encoders.encoder_class(encoder)  # ValueError listing the known encoders
    elif encoder is not None:
        raise ValueError(f"agent {name!r} is not a learning agent and takes no encoder (got {encoder!r})")
    from agents.arguments import validate_agent_kwargs  # imported here: agents.arguments reads this registry

    validate_agent_kwargs(name, kwargs, encoder, {})  # the command line's checks, for the Python API too
    set_threads(n_threads)
    placed = {"device": resolved} if agent.uses_encoder else {}
    # the model's defaults, under what was given (as given: checked, not converted)
    settings = {**agent.arguments.given_defaults(), **kwargs}
    model = agent.build(env, scenario, encoder, int(seed), **placed, **settings)
    model.agent_name = name
    model.encoder_name = encoder
    return model


def saved_agent_name(path: str | Path) -> str:
    """The registry name stored in a file written by an agent's ``save``."""
    path = baselines.zip_path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if baselines.BASELINE_META in names:
                return json.loads(archive.read(baselines.BASELINE_META))["agent_name"]
            if "data" in names:  # stable-baselines3's format: attributes as JSON
                return json.loads(archive.read("data"))["agent_name"]
    except (OSError, zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a saved recgym agent: {err}") from err
    raise ValueError(f"{path} is not a saved recgym agent (no agent name inside)")


def load(path: str | Path, env: Any, n_threads: int | None = 1, device: str | th.device = "auto",
         **kwargs: Any) -> Any:
    """Load an agent saved with ``model.save(path)``, attached to ``env``.

    :param path: the saved file (``.zip`` appended when it has no suffix).
    :param env: the environment to act and train on (same spaces as when saved).
    :param n_threads: threads for torch and numpy's BLAS, as in :func:`make`.
    :param device: where to put the loaded networks, as in :func:`make`; whatever device the agent was
        saved from, its tensors are mapped here (a GPU-trained agent loads on a CPU-only machine).
    :param kwargs: passed to SB3's ``load`` for the learning agents.
    """
    resolved = resolve_device(device)
    name = saved_agent_name(path)
    set_threads(n_threads)
    agent = spec(name)
    if agent.uses_encoder:
        sb3_env = as_sb3_env(env)
        check_action_mode(env, agent.action_mode, name)
        return agent.agent_class.load(baselines.zip_path(path), env=sb3_env, device=resolved, **kwargs)
    return agent.agent_class.load(path, env)
