# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench lint typecheck migration clean preview messages catalogs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh

# The suite runs on every core (pytest-xdist; tests use their own files, databases and ports); TEST_JOBS=0 runs
# it in one process.
TEST_JOBS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check digest tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# Regenerates migration 0001 from digest/store/tables.py (until the first release).
migration: $(STAMP)
	$(BIN)/python scripts/regen_initial_migration.py

# The catalogs (digest/i18n/locales): `messages` extracts every message (babel.cfg) into digest.pot and merges
# it into each language's digest.po, new ones left to translate; `catalogs` compiles the .po files to .mo
# (optional: the .po files are read at run time when no newer .mo is there).
LOCALES := digest/i18n/locales
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o $(LOCALES)/digest.pot --no-location --sort-output -c "Translators:" \
		--project digest --version 0.1 --msgid-bugs-address newsroom@example.org -w 110 .
	$(BIN)/pybabel update -i $(LOCALES)/digest.pot -d $(LOCALES) -D digest -w 110 \
		--ignore-obsolete --no-fuzzy-matching

catalogs: $(STAMP)
	$(BIN)/pybabel compile -d $(LOCALES) -D digest --statistics

# The preview of the demo database (after `make demo`); links are signed with a throwaway key unless
# DIGEST_SECRET_KEY is set.
preview: $(STAMP)
	DIGEST_DATABASE_URL=$${DIGEST_DATABASE_URL:-sqlite:///$(CURDIR)/subscribers/demo.db} \
	DIGEST_SECRET_KEY=$${DIGEST_SECRET_KEY:-preview-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(16))')} \
	$(BIN)/digest preview

# Only what the build and the demo made: subscribers/digest.db (the store) and outbox/ (the file backend's
# mail) are the newsroom's own and stay.
clean:
	rm -rf $(VENV) build dist *.egg-info demo-out subscribers/demo.db*
