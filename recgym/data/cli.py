"""``recgym datasets``: list the datasets (table or JSON) and fetch one into the cache.

``recgym datasets [--data-dir DIR] [--json] [--no-load]`` prints, for every
registered dataset, its users, items, ratings, density, rating scale and
where it is available locally. Datasets found locally are loaded (fast after
the first time, through the parsed cache) and their measured counts shown;
the others show the official counts, marked ``*``.
``recgym datasets fetch NAME [--data-dir DIR]`` downloads (or finds), extracts
and verifies a dataset and prints where its files are.
"""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

from recgym.data.fetch import locate, resolve
from recgym.data.loading import LOADERS, load
from recgym.data.registry import DATASETS, DatasetInfo, get_info


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``datasets`` command (and its ``fetch`` sub-command) to the recgym CLI."""
    parser = subparsers.add_parser(
        "datasets",
        help="list the datasets and where they are available; fetch one",
        description="List the registered datasets, or fetch one with `recgym datasets fetch NAME`.",
    )
    parser.add_argument("--data-dir", default=None,
                        help="directory holding dataset files or archives (default: $RECGYM_DATA_DIR)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-load", action="store_true",
                        help="do not load locally available datasets; show the official counts only")
    parser.set_defaults(func=run_list)
    sub = parser.add_subparsers(dest="datasets_command", metavar="ACTION")
    fetch = sub.add_parser("fetch", help="download (or find), extract and verify a dataset",
                           description="Download or find a dataset, verify its checksums, print where it is.")
    fetch.add_argument("name", choices=list(DATASETS), metavar="NAME", help=", ".join(DATASETS))
    # SUPPRESS: a --data-dir given before "fetch" is kept when none is given after it
    fetch.add_argument("--data-dir", default=argparse.SUPPRESS, help="directory holding dataset files or archives")
    fetch.set_defaults(func=run_fetch)


def _row(info: DatasetInfo, data_dir: str | None, load_local: bool) -> dict[str, Any]:
    where = locate(info, data_dir)
    row: dict[str, Any] = {
        "name": info.name,
        "description": info.description,
        "scale": [info.scale.low, info.scale.high],
        "discrete": info.scale.discrete,
        "available": info.name == "synthetic" or where is not None,
        "location": "generated" if info.name == "synthetic" else (str(where) if where else None),
        "url": info.urls[0] if info.urls else info.homepage,
        "licence": info.licence,
        "counts_source": "official",
        "error": None,
    }
    counts = info.counts
    if counts is not None:
        row.update(users=counts.n_users, items=counts.n_items, ratings=counts.n_ratings, density=counts.density)
    else:
        row.update(users=None, items=None, ratings=None, density=None)
    if load_local and row["available"]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                log = load(info.name, data_dir=data_dir, download=False, progress=False)
            row.update(users=log.n_users, items=log.n_items, ratings=len(log), density=log.density,
                       counts_source="loaded")
        except Exception as err:  # the table still lists the others
            row["error"] = f"{type(err).__name__}: {err}"
    return row


def dataset_rows(data_dir: str | None = None, load_local: bool = True) -> list[dict[str, Any]]:
    """One dict per registered dataset, as printed by ``recgym datasets``.

    :param data_dir: data directory to look in (default ``RECGYM_DATA_DIR``).
    :param load_local: load datasets found locally to show their measured counts.
    """
    return [_row(info, data_dir, load_local) for info in DATASETS.values()]


def _fmt_int(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table."""
    header = ("name", "users", "items", "ratings", "density", "scale", "available")
    lines = [header]
    for r in rows:
        mark = "" if r["counts_source"] == "loaded" else "*"
        scale = f"{r['scale'][0]:g}..{r['scale'][1]:g}" + ("" if r["discrete"] else " (cont.)")
        available = f"yes: {r['location']}" if r["available"] else "no"
        if r["error"]:
            available += f" (load failed: {r['error'][:80]})"
        density = "?" if r["density"] is None else f"{r['density']:.2%}"
        lines.append((r["name"], _fmt_int(r["users"]) + mark, _fmt_int(r["items"]) + mark,
                      _fmt_int(r["ratings"]) + mark, density, scale, available))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths)) + "  " + line[-1] for line in lines]
    out.append("* official counts (dataset not loaded)")
    return "\n".join(out)


def run_list(args: argparse.Namespace) -> int:
    rows = dataset_rows(args.data_dir, load_local=not args.no_load)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    info = get_info(args.name)
    if info.name == "synthetic":
        print("synthetic: generated on demand, nothing to fetch")
        return 0
    loader = LOADERS[info.name]
    resolved = resolve(info, info.required, loader.optional, data_dir=args.data_dir, download=True)
    print(f"{info.name}: verified files in {resolved.directory}")
    for name, path in resolved.files.items():
        print(f"  {name}: {path}")
    return 0
