"""The long-term protocol: users with boredom and quitting, in three EasyRL4Rec-like modes.

The protocol builds its own environment from the scenario: the scenario's
:class:`~simulators.BehaviorSimulator` when it already has one, else a
behaviour simulator over the scenario's (all-data) rating model. Each mode is
one episode per test user; episodes also end when the user leaves.

=============================  =======  =========  =======================================
mode                           repeats  max steps  after EasyRL4Rec (Zhang et al. 2024)
=============================  =======  =========  =======================================
``no-repeat, until leave``     no       100        "NX_0"
``repeat, until leave``        yes      100        "FB"
``no-repeat, 10 turns``        no       10         "NX_10"
=============================  =======  =========  =======================================
"""

from __future__ import annotations

from typing import Any

from recgym.envs.config import EpisodeConfig
from recgym.evaluation.online import Policy, evaluate_online
from recgym.scenario import Scenario
from simulators import BehaviorSimulator

#: (name, allow_repeats, max_steps)
LONG_TERM_MODES = (("no-repeat, until leave", False, 100), ("repeat, until leave", True, 100),
                   ("no-repeat, 10 turns", False, 10))


def behavior_scenario(scenario: Scenario) -> Scenario:
    """The scenario with behaviour users (boredom, patience, leaving) over its rating model."""
    if isinstance(scenario.simulator, BehaviorSimulator):
        return scenario
    return scenario.with_simulator(BehaviorSimulator(rating_model=scenario.rating_model).fit(scenario.log))


def evaluate_long_term(
    policy: Policy, scenario: Scenario, config: EpisodeConfig, users: Any = "test",
    n_episodes: int | None = None, seed: int = 0,
) -> dict[str, float]:
    """Cumulative reward, episode length and leave rate per mode (see the module docstring).

    The ``consumed`` window of ``config`` is kept, so the policy sees the
    observation space it was trained with.

    :param policy: the frozen agent or a baseline.
    :param scenario: the scenario.
    :param config: the episode configuration the policy acts in.
    :param users: users to evaluate (default: the test users).
    :param n_episodes: episodes per mode (default: one per user).
    :param seed: seed of the simulated responses.
    """
    behavior = behavior_scenario(scenario)
    window = config.window(scenario.n_items)
    out: dict[str, float] = {}
    for name, repeats, steps in LONG_TERM_MODES:
        mode = config.replace(allow_repeats=repeats, max_steps=steps, consumed_length=window)
        res = evaluate_online(policy, behavior, mode, users=users, n_episodes=n_episodes, seed=seed)
        out[f"{name}: reward/episode"] = res.avg_reward_per_episode
        out[f"{name}: length"] = res.avg_episode_length
        out[f"{name}: left"] = res.left_fraction
    return out
