#!/usr/bin/env bash
# Builds release and prints the performance report in one run (issue #16), for 1 and N threads
# (N = available parallelism): raw AES-GCM and SHA-384 of each provider (pure Rust, aws-lc) on
# one core; in memory, esdk::encrypt / esdk::decrypt of 0x0478 / 0x0578 at 4 KiB, 64 KiB and
# 1 MiB frames as ratios to those; the whole `esdk` process on a 256 MiB file (in /dev/shm) at
# 4 KiB and 1 MiB frames with --threads 1 and N next to the official Python ESDK; the 100-byte
# process and in-process latencies; then the goals with PASS / MISS. Details and timing rules:
# cli/benches/report.rs. About 3-4 minutes on 2 cores (the Python ESDK takes most of it).
#
#   scripts/bench.sh                        # the full report
#   ESDK_BENCH_CLI_MIB=0 scripts/bench.sh   # without the whole-process / Python part
#   ESDK_BENCH_RANGE_MIB=0 scripts/bench.sh # without the random-access goal (issue #17: the
#                                           # last 4 KiB of a 1 GiB message, cli/benches/range.rs)
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
cargo bench -q -p esdk-cli --bench range
