#!/usr/bin/env bash
# Benchmarks the esdk-pkcs11 keyrings on SoftHSM2 (set up privately by pkcs11-softhsm.sh):
# AES-GCM and RSA-OAEP wrap/unwrap per second on the token, and the whole-message cost of a
# 100-byte message, with 1 and 2 threads. ESDK_BENCH_SECS sets the time per figure (default 2).
# PKCS11_BENCH_MODULE=kryoptic benchmarks Kryoptic instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=$(mktemp -d /tmp/esdk-pkcs11-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
case "${PKCS11_BENCH_MODULE:-softhsm}" in
  softhsm) eval "$(PKCS11_TEST_DIR=$dir "$root/scripts/pkcs11-softhsm.sh")" ;;
  kryoptic)
    export PKCS11_KRYOPTIC_BUILD=${PKCS11_KRYOPTIC_BUILD:-${CARGO_TARGET_DIR:-$root/target}/kryoptic}
    eval "$(PKCS11_TEST_DIR=$dir "$root/scripts/pkcs11-kryoptic.sh")" ;;
  *) echo "PKCS11_BENCH_MODULE must be softhsm or kryoptic" >&2; exit 2 ;;
esac
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
cargo bench -p esdk-pkcs11 --bench keyring_ops
