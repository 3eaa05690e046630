"""``planner``: model-predictive control with the true simulator, the long-horizon reference of myopic play.

Like ``oracle-greedy`` it cheats by design: it reads the live environment
through its documented read-only methods (``expected_rewards``,
``simulator_state``) and plans with the environment's own simulator. Where
``oracle-greedy`` maximises the expected reward of the next step, the planner
maximises the expected reward of the next ``H`` steps, so the ratio of the two
(the *headroom*, ``scripts/headroom.py``) says how much an environment rewards
looking ahead at all.

Algorithm (receding horizon: plan every step, play the first item, replan):

1. ``r0 = env.expected_rewards()`` masked by the available items; the
   *shortlist* ``S`` is the ``shortlist`` items with the highest ``r0``.
2. Candidate first items: the ``n_candidates`` best of ``S``, plus
   ``n_diverse`` more of ``S`` picked one by one as the item least similar
   (cosine of the simulator's item embeddings) to those already chosen.
3. Each candidate ``a`` is rolled forward on a copy of the user's state with the
   simulator's deterministic ``expected_transition`` (a mean-field rollout: the
   expected next state, no sampling). After ``a`` the default policy is greedy:
   the not yet used item of ``S`` with the highest expected reward in the
   rolled state. The value is
   ``V(a) = r0(a) + sum_{t=1}^{h-1} P(still there at t) E[r_t]`` with
   ``h = min(H, steps left in the episode)``.
4. Play ``argmax_a V(a)``.

All users and candidates are rolled at once: ``B * (n_candidates + n_diverse)``
rows, each step one ``expected_reward`` over ``(rows, shortlist)`` and one
``expected_transition``. With ``H = 1`` the value is ``r0`` and the planner
plays exactly oracle-greedy's item.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from agents.arguments import PlannerArguments, check_constructor_arguments
from agents.baselines import OracleGreedyAgent
from agents.env_access import call_env_method, scenario_of
from agents.masking import Observation
from recgym.scenario import Scenario

#: the planner's defaults (agents/arguments.py:PlannerArguments says what each is)
PLANNER_HORIZON = PlannerArguments.default("horizon")
PLANNER_CANDIDATES = PlannerArguments.default("n_candidates")
PLANNER_DIVERSE = PlannerArguments.default("n_diverse")
PLANNER_SHORTLIST = PlannerArguments.default("shortlist")


class PlannerAgent(OracleGreedyAgent):
    """Receding-horizon planner with the live simulator (see the module docstring).

    :param env: the environment it plans in (evaluation rebinds it with ``set_env``).
    :param seed: unused (the planner is deterministic).
    :param scenario: the scenario (default: the environment's).
    :param horizon: H, steps looked ahead including the first (>= 1).
    :param n_candidates: first items taken in order of expected reward (>= 1).
    :param n_diverse: extra, embedding-diverse first items from the shortlist (>= 0).
    :param shortlist: items the greedy continuation chooses from (>= 1).
    """

    needs_live_env = True
    #: the model of the arguments: their defaults and allowed values
    arguments: ClassVar[type[PlannerArguments]] = PlannerArguments

    def __init__(self, env: Any, seed: int = 0, scenario: Scenario | None = None,
                 horizon: int = PLANNER_HORIZON, n_candidates: int = PLANNER_CANDIDATES,
                 n_diverse: int = PLANNER_DIVERSE, shortlist: int = PLANNER_SHORTLIST) -> None:
        check_constructor_arguments(type(self), {"horizon": horizon, "n_candidates": n_candidates,
                                                 "n_diverse": n_diverse, "shortlist": shortlist})  # as agents.make
        self.horizon, self.n_candidates = int(horizon), int(n_candidates)
        self.n_diverse, self.shortlist = int(n_diverse), int(shortlist)
        super().__init__(env, seed, scenario)

    def set_env(self, env: Any) -> None:
        """Plan in ``env``, with the simulator that plays its users."""
        super().set_env(env)
        self.simulator = scenario_of(env).simulator
        emb = np.asarray(self.simulator.item_embeddings, dtype=np.float64)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        self._unit_embeddings = emb / np.where(norms > 0, norms, 1.0)

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "horizon": self.horizon, "n_candidates": self.n_candidates,
                "n_diverse": self.n_diverse, "shortlist": self.shortlist}

    # -- planning ----------------------------------------------------------------------
    def scores(self, obs: Observation) -> np.ndarray:
        """``(B, n_items)``: the planned value of each candidate first item, ``-inf`` elsewhere."""
        expected = self.live_expected_rewards(obs)
        snapshot = call_env_method(self.env, "simulator_state")
        masks = np.asarray(snapshot.action_masks, dtype=bool).reshape(expected.shape)
        expected[~masks] = -np.inf
        values = np.full_like(expected, -np.inf)
        rows = np.arange(expected.shape[0])[:, None]
        shortlist, candidates = self._candidates(expected)
        values[rows, candidates] = self.plan(snapshot, expected, shortlist, candidates)
        return values

    def _candidates(self, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(shortlist (B, K), candidates (B, M))`` item ids, best expected reward first (ties: smaller id)."""
        n = expected.shape[1]
        k = min(max(self.shortlist, self.n_candidates + self.n_diverse), n)
        order = np.argsort(-expected, axis=1, kind="stable")  # a stable sort keeps argmax's tie rule
        shortlist = order[:, :k]
        top = shortlist[:, : min(self.n_candidates, k)]
        n_div = min(self.n_diverse, k - top.shape[1])
        if n_div == 0:
            return shortlist, top
        rest = shortlist[:, top.shape[1]:]  # [B, R]
        emb = self._unit_embeddings
        # similarity of every remaining item to its closest chosen candidate
        closest = np.einsum("brd,bmd->brm", emb[rest], emb[top]).max(axis=2)  # [B, R]
        taken = np.zeros(rest.shape, dtype=bool)
        picks = []
        b = np.arange(rest.shape[0])
        for _ in range(n_div):
            pick = np.where(taken, np.inf, closest).argmin(axis=1)
            taken[b, pick] = True
            picks.append(rest[b, pick])
            closest = np.maximum(closest, np.einsum("brd,bd->br", emb[rest], emb[rest[b, pick]]))
        return shortlist, np.concatenate([top, np.stack(picks, axis=1)], axis=1)

    def plan(self, snapshot: Any, expected: np.ndarray, shortlist: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """``(B, M)`` planned value of each candidate first item (see the module docstring).

        :param snapshot: the environment's :class:`~recgym.envs.core.SimulatorSnapshot`.
        :param expected: ``(B, n_items)`` expected one-step rewards, ``-inf`` where unavailable.
        :param shortlist: ``(B, K)`` items the continuation chooses from.
        :param candidates: ``(B, M)`` first items to evaluate.
        """
        b, m = candidates.shape
        rows = np.arange(b)[:, None]
        value = expected[rows, candidates]  # [B, M] r0
        depth = np.minimum(self.horizon, np.asarray(snapshot.steps_left).reshape(-1))  # [B]
        if self.horizon == 1 or not (depth > 1).any():
            return value
        sim = self.simulator
        # one rollout row per (user, candidate): [B * M]
        flat = np.isfinite(value).ravel()
        users = np.repeat(np.asarray(snapshot.users).reshape(-1), m)
        state = {key: np.repeat(arr, m, axis=0) for key, arr in snapshot.state.items()}
        first = candidates.ravel()
        step = sim.expected_transition(state, users, first[:, None])
        state, alive = step.state, step.stay
        short = np.repeat(shortlist, m, axis=0)  # [B * M, K]
        blocked = ~np.isfinite(np.repeat(expected[rows, shortlist], m, axis=0))
        if not snapshot.allow_repeats:
            blocked |= short == first[:, None]
        depth = np.repeat(depth, m)
        total = np.zeros(b * m)
        r = np.arange(b * m)
        for t in range(1, int(depth.max())):
            going = flat & (depth > t) & ~blocked.all(axis=1)
            if not going.any():
                break
            # greedy continuation over the shortlist in the rolled state
            scores = sim.expected_reward(state, users, short)
            scores[blocked] = -np.inf
            pick = scores.argmax(axis=1)
            item = short[r, pick]
            step = sim.expected_transition(state, users, item[:, None])
            total += np.where(going, alive * step.reward[:, 0], 0.0)
            alive = np.where(going, alive * step.stay, alive)
            state = step.state
            if not snapshot.allow_repeats:
                blocked[r, pick] = True
        return value + total.reshape(b, m)
