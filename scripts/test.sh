#!/usr/bin/env bash
# Every test of the project. Sets up what it needs on a fresh Debian machine first.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n=== %s\n' "$*"; }
t0=$(date +%s)

step "setup"
bash scripts/setup.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "no_std: the core builds for thumbv7em-none-eabihf"
cargo build -p esdk-core -p esdk-raw --target thumbv7em-none-eabihf
cargo build -p esdk-core --features embedded-io,defmt --target thumbv7em-none-eabihf
cargo build -p esdk-raw --features ecdh --target thumbv7em-none-eabihf
(cd firmware && cargo build --release -q)
echo "firmware images (no global allocator: each links only if nothing it calls allocates):"
echo "  esdk-firmware-probe: raw AES one-shot 0x0578; probe-eio: embedded-io streams 0x0578;"
echo "  probe-ecdh: raw ECDH P-384 ephemeral sender + discovery receiver 0x0478"
size firmware/target/thumbv7em-none-eabihf/release/{esdk-firmware-probe,probe-eio,probe-ecdh}

step "unit, integration and doc tests (includes the Rust <-> Python interop matrix)"
bash scripts/python-peer.sh >/dev/null
# esdk-pkcs11 needs a token: it runs below against SoftHSM2 and Kryoptic.
cargo test --workspace --exclude esdk-pkcs11
# Issue #8's robustness suites again (about 20 s), with their counts shown: the tamper sweep,
# the resource limits, the secret redaction and the round-trip property (core, std, CLI).
robust_log="$(mktemp)"
# (Same package selection as above, so nothing is rebuilt.)
cargo test --workspace --exclude esdk-pkcs11 --test tamper_sweep --test hostile --test secrets \
    --test proptest_roundtrip --test fuzz_regressions -- --nocapture >"$robust_log" 2>&1 \
    || { cat "$robust_log"; exit 1; }
grep -E '^(     Running|tamper sweep|round-trip property|hostile: small limits|fuzz regressions|test result)' \
    "$robust_log"
rm -f "$robust_log"
cargo test -p esdk-core --features embedded-io --test eio

step "fuzz smoke (cargo-fuzz on nightly: regression inputs, then 10 s per target)"
bash scripts/fuzz-smoke.sh

step "PKCS#11 keyrings on SoftHSM2 and Kryoptic"
bash scripts/pkcs11-test.sh

step "AWS KMS keyrings, caching CMM and kms_stream against a local KMS server (moto, 127.0.0.1)"
bash scripts/kms-test.sh

step "examples"
cargo run -q -p esdk-examples --example firmware_fixed_buffer

step "official test vectors"
bash scripts/vectors.sh

step "interop with the official Python ESDK (our encrypt-manifest output decrypted by Python)"
ESDK_INTEROP_MATRIX_DONE=1 bash scripts/interop.sh

echo
echo "all tests passed in $(( $(date +%s) - t0 )) s"
