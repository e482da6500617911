#!/usr/bin/env bash
# Runs the core, raw and embedded-io tests on a 32-bit target (i686-unknown-linux-gnu), where
# usize is 32 bits like on the thumbv7em firmware: lengths near 2^32 taken from a message must
# be specific errors there (core/tests/lengths.rs), not overflows. Needs `rustup target add
# i686-unknown-linux-gnu` and gcc-multilib (scripts/setup.sh installs both).
# esdk-raw runs with both its features: `rsa` (aws-lc-rs builds for i686 with gcc-multilib)
# and `ecdh` (pure Rust).
set -euo pipefail
cd "$(dirname "$0")/.."
T=i686-unknown-linux-gnu
total=0
run() {
  echo "test-32bit: cargo test --target $T $*"
  local log
  log=$(cargo test --target "$T" "$@" 2>&1) || { echo "$log" | tail -40; echo "test-32bit: FAILED: $*"; exit 1; }
  echo "$log" | grep -E '^(test result|lengths:)' || true
  local n
  n=$(echo "$log" | grep -E '^test result' | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{ s += $1 } END { print s + 0 }')
  total=$((total + n))
}
run -p esdk-core --features embedded-io,rustcrypto -- --nocapture
run -p esdk-raw --features ecdh,rsa --lib --tests
echo "test-32bit: $total tests passed on $T"
