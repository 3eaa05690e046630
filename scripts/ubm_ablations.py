"""User-behaviour backbones, part 2: each model against its ablation; writes docs/results/ubm_long_multi.md.

    python scripts/ubm_ablations.py long   [--seeds 3] [--force]   # HPMN, UBR  (scripts/ubm_ablation_long.py)
    python scripts/ubm_ablations.py multi  [--seeds 3] [--force]   # MB-STR     (scripts/ubm_ablation_multi.py)
    python scripts/ubm_ablations.py report                         # the markdown, from the caches
    python scripts/ubm_ablations.py all    [--seeds 3]             # long, multi, report

A small driver. Each experiment is a module next to this file that exposes

* ``run(seeds: int, out_dir: Path, force: bool) -> None``: trains its rows for seeds
  ``0 .. seeds-1`` and caches one JSON per row and seed under ``out_dir``
  (``docs/results/ubm_long_multi/``, names prefixed with the subcommand: ``long-hpmn-seed0.json``,
  ``multi-...``), skipping cached runs unless ``force``;
* ``report_section(out_dir: Path) -> str``: its markdown section (data, settings, one row
  per model with mean ± std over seeds and run time, each model against its ablation);
* optionally ``has_results(out_dir: Path) -> bool``: False makes the report say that the
  experiment has not been run instead of calling ``report_section``.

An experiment whose module is not in this checkout is skipped with a note in the report.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
OUT_DIR = REPO / "docs" / "results" / "ubm_long_multi"
REPORT = REPO / "docs" / "results" / "ubm_long_multi.md"
#: subcommand -> (module, what it holds)
EXPERIMENTS = {
    "long": ("ubm_ablation_long", "long sequences: HPMN and UBR"),
    "multi": ("ubm_ablation_multi", "multi-type behaviour: MB-STR"),
}


def experiment(name: str) -> ModuleType | None:
    """The experiment module of ``name``, or None when it is not in this checkout."""
    module, _ = EXPERIMENTS[name]
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:  # the module exists but something it imports does not: say so
            raise
        return None


def run_experiment(name: str, seeds: int, force: bool) -> None:
    module = experiment(name)
    if module is None:
        print(f"{name}: scripts/{EXPERIMENTS[name][0]}.py is not in this checkout; skipped", flush=True)
        return
    tic = time.perf_counter()
    module.run(seeds=seeds, out_dir=OUT_DIR, force=force)
    print(f"{name}: done in {time.perf_counter() - tic:.0f} s", flush=True)


def report() -> None:
    """Write docs/results/ubm_long_multi.md from the cached JSON files."""
    lines = [
        "# User-behaviour backbones, part 2: long sequences and multi-type behaviour",
        "",
        "Written by `python scripts/ubm_ablations.py report` from the JSON cached under"
        " `docs/results/ubm_long_multi/` (one file per row and seed). Each model is trained against its own"
        " ablation on the same data, task, observations and settings; each section states its data, seeds,"
        " epochs and run time per row. What the models are: [docs/encoders.md](../encoders.md).",
        "",
    ]
    for name, (module_name, what) in EXPERIMENTS.items():
        module = experiment(name)
        if module is None:
            lines += [f"## {what[0].upper()}{what[1:]}", "",
                      f"Not in this report: `scripts/{module_name}.py` is not in this checkout.", ""]
            continue
        has_results = getattr(module, "has_results", None)
        if callable(has_results) and not has_results(OUT_DIR):
            lines += [f"## {what[0].upper()}{what[1:]}", "",
                      f"Not run yet: `python scripts/ubm_ablations.py {name}`.", ""]
            continue
        lines += [module.report_section(OUT_DIR).rstrip("\n"), ""]
    REPORT.write_text("\n".join(lines))
    print(f"wrote {REPORT.relative_to(REPO)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, what) in EXPERIMENTS.items():
        p = sub.add_parser(name, help=f"train the {what} rows (cached)")
        p.add_argument("--seeds", type=int, default=3)
        p.add_argument("--force", action="store_true", help="train again even when cached")
    sub.add_parser("report", help="write docs/results/ubm_long_multi.md from the caches")
    p = sub.add_parser("all", help="every experiment, then the report")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--force", action="store_true")
    args = parser.parse_args()
    if args.command in EXPERIMENTS:
        run_experiment(args.command, args.seeds, args.force)
    elif args.command == "all":
        for name in EXPERIMENTS:
            run_experiment(name, args.seeds, args.force)
    if args.command in ("report", "all"):
        report()


if __name__ == "__main__":
    main()
