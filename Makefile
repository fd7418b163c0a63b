# The two commands of the README's quick start, and the checks CI runs.

.PHONY: run-sample test lint lint-deploy deny bench bench-serve bench-refresh bench-throttle bench-latency bench-load bench-cost fuzz

# Serve the bundled sample report on http://localhost:9781/metrics
run-sample:
	cargo run -- --credential-report.file examples/credential-report.csv

# The whole test suite, installing what it needs first when it is missing:
# the deployment checks (scripts/lint-deploy.sh), then unit, moto,
# Prometheus and Alertmanager tests.
test:
	scripts/install-test-deps.sh
	scripts/lint-deploy.sh
	cargo test -- --include-ignored

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

# Dockerfile, Kubernetes, IAM, CloudFormation, systemd and compose checks.
lint-deploy:
	scripts/lint-deploy.sh

# Licenses, banned crates and sources, then known vulnerabilities offline
# against the RustSec snapshot in ../shared/advisory-db, and the proof that
# this check fails on a known vulnerability (deny.toml, as CI).
deny:
	command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny --version '~0.20'
	cargo deny check licenses bans sources
	scripts/check-advisories.sh
	scripts/check-advisories.sh --self-test

# Benchmarks: rendering speed (criterion) and serving memory (release binary).
bench:
	cargo bench --bench render

bench-serve:
	cargo build --release
	python3 scripts/bench_serve.py --keys 1000 10000 100000

bench-refresh:
	cargo build --release
	python3 scripts/bench_refresh.py

# Debug build: under the throttle the time is the rate's, not the CPU's.
bench-throttle:
	cargo build
	python3 scripts/bench_throttle.py --users 300 --rates 5 10 20

# Debug build: at 30 ms a call the time is the latency's, not the CPU's.
# The unthrottled API refresh beside a sequential boto3 peer (issue 21: 6x).
bench-latency:
	cargo build
	python3 scripts/bench_latency.py --users 1000 --latency-ms 30 --runs 3

bench-load:
	cargo build --release
	python3 scripts/bench_load.py --keys 10000 100000

# What N keys cost (issue 16): samples per key, scrape times beside serving
# the same bytes from memory, peak RSS, what a real Prometheus holds, and a
# Python exporter on the same data. Figures in docs/cost.md. Other key series:
#   make bench-cost COST_ARGS='--exporter-arg=--metrics.key-series=created,last_used,high_risk'
bench-cost:
	cargo build --release
	python3 -c 'import prometheus_client' 2>/dev/null || pip install prometheus_client==0.26.0
	python3 scripts/bench_cost.py --keys 10000 100000 $(COST_ARGS)

# The fuzzers, SECONDS each (default 60).
fuzz:
	scripts/fuzz.sh $(SECONDS)
