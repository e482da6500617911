#!/usr/bin/env python3
"""Prints a `--features` list: every workspace member's default features, except the named
features of one member. Used with `cargo ... --workspace --no-default-features --features`, so
that every other member, and with them the dependencies, keeps the features of the
workspace's own build: only that member is compiled again. (`-p member --no-default-features`
resolves a feature set of its own, and cargo then builds most of the tree again.)

Usage: cargo metadata --no-deps --format-version 1 | defaults-but.py esdk-cli pkcs11 [kms ...]
"""
import json
import sys

member, leave_out = sys.argv[1], set(sys.argv[2:])
features = []
for p in json.load(sys.stdin)["packages"]:
    defaults = p["features"].get("default") or []
    if p["name"] == member:
        features += [f"{member}/{f}" for f in defaults if f not in leave_out]
    elif defaults:
        features.append(p["name"] + "/default")
print(",".join(features))
