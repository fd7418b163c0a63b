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
failed=()
for target in credential_report config; do
    echo "== fuzzing $target for ${seconds}s"
    # A scratch copy of the corpus, so a run does not add thousands of files
    # to the repository.
    work="$(mktemp -d)"
    cp -r "fuzz/corpus/$target/." "$work/"
    # Only the summary lines, and on a crash the sanitizer's report and where
    # the crashing input was written.
    status=0
    cargo fuzz run "$target" "$work" -- -max_total_time="$seconds" -print_final_stats=1 >"$work.log" 2>&1 || status=$?
    grep -E "^(#[0-9]+[[:space:]]+(INITED|DONE)|Done|stat::|==|INFO: .*corpus|SUMMARY|artifact_prefix|Test unit written)|panicked" "$work.log" || true
    if [ "$status" -ne 0 ]; then
        echo "== $target FAILED (exit status $status); the last lines of its output:"
        tail -n 40 "$work.log"
        failed+=("$target")
    fi
    rm -rf "$work" "$work.log"
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: ${failed[*]} failed"
    exit 1
fi
