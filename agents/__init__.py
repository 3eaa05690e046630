"""Agents: RL recommenders on stable-baselines3 and reference baselines, built by name.

>>> import agents
>>> agents.available()
['ddpg', 'deers', 'dqn', 'drr', 'greedy-pmf', 'greedy-pmf-topics', 'linucb', 'oracle-greedy', 'oracle-greedy-topics', 'planner', 'popularity', 'random']
>>> agents.spec("drr").action_mode
'embedding'
>>> model = agents.make("drr", env, seed=0)  # doctest: +SKIP
>>> model.learn(50_000)  # doctest: +SKIP
>>> action, _ = model.predict(obs, deterministic=True)  # doctest: +SKIP
>>> model.save("drr.zip"); model = agents.load("drr.zip", env)  # doctest: +SKIP

See ``docs/agents.md`` for the equations, the defaults and their sources.
"""

from agents.baselines import (
    BaselineAgent,
    DisjointLinUCB,
    GreedyPMFAgent,
    LinUCBAgent,
    OracleGreedyAgent,
    PopularityAgent,
    RandomAgent,
    TopicAwareGreedyAgent,
    TopicAwareOracleAgent,
)
from agents.env_access import action_mode_of, scenario_of
from agents.deers import DEERS, CompetitorSampler, DEERSQNetwork
from agents.dqn import MaskedDQN, MaskedQNetwork
from agents.drr import DRR
from agents.nstep import NStepDictReplayBuffer
from agents.planner import PlannerAgent
from agents.per import PrioritizedDictReplayBuffer, SumTree
from agents.registry import AGENTS, AgentSpec, available, load, make, spec

__all__ = [
    "AGENTS",
    "AgentSpec",
    "BaselineAgent",
    "CompetitorSampler",
    "DEERS",
    "DEERSQNetwork",
    "DisjointLinUCB",
    "DRR",
    "GreedyPMFAgent",
    "LinUCBAgent",
    "MaskedDQN",
    "MaskedQNetwork",
    "NStepDictReplayBuffer",
    "OracleGreedyAgent",
    "PlannerAgent",
    "PopularityAgent",
    "PrioritizedDictReplayBuffer",
    "RandomAgent",
    "SumTree",
    "TopicAwareGreedyAgent",
    "TopicAwareOracleAgent",
    "available",
    "action_mode_of",
    "load",
    "make",
    "spec",
    "scenario_of",
]
