#!/usr/bin/env bash
# Every test of the project. Sets up what it needs on a fresh Debian machine first.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
t0=$(date +%s)
# Each step says when it starts (seconds since the start): where a cold run spends its time.
step() { printf '\n=== %s [%d s]\n' "$*" "$(($(date +%s) - t0))"; }

# Steps that share nothing with the ones after them run in the background, on their own
# target directories, while those run (2 cores: the server-backed suites below leave one
# mostly idle). Each background step's output is kept and printed, with its exit status,
# when it is collected; a failure fails the run there.
declare -A job_pid job_log job_start job_title
start_job() {
  local name=$1
  job_title[$name]=$2
  shift 2
  job_log[$name]=$(mktemp)
  job_start[$name]=$(date +%s)
  # A session (and process group) of its own, so that a failing run stops it and its
  # children (see the EXIT trap).
  setsid "$@" >"${job_log[$name]}" 2>&1 &
  job_pid[$name]=$!
  printf '\n=== %s: started in the background [%d s]\n' "${job_title[$name]}" "$(($(date +%s) - t0))"
}
stop_jobs() {
  local p
  for p in "${job_pid[@]}"; do kill -- "-$p" 2>/dev/null || true; done
}
trap stop_jobs EXIT
finish_job() {
  local name=$1 rc=0
  wait "${job_pid[$name]}" || rc=$?
  unset "job_pid[$name]"
  step "${job_title[$name]} (ran in the background; collected after $(($(date +%s) - job_start[$name])) s)"
  cat "${job_log[$name]}"
  rm -f "${job_log[$name]}"
  if [ "$rc" -ne 0 ]; then echo "FAILED: ${job_title[$name]} (exit $rc)"; exit "$rc"; fi
}

step "setup"
bash scripts/setup.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The tool without KMS and PKCS#11 (the features a user may turn off), and the API docs with
# every link resolved (what docs.rs would build).
cargo clippy -p esdk-cli --no-default-features --all-targets -- -D warnings
# The examples too: their docs are checked as well, and with them in the selection cargo
# resolves the dev-dependencies' features as clippy --all-targets did, so the dependencies are
# not checked a second time with another feature set.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --examples -q
bash scripts/msrv.sh
# Every library crate and the tool package for crates.io (manifests, READMEs, dependencies
# resolvable from the registry plus each other); the no_std ones are also built from their
# packages (the others would rebuild aws-lc and the AWS SDK a second time).
cargo package --locked --allow-dirty --no-verify -q -p esdk-core -p esdk-raw -p esdk-aws-lc \
  -p esdk-pkcs11 -p esdk -p esdk-cli
# Cargo unpacks the crates of its temporary package registry into
# ~/.cargo/registry/src/-<hash of the registry's path>/ once and reuses that copy when a later
# run packages the same name and version from the same path: a clone at the same place then
# verifies against an earlier commit's sources. Our crates' copies are removed first.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/esdk-*
cargo package --locked --allow-dirty -q -p esdk-core -p esdk-raw

step "no_std: the core builds for thumbv7em-none-eabihf"
# Checked (no code generation) in each feature set: the firmware probes below compile and
# link the same crates for this target in full, so a second code generation here only cost
# time (about 140 s of a cold run).
cargo check -q -p esdk-core -p esdk-raw --target thumbv7em-none-eabihf
cargo check -q -p esdk-core --features embedded-io,embedded-io-async,defmt,heapless --target thumbv7em-none-eabihf
cargo check -q -p esdk-raw --features ecdh --target thumbv7em-none-eabihf
# One curve alone (the firmware probes build P-384 alone): the keyring's per-curve code paths.
cargo check -q -p esdk-raw --features ecdh-p256 --target thumbv7em-none-eabihf
cargo check -q -p esdk-raw --features ecdh-p521 --target thumbv7em-none-eabihf
# The firmware probes (firmware/, no heap) built, run on an emulated Cortex-M4 (QEMU
# mps2-an386), their output checked on the host (esdk and the Python ESDK), and their flash,
# static RAM and stack checked against the budgets in scripts/firmware.sh.
bash scripts/firmware.sh

