# The two everyday commands, `make demo` and `make test`, set up their own virtual environment.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench ingest-sample

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/pqlbot demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check bot scoring tests bench
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/score.py

# The bundled sample into the store (DATABASE_URL, default ./pqlbot.db), scored as of its last day.
ingest-sample: $(VENV)/.installed
	$(VENV)/bin/pqlbot ingest bot/demo/data/sample_events.jsonl \
		--at "$$($(PY) -c 'from bot.demo.sample import SAMPLE_AS_OF; print(SAMPLE_AS_OF.isoformat())')"
