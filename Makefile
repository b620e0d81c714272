# Tuantibu: `make run` starts everything, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test unit lint bench migrate seed sms status clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@$(PY) -m shared.stack

test: $(STAMP)
	$(VENV)/bin/ruff check shared services tests bench
	$(PY) -m pytest -q tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check shared services tests

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

migrate: $(STAMP)
	$(PY) -m shared.migrate

seed: $(STAMP)
	$(PY) -m shared.healthkit seed --count $${COUNT:-200}

sms: $(STAMP)
	$(PY) -m shared.sms $${PHONE:+--phone $$PHONE}

status: $(STAMP)
	@$(PY) -m shared.status

clean:
	rm -rf $(VENV) .pytest_cache
