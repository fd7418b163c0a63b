#!/usr/bin/env bash
# Runs the cargo-fuzz targets (credential report parser, config parser) for
# the given number of seconds each, starting from the committed seed corpus.
#
#   scripts/fuzz.sh [SECONDS]      # default 60
#
# cargo fuzz needs nightly compiler flags; with the stable toolchain this
# machine has, RUSTC_BOOTSTRAP=1 enables them. New inputs found go to
# fuzz/corpus/TARGET (commit the small interesting ones); crashes to
# fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in credential_report config; do
    echo "== fuzzing $target for ${seconds}s"
    # A scratch copy of the corpus, so a run does not add thousands of files
    # to the repository.
    work="$(mktemp -d)"
    cp -r "fuzz/corpus/$target/." "$work/"
    cargo fuzz run "$target" "$work" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 |
        grep -E "^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==|INFO: .*corpus)" || true
    rm -rf "$work"
done
