#!/usr/bin/env bash
# Builds Kryoptic (a PKCS#11 soft token written in Rust, from crates.io) and sets up a private
# token with the esdk-pkcs11 test keys. Prints `export VAR=...` lines on stdout; logs go to
# stderr. Usage:
#
#   eval "$(scripts/pkcs11-kryoptic.sh)"        # then: cargo test --workspace --test token_aes ...
#
# Tokens (user PIN 1234, SO PIN 12345678): esdk-test (slot 42) with the AES-256 key "esdk-aes256"
# (id 01) and the RSA-2048 pair "esdk-rsa" (id 02); wrong-pin-test (slot 43) for the wrong-PIN
# test. There is no removable token: the removed-token test runs on SoftHSM2 only.
#
# Kryoptic does RSA-OAEP with SHA-1/256/384/512 (SoftHSM2 2.6.1 only SHA-1), so the SHA-2 OAEP
# tests run here. kryoptic 1.5.4 is a cdylib-only crate, so it is built through a small shim crate
# that depends on kryoptic-lib and exports the PKCS#11 entry points (cold build ~50 s on 2 cores;
# cached under $PKCS11_KRYOPTIC_BUILD, default $CARGO_TARGET_DIR/kryoptic or /tmp/esdk-kryoptic).
#
# Environment (all optional):
#   PKCS11_TEST_DIR        private directory for the token and keys (default: a new mktemp -d)
#   PKCS11_KRYOPTIC_BUILD  where the shim crate is written and built
#   PKCS11_TEST_AES_KEY    AES-256 key (hex) to import; default: random
#   PKCS11_TEST_RSA_PEM    RSA private key (PEM) to import; default: a new 2048-bit key
set -euo pipefail
log() { echo "pkcs11-kryoptic: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_pkgs=()
command -v pkcs11-tool >/dev/null || need_pkgs+=(opensc)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
[ -e /usr/include/clang-c/Index.h ] || ls /usr/lib/llvm-*/include/clang-c/Index.h >/dev/null 2>&1 || need_pkgs+=(libclang-dev)
[ -e /usr/include/sqlite3.h ] || need_pkgs+=(libsqlite3-dev)
[ -e /usr/include/openssl/evp.h ] || need_pkgs+=(libssl-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  command -v apt-get >/dev/null || die "apt-get not found; install ${need_pkgs[*]} by hand"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2 \
    || die "apt-get install ${need_pkgs[*]} failed"
fi

build=${PKCS11_KRYOPTIC_BUILD:-${CARGO_TARGET_DIR:-/tmp/esdk-kryoptic}/kryoptic}
mkdir -p "$build/src"
cat > "$build/Cargo.toml.new" <<'EOF'
[package]
name = "kryoptic-shim"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
name = "kryoptic_pkcs11"
crate-type = ["cdylib"]

[dependencies]
# ecc_all needs OpenSSL >= 3.2; Debian 12 has 3.0, so ecc_min.
kryoptic-lib = { version = "=1.5.4", default-features = false, features = ["dynamic", "sqlitedb", "ecc_min", "rsa", "aes", "hash_all", "hkdf"] }

[profile.release]
debug = false
# Kryoptic's cryptography is OpenSSL's (the `dynamic` feature): its own code is PKCS#11
# bookkeeping, which the tests never wait on. Unoptimized, it builds in under a minute on
# 2 cores instead of about four.
opt-level = 0

[workspace]
EOF
cat > "$build/src/lib.rs.new" <<'EOF'
//! Exports Kryoptic's PKCS#11 entry points from a cdylib.
#![allow(non_snake_case)]
use kryoptic_lib::fns::general::{fn_get_function_list, fn_get_interface, fn_get_interface_list};
use kryoptic_lib::pkcs11::*;

#[no_mangle]
pub extern "C" fn C_GetFunctionList(list: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    fn_get_function_list(list)
}

#[no_mangle]
pub extern "C" fn C_GetInterfaceList(list: CK_INTERFACE_PTR, count: CK_ULONG_PTR) -> CK_RV {
    fn_get_interface_list(list, count)
}

#[no_mangle]
pub extern "C" fn C_GetInterface(
    name: CK_UTF8CHAR_PTR,
    version: CK_VERSION_PTR,
    interface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    fn_get_interface(name, version, interface, flags)
}
EOF
for f in Cargo.toml src/lib.rs; do
  if ! cmp -s "$build/$f.new" "$build/$f"; then mv "$build/$f.new" "$build/$f"; else rm "$build/$f.new"; fi
done
module="$build/target/release/libkryoptic_pkcs11.so"
log "building Kryoptic in $build (cached after the first build)"
start=$(date +%s)
(cd "$build" && CARGO_TARGET_DIR="$build/target" cargo build --release --quiet >&2) \
  || die "building kryoptic-lib 1.5.4 failed (needs libclang-dev, libsqlite3-dev, libssl-dev)"
[ -f "$module" ] || die "build produced no $module"
log "built $module in $(( $(date +%s) - start )) s"

dir=${PKCS11_TEST_DIR:-$(mktemp -d /tmp/esdk-kryoptic-token.XXXXXX)}
mkdir -p "$dir"
chmod 700 "$dir"
rm -f "$dir/token.sql"
slot=42
pin_slot=43
rm -f "$dir/pin-token.sql"
cat > "$dir/kryoptic.conf" <<EOF
[[slots]]
slot = $slot
dbtype = "sqlite"
dbargs = "$dir/token.sql"

[[slots]]
slot = $pin_slot
dbtype = "sqlite"
dbargs = "$dir/pin-token.sql"
EOF
export KRYOPTIC_CONF="$dir/kryoptic.conf"
label=esdk-test
so_pin=12345678
pin=1234
p11() { pkcs11-tool --module "$module" "$@"; }
p11 --init-token --slot "$slot" --label "$label" --so-pin "$so_pin" >/dev/null 2>&1 \
  || die "pkcs11-tool --init-token on Kryoptic failed"
p11 --token-label "$label" --login --login-type so --so-pin "$so_pin" --init-pin --pin "$pin" >/dev/null 2>&1 \
  || die "pkcs11-tool --init-pin on Kryoptic failed"
# A second token for the wrong-PIN test (no other test logs in to it).
p11 --init-token --slot "$pin_slot" --label wrong-pin-test --so-pin "$so_pin" >/dev/null 2>&1 \
  || die "pkcs11-tool --init-token (wrong-pin-test) on Kryoptic failed"
p11 --slot "$pin_slot" --login --login-type so --so-pin "$so_pin" --init-pin --pin "$pin" >/dev/null 2>&1 \
  || die "pkcs11-tool --init-pin (wrong-pin-test) on Kryoptic failed"

aes_hex=${PKCS11_TEST_AES_KEY:-$(openssl rand -hex 32)}
python3 -c "import sys;open(sys.argv[1],'wb').write(bytes.fromhex(sys.argv[2]))" "$dir/aes.bin" "$aes_hex" \
  || die "bad PKCS11_TEST_AES_KEY"
if [ -n "${PKCS11_TEST_RSA_PEM:-}" ]; then
  cp "$PKCS11_TEST_RSA_PEM" "$dir/rsa.pem"
else
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/rsa.pem" 2>/dev/null
fi
openssl pkey -in "$dir/rsa.pem" -pubout -out "$dir/rsa.pub.pem"
login=(--slot "$slot" --login --pin "$pin")
p11 "${login[@]}" --write-object "$dir/aes.bin" --type secrkey --key-type AES:32 \
  --label esdk-aes256 --id 01 --sensitive >/dev/null 2>&1 || die "importing the AES key failed"
rm -f "$dir/aes.bin"
p11 "${login[@]}" --write-object "$dir/rsa.pem" --type privkey --label esdk-rsa --id 02 \
  --usage-decrypt --sensitive >/dev/null 2>&1 || die "importing the RSA private key failed"
p11 "${login[@]}" --write-object "$dir/rsa.pub.pem" --type pubkey --label esdk-rsa --id 02 \
  --usage-decrypt >/dev/null 2>&1 || die "importing the RSA public key failed"
log "token '$label' ready in $dir"

cat <<EOF
export KRYOPTIC_CONF='$dir/kryoptic.conf'
export TEST_PKCS11_MODULE='$module'
export ESDK_TEST_PKCS11_TOKEN='$label'
export ESDK_TEST_PKCS11_PIN='$pin'
export ESDK_TEST_PKCS11_AES_LABEL='esdk-aes256'
export ESDK_TEST_PKCS11_AES_ID='01'
export ESDK_TEST_PKCS11_AES_KEY='$aes_hex'
export ESDK_TEST_PKCS11_RSA_LABEL='esdk-rsa'
export ESDK_TEST_PKCS11_RSA_PEM='$dir/rsa.pem'
export ESDK_TEST_PKCS11_RSA_PUB_PEM='$dir/rsa.pub.pem'
export ESDK_TEST_PKCS11_OAEP_HASHES='sha1,sha256,sha384,sha512'
export ESDK_TEST_PKCS11_TOKEN_IV='message-random'
export ESDK_TEST_PKCS11_PIN_TOKEN='wrong-pin-test'
export ESDK_TEST_PKCS11_DIR='$dir'
EOF
