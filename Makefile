# sbir — the two commands a new user needs are `make run` and `make test`.
CARGO ?= cargo
SBIR := target/release/sbir

.PHONY: run test build sample bench lint fmt clean

## Build, then run the main job on the bundled sample data (outputs in data/processed/).
run: build
	$(SBIR) run
	@echo "Outputs are in data/processed/ (checks: data/processed/sbir_awards.checks.json)"

build:
	$(CARGO) build --release --locked

## Install what the tests need, check formatting and lints, run every test.
test:
	@rustup component add rustfmt clippy >/dev/null 2>&1 || true
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --no-fail-fast; \
	else \
		$(CARGO) test --locked --no-fail-fast; \
	fi

## Regenerate the bundled sample (deterministic: same seed, same bytes).
sample: build
	$(SBIR) sample-data --awards 400 --recipients 4000 --seed 42 --out data/sample

## Throughput benchmarks (release build).
bench:
	$(CARGO) bench --locked

lint:
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf data/processed target
