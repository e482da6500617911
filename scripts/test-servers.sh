#!/usr/bin/env bash
# The steps of scripts/test.sh that run against servers and peers, one after another: AWS KMS
# (a local moto server), PKCS#11 (SoftHSM2 and Kryoptic), the examples, the official vectors
# and the Python interop. test.sh runs this in the background beside the workspace's tests,
# once every test binary is built (so nothing here compiles); it also runs on its own after
# `cargo test --workspace --no-run` (a missing build is made, at the cost of time).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
step() { printf '\n=== %s [%d s into this job]\n' "$*" "$(($(date +%s) - t0))"; }

step "AWS KMS keyrings, caching CMM and kms_stream against a local KMS server (moto, 127.0.0.1)"
bash scripts/kms-test.sh

step "PKCS#11 keyrings on SoftHSM2 and Kryoptic"
bash scripts/pkcs11-test.sh

step "examples"
# Built with the workspace's features (as every build here), so nothing is compiled again.
cargo build -q --workspace --example firmware_fixed_buffer
"${CARGO_TARGET_DIR:-target}/debug/examples/firmware_fixed_buffer"

step "official test vectors"
bash scripts/vectors.sh

step "interop with the official Python ESDK (our encrypt-manifest output decrypted by Python)"
# test.sh sets ESDK_INTEROP_MATRIX_DONE=1: the Rust <-> Python matrix
# (tests/tests/interop_python.rs) runs in its workspace run.
bash scripts/interop.sh

step "done"
