#!/usr/bin/env bash
# The long fuzz run: every target for RUNS executions (default 10 million) or SECONDS_PER_TARGET
# seconds, whichever comes first (0 = no time limit), on a persistent corpus seeded from the
# official test vectors (fuzz/corpus/<target>, kept between runs). Prints one line of figures
# per target; crashes are saved by libFuzzer under fuzz/artifacts/<target>/ and make the
# script fail. Turn each into a regression test (tests/tests/hostile.rs) and copy the input
# to fuzz/regressions/<target>/ so that scripts/fuzz-smoke.sh replays it.
#
# Usage: bash scripts/fuzz-long.sh [TARGET...]      (default: all targets)
# Env: RUNS (10000000), SECONDS_PER_TARGET (0), JOBS (1: parallel targets), VECTORS.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-10000000}"
secs="${SECONDS_PER_TARGET:-0}"
jobs="${JOBS:-1}"
vectors="${VECTORS:-$(pwd)/../shared/test-vectors}"
if [ "$#" -gt 0 ]; then targets=("$@"); else
    targets=(header codecs decrypt_oneshot decrypt_incremental manifest roundtrip decrypt_async stream_faults); fi

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd fuzz
flags=(-a -s none)
cargo +nightly fuzz build "${flags[@]}"
[ -d corpus ] || python3 make_corpus.py "$vectors" corpus
mkdir -p logs

run_one() {
    local t="$1" log="logs/$1.log" start end rc=0
    start=$(date +%s)
    nice -n 10 cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" -- \
        -runs="$runs" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 \
        >"$log" 2>&1 || rc=$?
    end=$(date +%s)
    local execs secs_used
    execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)"
    secs_used=$((end - start))
    printf 'fuzz long: %-20s %11s executions in %5s s (%s exec/s), corpus %s inputs, %s\n' \
        "$t" "$execs" "$secs_used" "$((execs / (secs_used > 0 ? secs_used : 1)))" \
        "$(find "corpus/$t" -type f | wc -l)" \
        "$([ "$rc" -eq 0 ] && echo 'no crash' || echo "CRASH (rc $rc, see fuzz/$log)")"
    return "$rc"
}

failed=0
pids=()
for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}" || failed=$((failed + 1))
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
echo "fuzz long: $((${#targets[@]} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
