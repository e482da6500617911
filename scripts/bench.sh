#!/usr/bin/env bash
# Builds release and prints the performance report in one run: raw AES-GCM and SHA-384 of
# each provider (pure Rust, aws-lc), ESDK encrypt/decrypt for 0x0478 / 0x0578 at 4 KiB, 64 KiB
# and 1 MiB frames, a 100-byte round trip, and the `esdk` CLI against the official Python
# ESDK on a 256 MiB file; then the goals with PASS / MISS. Details: cli/benches/report.rs.
#
#   scripts/bench.sh                        # the full report (a few minutes on 2 cores)
#   ESDK_BENCH_CLI_MIB=0 scripts/bench.sh   # without the CLI / Python comparison
#
# Criterion benchmarks of the same core paths: cargo bench -p esdk --bench core
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ "${ESDK_BENCH_CLI_MIB:-256}" != 0 ] && [ -z "${ESDK_PEER_PYTHON:-}" ]; then
  ESDK_PEER_PYTHON=$("$root/scripts/python-peer.sh")
  export ESDK_PEER_PYTHON
fi
cargo build --release -q -p esdk-cli --bin esdk
cargo bench -q -p esdk-cli --bench report
