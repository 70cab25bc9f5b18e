# The template's own commands. Needs python3 (3.11+) and make; everything else goes in .venv.
.PHONY: demo servers test test-hooks bench bench-database bench-instructions bench-resilience bench-messaging clean

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SPECTRAL := tests/node_modules/.bin/spectral
DEMO := build/demo
PORT ?= 8000
# pyenv's shims answer only for its active versions: let uv see every installed Python.
ifneq ($(shell command -v pyenv),)
export PYENV_VERSION ?= $(shell pyenv versions --bare | grep -E '^[0-9]' | sort -rV | paste -sd:)
endif

$(BIN)/cookiecutter: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(BIN)/cookiecutter ## Bake the default service into build/demo and serve it on :8000
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/cookiecutter --no-input --output-dir $(DEMO) .
	cd $(DEMO)/my-service && PATH="$(CURDIR)/$(BIN):$$PATH" $(MAKE) install migrate
	@echo "Serving on http://127.0.0.1:$(PORT) (docs: /docs); Ctrl-C stops it."
	cd $(DEMO)/my-service && MY_SERVICE_PORT=$(PORT) .venv/bin/python -m my_service

$(SPECTRAL): tests/package.json tests/package-lock.json | servers
	npm ci --prefix tests --no-audit --no-fund
	touch $@

servers: ## Install the servers the self-tests start (apt-get on Debian/Ubuntu; elsewhere it says what)
	tests/install-servers

test: $(BIN)/cookiecutter servers $(SPECTRAL) ## The whole self-test suite: hooks, then every combination
	$(BIN)/pytest -n 2 --dist loadgroup --no-loadscope-reorder --durations=30

test-hooks: $(BIN)/cookiecutter ## Only the fast hook tests
	$(BIN)/pytest tests/test_hooks.py

bench: $(BIN)/cookiecutter ## Benchmark the baked service against bare FastAPI (needs wrk and hey)
	@command -v wrk >/dev/null || { echo "ERROR: wrk not found; install it: apt-get install wrk"; exit 1; }
	@command -v hey >/dev/null || { echo "ERROR: hey not found; install it: apt-get install hey"; exit 1; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

bench-database: $(BIN)/cookiecutter ## GET an article from PostgreSQL: the service against bare FastAPI with the same query (needs wrk, hey, postgresql)
	@command -v wrk >/dev/null || { echo "ERROR: wrk not found; install it: apt-get install wrk"; exit 1; }
	@command -v hey >/dev/null || { echo "ERROR: hey not found; install it: apt-get install hey"; exit 1; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/database.py $(BENCH_ARGS)

bench-instructions: $(BIN)/cookiecutter ## Instructions per request, layer by layer (needs valgrind and gcc)
	@command -v valgrind >/dev/null || { echo "ERROR: valgrind not found; install it: apt-get install valgrind"; exit 1; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/instructions.py $(BENCH_ARGS)

bench-resilience: $(BIN)/cookiecutter ## The upstream client: sequential vs concurrent calls, overhead vs raw httpx2
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/resilience.py $(BENCH_ARGS)

bench-messaging: $(BIN)/cookiecutter ## The outbox's cost per write, events/s and end-to-end latency (needs postgresql, rabbitmq-server)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/messaging.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .cache .pytest_cache tests/node_modules
