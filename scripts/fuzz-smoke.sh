#!/usr/bin/env bash
# Fuzz smoke run (CI): builds the cargo-fuzz targets in fuzz/ on the nightly toolchain, seeds
# them from the official test vectors, replays the saved regression inputs, then fuzzes each
# target for a short time. Any crash fails the run.
#
# Usage: bash scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]     (default 10; env FUZZ_SECONDS too)
# Needs: the preinstalled nightly toolchain; installs cargo-fuzz if missing (about 30 s to 2 min).
# The longer run (>= 10 million executions per target) is scripts/fuzz-long.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${FUZZ_SECONDS:-10}}"
vectors="${VECTORS:-$(pwd)/../shared/test-vectors}"
targets=(header codecs decrypt_oneshot decrypt_incremental manifest roundtrip decrypt_async stream_faults)

# A missing tool is a failure, not a skip: nightly is preinstalled on the project's machines
# (see the infrastructure notes); cargo-fuzz is installed here when missing.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "FAILED: fuzz smoke needs the nightly toolchain (rustup toolchain install nightly)" >&2
    echo "fuzz smoke: 0 passed, 1 failed"
    exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

cd fuzz
# -s none: the code under test forbids unsafe; -a: debug assertions and overflow checks on.
flags=(-a -s none)
cargo +nightly fuzz build "${flags[@]}"
rm -rf corpus.smoke && python3 make_corpus.py "$vectors" corpus.smoke

passed=0
failed=0
# Saved inputs (crashes found earlier, now regression inputs) must run clean.
for f in regressions/*/*; do
    [ -e "$f" ] || continue
    t="$(basename "$(dirname "$f")")"
    if cargo +nightly fuzz run "${flags[@]}" "$t" "$f" >/tmp/fuzz-smoke-replay.log 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED replay of $f:"; tail -30 /tmp/fuzz-smoke-replay.log
    fi
done

for t in "${targets[@]}"; do
    log="/tmp/fuzz-smoke-$t.log"
    if cargo +nightly fuzz run "${flags[@]}" "$t" "corpus.smoke/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 >"$log" 2>&1; then
        execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
        echo "fuzz smoke: $t ok, $execs executions in ${secs} s"
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: fuzz target $t"; grep -A20 -E 'panicked|ERROR' "$log" | head -40
    fi
done
rm -rf corpus.smoke
echo "fuzz smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
