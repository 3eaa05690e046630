"""Trained agents against myopic policies and the planner, where long-term reward differs from greedy reward.

    python scripts/long_term.py [--seeds 5] [--steps 30000] [--envs recgym/ML100K-Behavior-v1 ...]
    python scripts/long_term.py --report     # rewrite the doc from the cached runs

For each behaviour environment (ML-100K, Jester Dataset 4, synthetic; the
``-v1`` users with satiation, docs/simulators.md) and each seed: trains DQN
(DRR-ave state; HPMN state; the "prior" head), DRR (DRR-ave state, saturation penalty 1) and
DEERS on the training users through ``recgym train`` (episodes as evaluated:
no repeats, until the user leaves or 100 steps), then evaluates every policy
on the held-out test users, one episode each, with the same protocol as
``scripts/headroom.py``: random, popularity, greedy-pmf, greedy-pmf-topics
(greedy-pmf with a rule against repeating recent topics), oracle-greedy and
planner beside the agents. Seed ``s`` seeds the agent, its training and the
simulated responses of the evaluation; the user split is the registered
default (fixed), as in the headroom measurement.

Reported: cumulative reward per episode, episode length and leave rate (mean ±
half-width of the 95% Student-t interval over seeds), the RL agents'
environment steps and gradient updates, learning curves (test reward per
episode during training, seed bands), and DRR's health: distinct first items
across the test users beside oracle-greedy's and greedy-pmf's, and the
fraction of its actor's output coordinates that are saturated (|a| > 0.99).

Each (environment, policy, seed) is cached as JSON under
``runs/long_term/``, so an interrupted run resumes; ``--report`` rewrites
docs/results/long_term.md and its plot from whatever is cached.
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
from headroom import MAX_STEPS, fmt, interval
from recgym.data.atomic import atomic_write
from recgym.envs.config import EpisodeConfig
from recgym.evaluation.online import evaluation_env, run_episodes
from recgym.experiments.config import make_config
from recgym.experiments.setup import RunSetup
from recgym.experiments.plots import plot_learning_curve
from recgym.experiments.train import train
from recgym.scenario import make_scenario
from script_utils import read_cached_json, write_json

REPO = Path(__file__).resolve().parents[1]
ENVS = ["recgym/ML100K-Behavior-v1", "recgym/Jester4-Behavior-v1", "recgym/Synthetic-Behavior-v1"]
#: greedy-pmf-topics is greedy-pmf with a hand-made rule against repeating recent topics (agents/baselines.py):
#: what an agent that learned the users' satiation, and no more about them than greedy-pmf, could reach
#: oracle-greedy-topics is the same rule on oracle-greedy's true expected rewards: it knows the user and does not plan,
#: so beside greedy-pmf-topics and the planner it says whether the agents lack knowledge of the user or foresight
BASELINES = ["random", "popularity", "greedy-pmf", "greedy-pmf-topics", "oracle-greedy", "oracle-greedy-topics",
             "planner"]
#: label -> (agent, encoder, settings beyond the agent's defaults). DQN with its default state, and with HPMN,
#: the best of the states tried on the training users (seed 100, not a reported seed; docs/agents.md): DRR-ave
#: sees only the last liked items, while satiation depends on every item shown, which HPMN reads with its
#: behaviours. DQN with the "prior" head has greedy-pmf's folded-in rating as a feature of its Q-function and
#: learns the rest (agents/dqn.py), at a learning rate of 3e-4 (steadier than 1e-3 on the tuning users), and
#: with 8-step returns (agents/nstep.py) at the default 1e-3, the best of n in {1, 3, 5, 8, 12} on the tuning users.
#: DQN with the "history" head (its own value per item plus learned weights on each candidate's similarity to the
#: last items shown) learns from the state alone; with 8-step returns it passed greedy-pmf on the tuning users. DRR's state is DRR-ave, the best of DRR's states in docs/results/drr.md; its saturation penalty is
#: raised from 0.1 to 1, which on the same tuning users cut its saturated outputs from 30% to 6% (docs/agents.md).
RL: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "DQN (drr-ave)": ("dqn", "drr-ave", {}),
    "DQN (hpmn)": ("dqn", "hpmn", {}),
    "DQN (prior head)": ("dqn", "drr-ave", {"policy_kwargs": {"q_head": "prior"}, "learning_rate": 3e-4}),
    "DQN (history head, 8-step)": ("dqn", "drr-ave", {"policy_kwargs": {"q_head": "history"}, "n_steps": 8}),
    "DQN (prior head, 8-step)": ("dqn", "drr-ave", {"policy_kwargs": {"q_head": "prior"}, "n_steps": 8}),
    "DRR (drr-ave)": ("drr", "drr-ave", {"action_penalty": 1.0}),
    "DEERS": ("deers", None, {}),
}
EPISODE = {"max_steps": MAX_STEPS, "allow_repeats": False}
SATURATED = 0.99


class ActionRecorder:
    """Wraps a policy to keep the actions it takes (for the saturation of an actor's outputs)."""

    def __init__(self, policy: Any) -> None:
        self.policy, self.actions = policy, []

    def predict(self, observation: dict, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        actions, state = self.policy.predict(observation, deterministic=deterministic)
        self.actions.append(np.asarray(actions))
        return actions, state


def cache_path(root: Path, env_id: str, policy: str, seed: int) -> Path:
    safe = lambda s: "".join(c if c.isalnum() or c in "-." else "_" for c in s)  # noqa: E731
    return root / safe(env_id) / f"{safe(policy)}-seed{seed}.json"


def evaluate(policy: Any, env: Any, seed: int) -> dict[str, Any]:
    tic = time.perf_counter()
    res = run_episodes(policy, env, seed=seed)
    return {"reward": res.avg_reward_per_episode, "length": res.avg_episode_length, "left": res.left_fraction,
            "distinct_first_items": res.distinct_first_items, "eval_seconds": time.perf_counter() - tic}


def run_baselines(env_id: str, seed: int, root: Path, data_dir: str | None) -> None:
    spec = gym.spec(env_id).kwargs
    scenario = None
    for name in BASELINES:
        out = cache_path(root, env_id, name, seed)
        if out.exists():
            continue
        if scenario is None:
            scenario = make_scenario(spec["dataset"], spec["simulator"], data_dir=data_dir)
        mode = agents.spec(name).action_mode
        env = evaluation_env(scenario, EpisodeConfig(**EPISODE, action_mode=mode))
        policy = agents.make(name, env, seed=seed, scenario=scenario)
        record = {"env": env_id, "policy": name, "seed": seed, **evaluate(policy, env, seed)}
        write_json(out, record)
        print(f"{env_id} seed {seed} {name}: {record['reward']:.2f} per episode", flush=True)


def run_agent(env_id: str, label: str, seed: int, steps: int, root: Path, data_dir: str | None) -> None:
    out = cache_path(root, env_id, label, seed)
    agent, encoder, settings = RL[label]
    cached = read_cached_json(out)  # {} when missing or unreadable: the run is (re)done
    if cached and cached.get("settings", {}) == settings and cached.get("steps") == steps:
        return  # a run with other settings or another budget is redone
    env_kwargs = {**EPISODE, **({"data_dir": data_dir} if data_dir else {})}
    config = make_config(env=env_id, agent=agent, encoder=encoder, agent_kwargs=dict(settings), steps=steps,
                         seed=seed, env_kwargs=env_kwargs,
                         eval_every=max(steps // 10, 1), eval_episodes=128, checkpoint_every=max(steps // 4, 1))
    folder = root / "runs" / out.parent.name / out.stem
    tic = time.perf_counter()
    trained = train(RunSetup.from_config(config), config, folder, overwrite=folder.exists(), progress=False)
    result, setup, model = trained.results, trained.setup, trained.model
    env = evaluation_env(setup.scenario, setup.config)
    if agents.spec(agent).action_mode != "embedding":
        figures = evaluate(model, env, seed)  # unwrapped: a discrete agent takes the action masks itself
    else:
        recorder = ActionRecorder(model)
        figures = evaluate(recorder, env, seed)
        acted = np.concatenate([a.reshape(-1) for a in recorder.actions])
        figures["saturated_fraction"] = float(np.mean(np.abs(acted) > SATURATED))
    record = {"env": env_id, "policy": label, "seed": seed, "settings": settings, **figures,
              "steps": result["steps"],
              "gradient_updates": result["gradient_updates"], "train_seconds": result["train_seconds"],
              "total_seconds": time.perf_counter() - tic,
              "curve": [{"step": p["step"], "reward": p["avg_reward_per_episode"]} for p in result["curve"]]}
    write_json(out, record)
    print(f"{env_id} seed {seed} {label}: {record['reward']:.2f} per episode after {record['steps']:,} steps "
          f"({record['gradient_updates']:,} updates, {record['train_seconds'] / 60:.1f} min)", flush=True)


def load_records(root: Path, env_id: str) -> dict[str, list[dict]]:
    records: dict[str, list[dict]] = {}
    for name in [*BASELINES, *RL]:
        for seed in range(100):
            path = cache_path(root, env_id, name, seed)
            record = read_cached_json(path)
            if record:
                records.setdefault(name, []).append(record)
    return records


def report(root: Path, envs: list[str], out: Path, command: str) -> None:
    lines = [
        "# Long-term reward: trained agents against myopic policies and the planner",
        "",
        "Generated by `scripts/long_term.py` (do not edit by hand):",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Test users, one episode each, no repeats, until the user leaves or {MAX_STEPS} steps (the protocol of "
        "docs/results/headroom.md). Mean ± half-width of the 95% Student-t interval over the seeds listed; seed s "
        "seeds the agent, its training and the evaluation's simulated responses; the user split is the registered "
        "default. RL agents are trained on the training users with their defaults (docs/agents.md), in episodes "
        "like the evaluation's; their environment steps and gradient updates are given per row. `DQN (hpmn)` is "
        "DQN with the HPMN state instead of its default DRR-ave: the best state on the training users (seed 100, "
        "docs/agents.md). `DQN (prior head)` is DQN whose Q-function takes greedy-pmf's folded-in rating of each "
        "item as a feature beside the state, a similarity-to-the-last-items term and per-item biases "
        "(`q_head=\"prior\"`, docs/agents.md), at a learning rate of 3e-4: it starts as greedy-pmf and learns "
        "what the rating model does not know. `DQN (prior head, 8-step)` is the same head trained on 8-step "
        "returns (`n_steps=8`, agents/nstep.py) at DQN's default learning rate of 1e-3, the best setting on the "
        "training users (seed 100, docs/agents.md). `DQN (history head, 8-step)` learns every item's value from "
        "the state, as the default head does, plus learned weights on each candidate's similarity to the last items "
        "shown (`q_head=\"history\"`), also on 8-step returns. DRR runs with a saturation penalty of 1 instead of its default 0.1 (same tuning, "
        "docs/agents.md). Rewards: skip 0, click 1, purchase 5.",
        "",
    ]
    curves_png: dict[str, str] = {}
    for env_id in envs:
        records = load_records(root, env_id)
        if not records:
            lines += [f"## `{env_id}`", "", "Not run yet.", ""]
            continue
        lines += [f"## `{env_id}`", "",
                  "| policy | seeds | reward per episode | episode length | left before the end | env steps | "
                  "gradient updates | distinct first items |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name in [*BASELINES[:-1], *RL, "planner"]:
            rows = records.get(name, [])
            if not rows:
                continue
            steps = f"{np.mean([r['steps'] for r in rows]):,.0f}" if "steps" in rows[0] else "-"
            updates = f"{np.mean([r['gradient_updates'] for r in rows]):,.0f}" if "steps" in rows[0] else "-"
            lines.append(
                f"| {name} | {len(rows)} | {fmt([r['reward'] for r in rows])} | {fmt([r['length'] for r in rows], 1)} "
                f"| {fmt([100 * r['left'] for r in rows], 1)}% | {steps} | {updates} | "
                f"{np.mean([r['distinct_first_items'] for r in rows]):.0f} |")
        lines += [""] + verdict(records) + [""]
        drr = records.get("DRR (drr-ave)", [])
        if drr:
            sat = [100 * r["saturated_fraction"] for r in drr]
            lines += [f"DRR's actor: {np.mean([r['distinct_first_items'] for r in drr]):.0f} distinct first items "
                      "across the test users (oracle-greedy "
                      f"{np.mean([r['distinct_first_items'] for r in records.get('oracle-greedy', [{}])] or [0]):.0f}, "
                      f"greedy-pmf {np.mean([r['distinct_first_items'] for r in records.get('greedy-pmf', [{}])]):.0f}); "
                      f"{fmt(sat, 1)}% of its action coordinates saturated (|a| > {SATURATED}).", ""]
        curves = {name: [r["curve"] for r in records[name]] for name in RL if name in records}
        if curves:
            png = out.parent / f"long_term_{env_id.split('/')[-1]}.png"
            reference = {n: interval([r["reward"] for r in records[n]])[0]
                         for n in ("greedy-pmf", "greedy-pmf-topics", "oracle-greedy", "planner") if n in records}
            plot_learning_curve(curves, png, title=f"{env_id}: test reward per episode during training",
                                metric="reward", reference=reference)
            curves_png[env_id] = png.name
            lines += [f"![learning curves on {env_id}]({png.name})", ""]
        seconds = sum(r.get("total_seconds", r.get("eval_seconds", 0.0)) for rows in records.values() for r in rows)
        lines += [f"Run time of this environment's cached runs: {seconds / 60:.1f} minutes on the shared 2-core "
                  "development machine.", ""]
    lines += [
        "## Where this differs from the issue's acceptance, and why",
        "",
        "The acceptance asks the best RL agent for at least 1.10 × greedy-pmf and 0.8 × the planner on "
        "ML-100K and Jester4. The verdict lines above say, for each environment, how far the agents got. "
        "What we know of the causes:",
        "",
        "* **The agents do not know the user; oracle-greedy and the planner do.** Both cheat by design (they are "
        "the upper references): they read the test user's true ratings. The agents see the last "
        "few items of the episode (N = 5) and how the user reacted, as greedy-pmf does through its fold-in. "
        "oracle-greedy-topics measures what that costs: the hand-written topic rule on the true expected rewards "
        "against the same rule on greedy-pmf's folded-in ratings (the verdict lines give both).",
        "* **What a learned rule is worth.** greedy-pmf-topics is greedy-pmf with a hand-written penalty on the "
        "topics of the last two items shown (agents/baselines.py): the rule the v1 users reward, since they tire "
        "of a topic. `DQN (prior head)` starts from greedy-pmf's rating and learns such a rule from the reward "
        "(docs/agents.md). One-step targets pass a satiation's cost back one step per update, and the cost comes "
        "some steps after the items that caused it: 8-step returns are what lifted the head towards the rule on "
        "the tuning users (107 to 150-158 per episode, against the rule's 179 there, where the rule knows the "
        "training users' fitted factors). The other agents must also learn every item's value from the state. "
        "With one-step targets they stay near greedy-pmf, even with the similarity features given to them (the "
        "`history` head, docs/agents.md); `DQN (history head, 8-step)` shows what 8-step returns add to that head.",
        "* **Jester4 leaves little to plan for.** Its headroom (planner ÷ oracle-greedy) is 1.03 "
        "(docs/results/headroom.md): users leave after about ten jokes whatever is shown, so repetition hardly "
        "matters (greedy-pmf-topics does not help there either), and a long-term policy has about ten steps "
        "to find out who the user is. No agent reaches greedy-pmf there: the prior head, which starts at "
        "greedy-pmf's policy, ends below it, so training only added noise to the greedy ranking, and no setting "
        "tried on the training users (docs/agents.md) did better.",
        "* **DRR's actor-critic is unstable here.** On the tuning users its reward swung between 18 and 29 per "
        "episode from one evaluation to the next; with its default saturation penalty (0.1) 30% of its action "
        "coordinates sat at ±1 and it gave few distinct first items, hence the penalty of 1 (6% saturated).",
        "* **Budget.** Each agent trains for the environment steps in its row (a few minutes of one core); the "
        "learning curves show whether it had flattened.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    # every environment's cached runs, so runs of single environments in parallel processes share one doc
    atomic_write(out, lambda tmp: tmp.write_text("\n".join(lines)))
    print(f"wrote {out}")


def verdict(records: dict[str, list[dict]]) -> list[str]:
    """Best RL agent against greedy-pmf and the planner, in words."""
    rl = {name: records[name] for name in RL if name in records}
    if not rl or "greedy-pmf" not in records:
        return []
    best = max(rl, key=lambda n: np.mean([r["reward"] for r in rl[n]]))
    mean, half = interval([r["reward"] for r in rl[best]])
    g_mean, g_half = interval([r["reward"] for r in records["greedy-pmf"]])
    out = [f"Best RL agent: {best}, {mean / g_mean:.2f} × greedy-pmf's reward per episode"]
    separated = mean - half > g_mean + g_half
    below = mean + half < g_mean - g_half
    out[0] += (" (above it; the 95% intervals do not overlap)" if separated else
               " (below it; the 95% intervals do not overlap)" if below else " (the 95% intervals overlap)")
    if "planner" in records:
        p_mean = interval([r["reward"] for r in records["planner"]])[0]
        out[0] += f", {mean / p_mean:.2f} × the planner's."
    scratch = {n: rows for n, rows in rl.items() if RL[n][2].get("policy_kwargs", {}).get("q_head") != "prior"}
    if best not in scratch and scratch:
        # the agents that are not handed greedy-pmf's rating: does RL earn its place from the state alone?
        own = max(scratch, key=lambda n: np.mean([r["reward"] for r in scratch[n]]))
        o_mean, o_half = interval([r["reward"] for r in scratch[own]])
        relation = ("above it; the 95% intervals do not overlap" if o_mean - o_half > g_mean + g_half else
                    "below it; the 95% intervals do not overlap" if o_mean + o_half < g_mean - g_half else
                    "the 95% intervals overlap")
        out[0] += (f" Best agent that learns every item's value from the state (no greedy-pmf rating in its "
                   f"Q-function): {own}, {o_mean / g_mean:.2f} × greedy-pmf ({relation}).")
    goal = mean >= 1.10 * g_mean and separated
    out.append("")
    out.append("It meets the 1.10 × greedy-pmf goal (non-overlapping intervals)" if goal else
               "**It does not meet the 1.10 × greedy-pmf goal: RL has not earned its place here yet**")
    if "planner" in records:
        out[-1] += (", and reaches 0.8 × the planner." if mean >= 0.8 * p_mean else
                    ("; it does not reach 0.8 × the planner." if goal else ", nor 0.8 × the planner.**"))
        if not goal:
            out[-1] = out[-1].replace("here yet**, nor", "here yet, nor")
    else:
        out[-1] += "." if goal else ".**"
    if "planner" in records and "greedy-pmf-topics" in records:
        t_mean = interval([r["reward"] for r in records["greedy-pmf-topics"]])[0]
        verb = "reaches" if t_mean >= 0.8 * p_mean else "gets"
        out += ["", f"0.8 × the planner is {0.8 * p_mean:.2f} per episode. greedy-pmf-topics, a hand-written rule "
                    f"that knows no more of the user than the agents do, {verb} {t_mean:.2f} "
                    f"({t_mean / p_mean:.2f} × the planner; the best agent {mean / t_mean:.2f} × the rule)."]
        if "oracle-greedy-topics" in records and "oracle-greedy" in records:
            o_mean = interval([r["reward"] for r in records["oracle-greedy-topics"]])[0]
            known = max(o_mean, interval([r["reward"] for r in records["oracle-greedy"]])[0])
            out[-1] += (f" The same rule on the user's true expected rewards (oracle-greedy-topics, which cheats as "
                        f"oracle-greedy does) gets {o_mean:.2f} ({o_mean / p_mean:.2f} × the planner). ")
            out[-1] += (f"Knowing the user, one-step play (with the rule, or without it where it does not help) "
                        f"reaches {known / p_mean:.2f} × the planner, so what the agents lack against the "
                        "planner here is knowledge of the user more than foresight." if known >= 0.95 * p_mean
                        else f"Knowing the user, the planner still earns {p_mean / known:.2f} × the better one-step "
                        "oracle, so foresight beyond the rule is worth that much here, beside knowledge of the user.")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30_000, help="environment steps of training per agent and seed")
    parser.add_argument("--envs", nargs="*", default=ENVS)
    parser.add_argument("--agents", nargs="*", default=list(RL), help=f"among {list(RL)}")
    parser.add_argument("--data-dir", default=os.environ.get("RECGYM_DATA_DIR"))
    parser.add_argument("--root", type=Path, default=REPO / "runs" / "long_term")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "long_term.md")
    parser.add_argument("--report", action="store_true", help="only rewrite the doc from the cached runs")
    args = parser.parse_args()
    command = f"python scripts/long_term.py --seeds {args.seeds} --steps {args.steps}"
    if not args.report:
        for seed in range(args.seeds):
            for env_id in args.envs:
                run_baselines(env_id, seed, args.root, args.data_dir)
                for label in args.agents:
                    run_agent(env_id, label, seed, args.steps, args.root, args.data_dir)
                report(args.root, ENVS, args.out, command)
    report(args.root, ENVS, args.out, command)


if __name__ == "__main__":
    main()
