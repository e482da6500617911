#!/usr/bin/env bash
# Times the hostile messages of issue #14 (tests/src/bin/hostile-headers.rs: huge EDK lists,
# maximal sorted / unsorted / reverse-sorted encryption contexts, the 6.4 MB header with an
# 8,836-pair unsorted context and 65,535 EDKs) through the whole `esdk decrypt` process, from
# a file and from a pipe, next to the official Python ESDK (PyPI, shared/peers/pyesdk_peer.py)
# on the same files. Every file but `*-decrypts.esdk` must be refused (the EDK is wrapped under
# another key name, so the header is the only work); that one must decrypt. Best of RUNS
# (default 3) wall times per command, in seconds.
#
# Usage: bash scripts/hostile-bench.sh            (env RUNS, ESDK_PEER_PYTHON)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${RUNS:-3}
py=${ESDK_PEER_PYTHON:-$(bash scripts/python-peer.sh)}
peer="$root/../shared/peers/pyesdk_peer.py"
[ -f "$peer" ] || { echo "FAILED: no Python peer at $peer" >&2; exit 1; }
cargo build -q --release -p esdk-cli --bin esdk -p esdk-tests --bin hostile-headers
bin="${CARGO_TARGET_DIR:-$root/target}/release"
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$bin/hostile-headers" "$dir/msgs" >/dev/null
key_hex=$(python3 -c 'print(bytes(range(32)).hex())')
python3 -c 'import sys; open(sys.argv[1],"wb").write(bytes(range(32)))' "$dir/key"

# Prints the best wall time of $runs runs of "$@"; the last exit code goes to $dir/rc.
best() {
  local b=999999 t0 t1 i
  for ((i = 0; i < runs; i++)); do
    t0=$(date +%s.%N)
    set +e; "$@" >/dev/null 2>"$dir/err"; echo $? >"$dir/rc"; set -e
    t1=$(date +%s.%N)
    b=$(python3 -c "print(min($b, $t1 - $t0))")
  done
  printf '%.3f' "$b"
}
ours() { "$bin/esdk" decrypt -q --raw-aes-key "$dir/key" --key-namespace hostile --key-name aes-256 "$@"; }
ours_pipe() { cat "$1" | ours -i - -o "$dir/out.pipe"; }
theirs() { "$py" "$peer" decrypt -i "$1" -o "$dir/out.py" --aes-key "$key_hex" --provider-id hostile --key-name aes-256; }

printf '%-44s %10s | %10s %10s | %10s | %s\n' file bytes "esdk file" "esdk pipe" "Python" "verdicts (esdk / Python)"
fail=0
for f in "$dir"/msgs/*.esdk; do
  name=$(basename "$f"); size=$(stat -c %s "$f")
  t_ours=$(best ours -i "$f" -o "$dir/out"); rc_ours=$(cat "$dir/rc")
  t_pipe=$(best ours_pipe "$f"); rc_pipe=$(cat "$dir/rc")
  t_py=$(best theirs "$f"); rc_py=$(cat "$dir/rc")
  want=1; case "$name" in *decrypts*) want=0 ;; esac
  v_ours=$([ "$rc_ours" -eq 0 ] && echo ok || echo refused); v_py=$([ "$rc_py" -eq 0 ] && echo ok || echo refused)
  printf '%-44s %10s | %10s %10s | %10s | %s / %s\n' "$name" "$size" "$t_ours" "$t_pipe" "$t_py" "$v_ours" "$v_py"
  if { [ "$want" -eq 0 ] && [ "$rc_ours$rc_pipe" != "00" ]; } || { [ "$want" -ne 0 ] && { [ "$rc_ours" -eq 0 ] || [ "$rc_pipe" -eq 0 ]; }; }; then
    echo "  FAILED: unexpected esdk verdict (exit $rc_ours file, $rc_pipe pipe)"; fail=1
  fi
  if python3 -c "import sys; sys.exit(0 if max($t_ours, $t_pipe) < 1.0 else 1)"; then :; else
    echo "  MISS: over 1 s whole process"; fi
done
exit $fail
