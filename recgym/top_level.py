"""recgym's top-level packages, and the installs that would hide or overwrite them.

Installing recgym puts four top-level packages on the import path: ``recgym``,
``agents``, ``simulators`` and ``state_encoders``. Another distribution that
installs a package of one of those names breaks one of the two: in one
environment both write the same ``site-packages`` folder, and on the import path
whichever comes first hides the other. The OpenAI Agents SDK (``openai-agents``)
installs ``agents``. :func:`check_top_level_packages` (run by ``import recgym``)
turns either case into one :class:`TopLevelPackageClash` that names the other
distribution and the fix, instead of an ``AttributeError`` deep inside a run.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

#: recgym's top-level packages besides ``recgym`` itself
SIBLING_PACKAGES = ("agents", "simulators", "state_encoders")

#: distributions known to install a top-level package of the same name as one of recgym's
KNOWN_CLASHES = {"openai-agents": "agents"}  # the OpenAI Agents SDK

_FIX = ("Install recgym in a virtual environment of its own (`python -m venv .venv-recgym && "
        ".venv-recgym/bin/pip install recgym`); see 'Installing' in README.md.")


class TopLevelPackageClash(ImportError):
    """Another distribution or module takes one of recgym's top-level package names."""


def _location(name: str) -> Path | None:
    """Where ``import name`` finds (or found) its module, without importing it; None if nowhere."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None) if module is not None else importlib.util.find_spec(name)
    if spec is None:  # nothing found, or a module object put in sys.modules by hand
        where = getattr(module, "__file__", None)
        return Path(where).resolve() if where else None
    if spec.origin not in (None, "namespace"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def _owners(name: str) -> list[str]:
    """Distributions other than recgym that install the top-level package ``name``."""
    # scans every installed distribution's file list: only on the error path
    owners = importlib.metadata.packages_distributions().get(name, [])
    return sorted({o for o in owners if o.lower() != "recgym"})


def check_top_level_packages() -> None:
    """Raise :class:`TopLevelPackageClash` when recgym's ``agents``, ``simulators`` or ``state_encoders``
    is not the one ``import`` finds, or a known clashing distribution shares the environment."""
    for dist, package in KNOWN_CLASHES.items():
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        raise TopLevelPackageClash(
            f"{dist} {version} is installed in this Python environment ({sys.prefix}); it installs a top-level "
            f"package named '{package}', as recgym does, so the two overwrite or hide each other and "
            f"`import {package}` cannot be both. {_FIX} Or remove it here: `pip uninstall {dist}`, then "
            "`pip install --force-reinstall --no-deps recgym` (its files shared the folder).")
    root = Path(__file__).resolve().parent.parent  # the folder that holds recgym/ and its siblings
    for name in SIBLING_PACKAGES:
        location = _location(name)
        if location is not None and root in location.parents:
            continue
        if location is None and name in sys.modules:
            raise TopLevelPackageClash(
                f"sys.modules['{name}'] holds {sys.modules[name]!r}, not recgym's '{name}' package in {root}: "
                f"import recgym before replacing '{name}', or do not replace it.")
        if location is None:
            raise TopLevelPackageClash(
                f"recgym's top-level package '{name}' is missing beside {root / 'recgym'}: the installation is "
                "incomplete; reinstall recgym (`pip install --force-reinstall --no-deps recgym`).")
        owners = _owners(name)
        source = (f"from the distribution {', '.join(repr(o) for o in owners)}" if owners
                  else "not from an installed distribution: a module or folder of that name earlier on sys.path")
        raise TopLevelPackageClash(
            f"`import {name}` finds {location} ({source}), not recgym's '{name}' package in {root}: recgym "
            f"imports its own '{name}', so it cannot run with that one first on the import path. "
            + (_FIX if owners else f"Rename or move that '{name}', or run from another folder."))
