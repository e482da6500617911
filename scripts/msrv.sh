#!/usr/bin/env bash
# The declared minimum Rust versions are true.
#
# 1. For every crate that would be published, its `rust-version` is at least every
#    (non-dev) dependency's own `rust-version`, as resolved in Cargo.lock.
# 2. The no_std crates (esdk-core, esdk-raw with its no_std keyrings) build with the oldest
#    toolchain they declare (installed by scripts/setup.sh), not just the current one.
#
# The std crate `esdk` and the tool declare what aws-sdk-kms / aws-config need; the other
# libraries what sha2 0.11 needs. Usage: bash scripts/msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
cargo metadata --format-version 1 --locked >"$meta"
python3 - "$meta" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
pk = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
ver = lambda v: tuple(int(x) for x in v.split(".")) if v else (0,)
bad = 0
for w in m["workspace_members"]:
    p = pk[w]
    if p.get("publish") == []:
        continue  # test and example crates
    seen, stack = set(), [w]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        for d in nodes[i]["deps"]:
            if all(k["kind"] == "dev" for k in d["dep_kinds"]):
                continue
            stack.append(d["pkg"])
    need, who = (0,), "-"
    for i in seen - {w}:
        rv = ver(pk[i].get("rust_version"))
        if rv > need:
            need, who = rv, f'{pk[i]["name"]} {pk[i]["version"]}'
    declared = p.get("rust_version")
    ok = declared is not None and ver(declared) >= need
    bad += not ok
    print(f'msrv: {p["name"]:12} declares {declared}, dependencies need '
          f'{".".join(map(str, need))} ({who}): {"ok" if ok else "TOO LOW"}')
sys.exit(1 if bad else 0)
PY
core=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
echo "msrv: building esdk-core and esdk-raw (no_std keyrings) with Rust $core"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/msrv" \
  cargo "+$core" check --locked -q -p esdk-core -p esdk-raw \
  --features esdk-core/embedded-io,esdk-core/embedded-io-async,esdk-core/heapless,esdk-raw/ecdh
echo "msrv: ok"
