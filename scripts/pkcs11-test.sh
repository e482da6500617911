#!/usr/bin/env bash
# Runs the esdk-pkcs11 tests against real PKCS#11 tokens, setting everything up itself:
#
#   1. SoftHSM2 (installed with apt-get if missing), private tokens in a temp directory:
#      esdk-pkcs11's token tests (`--test 'token_*'`) and the `esdk` CLI with token keys
#      (`--test cli_pkcs11`), then the hsm_wrap example end to end (encrypt on the token,
#      decrypt with the official Python ESDK and with the example), the hsm_ecdh example (a
#      device encrypts to the token's EC key, the server decrypts on the token), then the CLI built without
#      its `pkcs11` feature, refusing token keys (scripts/cli-no-pkcs11.sh; test.sh runs it
#      earlier and sets ESDK_CLI_NO_PKCS11_DONE=1).
#   2. Kryoptic (built from crates.io): the tests again, where RSA-OAEP SHA-256/384/512 work
#      (SoftHSM2 2.6.1 does OAEP with SHA-1 only). Only `removed_token` and
#      `reinitialized_token_is_found_again` are left out there, and said so: a Kryoptic token
#      cannot be removed or initialized anew from outside the process.
#
# The Python ESDK peer comes from scripts/python-peer.sh (a venv under .venv-peer) unless
# ESDK_TEST_PYTHON names a python that has it. Nothing is skipped silently: a missing tool
# fails the run. PKCS11_TEST_SKIP_KRYOPTIC=1 leaves out step 2 (for quick local runs) and
# says so loudly.
# Every build here selects the whole workspace (`--workspace`, targets named), so dependencies
# get the workspace's features and the build of the main test run is reused, not redone with a
# package's own feature set (aws-lc-sys alone is minutes of C). esdk-pkcs11's unit and doc tests
# need no token and run in the main `cargo test --workspace`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { echo "pkcs11-test: $*" >&2; }

export PKCS11_KRYOPTIC_BUILD=${PKCS11_KRYOPTIC_BUILD:-${CARGO_TARGET_DIR:-$root/target}/kryoptic}
if [ -z "${ESDK_TEST_PYTHON:-}" ]; then
  log "preparing the Python ESDK peer"
  ESDK_TEST_PYTHON=$("$root/scripts/python-peer.sh")
fi
export ESDK_TEST_PYTHON
export ESDK_TEST_PYESDK_PEER=${ESDK_TEST_PYESDK_PEER:-$root/../shared/peers/pyesdk_peer.py}
[ -f "$ESDK_TEST_PYESDK_PEER" ] || { log "ERROR: Python peer $ESDK_TEST_PYESDK_PEER not found"; exit 1; }

if ! command -v openssl >/dev/null; then
  log "installing openssl"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
fi

# One key set for both tokens, so a failure reads the same on each; tokens live beside it.
keys=$(mktemp -d /tmp/esdk-pkcs11-test.XXXXXX)
trap 'rm -rf "$keys"' EXIT
export PKCS11_TEST_AES_KEY=${PKCS11_TEST_AES_KEY:-$(openssl rand -hex 32)}
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/rsa.pem" 2>/dev/null
export PKCS11_TEST_RSA_PEM=${PKCS11_TEST_RSA_PEM:-$keys/rsa.pem}

hsm_wrap_check() {
  local work out
  work=$(mktemp -d /tmp/esdk-hsm-wrap.XXXXXX)
  head -c 100000 /dev/urandom > "$work/report.bin"
  echo "hello from hsm_wrap" > "$work/note.txt"
  (
    export ESDK_PKCS11_MODULE=$TEST_PKCS11_MODULE ESDK_PKCS11_TOKEN=$ESDK_TEST_PKCS11_TOKEN \
      ESDK_PKCS11_PIN=$ESDK_TEST_PKCS11_PIN ESDK_PKCS11_KEY=$ESDK_TEST_PKCS11_AES_LABEL \
      ESDK_PKCS11_NAMESPACE=hsm-wrap-test ESDK_PKCS11_KEY_NAME=wrapping-key
    "$hsm_wrap" encrypt "$work/report.bin" "$work/note.txt"
    mkdir "$work/out"
    "$hsm_wrap" decrypt --out-dir "$work/out" \
      "$work/report.bin.esdk" "$work/note.txt.esdk"
  )
  cmp "$work/report.bin" "$work/out/report.bin"
  cmp "$work/note.txt" "$work/out/note.txt"
  "$ESDK_TEST_PYTHON" "$ESDK_TEST_PYESDK_PEER" decrypt -i "$work/report.bin.esdk" -o "$work/py.bin" \
    --aes-key "$ESDK_TEST_PKCS11_AES_KEY" --provider-id hsm-wrap-test --key-name wrapping-key \
    --ec file=report.bin app=hsm_wrap
  cmp "$work/report.bin" "$work/py.bin"
  rm -rf "$work"
  log "hsm_wrap example: encrypted on the token, decrypted by the example and by the Python ESDK: ok"
}

