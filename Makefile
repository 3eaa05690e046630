# recgym: the two quick-start commands (`make demo`, `make test`) set themselves up.
# The CPU build of PyTorch is installed first, so pip never pulls the multi-GB CUDA build.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
RUN_DIR     ?= runs/demo
DEMO_STEPS  ?= 20000
PYTEST_ARGS ?=
# optional extras installed with recgym: offline (Minari, d3rlpy; pure-Python wheels) because docs/offline.md's
# d3rlpy block runs in the docs test; CI adds ray (`make test EXTRAS=dev,ray,offline`), so the Ray test runs too
EXTRAS      ?= dev,offline
comma       := ,
STAMP       := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

# the staged real data beside the checkout, when there is one (CI and developers)
ifeq ($(RECGYM_DATA_DIR),)
  ifneq ($(wildcard ../shared/datasets/ml-100k/u.data),)
    export RECGYM_DATA_DIR := $(abspath ../shared/datasets)
  endif
endif

.PHONY: setup demo test test-slow bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --retries 0 --timeout 20 "$(TORCH_SPEC)" --extra-index-url $(TORCH_INDEX) \
		|| $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

# Train DRR (actor-critic with the DRR-ave state) on MovieLens-100K with the PMF user
# simulator, then evaluate it on the held-out test users against the baselines.
# Offline, `recgym demo` says in one line how to supply ML-100K and runs the same
# demo on recgym/Synthetic-PMF-v0 (it prints each command it runs).
demo: setup
	$(VENV)/bin/recgym datasets
	$(VENV)/bin/recgym demo --steps $(DEMO_STEPS) --seed 0 --out $(RUN_DIR)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The lowest versions of the core dependencies that pyproject.toml allows (torch excepted: the same CPU
# build as above), in a venv of their own, on the fast tests that exercise each of them, so that a lower
# bound the code has outgrown fails here rather than in a user's install. CI runs it after `make test`.
LOWEST_VENV  ?= .venv-lowest
LOWEST_TESTS ?= tests/test_envs.py tests/test_agents.py tests/test_data_loaders.py tests/test_data_sources.py \
                tests/test_data_spreadsheet.py tests/test_experiments.py tests/test_top_level.py tests/test_packaging.py
# learning quality, not an API the floors could break; the main run keeps it (about half this subset's time)
LOWEST_SKIP  ?= --deselect tests/test_agents.py::test_dqn_and_drr_beat_random_on_held_out_users
LOWEST_STAMP := $(LOWEST_VENV)/.installed

.PHONY: test-lowest

$(LOWEST_STAMP): pyproject.toml scripts/lowest_constraints.py
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(PYTHON) scripts/lowest_constraints.py --keep "$(TORCH_SPEC)" > $(LOWEST_VENV)/constraints.txt
	$(LOWEST_VENV)/bin/python -m pip install --quiet --retries 0 --timeout 20 "$(TORCH_SPEC)" --extra-index-url $(TORCH_INDEX) \
		|| $(LOWEST_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(LOWEST_VENV)/bin/python -m pip install --quiet -c $(LOWEST_VENV)/constraints.txt -e ".[dev]"
	touch $@

test-lowest: $(LOWEST_STAMP)
	$(LOWEST_VENV)/bin/python -m pip list 2>/dev/null | grep -iE '^(gymnasium|stable.baselines3|torch|numpy|pandas|pydantic) '
	$(LOWEST_VENV)/bin/python -m pytest -q $(LOWEST_TESTS) $(LOWEST_SKIP) $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: setup
	$(PY) scripts/bench_env.py
	$(PY) scripts/bench_train.py

clean:
	rm -rf $(VENV) $(LOWEST_VENV) runs .pytest_cache
