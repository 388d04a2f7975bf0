# sagabank developer entry points. Every target installs what it needs into .venv first:
# the demo and the server only the runtime dependencies (RUNTIME), everything else also the
# test, PostgreSQL, MariaDB, broker and bench extras (STAMP; about ten times larger, Playwright
# included).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit evaluate serve test-docker bench clean chromium mutate

$(RUNTIME): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(PY) -m pip install --quiet -e '.[dev,postgres,mysql,broker,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(RUNTIME)
	$(PY) repository_after/client.py

serve: $(RUNTIME)
	$(VENV)/bin/sagabank serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The ten slowest tests are listed after the run: a test creeping towards its time limit
# (pytest-timeout, pyproject.toml) is seen before it starts failing on a slower machine.
unit: $(STAMP) chromium postgres mariadb rabbitmq
	$(PY) -m pytest --durations=10

evaluate: $(STAMP)
	$(PY) evaluation.py

test: lint typecheck unit evaluate

# The dashboard's browser tests drive Debian's Chromium (Playwright's own download is not used).
chromium:
	test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The PostgreSQL tests need a server on 127.0.0.1:5432 (trust); installed via apt if absent.
.PHONY: postgres
postgres:
	bash scripts/ensure-postgres.sh

# The MariaDB tests need a server on 127.0.0.1:3306 (root, no password); installed via apt if absent.
.PHONY: mariadb
mariadb:
	bash scripts/ensure-mariadb.sh

# The messaging tests need RabbitMQ on 127.0.0.1:5672 (guest, rabbitmqctl for their vhosts);
# Debian's rabbitmq-server is installed and started if nothing answers there.
.PHONY: rabbitmq
rabbitmq:
	bash scripts/ensure-rabbitmq.sh

test-docker: $(STAMP)
	bash scripts/verify-docker.sh

# A full chaos run (docs/chaos.md): every fault family, real processes on loopback.
.PHONY: chaos
CHAOS_SEED ?= 1
CHAOS_TRANSFERS ?= 2000
chaos: $(STAMP)
	$(VENV)/bin/sagabank chaos --seed $(CHAOS_SEED) --transfers $(CHAOS_TRANSFERS)

# The same for the order saga (docs/chaos.md, "The order saga"): every family of the order saga.
.PHONY: chaos-order
CHAOS_ORDERS ?= 2000
chaos-order: $(STAMP)
	$(VENV)/bin/sagabank chaos --saga order --seed $(CHAOS_SEED) --orders $(CHAOS_ORDERS)

# The same for the classes saga (docs/chaos.md, "The classes saga"): every family of the saga.
.PHONY: chaos-classes
CHAOS_ASSIGNMENTS ?= 1000
chaos-classes: $(STAMP)
	$(VENV)/bin/sagabank chaos --saga classes --seed $(CHAOS_SEED) --assignments $(CHAOS_ASSIGNMENTS)

# Choreography over RabbitMQ through seeded broker faults (docs/chaos.md, "Choreography"): a
# private RabbitMQ node of the run's own is restarted (root, Debian's rabbitmq-server).
.PHONY: chaos-choreography
CHAOS_CHOREO_TRANSFERS ?= 1000
chaos-choreography: $(STAMP)
	$(VENV)/bin/sagabank chaos --mode choreography --seed $(CHAOS_SEED) --transfers $(CHAOS_CHOREO_TRANSFERS)

# The same for the order saga choreographed (orders -> inventory -> payment): the broker families
# plus the account service's and the inventory's own faults; money AND stock audited.
.PHONY: chaos-order-choreography
CHAOS_CHOREO_ORDERS ?= 1000
chaos-order-choreography: $(STAMP)
	$(VENV)/bin/sagabank chaos --mode choreography --saga order --seed $(CHAOS_SEED) --orders $(CHAOS_CHOREO_ORDERS)

# The A → B → C failure matrix (docs/sagas.md): every way one of three participants fails, the
# exact calls made, over real HTTP on loopback, on SQLite, MariaDB and PostgreSQL (70-100 s;
# `make test` runs it too). The same table live, as four processes: `sagabank demo --saga abc`.
.PHONY: matrix
matrix: $(STAMP) postgres mariadb
	$(PY) -m pytest tests/integration/test_abc_failure_matrix.py -q

# Mutation testing (docs/testing.md): mutmut breaks the guarantee-bearing modules listed in
# pyproject.toml ([tool.mutmut]) one change at a time and runs the unit and integration tests
# that reach each change; then the share killed per module, and every survivor not explained
# in docs/testing.md. Slow (about an hour on 2 cores), so not part of `make test`. mutmut keeps
# its verdicts in ./mutants and re-checks only what changed; `make mutate-clean` starts afresh.
mutate: $(STAMP) postgres mariadb
	$(VENV)/bin/mutmut run --max-children 2
	$(PY) scripts/mutation_report.py

.PHONY: mutate-clean
mutate-clean:
	rm -rf mutants

clean:
	rm -rf $(VENV) data evaluation mutants .pytest_cache .mypy_cache .ruff_cache

bench: $(STAMP) rabbitmq
	$(VENV)/bin/sagabank bench