# The device -> HSM ECDH flow of the hsm_ecdh example: an EC key pair generated on the token
# (CKA_DERIVE), its public key exported, a "device" encrypting to it without the token, the
# server decrypting on the token.
hsm_ecdh_check() {
  local work
  work=$(mktemp -d /tmp/esdk-hsm-ecdh.XXXXXX)
  pkcs11-tool --module "$TEST_PKCS11_MODULE" --token-label "$ESDK_TEST_PKCS11_TOKEN" --login \
    --pin "$ESDK_TEST_PKCS11_PIN" --keypairgen --key-type EC:prime256v1 --label esdk-hsm-ecdh \
    --id 0e --usage-derive >/dev/null
  head -c 700 /dev/urandom > "$work/record.bin"
  (
    export ESDK_PKCS11_MODULE=$TEST_PKCS11_MODULE ESDK_PKCS11_TOKEN=$ESDK_TEST_PKCS11_TOKEN \
      ESDK_PKCS11_PIN=$ESDK_TEST_PKCS11_PIN ESDK_PKCS11_EC_KEY=esdk-hsm-ecdh
    "$hsm_ecdh" public-key "$work/hsm.pub.der"
    env -u ESDK_PKCS11_PIN -u ESDK_PKCS11_TOKEN \
      "$hsm_ecdh" device-encrypt "$work/hsm.pub.der" "$work/record.bin" "$work/record.esdk"
    "$hsm_ecdh" server-decrypt "$work/record.esdk" "$work/record.out"
  )
  cmp "$work/record.bin" "$work/record.out"
  rm -rf "$work"
  log "hsm_ecdh example: a device encrypted to the token's EC key, the server decrypted on the token: ok"
}

token_tests=(--test token_aes --test token_ecdh --test token_errors --test token_python_peer --test token_rsa
  --test token_threads --test token_removal --test token_reinit --test token_session_loss)
cargo build -q --workspace --example hsm_wrap --example hsm_ecdh
hsm_wrap=${CARGO_TARGET_DIR:-$root/target}/debug/examples/hsm_wrap
hsm_ecdh=${CARGO_TARGET_DIR:-$root/target}/debug/examples/hsm_ecdh

log "== SoftHSM2 =="
(
  eval "$(PKCS11_TEST_DIR=$keys/softhsm "$root/scripts/pkcs11-softhsm.sh")"
  log "esdk-pkcs11's token tests and the esdk CLI with --pkcs11-key (esdk-cli feature pkcs11, on by default)"
  cargo test --workspace "${token_tests[@]}" --test cli_pkcs11
  hsm_wrap_check
  hsm_ecdh_check
)
if [ "${ESDK_CLI_NO_PKCS11_DONE:-}" = 1 ]; then
  log "the esdk CLI without the pkcs11 feature: already checked in this run (scripts/test.sh)"
else
  log "the esdk CLI built without the pkcs11 feature refuses PKCS#11 keys (usage error)"
  bash "$root/scripts/cli-no-pkcs11.sh"
fi

if [ "${PKCS11_TEST_SKIP_KRYOPTIC:-}" = 1 ]; then
  log "WARNING: PKCS11_TEST_SKIP_KRYOPTIC=1: the SHA-2 OAEP tests on Kryoptic did NOT run"
  exit 0
fi
log "== Kryoptic (RSA-OAEP SHA-1/256/384/512) =="
(
  eval "$(PKCS11_TEST_DIR=$keys/kryoptic "$root/scripts/pkcs11-kryoptic.sh")"
  log "Kryoptic: running every test except removed_token and reinitialized_token_is_found_again" \
    "(a Kryoptic token cannot be removed or initialized anew from outside the process)"
  cargo test --workspace "${token_tests[@]}" -- --skip removed_token --skip reinitialized_token_is_found_again
)
log "all PKCS#11 tests passed on SoftHSM2 and Kryoptic"
