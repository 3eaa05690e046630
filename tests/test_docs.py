"""The docs run as printed: every Python block of README.md and docs/**/*.md is executed.

Each block runs alone in a fresh interpreter (``python -c BLOCK``) in an empty
working directory, so a block that leans on an import, a variable or a file of
another block, or on the repository's own folders, fails here as it would for a
reader who pastes it. Blocks that name a real dataset run against the staged
data (``RECGYM_DATA_DIR``, or ``../shared/datasets`` beside the checkout) and
skip, saying so, where it is absent. The scenario caches live in the test
session's ``RECGYM_CACHE_DIR`` (see ``conftest.py``), so the ML-100K fits are
made once for the whole run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
# a fence line opening a Python block: ```python or ```py (a fence may be indented inside a list)
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*$")
# the real data sets a block can name; ML-1M and Yahoo! R3 are not staged in full, so no block may need them
_NEEDS_STAGED_DATA = re.compile(r"ml-?100k|jester", re.IGNORECASE)
BLOCK_TIMEOUT_S = 240


@dataclass(frozen=True)
class DocBlock:
    """One fenced Python block: the file, the line of its opening fence, and its code."""

    path: Path
    line: int
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[DocBlock]:
    """The ```python blocks of a Markdown file, dedented to their fence."""
    blocks: list[DocBlock] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        if opening["lang"].lower() in ("python", "py", "python3"):
            blocks.append(DocBlock(path, i + 1, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


BLOCKS = [block for path in DOC_FILES for block in python_blocks(path)]


def test_the_docs_hold_python_blocks() -> None:
    # the extractor finds the blocks (a changed fence style would otherwise test nothing)
    names = {b.name for b in BLOCKS}
    assert len(BLOCKS) >= 15, names
    assert any(n.startswith("README.md:") for n in names)
    assert all(b.code.strip() for b in BLOCKS), [b.name for b in BLOCKS if not b.code.strip()]


def test_extractor_reads_indented_and_tilde_fences(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nx = 1\n```\n\n* item\n\n  ~~~py\n  y = 2\n  ~~~\n\n```bash\nls\n```\n")
    blocks = python_blocks(page)
    assert [(b.line, b.code) for b in blocks] == [(3, "x = 1\n"), (9, "y = 2\n")]


def test_docs_name_only_paths_a_user_has():
    # ../shared/ is where this repository's CI stages the data; a reader has RECGYM_DATA_DIR or the cache
    offenders = [str(p.relative_to(REPO_ROOT)) for p in DOC_FILES if "../shared" in p.read_text(encoding="utf-8")]
    assert offenders == [], f"docs naming ../shared (use RECGYM_DATA_DIR): {offenders}"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_doc_block_runs_as_printed(block: DocBlock, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    env = dict(os.environ)
    if _NEEDS_STAGED_DATA.search(block.code):
        # skips with the reason (or fails under CI=true) when the staged data is absent
        env["RECGYM_DATA_DIR"] = str(request.getfixturevalue("data_dir"))
    # the checkout's packages (recgym, agents, state_encoders, simulators), from any working directory
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("MPLBACKEND", "Agg")
    # one math thread per block: on the 2-core CI, torch's default of one thread per core makes a small
    # DQN's gradient steps ~15x slower under load (measured 104 s against 6 s for the README's DQN block)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", block.code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=BLOCK_TIMEOUT_S)
    assert result.returncode == 0, (
        f"{block.name} fails when run as printed:\n{block.code}\n--- stderr ---\n{result.stderr[-4000:]}"
    )


# -- the README's command sequence ------------------------------------------------------------------
def readme_commands() -> list[list[str]]:
    """The ``recgym`` lines of the README's "Command line" section, as argument lists (comments dropped)."""
    import shlex

    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```bash\n(.*?)^```", section, re.S | re.M)
    assert block is not None, "README.md: no bash block under 'Command line'"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def _option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_readme_command_sequence_runs_top_to_bottom():
    """Each line parses, writes a folder no earlier line wrote (or resumes it), and reads only what exists."""
    from recgym.cli import build_parser

    parser = build_parser()
    written: set[str] = set()
    for argv in readme_commands():
        assert argv[0] == "recgym", argv
        try:
            parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"README.md: `{' '.join(argv)}` is not a valid recgym command")
        for flag in ("--run", "--encoder-weights", "--behavior-log", "--config"):
            path = _option(argv, flag)
            assert path is None or path in written or (REPO_ROOT / path).exists(), (
                f"README.md: `{' '.join(argv)}` reads {path}, which no earlier line writes"
            )
        out = _option(argv, "--out")
        if out is not None and argv[1] == "train":
            resumes = "--resume" in argv or "--overwrite" in argv
            assert (out in written) == resumes, (
                f"README.md: `{' '.join(argv)}` " + ("reuses" if out in written else "resumes")
                + f" {out}, " + ("which an earlier line wrote: train would refuse it" if out in written
                                 else "which no earlier line wrote")
            )
        if out is not None:
            written.add(out)
