#!/usr/bin/env bash
# Benchmarks the esdk-pkcs11 keyrings on SoftHSM2 and on Kryoptic (each set up privately by
# pkcs11-softhsm.sh / pkcs11-kryoptic.sh): operations per second on 1 thread and on N threads
# sharing one keyring (and so the token's session pool) for the session pool alone, AES-GCM
# wrap and unwrap (key a token object, and a session object), RSA-OAEP wrap and unwrap, the
# ECDH derivation, and ESDK messages of 100 bytes (token keyrings versus the raw AES keyring).
#
#   ESDK_BENCH_SECS      time per figure (default 2)
#   ESDK_BENCH_THREADS   N (default: the number of CPUs, at least 2)
#   PKCS11_BENCH_MODULE  softhsm, kryoptic or both (default both)
#
# The load average is printed with each table: other work on the machine skews the figures.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
modules=${PKCS11_BENCH_MODULE:-both}
case "$modules" in
  softhsm | kryoptic) ;;
  both) modules="softhsm kryoptic" ;;
  *) echo "PKCS11_BENCH_MODULE must be softhsm, kryoptic or both" >&2; exit 2 ;;
esac
# Built once, run once per module (the bench profile: optimized like a release).
cargo bench --workspace --bench keyring_ops --no-run
for m in $modules; do
  dir=$(mktemp -d /tmp/esdk-pkcs11-bench.XXXXXX)
  (
    trap 'rm -rf "$dir"' EXIT
    case "$m" in
      softhsm) eval "$(PKCS11_TEST_DIR=$dir "$root/scripts/pkcs11-softhsm.sh")" ;;
      kryoptic)
        export PKCS11_KRYOPTIC_BUILD=${PKCS11_KRYOPTIC_BUILD:-${CARGO_TARGET_DIR:-$root/target}/kryoptic}
        eval "$(PKCS11_TEST_DIR=$dir "$root/scripts/pkcs11-kryoptic.sh")" ;;
    esac
    echo "== $m: load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
    cargo bench -q --workspace --bench keyring_ops
  )
done
