"""pyproject.toml's dependency floors, and the constraints `make test-lowest` installs from them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "lowest_constraints.py"  # run as a command, as the Makefile does: tests import no script


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lowest(*args: str, pyproject: Path = REPO / "pyproject.toml") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--pyproject", str(pyproject), *args],
                          capture_output=True, text=True)


PINS = {canonical_name(name): version for name, version in (line.split("==") for line in lowest().stdout.split())}


def floor(name: str) -> tuple[int, ...]:
    """The lower bound pyproject.toml gives the core dependency ``name``, as a tuple of ints."""
    return tuple(int(part) for part in PINS[canonical_name(name)].split("."))


def test_floors_cover_what_the_code_uses():
    # agents/{dqn,drr,deers}.py read ReplayBufferSamples.discounts: stable-baselines3 2.7.0
    assert floor("stable-baselines3") >= (2, 7)
    # recgym/envs/vector.py imports gymnasium.vector.AutoresetMode: gymnasium 1.1.0
    assert floor("gymnasium") >= (1, 1)
    # stable-baselines3 2.7 itself requires torch >= 2.3
    assert floor("torch") >= (2, 3)


def test_constraints_pin_every_core_dependency_at_its_floor():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    out = lowest("--keep", "torch==2.13.0")
    assert out.returncode == 0, out.stderr
    pins = dict(line.split("==") for line in out.stdout.split())
    core = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(map(canonical_name, pins)) == {canonical_name(re.split(r"[<>=!~;\[ ]", r)[0]) for r in core}
    assert pins["stable-baselines3"] == ".".join(map(str, floor("stable-baselines3")))
    assert pins["torch"] == "2.13.0"  # kept, and the log says so
    assert "torch kept at torch==2.13.0, not its lower bound torch==2.3" in out.stderr


def test_a_dependency_without_a_floor_is_refused_by_name(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.24", "PyYAML >= 6.0 ; python_version >= \'3.10\'"]\n')
    assert lowest(pyproject=pyproject).stdout.split() == ["numpy==1.24", "PyYAML==6.0"]
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.24", "pandas<3"]\n')
    out = lowest(pyproject=pyproject)
    assert out.returncode != 0 and "'pandas<3' has no single '>=' lower bound" in out.stderr
