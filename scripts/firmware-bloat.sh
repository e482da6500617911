#!/usr/bin/env bash
# Where the firmware probes' flash goes, cargo-bloat style: for each probe image (built by
# scripts/firmware.sh, or here when missing), the code + read-only data per crate and the
# largest functions. Uses the symbol table of the release images (llvm-nm --size-sort, or
# nm); a symbol's crate is the first path segment of its demangled name (`<A as B>::f`
# counts for A's crate), and the bytes no symbol covers (padding, literal pools merged by
# the linker) are listed as `[unattributed]`.
#   bash scripts/firmware-bloat.sh [PROBE...] [--top N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
top=15
probes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --top) top=$2; shift 2 ;;
    *) probes+=("$1"); shift ;;
  esac
done
[ ${#probes[@]} -gt 0 ] || probes=(telemetry ecdh-sender receiver probe-eio probe-inplace)
images="$root/firmware/target/thumbv7em-none-eabihf/release"
if [ ! -f "$images/${probes[0]}" ]; then
  (cd "$root/firmware" && CARGO_TARGET_DIR="$root/firmware/target" cargo build --release -q)
fi
nm_tool=$(command -v llvm-nm || command -v nm)
for p in "${probes[@]}"; do
  img="$images/$p"
  [ -f "$img" ] || { echo "firmware-bloat: no image $img" >&2; exit 1; }
  text=$(size -A "$img" | awk '$1 == ".text" || $1 == ".rodata" || $1 == ".vector_table" { s += $2 } END { print s }')
  "$nm_tool" --print-size --size-sort --demangle "$img" | python3 -c '
import re, sys
top, total, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
syms = []
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 4 or parts[2] not in "TtRrWwVv":
        continue
    size, sym = int(parts[1], 16), parts[3]
    # Drop the hash suffix the demangler leaves, and the generic arguments.
    sym = re.sub(r"::h[0-9a-f]{16}$", "", sym)
    # The legacy mangling escapes llvm-nm 14 leaves in place.
    for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"), ("$BP$", "*"),
                 ("$C$", ","), ("$u7b$", "{"), ("$u7d$", "}"), ("$u5b$", "["), ("$u5d$", "]"),
                 ("$u3b$", ";"), ("..", "::")):
        sym = sym.replace(a, b)
    if sym.startswith("_<"):
        sym = sym[1:]
    syms.append((size, sym))
def crate(sym):
    if sym.startswith(".L"):
        return "[anonymous constants]"
    s = sym.lstrip("<&*").replace("mut ", "").replace("dyn ", "")
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", s)
    if m:
        return m.group(1)
    return "[" + (s.split("(")[0] if s.startswith("_") or s.isidentifier() else "other") + "]"
per = {}
for size, sym in syms:
    c = crate(sym)
    if c.startswith("[") and c not in ("[other]", "[anonymous constants]"):
        c = "[no crate: C/asm/linker]"
    per[c] = per.get(c, 0) + size
covered = sum(per.values())
print(f"== {name}: {total} B flash code+rodata (.vector_table + .text + .rodata)")
print("   per crate:")
for c, s in sorted(per.items(), key=lambda kv: -kv[1]):
    print(f"     {s:7d} B {100*s/total:5.1f}%  {c}")
print(f"     {max(total-covered,0):7d} B {100*max(total-covered,0)/total:5.1f}%  [unattributed]")
print(f"   top {top} symbols:")
for size, sym in sorted(syms, key=lambda t: -t[0])[:top]:
    print(f"     {size:7d} B  {sym[:150]}")
' "$top" "$text" "$p"
done
