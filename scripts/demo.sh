#!/usr/bin/env bash
# The main job without an AWS account: the `esdk` CLI encrypts and decrypts a file with a
# local raw AES-256 key file (generated with `esdk keygen` on first use), prints the message
# metadata, checks the round trip, and shows that a wrong key is refused.
# Usage: bash scripts/demo.sh [FILE]   (default: a generated 16 MiB file)
# Env:   ESDK_DEMO_KEY  the key file (default target/demo/local.key; kept between runs)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cargo build -q --release -p esdk-cli --bin esdk
esdk="${CARGO_TARGET_DIR:-target}/release/esdk"
key=${ESDK_DEMO_KEY:-target/demo/local.key}
mkdir -p "$(dirname "$key")"
if [ ! -e "$key" ]; then
  "$esdk" keygen --output "$key"
  echo "new key file: $key (mode $(stat -c %a "$key"))"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=${1:-$work/sample.bin}
[ -n "${1:-}" ] || head -c $((16 << 20)) /dev/urandom > "$input"

echo "== encrypt $(stat -c %s "$input") bytes (suite 0x0578: committing, signed)"
time "$esdk" encrypt -i "$input" -o "$work/msg.esdk" --raw-aes-key "$key" \
  -c purpose=demo -c host="$(hostname)" --metadata-output -
echo "== decrypt (the encryption context must match)"
time "$esdk" decrypt -i "$work/msg.esdk" -o "$work/plain.bin" --raw-aes-key "$key" \
  -c purpose=demo --metadata-output -
cmp "$input" "$work/plain.bin"
echo "decrypted file matches the input"

echo "== a wrong key is refused, and no output is left behind"
"$esdk" keygen --output "$work/other.key"
if "$esdk" decrypt -i "$work/msg.esdk" -o "$work/wrong.bin" --raw-aes-key "$work/other.key"; then
  echo "ERROR: decrypted with the wrong key" >&2; exit 1
fi
[ ! -e "$work/wrong.bin" ] && echo "refused (exit code above), no partial output"
