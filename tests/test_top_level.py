"""recgym's top-level packages (`agents`, `simulators`, `state_encoders`) and what takes their names.

Each case runs `import recgym` in a fresh interpreter whose import path holds a
fake distribution or module, as a user's environment would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fake_distribution(site: Path, name: str, version: str = "0.0.1", top_level: str = "agents",
                      package: bool = True) -> None:
    """An installed distribution's metadata in ``site`` (and its top-level package when ``package``)."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(top_level + "\n")
    if package:
        (site / top_level).mkdir()
        (site / top_level / "__init__.py").write_text("def run():\n    pass\n")


def import_recgym(cwd: Path, *path: Path, code: str = "import recgym") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in (*path, REPO)))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_openai_agents_sdk_in_the_environment_is_named_with_the_fix(tmp_path):
    # in one site-packages the two share the folder agents/: whichever __init__ is there, one of them is broken
    site = tmp_path / "site"
    fake_distribution(site, "openai-agents", "0.4.2", package=False)
    out = import_recgym(tmp_path, site)
    assert out.returncode != 0
    assert "TopLevelPackageClash: openai-agents 0.4.2 is installed" in out.stderr
    assert "top-level package named 'agents'" in out.stderr and "virtual environment of its own" in out.stderr
    assert "pip uninstall openai-agents" in out.stderr


def test_another_distributions_agents_first_on_the_path_is_named(tmp_path):
    site = tmp_path / "site"
    fake_distribution(site, "agent-toolkit", "1.2.0")
    out = import_recgym(tmp_path, site)
    assert out.returncode != 0
    message = out.stderr.strip().splitlines()[-1]
    assert f"`import agents` finds {(site / 'agents' / '__init__.py').resolve()}" in message
    assert "from the distribution 'agent-toolkit'" in message and "not recgym's 'agents' package" in message


def test_a_users_own_module_named_like_a_recgym_package_is_named(tmp_path):
    (tmp_path / "simulators.py").write_text("")  # e.g. a script's helper module beside it
    out = import_recgym(tmp_path)
    assert out.returncode != 0
    message = out.stderr.strip().splitlines()[-1]
    assert f"`import simulators` finds {(tmp_path / 'simulators.py').resolve()}" in message
    assert "not from an installed distribution" in message and "Rename or move that 'simulators'" in message


def test_recgyms_own_packages_import_without_a_word(tmp_path):
    out = import_recgym(tmp_path, code="import recgym, agents, simulators, state_encoders; "
                                       "print(agents.make.__module__, simulators.__file__)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("agents.registry ") and str(REPO) in out.stdout
    assert "TopLevelPackageClash" not in out.stderr
