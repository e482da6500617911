#!/usr/bin/env bash
# Creates (once) a venv with the official aws-encryption-cli (PyPI aws-encryption-sdk-cli
# 4.x) and prints the path of its `aws-encryption-cli` command.
# Usage: AWSCLI=$(bash scripts/awscli-peer.sh)   then   "$AWSCLI" -e -i ... -o ... -S ...
# It reaches a local KMS server through AWS_ENDPOINT_URL_KMS (botocore >= 1.31).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-awscli"
cli="$venv/bin/aws-encryption-cli"
if [ ! -x "$cli" ] || ! "$cli" --version >/dev/null 2>&1; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for ensurepip.
    if command -v apt-get >/dev/null; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$venv" >&2
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check 'aws-encryption-sdk-cli>=4.3,<5' 'botocore>=1.31' >&2
fi
echo "$cli"
