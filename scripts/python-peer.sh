#!/usr/bin/env bash
# Creates (once) a venv with the official Python ESDK and prints the python to use.
# Usage: PY=$(scripts/python-peer.sh)   then   $PY ../shared/peers/pyesdk_peer.py ...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-peer"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aws_encryption_sdk, aws_cryptographic_material_providers, boto3' 2>/dev/null; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for ensurepip.
    if command -v apt-get >/dev/null; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$venv" >&2
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check 'aws-encryption-sdk[MPL]>=4,<5' boto3 >&2
fi
echo "$venv/bin/python"
