#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets from the official test vectors.

Usage: python3 fuzz/make_corpus.py VECTORS_DIR OUT_DIR
Writes OUT_DIR/<target>/<name> for every target. Deterministic; rerunning overwrites.
The input layouts are documented at the top of each fuzz target.
"""
import hashlib
import json
import os
import sys

VEC, OUT = sys.argv[1], sys.argv[2]
TARGETS = ["header", "codecs", "decrypt_oneshot", "decrypt_incremental", "manifest", "roundtrip",
           "decrypt_async", "stream_faults"]


def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u16(b, i):
    return int.from_bytes(b[i:i + 2], "big")


def parse_header(b):
    """Offsets of a header's sections (no validation: the vectors are well formed)."""
    ver = b[0]
    i = 2 if ver == 1 else 1
    suite = u16(b, i)
    i += 2 + (16 if ver == 1 else 32)
    ec_len = u16(b, i)
    ec = (i + 2, i + 2 + ec_len)
    i = ec[1]
    count = u16(b, i)
    i += 2
    edk_start = i
    for _ in range(count * 3):
        i += 2 + u16(b, i)
    edks = (edk_start, i)
    content_type = b[i]
    i += 1 + (5 if ver == 1 else 0) + 4 + (32 if ver == 2 else 0)
    end = i + (12 if ver == 1 else 0) + 16
    return dict(ver=ver, suite=suite, ec=ec, count=count, edks=edks, end=end,
                content_type=content_type)


def key_len(suite):
    return {0x14: 16, 0x46: 24}.get(suite & 0xFF, 32)


def field(x):
    return len(x).to_bytes(2, "big") + x


def to_fuzz_keyring(b):
    """The same message with its EDKs replaced by one FuzzKeyring EDK (the fuzz targets
    reseal the header tag and commitment; frames keep their real tags, so they verify only
    with lax tags)."""
    h = parse_header(b)
    dk = bytes(range(1, key_len(h["suite"]) + 1))
    edk = field(b"fuzz") + field(b"fuzz-info") + field(dk)
    return b[:h["edks"][0] - 2] + (1).to_bytes(2, "big") + edk + b[h["edks"][1]:]


def aes_vectors():
    """(ciphertext, header) of the raw-AES tests of the python-4.0.7-local sets."""
    out = []
    for d in ["python-4.0.7-local", "python-4.0.7-local-zero"]:
        m = json.load(open(os.path.join(VEC, d, "manifest.json")))
        seen = set()
        for tid in sorted(m["tests"]):
            t = m["tests"][tid]
            mk = t["master-keys"]
            if len(mk) != 1 or not mk[0].get("key", "").startswith("aes"):
                continue
            ct = open(os.path.join(VEC, d, t["ciphertext"][len("file://"):]), "rb").read()
            try:
                h = parse_header(ct)
            except IndexError:  # a truncated negative test
                continue
            if h["end"] > len(ct):
                continue
            # One per (suite, content type, key, EC shape, expected result) in each set.
            kind = (d, h["suite"], h["content_type"], mk[0]["key"], h["ec"][1] - h["ec"][0],
                    "output" in t["result"])
            if kind in seen:
                continue
            seen.add(kind)
            out.append((ct, h))
    return out


vectors = aes_vectors()
small = [(ct, h) for ct, h in vectors if len(ct) < 2048]
some_big = [(ct, h) for ct, h in vectors if len(ct) >= 2048][::12]

for ct, h in vectors:
    hdr = ct[:h["end"]]
    put("header", bytes([0, 0, 0, 0]) + hdr)
    put("header", bytes([3, 2, 64, 7]) + hdr)
    put("codecs", bytes([0]) + ct[h["ec"][0]:h["ec"][1]])
    put("codecs", bytes([2]) + h["count"].to_bytes(2, "big") + ct[h["edks"][0]:h["edks"][1]])

