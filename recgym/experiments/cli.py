"""``recgym train`` and ``recgym evaluate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recgym.experiments.config import TrainConfig, load_config_file, make_config

PROTOCOLS = ("online", "offline", "long-term")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``evaluate`` sub-commands."""
    defaults = TrainConfig.model_fields
    train = subparsers.add_parser(
        "train",
        help="train an agent on an environment",
        description="Train an agent, checkpoint it every K steps, evaluate it on the test users, "
        "and write DIR/results.json and DIR/learning_curve.png.",
    )
    train.add_argument("--config", type=Path, help="YAML or TOML file with any of the settings below")
    train.add_argument("--env", help=f"environment id (default {defaults['env'].default})")
    train.add_argument("--agent", help=f"agent name (default {defaults['agent'].default})")
    train.add_argument("--encoder", help="state encoder name (default: the agent's)")
    train.add_argument("--steps", type=int, help=f"environment steps (default {defaults['steps'].default})")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--n-envs", type=int, dest="n_envs", help=f"parallel users (default {defaults['n_envs'].default})")
    train.add_argument("--checkpoint-every", type=int, dest="checkpoint_every", help="steps between checkpoints")
    train.add_argument("--eval-every", type=int, dest="eval_every", help="steps between test evaluations")
    train.add_argument("--eval-episodes", type=int, dest="eval_episodes", help="test episodes per evaluation")
    train.add_argument("--data-dir", help="local data directory (default: RECGYM_DATA_DIR, then the cache)")
    train.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE",
                       help="environment setting, e.g. max_steps=20 (repeatable; VALUE is JSON or a string)")
    train.add_argument("--agent-kwarg", action="append", default=[], metavar="KEY=VALUE",
                       help="agent setting, e.g. learning_rate=0.001 (repeatable)")
    train.add_argument("--out", type=Path, required=True, help="run folder")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser(
        "evaluate", help="evaluate a trained run", description="Evaluate a run folder written by `recgym train`."
    )
    evaluate.add_argument("--run", type=Path, required=True, help="run folder")
    evaluate.add_argument("--protocol", choices=PROTOCOLS, default="online",
                          help="online: simulated test users; offline: DRR re-ranking of rated items; "
                          "long-term: cumulative reward until users leave (default online)")
    evaluate.add_argument("--baselines", nargs="*", default=[], metavar="NAME",
                          help="baseline agents evaluated alongside (e.g. random popularity greedy-pmf oracle-greedy)")
    evaluate.add_argument("--episodes", type=int, default=None, help="test episodes (default: one per test user)")
    evaluate.add_argument("--json", action="store_true", help="print machine-readable JSON")
    evaluate.set_defaults(func=run_evaluate)


def _parse_kwargs(pairs: list[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"{flag} expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Merge a config file and command-line flags (flags win) into a validated config."""
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    for key in ("env", "agent", "encoder", "steps", "seed", "n_envs", "checkpoint_every", "eval_every", "eval_episodes"):
        value = getattr(args, key)
        if value is not None:
            values[key] = value
    env_kwargs = {**values.get("env_kwargs", {}), **_parse_kwargs(args.env_kwarg, "--env-kwarg")}
    if args.data_dir:
        env_kwargs["data_dir"] = args.data_dir
    values["env_kwargs"] = env_kwargs
    values["agent_kwargs"] = {**values.get("agent_kwargs", {}), **_parse_kwargs(args.agent_kwarg, "--agent-kwarg")}
    return make_config(**values)


def run_train(args: argparse.Namespace) -> int:
    from recgym.experiments.train import train

    config = config_from_args(args)
    results = train(config, args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    online = results["online"]
    sps = results["steps_per_second"]
    print(
        f"trained {config.agent} on {config.env} for {config.steps} steps"
        + (f" at {sps:,.0f} steps/s" if sps else "")
        + f"; test users: {online['avg_reward_per_step']:.4f} reward/step, "
        f"{online['avg_reward_per_episode']:.3f} reward/episode over {online['episodes']} episodes"
    )
    print(f"results: {Path(args.out) / 'results.json'}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from recgym.experiments.evaluate import evaluate_run, format_table

    rows = evaluate_run(args.run, protocol=args.protocol, baselines=args.baselines, n_episodes=args.episodes)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows, protocol=args.protocol))
    return 0
