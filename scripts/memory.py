"""What memory is worth: the one-step rules folding in from the last N interactions, and why.

    python scripts/memory.py [--seeds 5] [--envs recgym/ML100K-Behavior-v1 recgym/Jester4-Behavior-v1]

greedy-pmf folds a test user into the training users' PMF from the ratings the
episode's observation holds (its last N interactions, ``history_length``;
:func:`recgym.scenario.fold_in_users`), and greedy-pmf-topics adds a penalty on
the topics of the last two items shown. Neither learns: they show what the
observation's memory is worth to a policy that knows nothing about the user
beyond the episode. For N in {5 (the registered default), 20, 50, 100 (the
whole episode: episodes end after 100 steps at most)} this script evaluates
both rules on the held-out test users, one episode each, no repeats, until the
user leaves or 100 steps (the protocol of ``scripts/headroom.py`` and
``scripts/long_term.py``), for each seed of the simulated responses; the
planner and oracle-greedy-topics (which read the true simulator, so N does not
matter to them) are the ceiling.

Why: two explanations are measured apart. Every rating an episode shows on the
behaviour users is the *effective* rating, the user's preference minus boredom
and satiation for what was shown before (docs/simulators.md); and N is also the
length of the episode's start (the user's first N liked items, shown and then
unavailable), so a longer N takes the user's favourites out of the catalogue.
For the first, the same rules run on a *stationary* twin of each environment: the same users, rating model, patience
and rewards, with boredom and satiation switched off
(``simulator_kwargs={"config": {"boredom_weight": 0, "satiation_weight": 0,
"satiation_global_weight": 0}}``). And at every decision the rules take, the
script measures how well the fold-in knows the user against the user's true
preference (the simulator's rating model, which no policy reads; a diagnostic
only): the correlation of the user-specific parts of the two models' ratings,
and the top-10 regret in stars (:class:`FoldInProbe`). If longer memory makes
the fold-in worse on the behaviour users and better on the stationary twin,
the in-episode dynamics are what spoil it. For the second, the script records the
number of start items and the expected reward of the best item still available
before the first step, for each N.

95% intervals are Student-t intervals over the seeds. Nothing is trained:
0 environment steps of training, 0 gradient updates. Each (environment,
variant, N, policy, seed) is cached as JSON under ``runs/memory/`` so an
interrupted run resumes; ``--report`` rewrites docs/results/memory.md from the
cache.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import agents
import recgym  # noqa: F401  (registers the ids)
from recgym.data.atomic import atomic_write
from recgym.envs.config import EpisodeConfig
from recgym.evaluation.intervals import student_t_interval
from recgym.evaluation.online import evaluation_env, run_episodes
from recgym.scenario import Scenario, make_scenario
from script_utils import git_commit, read_cached_json, write_json

REPO = Path(__file__).resolve().parents[1]
ENVS = ["recgym/ML100K-Behavior-v1", "recgym/Jester4-Behavior-v1"]
#: steps per episode at most, as in scripts/headroom.py and scripts/long_term.py
MAX_STEPS = 100
#: N, the observation's memory; MAX_STEPS covers the whole episode
MEMORIES = [5, 20, 50, MAX_STEPS]
RULES = ["greedy-pmf", "greedy-pmf-topics"]
#: read the true simulator: independent of N, evaluated once per seed (at the default N)
CEILINGS = ["oracle-greedy-topics", "planner"]
STATIONARY = {"boredom_weight": 0.0, "satiation_weight": 0.0, "satiation_global_weight": 0.0}
VARIANTS = {"behaviour": None, "stationary": STATIONARY}
#: the stationary twin is a diagnostic of why (not a result row): the two rules only, on at most 3 seeds
STATIONARY_SEEDS = 3


class FoldInProbe:
    """Wraps greedy-pmf(-topics) to measure, at each decision, how well its fold-in knows the user.

    Two measures against the user's true preference, the scenario's rating model (the simulator's, fitted on
    every rating; a diagnostic no policy reads), recorded for every row of every batch the policy is asked
    about; the policy's actions are the wrapped rule's, unchanged:

    * ``user_r``: the Pearson correlation over all items between the user-specific parts of the two
      models' ratings, ``U_u^T V_j + b_u`` (the item terms ``mu + c_j``, shared by every user, dominate a
      plain correlation and say nothing about knowing *this* user);
    * ``top10_regret``: the true preference (stars) of the true top 10 items minus that of the 10 items
      the fold-in ranks highest;
    * ``step_regret``: the simulator's expected one-step reward of the best available item minus that of
      the item the rule picks (what oracle-greedy would gain on this step, in reward units).

    Only decisions of each row's first episode count: the protocol runs every test user in one batch, and
    a row whose user left or reached the step limit is reset to another user (Gymnasium's same-step
    autoreset) while the others finish. A row is in its first episode while its user is unchanged and its
    consumed items grow by one per step.
    """

    needs_live_env = True  # reads the live simulator's expected rewards, as oracle-greedy does

    def __init__(self, rule: Any, scenario: Scenario) -> None:
        self.rule, self.user_r, self.top10_regret, self.step_regret, self.env = rule, [], [], [], None
        self._users: np.ndarray | None = None  # each row's first user, its consumed count, and whether it is
        self._consumed: np.ndarray | None = None  # still in that first episode
        self._first: np.ndarray | None = None
        model = scenario.rating_model
        item_part = np.asarray(model.item_bias, dtype=np.float64)[None] + model.global_mean
        self._true_user_part = (np.asarray(model.user_embeddings, dtype=np.float64)
                                @ np.asarray(model.item_embeddings, dtype=np.float64).T
                                + np.asarray(model.user_bias, dtype=np.float64)[:, None])
        self._truth = self._true_user_part + item_part
        self._true_top10 = -np.sort(-self._truth, axis=1)[:, :10].mean(axis=1)

    def set_env(self, env: Any) -> None:
        self.env = env
        self.rule.set_env(env)

    def predict(self, observation: dict, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        users = observation["user"].reshape(-1).astype(np.int64)
        consumed = observation["consumed"].shape[1] - (observation["consumed"] == self.rule.n_items).sum(axis=1)
        if self._first is None:
            self._users, self._first = users.copy(), np.ones(users.size, dtype=bool)
        else:
            self._first &= (users == self._users) & (consumed == self._consumed + 1)
        self._consumed = consumed
        first = self._first
        factors, bias = self.rule.user_factors(observation)
        model = self.rule.model
        user_part = factors @ np.asarray(model.item_embeddings, dtype=np.float64).T + bias[:, None]
        p = user_part - user_part.mean(axis=1, keepdims=True)
        t = self._true_user_part[users] - self._true_user_part[users].mean(axis=1, keepdims=True)
        r = (p * t).sum(axis=1) / np.sqrt((p * p).sum(axis=1) * (t * t).sum(axis=1) + 1e-12)
        self.user_r.extend(r[first].tolist())
        predicted = self.rule.predicted_ratings(observation)
        top10 = np.argpartition(-predicted, 10, axis=1)[:, :10]
        picked = np.take_along_axis(self._truth[users], top10, axis=1).mean(axis=1)
        self.top10_regret.extend((self._true_top10[users] - picked)[first].tolist())
        actions, state = self.rule.predict(observation, state=state, episode_start=episode_start,
                                           deterministic=deterministic)
        expected = np.where(self.env.action_masks(), self.env.expected_rewards(), -np.inf)
        picked = np.take_along_axis(expected, np.asarray(actions).reshape(-1, 1).astype(np.int64), axis=1)[:, 0]
        self.step_regret.extend((expected.max(axis=1) - picked)[first].tolist())
        return actions, state


def cache_path(root: Path, env_id: str, variant: str, memory: int, policy: str, seed: int) -> Path:
    safe = env_id.replace("/", "_")
    return root / safe / variant / f"N{memory}-{policy}-seed{seed}.json"


def scenario_for(env_id: str, variant: str, data_dir: str | None) -> Scenario:
    spec = gym.spec(env_id).kwargs
    overrides = VARIANTS[variant]
    sim_kwargs = {"config": dict(overrides)} if overrides else None
    return make_scenario(spec["dataset"], spec["simulator"], data_dir=data_dir, simulator_kwargs=sim_kwargs)


def measure(env_id: str, seeds: int, root: Path, data_dir: str | None, only: list[int] | None = None) -> None:
    """Evaluate every (variant, N, policy, seed) not cached yet (of the seeds in ``only``, when given)."""
    for variant in VARIANTS:
        scenario = None
        for memory in MEMORIES:
            out = cache_path(root, env_id, variant, memory, "start", 0)
            if not read_cached_json(out):
                scenario = scenario or scenario_for(env_id, variant, data_dir)
                write_json(out, start_record(scenario, memory))
        ceilings = CEILINGS if variant == "behaviour" else []
        for seed in range(seeds if variant == "behaviour" else min(seeds, STATIONARY_SEEDS)):
            if only is not None and seed not in only:
                continue
            cells = [(n, name) for n in MEMORIES for name in RULES] + [(MEMORIES[0], name) for name in ceilings]
            for memory, name in cells:
                out = cache_path(root, env_id, variant, memory, name, seed)
                if read_cached_json(out):
                    continue
                if scenario is None:
                    scenario = scenario_for(env_id, variant, data_dir)
                config = EpisodeConfig(max_steps=MAX_STEPS, allow_repeats=False, history_length=memory,
                                       action_mode=agents.spec(name).action_mode)
                # every test user in one batch, so the probe can follow each row's first episode
                env = evaluation_env(scenario, config, num_envs=int(scenario.test_users.size))
                policy = agents.make(name, env, seed=seed, scenario=scenario)
                probe = FoldInProbe(policy, scenario) if name in RULES else None
                tic = time.perf_counter()
                res = run_episodes(probe or policy, env, seed=seed)
                record = {"reward": res.avg_reward_per_episode, "length": res.avg_episode_length,
                          "left": res.left_fraction, "seconds": time.perf_counter() - tic,
                          "test_users": int(scenario.test_users.size), "commit": git_commit(REPO)}
                if probe is not None:
                    record["user_r"] = float(np.mean(probe.user_r))
                    record["top10_regret"] = float(np.mean(probe.top10_regret))
                    record["step_regret"] = float(np.mean(probe.step_regret))
                write_json(out, record)
                print(f"{env_id} {variant} N={memory} {name} seed {seed}: {record['reward']:.2f} per episode, "
                      f"{record['length']:.1f} steps ({record['seconds']:.1f}s)", flush=True)


def start_record(scenario: Scenario, memory: int) -> dict[str, float]:
    """What the episode's start gives away at memory N, before any action.

    An episode begins from the user's first N liked items in the log (DRR section 4.2;
    recgym/envs/episode_starts.py), shown in the history and unavailable. So N is both the memory
    and the length of the start: the mean number of start items, and the simulator's expected
    one-step reward of the best item still available at the first step, averaged over test users.
    """
    config = EpisodeConfig(max_steps=MAX_STEPS, allow_repeats=False, history_length=memory)
    env = evaluation_env(scenario, config, num_envs=int(scenario.test_users.size))
    obs, _ = env.reset(seed=0, options={"users": scenario.test_users})
    best = np.where(env.action_masks(), env.expected_rewards(), -np.inf).max(axis=1)
    return {"start_items": float(obs["history_mask"].sum(axis=1).mean()), "best_available": float(best.mean())}


def load(root: Path, env_id: str, variant: str, memory: int, policy: str, seeds: int) -> list[dict]:
    records = [read_cached_json(cache_path(root, env_id, variant, memory, policy, s)) for s in range(seeds)]
    return [r for r in records if r]


def fmt(values: list[float], digits: int = 1) -> str:
    if not values:
        return "–"
    mean, half = student_t_interval(values)
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def report(envs: list[str], seeds: int, root: Path) -> list[str]:
    lines = [
        "# What memory is worth to a policy that must learn the user from the episode",
        "",
        "Generated by `scripts/memory.py` (do not edit by hand):",
        "",
        "```bash",
        f"python scripts/memory.py --seeds {seeds}",
        "```",
        "",
        f"Test users, one episode each, no repeats, until the user leaves or {MAX_STEPS} steps; {seeds} seeds "
        "(0 to {0}) of the simulated responses; mean ± half-width of the 95% Student-t interval over the seeds. "
        "Nothing is trained (0 environment steps of training, 0 gradient updates): greedy-pmf and "
        "greedy-pmf-topics fold the test user into the training users' PMF from the last N interactions the "
        f"observation holds (`history_length` = N; N = {MAX_STEPS} is the whole episode). The planner and "
        "oracle-greedy-topics read the true simulator, so N does not matter to them. How well the fold-in "
        "knows the user, against the user's true preference (the simulator's rating model; a diagnostic no "
        "policy reads), averaged over every decision the rule took: **user r**, the correlation over all items "
        "of the user-specific parts `U_u^T V_j + b_u` of the two models' ratings, and **top-10 regret**, the "
        "true preference (stars) of the user's true top 10 items minus that of the 10 the fold-in ranks "
        "highest, and **one-step regret**, the simulator's expected one-step reward of the best available item minus "
        "that of the item the rule picks. Only decisions of each test user's own episode count. **Start items** and "
        "**best available at the start**: the episode begins from the user's first N liked items in the log (DRR), "
        "shown in the history and unavailable; the mean number of them, and the expected one-step reward of the "
        "best item still available before the first step, over the test users. **Stationary**: the same users with boredom and satiation switched off "
        "(patience, rewards and rating model unchanged), which isolates what the in-episode dynamics do to "
        "the fold-in.".format(seeds - 1),
        "",
    ]
    for env_id in envs:
        for variant in VARIANTS:
            if not load(root, env_id, variant, MEMORIES[0], "greedy-pmf", seeds):
                continue  # the stationary twin is a diagnostic, not run for every environment
            title = "behaviour users (registered dynamics)" if variant == "behaviour" else \
                "stationary twin (boredom and satiation off)"
            lines += [f"## `{env_id}`, {title}", "",
                      "| N | start items | best available at the start | greedy-pmf | user r | top-10 regret | "
                      "one-step regret | greedy-pmf-topics | user r | top-10 regret | one-step regret | "
                      "greedy-pmf-topics episode length |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for memory in MEMORIES:
                g = load(root, env_id, variant, memory, "greedy-pmf", seeds)
                t = load(root, env_id, variant, memory, "greedy-pmf-topics", seeds)
                label = f"{memory} (whole episode)" if memory == MAX_STEPS else str(memory)
                start = read_cached_json(cache_path(root, env_id, variant, memory, "start", 0))
                start_text = (f"{start['start_items']:.1f} | {start['best_available']:.2f}" if start else "– | –")
                lines.append(
                    f"| {label} | {start_text} | {fmt([r['reward'] for r in g])} | {fmt([r['user_r'] for r in g], 3)} | "
                    f"{fmt([r['top10_regret'] for r in g], 2)} | {fmt([r['step_regret'] for r in g], 2)} | "
                    f"{fmt([r['reward'] for r in t])} | {fmt([r['user_r'] for r in t], 3)} | "
                    f"{fmt([r['top10_regret'] for r in t], 2)} | {fmt([r['step_regret'] for r in t], 2)} | "
                    f"{fmt([r['length'] for r in t])} |")
            if variant == "behaviour":
                ceilings = ", ".join(
                    f"{name} {fmt([r['reward'] for r in load(root, env_id, variant, MEMORIES[0], name, seeds)])}"
                    for name in CEILINGS)
                lines += ["", f"Ceilings (reward per episode, {seeds} seeds): {ceilings}.", ""]
            else:
                lines += ["", f"{min(seeds, STATIONARY_SEEDS)} seeds (a diagnostic, not a result).", ""]
    lines += verdict(envs, seeds, root)
    return lines


def mean_reward(root: Path, env_id: str, variant: str, memory: int, policy: str, seeds: int,
                key: str = "reward") -> float:
    records = load(root, env_id, variant, memory, policy, seeds)
    return float(np.mean([r[key] for r in records])) if records else float("nan")


def verdict(envs: list[str], seeds: int, root: Path) -> list[str]:
    lines = ["## What it says", ""]
    for env_id in envs:
        for variant in VARIANTS:
            if not load(root, env_id, variant, MEMORIES[0], "greedy-pmf", seeds):
                continue
            rule = [mean_reward(root, env_id, variant, n, "greedy-pmf-topics", seeds) for n in MEMORIES]
            greedy = [mean_reward(root, env_id, variant, n, "greedy-pmf", seeds) for n in MEMORIES]
            corr = [mean_reward(root, env_id, variant, n, "greedy-pmf", seeds, "user_r") for n in MEMORIES]
            regret = [mean_reward(root, env_id, variant, n, "greedy-pmf", seeds, "step_regret") for n in MEMORIES]
            starts = [read_cached_json(cache_path(root, env_id, variant, n, "start", 0)) for n in MEMORIES]
            best = MEMORIES[int(np.nanargmax(rule))]
            line = (f"- `{env_id}`, {variant}: greedy-pmf-topics is best at N = {best} ({max(rule):.1f} per episode; "
                    f"N = {MEMORIES[0]}: {rule[0]:.1f}, the whole episode: {rule[-1]:.1f}), greedy-pmf goes "
                    f"{greedy[0]:.1f} → {greedy[-1]:.1f}. From N = {MEMORIES[0]} to the whole episode greedy-pmf's "
                    f"fold-in knows the user {'better' if corr[-1] > corr[0] else 'worse'} (user r {corr[0]:.3f} → "
                    f"{corr[-1]:.3f}; one-step regret {regret[0]:.2f} → {regret[-1]:.2f})")
            if all(starts):
                line += (f", while the start grows from {starts[0]['start_items']:.1f} to "
                         f"{starts[-1]['start_items']:.1f} liked items and the best item still available at the "
                         f"first step is worth {starts[0]['best_available']:.2f} → {starts[-1]['best_available']:.2f} "
                         "in expected reward")
            lines.append(line + ".")
    lines += ["",
              "Read: in the registered ids N is both the memory and the length of the start. An episode begins from "
              "the user's first N liked items in the log (DRR section 4.2), which are shown in the history and are "
              "then unavailable, so a longer N hands the rule more of the user's ratings and takes the user's "
              "favourite items out of the catalogue at once. Where the fold-in knows the user better with N and the "
              "stationary twin (no boredom, no satiation) loses reward with N as the behaviour users do, the loss "
              "comes from the start, not from a worse fold-in or from satiation mixing into the feedback. A longer "
              "default N would make each episode a different task (a user whose favourites are used up), not the "
              "same task with more memory, so the registered default N = 5 stays; measuring memory alone needs a "
              "start of fixed length with a longer window, which the environments do not offer yet.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--envs", nargs="*", default=ENVS)
    parser.add_argument("--data-dir", default=os.environ.get("RECGYM_DATA_DIR"))
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "memory")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "memory.md")
    parser.add_argument("--report", action="store_true", help="rewrite the doc from the cache, evaluate nothing")
    parser.add_argument("--only-seeds", type=int, nargs="*", default=None,
                        help="evaluate only these seeds (to split a run across processes); the doc covers --seeds")
    args = parser.parse_args()
    if not args.report:
        for env_id in args.envs:
            measure(env_id, args.seeds, args.cache, args.data_dir, args.only_seeds)
    text = "\n".join(report(args.envs, args.seeds, args.cache))
    atomic_write(args.out, lambda tmp: tmp.write_text(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
