#!/usr/bin/env bash
# The `esdk` tool built without its `pkcs11` feature refuses PKCS#11 keys (a usage error,
# cli/tests/cli.rs `pkcs11_keys_need_the_pkcs11_feature`, a test that exists only in such a
# build). Run by scripts/pkcs11-test.sh, and by scripts/test.sh before the suites that run
# the tool: this build is uplifted to the same target/debug/esdk as the workspace's, so
# nothing may run the tool meanwhile; test.sh relinks the workspace's build after it.
#
# The whole workspace is selected, with every member's default features named again except
# esdk-cli's `pkcs11` (scripts/defaults-but.py): dependencies keep the workspace's features,
# so only esdk-cli and its tests are compiled again. (`-p esdk-cli --no-default-features`
# resolved a feature set of its own and rebuilt the AWS SDK and most of the tree: 15 minutes
# of a cold CI run.) "1 passed" proves which build ran.
set -euo pipefail
cd "$(dirname "$0")/.."
defaults_but_pkcs11=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 scripts/defaults-but.py esdk-cli pkcs11)
out=$(cargo test --workspace --no-default-features --features "$defaults_but_pkcs11" \
  --test cli pkcs11_keys_need_the_pkcs11_feature 2>&1) || { echo "$out"; exit 1; }
grep -q '^test result: ok. 1 passed' <<<"$out" || {
  echo "$out"; echo "cli-no-pkcs11: ERROR: the CLI test without the pkcs11 feature did not run" >&2; exit 1; }
echo "cli-no-pkcs11: the esdk tool built without the pkcs11 feature refuses PKCS#11 keys: ok"