for ct, h in small + some_big:
    fz = to_fuzz_keyring(ct)
    # Real provider + vector keys; fuzzing provider, lax (reaches the body), strict.
    put("decrypt_oneshot", bytes([0x01]) + ct)
    put("decrypt_oneshot", bytes([0x06]) + fz)
    put("decrypt_oneshot", bytes([0x00]) + fz)
    put("decrypt_oneshot", bytes([0x36]) + fz)
    put("decrypt_incremental", bytes([0x01, 0x82, 0x10, 0xff]) + ct)
    put("decrypt_incremental", bytes([0x06, 0xc3, 0x00, 0x1f, 0x80]) + fz)
    put("decrypt_incremental", bytes([0x06, 0x00]) + fz)
    put("decrypt_incremental", bytes([0x36, 0x81, 0x07]) + fz)
    # Async vs sync, resealed for the real provider (bit 0), unsigned-only (bit 1).
    put("decrypt_async", bytes([0x01]) + fz)
    put("decrypt_async", bytes([0x03]) + fz)

for s in [b"k\xffv", b"a\xff1\xffb\xff2", b"aws-crypto-x\xffy", b"k\xff1\xffk\xff2",
          "ключ".encode() + b"\xff" + "значение".encode()]:
    put("codecs", bytes([3]) + s)
for s in [bytes([0, 0]), bytes([0, 2, 0, 1, 0x62, 0, 0, 0, 1, 0x61, 0, 0])]:
    put("codecs", bytes([0]) + s)

# Round trip: suite, frame length (2 bytes), flags, flip position (2 bytes), flip bit, then
# the encryption-context pairs and the plaintext (see fuzz_targets/roundtrip.rs).
# Stream faults: suite, frame length - 1, flags (mode, opt-in, damage), flip position (2 bytes),
# schedule length, schedule, plaintext (see fuzz_targets/stream_faults.rs).
for suite in range(11):
    for flags in [0x00, 0x01, 0x02, 0x04, 0x05, 0x08, 0x10, 0x21]:
        put("stream_faults", bytes([suite, 63, flags, 1, 7, 6, 0, 1, 2, 3, 4, 9]) + b"telemetry" * 30)
for suite in range(11):
    put("roundtrip", bytes([suite, 0, 15, 0x06, 0, 200, 0x83]) + b"\x01k\x01v" + b"x" * 40)
    put("roundtrip", bytes([suite, 0x10, 0, 0x00, 1, 0, 0x00]) + b"plaintext" * 300)

# Manifests: selector byte, keys manifest, NUL, decrypt manifest whose file:// URIs name the
# files the target creates ("ct" and "pt").
def rewrite_uris(o):
    if isinstance(o, dict):
        out = {}
        for k, v in o.items():
            if isinstance(v, str) and v.startswith("file://"):
                v = "file://pt" if ("plaintext" in k or k == "result") else "file://ct"
            out[k] = rewrite_uris(v)
        return out
    if isinstance(o, list):
        return [rewrite_uris(x) for x in o]
    return o


for d, f in [("python-1.3.5", "decrypt_message.json"), ("python-4.0.7-local", "manifest.json"),
             ("net-4.0.1", "manifest.json"), ("dafny-4.1.0", "decrypt-manifest.json")]:
    keys = open(os.path.join(VEC, d, "keys.json"), "rb").read()
    m = json.load(open(os.path.join(VEC, d, f)))
    ids = sorted(m["tests"])
    for chunk in range(3):
        sub = dict(m)
        sub["keys"] = "file://keys.json"
        sub["tests"] = {i: rewrite_uris(m["tests"][i]) for i in ids[chunk * 7:chunk * 7 + 7]}
        put("manifest", bytes([chunk]) + keys + b"\x00" + json.dumps(sub).encode())
    put("manifest", bytes([0]) + keys)

for t in TARGETS:
    n = len(os.listdir(os.path.join(OUT, t)))
    print(f"{t}: {n} seeds")
