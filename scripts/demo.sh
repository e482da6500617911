#!/usr/bin/env bash
# The main job without an AWS account: encrypt and decrypt a file with a local key file.
# Usage: bash scripts/demo.sh [FILE]   (default: a generated 16 MiB file)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
input=${1:-$work/sample.bin}
[ -n "${1:-}" ] || head -c $((16 << 20)) /dev/urandom > "$input"
cargo run -q --release -p esdk-examples --example local_key_file -- "$work/local.key" "$input"
cmp "$input" "$input.esdk.decrypted" && echo "decrypted file matches the input"
