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
#   ESDK_BENCH_PROFILE   bench (default: optimized like a release; the first build compiles every
#                        dependency again, aws-lc included) or dev (the test build's profile,
#                        reused: our crates at opt-level 1, dependencies at 2; the token's own
#                        work is the same, the raw-keyring baseline slower)
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
case "${ESDK_BENCH_PROFILE:-bench}" in
  bench) build=(cargo bench --workspace --bench keyring_ops --no-run)
    run=(cargo bench -q --workspace --bench keyring_ops) ;;
  dev) build=(cargo test --workspace --bench keyring_ops --no-run)
    run=(cargo test -q --workspace --bench keyring_ops -- --bench) ;;
  *) echo "ESDK_BENCH_PROFILE must be bench or dev" >&2; exit 2 ;;
esac
# Built once, run once per module.
"${build[@]}"
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
    echo "== $m (profile ${ESDK_BENCH_PROFILE:-bench}): load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
    "${run[@]}"
  )
done
