"""pyproject.toml's dependency floors, and the constraints `make test-lowest` installs from them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lowest_constraints", REPO / "scripts" / "lowest_constraints.py")
lowest_constraints = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lowest_constraints)
canonical_name, lowest_pins = lowest_constraints.canonical_name, lowest_constraints.lowest_pins

CORE = lowest_constraints.core_dependencies(REPO / "pyproject.toml")


def floor(name: str) -> tuple[int, ...]:
    """The lower bound pyproject.toml gives the core dependency ``name``, as a tuple of ints."""
    pin = lowest_pins(CORE)[canonical_name(name)]
    return tuple(int(part) for part in pin.split("==")[1].split("."))


def test_floors_cover_what_the_code_uses():
    # agents/{dqn,drr,deers}.py read ReplayBufferSamples.discounts: stable-baselines3 2.7.0
    assert floor("stable-baselines3") >= (2, 7)
    # recgym/envs/vector.py imports gymnasium.vector.AutoresetMode: gymnasium 1.1.0
    assert floor("gymnasium") >= (1, 1)
    # stable-baselines3 2.7 itself requires torch >= 2.3
    assert floor("torch") >= (2, 3)


def test_constraints_pin_every_core_dependency_at_its_floor():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "lowest_constraints.py"), "--keep", "torch==2.13.0"],
                         capture_output=True, text=True, check=True)
    pins = dict(line.split("==") for line in out.stdout.split())
    assert set(map(canonical_name, pins)) == {canonical_name(r.split(">=")[0].split("[")[0]) for r in CORE}
    assert pins["stable-baselines3"] == ".".join(map(str, floor("stable-baselines3")))
    assert pins["torch"] == "2.13.0"  # kept, and the log says so
    assert "torch kept at torch==2.13.0, not its lower bound torch==2.3" in out.stderr


def test_a_dependency_without_a_floor_is_refused_by_name():
    assert lowest_pins(["numpy>=1.24", "PyYAML >= 6.0 ; python_version >= '3.10'"]) == {
        "numpy": "numpy==1.24", "pyyaml": "PyYAML==6.0"}
    with pytest.raises(ValueError, match="'pandas<3' has no single '>=' lower bound"):
        lowest_pins(["numpy>=1.24", "pandas<3"])
