"""One definition of each shared thing (issue 23): the protocols, the BLAS-thread limiter, the fold-in; tests import no script.

Read from the source with ``ast``, so a second copy anywhere under ``agents/``, ``recgym/``,
``simulators/`` or ``state_encoders/`` fails here whatever it is called from.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "recgym", "simulators", "state_encoders")


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), filename=str(path)))
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def _assigned_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_protocols_are_defined_once():
    defining = [path.relative_to(ROOT).as_posix() for path, tree in _modules() if "PROTOCOLS" in _assigned_names(tree)]
    assert defining == ["recgym/experiments/config.py"]


def test_one_module_sets_blas_threads():
    # threadpoolctl's limiter, a ctypes call into OpenBLAS's setter, or the environment variables read at
    # BLAS load: each is a thread policy of its own
    setters = {"threadpool_limits", "ThreadpoolController", "openblas_set_num_threads", "CDLL"}
    found = set()
    for path, tree in _modules():
        for node in ast.walk(tree):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
            if name in setters or "OPENBLAS_NUM_THREADS" in text or "/proc/self/maps" in text:
                found.add(path.relative_to(ROOT).as_posix())
    assert found == {"recgym/threads.py"}


def test_no_test_imports_a_script():
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            imported = ([a.name for a in node.names] if isinstance(node, ast.Import)
                        else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            loads_a_file = isinstance(node, ast.Attribute) and node.attr == "spec_from_file_location"
            if loads_a_file or any(m.split(".")[0] in {"scripts", "script_utils"} for m in imported):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_the_blas_limit_applies_and_is_restored_as_a_context():
    from threadpoolctl import threadpool_info

    from recgym.threads import limit_blas_threads

    def counts() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = counts()
    with limit_blas_threads(1):
        assert counts() and set(counts()) == {1}
    assert counts() == before
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_threads must be a whole number >= 1"):
            limit_blas_threads(bad)


def test_only_the_agents_subclassing_sb3_touch_its_private_update_count():
    # the trainer and the tests count updates through SB3's logger (agents.update_counter); only recgym's
    # algorithms, being SB3 subclasses, keep SB3's own counter going
    readers = []
    for folder in ("recgym", "tests", "scripts", "state_encoders", "simulators"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__).resolve():  # names the attribute to look for it
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            readers += [f"{path.relative_to(ROOT).as_posix()}:{node.lineno}" for node in ast.walk(tree)
                        if (isinstance(node, ast.Attribute) and node.attr == "_n_updates")
                        or (isinstance(node, ast.Constant) and node.value == "_n_updates")]
    assert readers == []


def test_one_fold_in():
    # a fold-in is a ridge solve on the item factors; besides PMF's own ALS (simulators/pmf.py), only
    # recgym.scenario.fold_in may solve one, so agents, features and encoders fold users in alike
    solving = set()
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"solve", "cholesky_solve"}:
                solving.add(path.relative_to(ROOT).as_posix())
    assert solving == {"recgym/scenario.py", "simulators/pmf.py"}


def _calls(node: ast.AST) -> set[str]:
    """The names called inside ``node``: ``argmax`` for ``np.argmax(...)`` and ``x.argmax()``, ``add.at`` for ``np.add.at``."""
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            if isinstance(func, ast.Attribute):
                inner = func.value.attr + "." if isinstance(func.value, ast.Attribute) else ""
                names.add(inner + func.attr)
            elif isinstance(func, ast.Name):
                names.add(func.id)
    return names


def test_one_kmeans():
    # a k-means under any name: a function called k-means, or one whose loop assigns points to their nearest
    # centre (argmin / argmax) and moves the centres to their points (np.add.at, bincount): Lloyd's iteration
    found = set()
    for path, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            named = "kmeans" in node.name.lower().replace("_", "").replace("-", "")
            lloyd = any(
                {"argmin", "argmax"} & _calls(loop) and {"add.at", "bincount"} & _calls(loop)
                for loop in ast.walk(node) if isinstance(loop, (ast.For, ast.While))
            )
            if named or lloyd:
                found.add(f"{path.relative_to(ROOT).as_posix()}:{node.name}")
    assert found == {"recgym/clustering.py:kmeans"}


#: the modules a `recgym train` / `recgym compare` / `recgym evaluate` run goes through
RUN_FLOW = ("recgym/experiments/config.py", "recgym/experiments/setup.py", "recgym/experiments/train.py",
            "recgym/experiments/evaluate.py", "recgym/experiments/cli.py", *sorted(
                p.relative_to(ROOT).as_posix() for p in (ROOT / "recgym/experiments/compare").glob("*.py")))


def _run_flow_modules() -> list[tuple[str, ast.Module]]:
    return [(name, ast.parse((ROOT / name).read_text(), filename=name)) for name in RUN_FLOW]


def test_a_run_reads_its_environment_settings_in_one_place():
    # a registered id's settings (gymnasium's spec kwargs) and the environment's defaults are read by
    # RunSetup's module alone: a second reader falls back to defaults of its own (issue 23)
    readers = set()
    for name, tree in _run_flow_modules():
        for node in ast.walk(tree):
            spec_kwargs = (isinstance(node, ast.Attribute) and node.attr == "kwargs" and isinstance(node.value, ast.Call)
                           and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "spec")
            default = isinstance(node, (ast.Name, ast.alias)) and getattr(node, "id", getattr(node, "name", "")) in (
                "DEFAULT_HISTORY_LENGTH", "DEFAULT_MAX_STEPS")
            if spec_kwargs or default:
                readers.add(name)
    assert readers == {"recgym/experiments/setup.py"}


def test_the_run_flow_builds_each_agent_for_its_scenario():
    # agents.make is given the run's scenario: nothing reads it back out of the environment (issue 23)
    calls = [(name, node) for name, tree in _run_flow_modules() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "make"
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "agents"]
    assert calls, "the run flow builds its agents with agents.make"
    assert [f"{name}:{node.lineno}" for name, node in calls if "scenario" not in {k.arg for k in node.keywords}] == []


def test_the_run_flow_loads_a_saved_model_only_to_resume_or_for_recgym_evaluate():
    # train loads a checkpoint to resume it, `recgym evaluate RUN_DIR` to score a saved run; compare never does
    loaders = sorted(f"{name}:{node.name}" for name, tree in _run_flow_modules() for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef) and any(
                         isinstance(n, ast.Attribute) and n.attr == "load" and isinstance(n.value, ast.Name)
                         and n.value.id == "agents" for n in ast.walk(node)))
    assert loaders == ["recgym/experiments/evaluate.py:evaluate_run", "recgym/experiments/train.py:load_checkpoint"]
