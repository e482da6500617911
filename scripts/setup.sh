#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine. Idempotent.
set -euo pipefail
need_apt=()
command -v size >/dev/null || need_apt+=(binutils)
python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# 32-bit (i686) C runtime for scripts/test-32bit.sh (and aws-lc-sys when built for i686).
dpkg -s gcc-multilib >/dev/null 2>&1 || need_apt+=(gcc-multilib)
# OpenSSL's headers for esdk-aws-lc's optional `openssl-sha` message hash (tested by test.sh).
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# The emulated Cortex-M4 (mps2-an386) that scripts/firmware.sh runs the firmware probes on.
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
# The PKCS#11 tokens (scripts/pkcs11-softhsm.sh, scripts/pkcs11-kryoptic.sh): installed here
# too, so that those scripts, which test.sh runs beside other steps, never run apt-get at the
# same time as each other.
# Without their recommended packages, as those scripts install them.
need_tokens=()
{ command -v softhsm2-util >/dev/null && [ -e /usr/lib/softhsm/libsofthsm2.so ]; } || need_tokens+=(softhsm2)
command -v pkcs11-tool >/dev/null || need_tokens+=(opensc)
command -v openssl >/dev/null || need_tokens+=(openssl)
[ -e /usr/include/sqlite3.h ] || need_tokens+=(libsqlite3-dev)
{ [ -e /usr/include/clang-c/Index.h ] || ls /usr/lib/llvm-*/include/clang-c/Index.h >/dev/null 2>&1; } \
  || need_tokens+=(libclang-dev)
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_tokens[@]} -gt 0 ]; then
  apt-get update -qq
fi
if [ ${#need_tokens[@]} -gt 0 ]; then
  echo "setup: apt-get install --no-install-recommends ${need_tokens[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_tokens[@]}" >/dev/null
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf
rustup target list --installed | grep -qx i686-unknown-linux-gnu || rustup target add i686-unknown-linux-gnu
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
# The oldest Rust the libraries declare (workspace rust-version), for scripts/msrv.sh.
msrv=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
rustup toolchain list | grep -q "^$msrv-" || rustup toolchain install "$msrv" --profile minimal
