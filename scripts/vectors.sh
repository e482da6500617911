#!/usr/bin/env bash
# Runs every official decrypt manifest in ../shared/test-vectors through the `vectors` binary
# and prints a total line. Fails if any test fails.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tv=${ESDK_TEST_VECTORS:-$root/../shared/test-vectors}
[ -d "$tv" ] || { echo "test vectors not found at $tv (set ESDK_TEST_VECTORS)" >&2; exit 1; }
cargo build -q --release -p esdk-tests --bin vectors || exit 1
bin="${CARGO_TARGET_DIR:-$root/target}/release/vectors"
tp=0; tf=0; ts=0; status=0
run() {
  echo "--- vectors decrypt $*"
  out=$("$bin" decrypt "$@" 2>&1); rc=$?
  echo "$out" | grep -v '^ok ' | tail -n 8
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  [ -n "$line" ] || { echo "no summary line"; status=1; return; }
  read -r p f s <<<"$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')"
  tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + ${s:-0}))
  [ $rc -eq 0 ] || status=1
}
run "$tv/python-4.0.7-local/manifest.json"
run "$tv/python-4.0.7-local-zero/manifest.json"
run "$tv/net-4.0.1/manifest.json"
run "$tv/dafny-4.1.0/decrypt-manifest.json"
run "$tv/python-1.3.5/decrypt_message.json"
# ESDK-.NET 4.0.0 messages: header authentication fails by default; they decrypt with the retry.
run "$tv/net-4.0.0-invalid/manifest.json" --expect-error
run "$tv/net-4.0.0-invalid/manifest.json" --net-v4-0-0-retry
echo "vectors total: $tp passed, $tf failed, $ts skipped"
exit $status
