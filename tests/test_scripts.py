"""Every script of scripts/ starts: its imports resolve and ``--help`` answers (run as commands: tests import no script).

A script's imports are only exercised when somebody runs it, often months later; a module renamed in the
package (``recgym.experiments.environments`` became ``setup``) breaks it silently. Starting each one with
``--help`` catches that in seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: modules of scripts/ that are imported by the scripts, not run
HELPERS = {"script_utils.py"}


def test_every_script_answers_help():
    scripts = sorted(p for p in (REPO / "scripts").glob("*.py") if p.name not in HELPERS)
    assert len(scripts) >= 10
    # all at once: each spends its time importing torch, not computing
    running = {p.name: subprocess.Popen([sys.executable, str(p), "--help"], cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True) for p in scripts}
    failures = []
    for name, process in running.items():
        out, err = process.communicate(timeout=300)
        # an experiment module the driver imports (ubm_ablations.py) has no command line of its own: it must import
        command = "__main__" in (REPO / "scripts" / name).read_text()
        if process.returncode != 0 or (command and "usage" not in out.lower()):
            failures.append(f"{name} (exit {process.returncode}): {err.strip().splitlines()[-1:] or out[:200]}")
    assert not failures, "scripts that do not start:\n" + "\n".join(failures)