step "unit, integration and doc tests (includes the Rust <-> Python interop matrix), and beside them the server-backed suites"
bash scripts/python-peer.sh >/dev/null
test_log="$(mktemp)"
# Every test binary of the run is built first, with both cores: the workspace's, and the
# server-backed suites' (`test = false`, run by the KMS and PKCS#11 steps against their
# servers), so that nothing is compiled once the suites run side by side below.
server_tests=$(cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if t["kind"] == ["test"] and not t.get("test", True):
            print("--test", t["name"])')
# shellcheck disable=SC2086 # one word per flag and name
if ! { cargo test --workspace --no-run && cargo test --workspace --no-run $server_tests; } >"$test_log" 2>&1; then
  grep -E '^error' -A12 "$test_log" | head -60 || true
  echo "--- building the test binaries failed; the end of the log:"; tail -40 "$test_log"; exit 1
fi
# From here the suites run side by side on the 2 cores: the workspace's tests in the
# foreground (many of their binaries on one thread), and in the background the jobs with
# their own target directories (nothing of the workspace build is reusable for them: another
# target; a nightly fuzzing build) and the server-backed steps (scripts/test-servers.sh:
# KMS, PKCS#11, examples, vectors, interop; mostly waiting on their Python and PKCS#11
# servers). Each background job's output is printed when it is collected, at the end.
start_job i686 "32-bit target (i686): core, raw and embedded-io tests, lengths near 2^32" \
  env CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/i686-job" bash scripts/test-32bit.sh
start_job fuzz "fuzz smoke (cargo-fuzz on nightly: regression inputs, then 10 s per target)" \
  bash scripts/fuzz-smoke.sh
# The KMS step first: the PKCS#11 step's Kryoptic (built from crates.io, under a minute) is
# built meanwhile by a job of its own, where pkcs11-test.sh looks for it (its token there
# is set up anew). Everything they install with apt-get, scripts/setup.sh installed at the
# start, so no two apt-get runs meet.
kryoptic_token=$(mktemp -d /tmp/esdk-kryoptic-prebuild.XXXXXX)
start_job kryoptic "Kryoptic built for the PKCS#11 step" \
  env PKCS11_KRYOPTIC_BUILD="${CARGO_TARGET_DIR:-$PWD/target}/kryoptic" PKCS11_TEST_DIR="$kryoptic_token" \
  bash scripts/pkcs11-kryoptic.sh
# The workspace's run below has the aws-lc provider's message hash in the system OpenSSL (the
# `esdk` tool's default `openssl-sha` feature); here the provider alone, with aws-lc's hash.
# Its own feature set rebuilds some dependencies (about 160 s of a cold run): done here, while
# the background jobs build, rather than at the end with the cores half idle.
cargo test -q -p esdk-aws-lc --lib 2>&1 | grep -E '^test result'
# The tool without its pkcs11 feature (pkcs11-test.sh's check) before anything runs the
# tool: that build is uplifted to the same target/debug/esdk; the workspace's is relinked
# after it, and the PKCS#11 step is told not to do it again. The workspace's tests run with
# one log kept: the counts the suites print are shown after it (a failure shows its messages
# and the end of the log).
bash scripts/cli-no-pkcs11.sh
# shellcheck disable=SC2086
if ! { cargo test --workspace --no-run && cargo test --workspace --no-run $server_tests; } >"$test_log" 2>&1; then
  echo "--- relinking the workspace's build failed:"; tail -40 "$test_log"; exit 1
fi
export ESDK_CLI_NO_PKCS11_DONE=1
start_job servers "AWS KMS (moto, 127.0.0.1), PKCS#11 (SoftHSM2, Kryoptic), examples, official vectors, Python interop" \
  env ESDK_INTEROP_MATRIX_DONE=1 bash scripts/test-servers.sh
if ! cargo test --workspace -- --nocapture >"$test_log" 2>&1; then
  grep -E 'panicked|^FAIL|^failures:|test result: FAILED|^error' "$test_log" | head -60
  echo "--- end of the log:"; tail -60 "$test_log"; exit 1
fi
grep -cE '^test result: ok' "$test_log" | sed 's/^/test binaries and doc-test groups passed: /'
awk '/^test result: ok/ { p += $4; i += $8 } END { print "tests passed: " p ", ignored: " i }' "$test_log"
# The counts of the suites that check many cases each: official vectors in every mode under
# both providers (#13), exact negative-vector errors, release recording, the tamper sweep,
# hostile headers (work counted) and resource limits (#14), fault injection (#14; the
# embedded-io front end's too: esdk-core's embedded-io features are on in the workspace), secrets
# (Debug and memory), no allocation from a cold start, round-trip properties, fuzz regressions.
grep -E '^(all modes, both providers|negative-vector expectations|truncations|recorded releases|tamper sweep|round-trip property|hostile|fault injection|secrets \(memory\): [0-9]+ checks|eio fault injection|no-alloc: [0-9]+ cases|fuzz regressions|python-4.0.7 raw-AES vectors)' \
    "$test_log" | sort | uniq
rm -f "$test_log"

finish_job kryoptic
rm -rf "$kryoptic_token"
finish_job servers
finish_job i686
finish_job fuzz
echo
echo "all tests passed in $(( $(date +%s) - t0 )) s"
