"""Pip constraints that pin each core dependency of recgym to the lowest version pyproject allows.

`make test-lowest` installs recgym against this file, so a lower bound in
``pyproject.toml`` that the code has outgrown (an attribute that arrived in a later
release, say) fails the fast tests instead of a user's install:

    python scripts/lowest_constraints.py [--pyproject pyproject.toml] [--keep torch==2.13.0]

Every ``[project] dependencies`` entry must carry a ``>=`` lower bound; it becomes
``name==bound``. ``--keep SPEC`` replaces a dependency's pin with SPEC (torch is kept
at the CPU build the Makefile installs, because a second multi-GB torch download per
CI run is not affordable); the kept ones are named on stderr so the log says what
was not tested at its bound.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# a PEP 508 name, then its version specifiers, before any environment marker
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name: ``PyYAML`` and ``pyyaml`` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lowest_pins(dependencies: list[str]) -> dict[str, str]:
    """``{canonical name: "name==lower bound"}`` for each requirement string.

    Raises ``ValueError`` naming the requirement when it has no ``>=`` bound, since
    then there is no lowest version to test.
    """
    pins: dict[str, str] = {}
    for requirement in dependencies:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise ValueError(f"cannot parse the dependency {requirement!r} in pyproject.toml")
        name, specifiers = match.group(1), match.group(2)
        bounds = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
        if len(bounds) != 1:
            raise ValueError(
                f"the dependency {requirement!r} has no single '>=' lower bound; give it one "
                "in pyproject.toml so that `make test-lowest` can install its lowest version")
        pins[canonical_name(name)] = f"{name}=={bounds[0]}"
    return pins


def core_dependencies(pyproject: Path) -> list[str]:
    """The ``[project] dependencies`` of a pyproject.toml."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser as a package
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise SystemExit("lowest_constraints.py reads pyproject.toml with tomllib (Python >= 3.11) or tomli: "
                             "run it with Python 3.11+, or `pip install tomli` first") from None
    return tomllib.loads(pyproject.read_text())["project"]["dependencies"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=Path(__file__).resolve().parents[1] / "pyproject.toml")
    parser.add_argument("--keep", action="append", default=[], metavar="SPEC",
                        help="pin this requirement (e.g. torch==2.13.0) instead of its lower bound")
    args = parser.parse_args(argv)
    pins = lowest_pins(core_dependencies(args.pyproject))
    for spec in args.keep:
        name = canonical_name(_REQUIREMENT.match(spec).group(1))
        if name not in pins:
            parser.error(f"--keep {spec}: {name} is not a core dependency in {args.pyproject}")
        print(f"lowest_constraints: {name} kept at {spec}, not its lower bound {pins[name]}", file=sys.stderr)
        pins[name] = spec
    print("\n".join(pins[name] for name in sorted(pins)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
