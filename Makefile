# The two commands of the README's quick start, and the checks CI runs.

.PHONY: run-sample test lint bench bench-serve

# Serve the bundled sample report on http://localhost:9781/metrics
run-sample:
	cargo run -- --credential-report.file examples/credential-report.csv

# The whole test suite (unit, moto integration, promtool), installing
# promtool and moto first when they are missing.
test:
	scripts/install-test-deps.sh
	cargo test

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

# Benchmarks: rendering speed (criterion) and serving memory (release binary).
bench:
	cargo bench --bench render

bench-serve:
	cargo build --release
	python3 scripts/bench_serve.py --keys 1000 10000 100000
