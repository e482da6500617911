#!/usr/bin/env bash
# The KMS keyring and caching CMM tests against a local KMS-compatible server.
#
# Sets everything up on a fresh Debian machine: a venv with moto[server] 5.2.x and
# cryptography (.venv-kms), the official Python ESDK for the interop test
# (scripts/python-peer.sh), the official aws-encryption-cli for the drop-in test
# (scripts/awscli-peer.sh), a free port on 127.0.0.1, the server
# (../shared/peers/kms_server.py through scripts/kms-server.py), then runs
#   cargo test --workspace --test kms --test kms_rsa --test kms_ecdh --test kms_hierarchy --test caching --test cli_kms --test cli_awscli
# and the kms_stream example on a 64 MiB file, and stops the server. The tests never skip: if
# the server cannot start, this script (and the tests) fail.
#
# Usage: bash scripts/kms-test.sh [extra cargo test args, e.g. a test name filter]
# Env:   ESDK_KMS_MEASURE_N (default 10000) messages for the cache measurement.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ESDK_SHARED_DIR=${ESDK_SHARED_DIR:-$(cd "$root/../shared" && pwd)}
venv="$root/.venv-kms"

if ! "$venv/bin/python" -c 'import moto.server, cryptography, flask' 2>/dev/null; then
  echo "kms-test: creating $venv with moto[server] 5.2.x" >&2
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    if command -v apt-get >/dev/null; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5.2,<5.3' cryptography
fi

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
out=$(mktemp)
"$venv/bin/python" scripts/kms-server.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log" "$out"
}
trap cleanup EXIT

ready=0
for _ in $(seq 1 600); do
  if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
    ready=1
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "kms-test: the KMS server did not start on 127.0.0.1:$port:" >&2
  cat "$log" >&2
  exit 1
fi
export ESDK_KMS_ENDPOINT="http://127.0.0.1:$port"
echo "kms-test: KMS server (pid $pid) at $ESDK_KMS_ENDPOINT" >&2

export ESDK_PY
ESDK_PY=$(bash scripts/python-peer.sh)
export ESDK_TEST_AWSCLI
ESDK_TEST_AWSCLI=$(bash scripts/awscli-peer.sh)

set -o pipefail
# Unit tests of the KMS and caching modules (ARN parsing, MRK rules, LRU), then the
# integration tests against the server.
# The same package selection as scripts/test.sh's workspace run, so the build is reused
# (`-p esdk` alone would resolve other features and rebuild).
sel=(--workspace)
cargo test "${sel[@]}" --lib -- kms:: caching::
cargo test "${sel[@]}" --test kms --test kms_rsa --test kms_ecdh --test kms_hierarchy --test caching --test cli_kms --test cli_awscli "$@" -- --show-output 2>&1 | tee "$out"

echo
echo "=== kms_stream example: 64 MiB through KMS (two regions)"
work=$(mktemp -d)
trap 'cleanup; rm -rf "$work"' EXIT
head -c $((64 << 20)) /dev/urandom >"$work/big.bin"
keys=$("$venv/bin/python" - "$ESDK_KMS_ENDPOINT" <<'EOF'
import sys, boto3
arns = []
for region in ("us-west-2", "eu-central-1"):
    kms = boto3.client("kms", region_name=region, endpoint_url=sys.argv[1],
                       aws_access_key_id="test", aws_secret_access_key="test")
    arns.append(kms.create_key()["KeyMetadata"]["Arn"])
print(" ".join(arns))
EOF
)
set -- $keys
cargo build -q "${sel[@]}" --example kms_stream
ex="${CARGO_TARGET_DIR:-$root/target}/debug/examples/kms_stream"
# Peak memory, when GNU time is there: it stays near the frame and buffer sizes, not 64 MiB.
timed=()
if [ -x /usr/bin/time ]; then timed=(/usr/bin/time -f "  peak RSS %M KiB"); fi
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_ENDPOINT_URL_KMS="$ESDK_KMS_ENDPOINT" \
  "${timed[@]}" "$ex" encrypt --key "$1" --key "$2" --ec purpose=kms-test -i "$work/big.bin" -o "$work/big.esdk"
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_ENDPOINT_URL_KMS="$ESDK_KMS_ENDPOINT" \
  "${timed[@]}" "$ex" decrypt --key "$2" --ec purpose=kms-test -i "$work/big.esdk" -o "$work/big.out"
cmp "$work/big.bin" "$work/big.out"
echo "kms_stream: round trip OK"

echo
echo "=== measurements"
grep -h "MEASURE" "$out" || true
