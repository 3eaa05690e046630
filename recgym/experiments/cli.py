"""``recgym train``, ``recgym evaluate`` and ``recgym demo``."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from recgym.devices import DEVICE_CHOICES
from recgym.experiments.config import PROTOCOLS, ConfigError, TrainConfig, load_config_file, make_config

# said wherever a run folder is loaded: SB3's model.zip and the replay buffer are pickles
TRAIN_TRUST_NOTE = ("--resume unpickles the run's model.zip and replay_buffer.pkl, which can run any code: "
                    "resume only runs you trust.")
EVALUATE_TRUST_NOTE = ("Loading a run unpickles its model.zip (stable-baselines3's format), which can run any "
                       "code: load only runs you trust.")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``evaluate`` sub-commands."""
    defaults = TrainConfig.model_fields
    train = subparsers.add_parser(
        "train",
        help="train an agent on an environment",
        description="Train an agent, checkpoint it every K steps, evaluate it on the test users, "
        "and write DIR/results.json and DIR/learning_curve.png.",
        epilog=TRAIN_TRUST_NOTE,
    )
    train.add_argument("--config", type=Path, help="YAML or TOML file with any of the settings below")
    train.add_argument("--env", help=f"environment id (default {defaults['env'].default})")
    train.add_argument("--agent", help=f"agent name (default {defaults['agent'].default})")
    train.add_argument("--encoder", help="state encoder name (default: the agent's)")
    train.add_argument("--encoder-weights", dest="encoder_weights",
                       help="folder written by `recgym pretrain`: start the encoder from its pretrained weights")
    train.add_argument("--freeze-encoder", dest="freeze_encoder", action=argparse.BooleanOptionalAction,
                       default=None, help="with --encoder-weights: keep the pretrained encoder fixed "
                       "(default) or fine-tune it (--no-freeze-encoder)")
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
    train.add_argument("--device", choices=DEVICE_CHOICES,
                       help="where the agent trains: auto (CUDA when available, else the CPU; default), cpu or cuda; "
                       "a resumed run may change it")
    train.add_argument("--out", type=Path, required=True, help="run folder")
    train.add_argument("--resume", action="store_true",
                       help="continue from the newest checkpoint in --out (unpickles it: only runs you trust)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace a run folder written by recgym train (refused for any other folder)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser(
        "evaluate", help="evaluate a trained run",
        description=f"Evaluate a run folder written by `recgym train`. {EVALUATE_TRUST_NOTE}",
    )
    evaluate.add_argument("--run", type=Path, required=True, help="run folder")
    evaluate.add_argument("--protocol", choices=PROTOCOLS, default="online",
                          help="online: simulated test users; offline: DRR re-ranking of rated items; "
                          "long-term: cumulative reward until users leave (default online)")
    evaluate.add_argument("--baselines", nargs="*", default=[], metavar="NAME",
                          help="baseline agents evaluated alongside (e.g. random popularity greedy-pmf oracle-greedy)")
    evaluate.add_argument("--episodes", type=int, default=None, help="test episodes (default: one per test user)")
    evaluate.add_argument("--json", action="store_true", help="print machine-readable JSON")
    evaluate.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                          help="where the trained agent runs: auto (default), cpu or cuda; a run trained on a GPU "
                          "evaluates on a CPU-only machine")
    evaluate.set_defaults(func=run_evaluate)

    demo = subparsers.add_parser(
        "demo", help="train DRR on ML-100K and evaluate it against the baselines (what `make demo` runs)",
        description="Train DRR (DRR-ave state) on recgym/ML100K-PMF-v0 and evaluate it on the test users against "
        "the baselines. When ML-100K cannot be fetched (offline), say so and run the same demo on "
        "recgym/Synthetic-PMF-v0.",
    )
    demo.add_argument("--steps", type=int, default=20_000, help="environment steps (default 20000)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"),
                      help="run folder, replaced on each demo (default runs/demo)")
    demo.add_argument("--data-dir", help="local data directory (default: RECGYM_DATA_DIR, then the cache)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    demo.set_defaults(func=run_demo)


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


def _mapping(values: dict[str, Any], key: str) -> dict[str, Any]:
    """``values[key]`` (a config file's nested settings), checked to be a mapping before flags merge into it."""
    value = values.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(
            f"invalid run configuration: {key} must be a mapping of KEY: VALUE settings, got {type(value).__name__} "
            f"{value!r}"
        )
    return value


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Merge a config file and command-line flags (flags win) into a validated config."""
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    for key in ("env", "agent", "encoder", "encoder_weights", "freeze_encoder", "steps", "seed", "n_envs",
                "checkpoint_every", "eval_every", "eval_episodes", "device"):
        value = getattr(args, key)
        if value is not None:
            values[key] = value
    env_kwargs = {**_mapping(values, "env_kwargs"), **_parse_kwargs(args.env_kwarg, "--env-kwarg")}
    if args.data_dir:
        env_kwargs["data_dir"] = args.data_dir
    values["env_kwargs"] = env_kwargs
    values["agent_kwargs"] = {**_mapping(values, "agent_kwargs"), **_parse_kwargs(args.agent_kwarg, "--agent-kwarg")}
    return make_config(**values)


def run_train(args: argparse.Namespace) -> int:
    from recgym.experiments.setup import RunSetup
    from recgym.experiments.train import train

    config = config_from_args(args)
    results = train(RunSetup.from_config(config), config, args.out, resume=args.resume, overwrite=args.overwrite,
                    progress=not args.no_progress).results
    online = results["online"]
    sps = results["steps_per_second"]
    # baselines such as popularity fit from the log and take no environment steps
    done = f"for {results['steps']} steps" if results["steps"] else "(fitted from the log, no environment steps)"
    print(
        f"trained {config.agent} on {config.env} {done}"
        + (f" at {sps:,.0f} steps/s" if sps else "")
        + f"; test users: {online['avg_reward_per_step']:.4f} reward/step, "
        f"{online['avg_reward_per_episode']:.3f} reward/episode over {online['episodes']} episodes"
    )
    print(f"results: {Path(args.out) / 'results.json'}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from recgym.experiments.evaluate import evaluate_run, format_table

    rows = evaluate_run(args.run, protocol=args.protocol, baselines=args.baselines, n_episodes=args.episodes,
                        device=args.device)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows, protocol=args.protocol))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from recgym.cli import build_parser
    from recgym.experiments.demo import demo_commands, demo_env

    env = demo_env(args.data_dir, progress=not args.no_progress)
    parser = build_parser()
    for argv in demo_commands(env, args.out, args.steps, args.seed, not args.no_progress, args.data_dir):
        print(f"$ recgym {shlex.join(argv)}", flush=True)  # the same commands, to run by hand
        command = parser.parse_args(argv)
        command.func(command)
    return 0
