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
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf
rustup target list --installed | grep -qx i686-unknown-linux-gnu || rustup target add i686-unknown-linux-gnu
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
# The oldest Rust the libraries declare (workspace rust-version), for scripts/msrv.sh.
msrv=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
rustup toolchain list | grep -q "^$msrv-" || rustup toolchain install "$msrv" --profile minimal
