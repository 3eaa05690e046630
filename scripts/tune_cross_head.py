"""Tuning of DQN's ``cross`` head (learns from the state, not handed greedy-pmf's rating) on the training users.

    python scripts/tune_cross_head.py [--env recgym/ML100K-Behavior-v1] [--seeds 100] [--steps 30000]
                                      [--variants "γ=0.9, n=8" ...]
    python scripts/tune_cross_head.py --report    # rewrite the table from the cached runs

The table goes to docs/results/cross_head.md and, between its markers, to docs/agents.md.

Each variant trains DQN with ``q_head="cross"`` (agents/q_heads.py: ``Q(s, a) = f(s)ᵀ φ_a + c_a`` plus
learned weights on the candidate's topic overlap with each of the last items shown, ``f`` a linear map,
zero at the start, of the user folded in from the observation) on the TRAINING users of the environment
(seeds >= 100, not reported seeds), ``--steps`` environment steps in 16 parallel episodes like the
evaluation's (no repeats, until the user leaves or 100 steps), then evaluates it greedily on the same
training users, one episode each, the simulated responses seeded by the seed. Beside it, on the same
users and seeds: greedy-pmf and greedy-pmf-topics as registered (on training users they use the users'
FITTED factors, which the agents never see) and both rules with every user folded in from the
observation, as the agents and the test users see them: the comparison that has the same information.

Runs are cached as JSON under ``runs/cross_head/`` (one per variant and seed), so an interrupted tuning
resumes; ``--report`` rewrites the table from whatever is cached.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

import agents
import recgym  # noqa: F401  (registers the ids)
from agents.baselines import TOPIC_PENALTY, TOPIC_WINDOW, GreedyPMFAgent, TopicAwareGreedyAgent
from agents.update_counter import GradientUpdateCounter
from recgym.data.atomic import atomic_write
from recgym.experiments.reports.long_term import MAX_STEPS, fmt
from recgym.evaluation.online import evaluation_env, run_episodes
from recgym.experiments.setup import make_run_setup
from recgym.scenario import fold_in_users
from script_utils import git_commit, read_cached_json, write_json

REPO = Path(__file__).resolve().parents[1]
EPISODE = {"max_steps": MAX_STEPS, "allow_repeats": False}
N_ENVS = 16  # recgym train's default
#: label -> DQN settings beyond the defaults (the head is always "cross")
VARIANTS: dict[str, dict[str, Any]] = {
    "γ=0.9, n=8": {"n_steps": 8},
    "γ=0, n=1": {"gamma": 0.0},
    "γ=0.95, n=8": {"gamma": 0.95, "n_steps": 8},
    "γ=0.9, n=1": {},
    "γ=0.95, n=1": {"gamma": 0.95},
    "γ=0.95, n=16": {"gamma": 0.95, "n_steps": 16},
    "γ=0.9, n=12": {"n_steps": 12},
    "γ=0.9, n=8, no state terms": {"n_steps": 8, "policy_kwargs": {"q_head_kwargs": {"state_terms": False}}},
    "γ=0.95, n=8, no state terms": {"gamma": 0.95, "n_steps": 8,
                                    "policy_kwargs": {"q_head_kwargs": {"state_terms": False}}},
    "γ=0.9, n=8, preference pinned to the rule's": {"n_steps": 8},
    "γ=0.9, n=8, topic weights pinned to the rule's": {"n_steps": 8},
    "γ=0, n=1, topic weights pinned to the rule's": {"gamma": 0.0},
}
#: diagnostics that isolate what the head fails to learn: one part set by hand to greedy-pmf-topics' form
#: and frozen (tests/test_q_heads.py checks that the two together are the rule), the rest learned. With
#: "preference" pinned the head is handed the rating's form: a labelled diagnostic, never a candidate default.
PINNED = {
    "γ=0.9, n=8, preference pinned to the rule's": "preference",
    "γ=0.9, n=8, topic weights pinned to the rule's": "topics",
    "γ=0, n=1, topic weights pinned to the rule's": "topics",
}


class FoldedIn:
    """A greedy-pmf rule with every user folded in from the observation (training users too), as the agents see them."""

    def user_factors(self, obs: dict) -> tuple[np.ndarray, np.ndarray]:
        scale = self.scenario.log.scale
        ratings = obs["history_feedback"].astype(np.float64) * scale.half_range + scale.midpoint
        return fold_in_users(self.model, obs["history_items"], ratings, obs["history_mask"])


class FoldedInGreedyPMF(FoldedIn, GreedyPMFAgent):
    """greedy-pmf, every user folded in."""


class FoldedInTopics(FoldedIn, TopicAwareGreedyAgent):
    """greedy-pmf-topics, every user folded in."""


RULES = {"greedy-pmf": None, "greedy-pmf-topics": None,
         "greedy-pmf (folded in)": FoldedInGreedyPMF, "greedy-pmf-topics (folded in)": FoldedInTopics}


def cache_path(root: Path, env_id: str, label: str, seed: int, steps: int | None) -> Path:
    safe = lambda s: "".join(c if c.isalnum() or c in "-." else "_" for c in s)  # noqa: E731
    budget = "" if steps is None else f"-{steps}"
    return root / safe(env_id) / f"{safe(label)}{budget}-seed{seed}.json"


def evaluate(policy: Any, setup: Any, seed: int) -> dict[str, Any]:
    """Greedy episodes on the training users, one each (the tuning protocol)."""
    env = evaluation_env(setup.scenario, setup.config, users="train")
    tic = time.perf_counter()
    res = run_episodes(policy, env, seed=seed)
    return {"reward": res.avg_reward_per_episode, "length": res.avg_episode_length, "left": res.left_fraction,
            "episodes": int(env.users.size), "eval_seconds": time.perf_counter() - tic}


def run_rules(env_id: str, seed: int, root: Path, setup: Any) -> None:
    for label, cls in RULES.items():
        out = cache_path(root, env_id, label, seed, None)
        if out.exists():
            continue
        env = evaluation_env(setup.scenario, setup.config, users="train")
        policy = (agents.make(label, env, seed=seed, scenario=setup.scenario) if cls is None
                  else cls(env, seed=seed, scenario=setup.scenario))
        record = {"env": env_id, "policy": label, "seed": seed, **evaluate(policy, setup, seed)}
        write_json(out, record)
        print(f"{env_id} seed {seed} {label}: {record['reward']:.2f} per episode", flush=True)


def pin(model: Any, part: str, scenario: Any) -> None:
    """Set one part of both networks' cross heads to greedy-pmf-topics' form (in reward units of its rating) and freeze it."""
    half, dim = scenario.log.scale.half_range, scenario.embedding_model.dim
    for net in (model.q_net, model.q_net_target):
        head = net.head
        with th.no_grad():
            if part == "preference":  # f(s) = [U / h, 1 / h, 0]: the rule's rating term
                head.user_map.weight.zero_()
                head.user_map.weight[:dim, :dim] = th.eye(dim) / half
                head.user_map.weight[dim, dim + 1] = 1.0 / half
                head.state_map.weight.zero_()
                frozen = [head.user_map.weight, head.state_map.weight]
            else:  # w_k = -lambda on the rule's last `window` items
                head.cross_weights.weight.zero_()
                head.cross_weights.bias.zero_()
                head.cross_weights.bias[-TOPIC_WINDOW:] = -TOPIC_PENALTY
                frozen = [head.cross_weights.weight, head.cross_weights.bias]
        for parameter in frozen:
            parameter.requires_grad_(False)  # no gradient: Adam leaves it


def run_variant(env_id: str, label: str, seed: int, steps: int, root: Path, setup: Any) -> None:
    out = cache_path(root, env_id, label, seed, steps)
    settings = VARIANTS[label]
    if read_cached_json(out).get("settings") == settings:
        return
    th.manual_seed(seed)
    policy_kwargs = {"q_head": "cross", **settings.get("policy_kwargs", {})}
    model = agents.make("dqn", setup.training_env(N_ENVS), seed=seed, scenario=setup.scenario,
                        policy_kwargs=policy_kwargs, **{k: v for k, v in settings.items() if k != "policy_kwargs"})
    if label in PINNED:
        pin(model, PINNED[label], setup.scenario)
    updates = GradientUpdateCounter()
    tic = time.perf_counter()
    model.learn(steps, callback=updates)
    train_seconds = time.perf_counter() - tic
    model.save(out.with_suffix(".zip"))  # for diagnostics of what it learned (agents.load)
    record = {"env": env_id, "policy": f"DQN cross head, {label}", "seed": seed, "settings": settings,
              "pinned": PINNED.get(label),
              "steps": int(model.num_timesteps), "gradient_updates": updates.count,
              "train_seconds": train_seconds, "commit": git_commit(REPO), **evaluate(model, setup, seed)}
    write_json(out, record)
    print(f"{env_id} seed {seed} {label}: {record['reward']:.2f} per episode after {record['steps']:,} steps "
          f"({record['gradient_updates']:,} updates, {train_seconds / 60:.1f} min)", flush=True)


def report(root: Path, env_id: str, seeds: list[int], steps: int, out: Path, command: str,
           agents_doc: Path | None = None) -> None:
    def records(label: str, budget: int | None) -> list[dict]:
        found = [read_cached_json(cache_path(root, env_id, label, s, budget)) for s in seeds]
        return [r for r in found if r]

    # a row's ratio: the mean over its seeds of its reward over the rule's on the same seed
    ref = {r["seed"]: r["reward"] for r in records("greedy-pmf-topics (folded in)", None)}
    registered = {r["seed"]: r["reward"] for r in records("greedy-pmf-topics", None)}

    def ratio(found: list[dict], rule: dict[int, float]) -> str:
        pairs = [r["reward"] / rule[r["seed"]] for r in found if r["seed"] in rule]
        return f"{np.mean(pairs):.2f}" if pairs else "–"
    lines = [
        f"# DQN's cross head on {env_id}'s training users",
        "",
        f"Generated by `scripts/tune_cross_head.py` (do not edit by hand): `{command}`.",
        "",
        "Training users (the tuning protocol; seeds >= 100 are not reported seeds), one greedy episode per user,",
        "no repeats, until the user leaves or 100 steps; rewards skip 0 / click 1 / purchase 5. Each DQN row",
        f"is `agents.make(\"dqn\", env, policy_kwargs={{\"q_head\": \"cross\"}}, **settings)` trained for {steps:,}",
        f"environment steps on the training users ({N_ENVS} parallel episodes, DQN's default replay ratio).",
        "The `(folded in)` rules fold every user in from the observation, as the agents and the test users",
        "see them; the registered rules use the training users' fitted factors, which no agent sees.",
        "Reward per episode: the mean over the seeds listed, ± the half-width of its 95% Student-t interval",
        "where there are several; the ratios are per seed (against the rule on the same seed), then averaged.",
        "",
        "| policy | command: DQN settings beyond the defaults | seeds | reward per episode | episode length | left | env steps | gradient updates "
        "| train minutes | x greedy-pmf-topics (folded in) | x greedy-pmf-topics (registered) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [(label, None) for label in RULES] + [(label, steps) for label in VARIANTS]
    for label, budget in rows:
        found = records(label, budget)
        if not found:
            continue
        rewards = [r["reward"] for r in found]
        mean = float(np.mean(rewards))
        name = label if budget is None else f"DQN, cross head, {label}"
        seeds_arg = " ".join(str(r["seed"]) for r in found)
        # the command that (re)produces the row: a rule runs with any variant, once per seed
        given = (f"`python scripts/tune_cross_head.py --seeds {seeds_arg} --variants` (the rules only): `agents.make(\"{label}\")`"
                 if budget is None and RULES[label] is None else
                 f"`python scripts/tune_cross_head.py --seeds {seeds_arg} --variants` (the rules only): `{RULES[label].__name__}`"
                 if budget is None else
                 f"`python scripts/tune_cross_head.py --seeds {seeds_arg} --steps {budget} --variants \"{label}\"`: "
                 f"`{found[0]['settings']}`" + (f", {found[0]['pinned']} pinned" if found[0].get("pinned") else ""))
        lines.append(
            f"| {name} | {given} | {', '.join(str(r['seed']) for r in found)} | "
            f"{fmt(rewards, 1) if len(rewards) > 1 else f'{mean:.1f}'} | "
            f"{np.mean([r['length'] for r in found]):.1f} | {np.mean([r['left'] for r in found]):.2f} | "
            + ("– | – | – | " if budget is None else
               f"{int(np.mean([r['steps'] for r in found])):,} | {int(np.mean([r['gradient_updates'] for r in found])):,} | "
               f"{np.mean([r['train_seconds'] for r in found]) / 60:.1f} | ")
            + f"{ratio(found, ref)} | {ratio(found, registered)} |")
    text = "\n".join(lines) + "\n"
    atomic_write(out, lambda tmp: tmp.write_text(text))
    if agents_doc is not None:
        write_block(agents_doc, "\n".join(lines[2:]))  # the same table in docs/agents.md, title left out
    print("\n".join(lines))


BEGIN, END = "<!-- scripts/tune_cross_head.py: begin -->", "<!-- scripts/tune_cross_head.py: end -->"


def write_block(doc: Path, block: str) -> None:
    """Replace what lies between :data:`BEGIN` and :data:`END` in ``doc`` with ``block`` (the rest is kept)."""
    text = doc.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"{doc} needs one {BEGIN} line and one {END} line after it, around the generated table")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    new = f"{head}{BEGIN}\n{block}\n{END}{tail}"
    atomic_write(doc, lambda tmp: tmp.write_text(new))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="recgym/ML100K-Behavior-v1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[100])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help=f"among {list(VARIANTS)}")
    parser.add_argument("--data-dir", default=os.environ.get("RECGYM_DATA_DIR"))
    parser.add_argument("--root", type=Path, default=REPO / "runs" / "cross_head")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "cross_head.md")
    parser.add_argument("--report", action="store_true", help="only rewrite the table from the cached runs")
    parser.add_argument("--no-agents-doc", action="store_true",
                        help="leave docs/agents.md's copy of the table as it is (only write --out)")
    args = parser.parse_args()
    if any(s < 100 for s in args.seeds):
        parser.error("tuning seeds must be >= 100 (lower seeds are the reported ones)")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose among {list(VARIANTS)}")
    th.set_num_threads(1)
    command = "python scripts/tune_cross_head.py " + " ".join(sys.argv[1:])
    if not args.report:
        env_kwargs = {**EPISODE, **({"data_dir": args.data_dir} if args.data_dir else {})}
        setup = make_run_setup(args.env, env_kwargs, "discrete")
        for seed in args.seeds:
            run_rules(args.env, seed, args.root, setup)
            for label in args.variants:
                run_variant(args.env, label, seed, args.steps, args.root, setup)
    report(args.root, args.env, args.seeds, args.steps, args.out, command,
           None if args.no_agents_doc else REPO / "docs" / "agents.md")


if __name__ == "__main__":
    main()
