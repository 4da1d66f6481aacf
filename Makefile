# Family Story: `make run` (the whole platform, demo data) and `make test` (every test).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PKGS   := chassis gateway $(wildcard services/*)

.PHONY: venv run test unit fuzz bench lint clean

$(VENV)/.installed: Makefile requirements-dev.txt $(foreach p,$(PKGS),$(p)/pyproject.toml)
	@command -v $(PYTHON) >/dev/null || { echo "Family Story needs Python 3.11 ($(PYTHON)); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(foreach p,$(PKGS),-e ./$(p)) -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

run: venv
	$(BIN)/python deploy/local/run.py

test: venv
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest -m "not integration and not e2e"

# contract fuzzing, longer than in `make test`: FUZZ_EXAMPLES examples of every operation for each role
fuzz: venv
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} FUZZ_EACH_ROLE=1 $(BIN)/python -m pytest -s tests/security/test_zfuzz_contracts.py

bench: venv
	@command -v wrk >/dev/null && command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null; } || echo "wrk/nginx could not be installed: using the Python load generator and skipping the nginx comparison"
	$(BIN)/python tests/bench/bench.py

lint: venv
	$(BIN)/ruff check chassis gateway services tests deploy

clean:
	rm -rf $(VENV) .pytest_cache
