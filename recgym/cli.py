"""The ``recgym`` command line: ``recgym datasets | train | evaluate | demo | pretrain | log-behavior | log | compare``.

Each sub-command lives with the code it drives and adds itself through a
``register(subparsers)`` function, so this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module path of each sub-command group, in the order shown by --help
_COMMAND_MODULES = (
    "recgym.data.cli", "recgym.experiments.cli", "recgym.experiments.pretrain", "recgym.experiments.behavior_log",
    "recgym.experiments.transition_log", "recgym.experiments.compare.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recgym", description="A gym for reinforcement-learning recommenders."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError, RuntimeError) as err:
        print(f"recgym: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
