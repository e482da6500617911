#!/usr/bin/env bash
# Runs every official decrypt manifest in ../shared/test-vectors through the `vectors` binary,
# under both crypto providers (rustcrypto: the pure-Rust no_std one firmware ships; aws-lc:
# the std default), and prints per-provider totals and a total line. Fails if any test fails,
# a run prints no summary, or a run passes fewer tests than its manifest's expected minimum
# (a run that silently checks nothing is a failure, not "0 passed, 0 failed").
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tv=${ESDK_TEST_VECTORS:-$root/../shared/test-vectors}
[ -d "$tv" ] || { echo "test vectors not found at $tv (set ESDK_TEST_VECTORS)" >&2; exit 1; }
# The binary of the workspace's test build, with its features (scripts/test.sh has it from
# `cargo test` already, so this is a no-op there): a release build of this graph (aws-lc, the
# AWS SDK, thin LTO), or a `-p esdk-tests` build with other features, cost CI minutes.
cargo test -q --workspace --no-run 2>/dev/null || exit 1
bin="${CARGO_TARGET_DIR:-$root/target}/debug/vectors"
tp=0; tf=0; ts=0; status=0
declare -A pp pf ps
# run PROVIDER MIN_PASSED MIN_SEEN MANIFEST [ARGS...]: at least MIN_PASSED tests must pass
# and at least MIN_SEEN must pass or be skipped (every test of the manifest accounted for).
run() {
  local prov=$1 min=$2 seen=$3; shift 3
  echo "--- vectors decrypt $* --provider $prov (at least $min must pass)"
  out=$("$bin" decrypt "$@" --provider "$prov" 2>&1); rc=$?
  echo "$out" | grep -v '^ok ' | tail -n 8
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  [ -n "$line" ] || { echo "FAIL: no summary line"; status=1; return; }
  read -r p f s <<<"$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')"
  s=${s:-0}
  tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
  pp[$prov]=$(( ${pp[$prov]:-0} + p )); pf[$prov]=$(( ${pf[$prov]:-0} + f )); ps[$prov]=$(( ${ps[$prov]:-0} + s ))
  [ $rc -eq 0 ] || status=1
  if [ "$p" -lt "$min" ]; then
    echo "FAIL: only $p passed, expected at least $min"; status=1
  fi
  if [ $((p + s)) -lt "$seen" ]; then
    echo "FAIL: only $((p + s)) tests passed or skipped, the manifest has $seen"; status=1
  fi
}
for prov in rustcrypto aws-lc; do
  run $prov 3560 3560 "$tv/python-4.0.7-local/manifest.json"
  run $prov 715 715 "$tv/python-4.0.7-local-zero/manifest.json"
  run $prov 99 132 "$tv/net-4.0.1/manifest.json"
  # 185: the 7 hierarchical vectors run with their static branch keys (esdk::hierarchy).
  run $prov 185 302 "$tv/dafny-4.1.0/decrypt-manifest.json"
  # All KMS: nothing runs without AWS KMS; all 360 must still be loaded and skipped.
  run $prov 0 360 "$tv/python-1.3.5/decrypt_message.json"
  # ESDK-.NET 4.0.0 messages: header authentication fails by default (exactly that error);
  # they decrypt with the retry.
  run $prov 28 28 "$tv/net-4.0.0-invalid/manifest.json" --expect-error
  run $prov 28 28 "$tv/net-4.0.0-invalid/manifest.json" --net-v4-0-0-retry
  # The Python ESDK's key-commitment vectors (own format, each with its plaintext data key): 29
  # decrypt, 5 fail key commitment, and 12 hand-made ones whose frame IVs are not their sequence
  # numbers are refused with exactly that error (the Python ESDK does not check the IV).
  run $prov 46 46 "$tv/python-commitment-v2/commitment-test-vectors.json"
done
for prov in rustcrypto aws-lc; do
  echo "vectors [$prov]: ${pp[$prov]} passed, ${pf[$prov]} failed, ${ps[$prov]} skipped"
done
echo "vectors total: $tp passed, $tf failed, $ts skipped"
exit $status
