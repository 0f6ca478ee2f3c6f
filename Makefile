# Two commands matter: `make apply` and `make test` (see README). Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?= -n 2

.PHONY: install apply test test-slow mutate lint bench bench-peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q veza_schema >/dev/null
	touch $(STAMP)

install: $(STAMP)

apply: install
	$(BIN)/veza-schema apply

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The exhaustive runs (every crash point, 10x property examples) that `make test` only samples.
test-slow: install
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m slow

# Hand-listed mutants of the runner, lock, history, differ, planner, loader, policy and quoting
# (tests/mutation/mutants.py), each against the tests meant to kill it; prints the score. Not part of `make test`.
MUTATE_ARGS ?= --jobs 2
mutate: install
	$(BIN)/python -m tests.mutation.run $(MUTATE_ARGS)

lint: install
	$(BIN)/ruff check veza_schema tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The peers bench_peers.py measures against: squawk (dev extra), migra + psycopg2 (bench extra), psql.
bench-peers: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@# Byte-compiled as a wheel install is (an editable install is not, and PYTHONDONTWRITEBYTECODE would
	@# then make every measured run compile the package again).
	$(BIN)/python -m compileall -q veza_schema >/dev/null
	@command -v psql >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null; }

# One side-by-side table (ours, peer, ratio) with the write-stall table, then the other benchmarks.
# Every benchmark runs even when one misses a target; the exit status says whether any did.
bench: bench-peers
	@status=0; $(BIN)/python bench/bench_peers.py || status=1; \
	for script in bench/bench_*.py; do case $$script in */bench_peers.py|*/bench_write_stall.py) continue;; esac; \
		echo "== $$script"; $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) .veza .pytest_cache .mypy_cache .ruff_cache
