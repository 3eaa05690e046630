"""``recgym datasets``: list the datasets (table or JSON) and fetch one into the cache.

``recgym datasets [--data-dir DIR] [--json] [--no-load]`` prints, for every
registered dataset, its users, items, ratings, density, rating scale and
where it is available locally. Datasets found locally are loaded (fast after
the first time, through the parsed cache) and their measured counts shown;
the others show the official counts, marked ``*``.
``recgym datasets fetch NAME [--data-dir DIR]`` downloads (or finds), extracts
and verifies a dataset and prints where its files are.
``recgym datasets verify NAME [--data-dir DIR]`` rehashes every file of a
dataset found locally, ignoring the checksum memo, and reports each file as
OK or MISMATCH (exit status 1 on a mismatch).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from recgym.data.fetch import find_sample, locate, rehash_files, resolve, search_dirs
from recgym.data.locations import cache_dir
from recgym.data.loading import LOADERS, load
from recgym.data.registry import DATASETS, DatasetInfo, get_info


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``datasets`` command (and its ``fetch`` and ``verify`` sub-commands) to the recgym CLI."""
    parser = subparsers.add_parser(
        "datasets",
        help="list the datasets and where they are available; fetch or verify one",
        description="List the registered datasets, fetch one with `recgym datasets fetch NAME`, "
        "or rehash its files with `recgym datasets verify NAME`.",
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
    verify = sub.add_parser(
        "verify", help="rehash every file of a dataset, ignoring the checksum memo",
        description="Rehash every registered file of a dataset found locally and compare it with the "
        "registered checksum, ignoring the memo (which trusts a file whose path, size and modification "
        "time are unchanged). Prints OK or MISMATCH per file; exit status 1 on any mismatch.",
    )
    verify.add_argument("name", choices=list(DATASETS), metavar="NAME", help=", ".join(DATASETS))
    verify.add_argument("--data-dir", default=argparse.SUPPRESS, help="directory holding dataset files or archives")
    verify.set_defaults(func=run_verify)


def _row(info: DatasetInfo, data_dir: str | None, load_local: bool) -> dict[str, Any]:
    where = locate(info, data_dir)
    searched = search_dirs(info, data_dir)
    # the full dataset wins; a sample (Jester5k) is shown only where the full files are absent
    sample = find_sample(info, searched) if where is None and info.name != "synthetic" else None
    row: dict[str, Any] = {
        "name": info.name,
        "description": info.description,
        "scale": [info.scale.low, info.scale.high],
        "discrete": info.scale.discrete,
        "available": info.name == "synthetic" or where is not None or sample is not None,
        "location": "generated" if info.name == "synthetic" else (str(where or sample) if where or sample else None),
        "sample": sample is not None,
        "looks_for": list(info.required),
        "samples": list(info.samples),
        "archives": [a.filename for a in info.archives if a.extract],
        "searched": [str(d) for d in searched] if info.name != "synthetic" else [],
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
                if sample is not None:
                    log = load(info.name, path=sample, download=False, progress=False)
                else:
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
        if r["sample"]:
            available = (f"sample: {r['location']} (load it with path=; the full dataset's "
                         f"{', '.join(r['looks_for'])} not found)")
        elif r["available"]:
            available = f"yes: {r['location']}"
        else:
            alternatives = (["the official archives"] if r["archives"] else []) + [f"the sample {s}" for s in r["samples"]]
            available = (f"no: looks for {', '.join(r['looks_for'])}"
                         + (f" (or {' or '.join(alternatives)})" if alternatives else "")
                         + f" in {', '.join(r['searched'])}")
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


def run_verify(args: argparse.Namespace) -> int:
    """Rehash a dataset's local files; 0 when all match, 1 on any mismatch."""
    info = get_info(args.name)
    if info.name == "synthetic":
        print("synthetic: generated on demand, nothing to verify")
        return 0
    cache = cache_dir()
    resolved = resolve(info, info.required, LOADERS[info.name].optional, data_dir=args.data_dir, cache=cache,
                       download=False, verify_files=False, progress=False)
    print(f"{info.name}: rehashing the files in {resolved.directory} (ignoring the checksum memo)")
    checks = rehash_files(info, resolved, cache)
    width = max(len(c.name) for c in checks)
    for check in checks:
        if check.status == "OK":
            detail = f"{check.algorithm} {check.actual}"
        elif check.status == "MISMATCH":
            detail = f"expected {check.algorithm} {check.expected}, got {check.actual}: {check.path}"
        else:
            detail = "no registered checksum (not verified)"
        print(f"{check.status:<10}{check.name:<{width}}  {detail}")
    bad = [c.name for c in checks if c.status == "MISMATCH"]
    if bad:
        print(
            f"{info.name}: {len(bad)} of {len(checks)} file(s) differ from the registered checksums "
            f"({', '.join(bad)}): they are corrupted or modified, and loads now refuse them. Delete them and "
            f"fetch the originals again (`recgym datasets fetch {info.name}`), or load a deliberately "
            "modified copy with verify=False.",
            file=sys.stderr,
        )
        return 1
    n_ok = sum(c.status == "OK" for c in checks)
    print(f"{info.name}: {n_ok} file(s) match the registered checksums")
    return 0
