#!/usr/bin/env python3
"""Batch interop peer around the official Python AWS Encryption SDK (aws-encryption-sdk 4.x
with aws-cryptographic-material-providers), for the Rust ESDK's interop tests.

One Python process handles a whole list of cases, so a matrix of thousands of messages runs
in minutes instead of paying the interpreter and SDK start-up per message.

  esdk_batch.py cases CASES.json RESULTS.json
      CASES.json: {"cases": [CASE, ...]} with CASE =
        {"id": str, "op": "encrypt" | "decrypt", "input": path, "output": path,
         "api": "legacy" | "keyring",
         "key": {"type": "aes", "hex": str}
              | {"type": "rsa", "padding": "pkcs1" | "oaep-sha1" | "oaep-sha256"
                                           | "oaep-sha384" | "oaep-sha512",
                 "private_pem": path | null, "public_pem": path | null},
         "provider_id": str, "key_name": str,
         "suite": "0x0578", "frame_length": int,     (encrypt only)
         "ec": {str: str}, "policy": "rr" | "ra" | "fa"}
      RESULTS.json: [{"id", "ok", "error", "suite", "frame_length", "content_type", "ec",
                      "edks": [{"provider_id", "key_info"}], "output_len"}, ...]
      "legacy" uses RawMasterKey (RawMasterKeyProvider API); "keyring" uses the MPL raw AES
      and raw RSA keyrings. AES keys may be 16, 24 or 32 bytes in both.

  esdk_batch.py manifest DECRYPT_MANIFEST.json [--api legacy|keyring|both] [-v]
      Decrypts every test of an awses-decrypt manifest (v2-v4: "master-keys"; v5:
      "decryption-scenario" with raw / multi-keyring / required-encryption-context-cmm key
      descriptions) the way the official test-vector handlers do: v2-v4 with master keys
      and/or MPL keyrings (first master key = generator, the rest children), one-shot and
      streaming; v5 with MPL keyrings (raw-ecdh included) and the reproduced encryption
      context. --keyring-rsa-every N samples the (slow) MPL RSA path on v2-v4. Prints
      "FAIL <id>: <why>" per failure, "skipped N: <reason>" per reason and ends with
      "N passed, M failed, K skipped"; exit status 1 if anything failed.
"""
import argparse
import base64
import io
import json
import os
import sys
import traceback

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import (Algorithm, CommitmentPolicy, EncryptionKeyType,
                                            WrappingAlgorithm)
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.exceptions import InvalidKeyIdError
from aws_encryption_sdk.key_providers.base import MasterKeyProvider, MasterKeyProviderConfig
from aws_encryption_sdk.key_providers.raw import RawMasterKey
from cryptography.hazmat.primitives import serialization

POLICY = {"rr": CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
          "ra": CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
          "fa": CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT}
AES_LEGACY = {16: WrappingAlgorithm.AES_128_GCM_IV12_TAG16_NO_PADDING,
              24: WrappingAlgorithm.AES_192_GCM_IV12_TAG16_NO_PADDING,
              32: WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING}
RSA_LEGACY = {"pkcs1": WrappingAlgorithm.RSA_PKCS1,
              "oaep-sha1": WrappingAlgorithm.RSA_OAEP_SHA1_MGF1,
              "oaep-sha256": WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
              "oaep-sha384": WrappingAlgorithm.RSA_OAEP_SHA384_MGF1,
              "oaep-sha512": WrappingAlgorithm.RSA_OAEP_SHA512_MGF1}
RSA_MPL = {"pkcs1": "PKCS1", "oaep-sha1": "OAEP_SHA1_MGF1", "oaep-sha256": "OAEP_SHA256_MGF1",
           "oaep-sha384": "OAEP_SHA384_MGF1", "oaep-sha512": "OAEP_SHA512_MGF1"}

_MPL = None
_CLIENTS = {}


def client(policy):
    if policy not in _CLIENTS:
        _CLIENTS[policy] = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=POLICY[policy])
    return _CLIENTS[policy]


def mpl():
    global _MPL  # pylint: disable=global-statement
    if _MPL is None:
        from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
        from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
        _MPL = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return _MPL


# ----------------------------------------------------------------------------------------
# Key objects (shared by both modes)
# ----------------------------------------------------------------------------------------

def rsa_pems(private_pem, public_pem):
    """(PKCS#8 private PEM or None, SPKI public PEM or None) as the MPL keyring wants them."""
    priv = pub = None
    if private_pem:
        k = serialization.load_pem_private_key(private_pem, password=None)
        priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
        pub = k.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    if public_pem:
        pub = public_pem
    return priv, pub


class MultiMasterKeyProvider(MasterKeyProvider):
    """A provider over several master keys (like the official handler's multi provider):
    on encrypt the first is the primary, on decrypt any member may decrypt."""

    _config_class = MasterKeyProviderConfig
    provider_id = "esdk-batch-multi-master-key-provider"

    def __init__(self, **kwargs):  # pylint: disable=unused-argument
        pass

    def _new_master_key(self, key_id):
        raise InvalidKeyIdError()


def legacy_aes(provider_id, key_name, key):
    return RawMasterKey(provider_id=provider_id, key_id=key_name.encode(),
                        wrapping_key=WrappingKey(AES_LEGACY[len(key)], key,
                                                 EncryptionKeyType.SYMMETRIC))


def legacy_rsa(provider_id, key_name, padding, pem, private):
    kind = EncryptionKeyType.PRIVATE if private else EncryptionKeyType.PUBLIC
    return RawMasterKey(provider_id=provider_id, key_id=key_name.encode(),
                        wrapping_key=WrappingKey(RSA_LEGACY[padding], pem, kind))


def mpl_aes(provider_id, key_name, key):
    from aws_cryptographic_material_providers.mpl.models import (AesWrappingAlg,
                                                                 CreateRawAesKeyringInput)
    alg = {16: AesWrappingAlg.ALG_AES128_GCM_IV12_TAG16,
           24: AesWrappingAlg.ALG_AES192_GCM_IV12_TAG16,
           32: AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16}[len(key)]
    return mpl().create_raw_aes_keyring(input=CreateRawAesKeyringInput(
        key_namespace=provider_id, key_name=key_name, wrapping_key=key, wrapping_alg=alg))


def mpl_rsa(provider_id, key_name, padding, private_pem, public_pem):
    from aws_cryptographic_material_providers.mpl.models import (CreateRawRsaKeyringInput,
                                                                 PaddingScheme)
    priv, pub = rsa_pems(private_pem, public_pem)
    return mpl().create_raw_rsa_keyring(input=CreateRawRsaKeyringInput(
        key_namespace=provider_id, key_name=key_name,
        padding_scheme=getattr(PaddingScheme, RSA_MPL[padding]), public_key=pub,
        private_key=priv))


def mpl_multi(generator, children):
    from aws_cryptographic_material_providers.mpl.models import CreateMultiKeyringInput
    return mpl().create_multi_keyring(input=CreateMultiKeyringInput(
        generator=generator, child_keyrings=list(children)))


def header_info(hdr):
    return {"suite": hdr.algorithm.algorithm_id, "frame_length": hdr.frame_length,
            "content_type": hdr.content_type.name, "ec": dict(hdr.encryption_context),
            "edks": [{"provider_id": k.key_provider.provider_id,
                      "key_info": bytes(k.key_provider.key_info).hex()}
                     for k in hdr.encrypted_data_keys]}


# ----------------------------------------------------------------------------------------
# cases mode
# ----------------------------------------------------------------------------------------

class CaseRunner:
    def __init__(self):
        self.files = {}
        self.keys = {}

    def read(self, path):
        if path not in self.files:
            with open(path, "rb") as f:
                self.files[path] = f.read()
        return self.files[path]

    def key_kwargs(self, c):
        k = c["key"]
        cache_key = (c["api"], c["provider_id"], c["key_name"], json.dumps(k, sort_keys=True))
        if cache_key not in self.keys:
            if k["type"] == "aes":
                key = bytes.fromhex(k["hex"])
                if c["api"] == "legacy":
                    obj = {"key_provider": legacy_aes(c["provider_id"], c["key_name"], key)}
                else:
                    obj = {"keyring": mpl_aes(c["provider_id"], c["key_name"], key)}
            elif k["type"] == "rsa":
                priv = self.read(k["private_pem"]) if k.get("private_pem") else None
                pub = self.read(k["public_pem"]) if k.get("public_pem") else None
                if c["api"] == "legacy":
                    # A legacy RSA master key holds one key: the private one can do both.
                    obj = {"key_provider": legacy_rsa(c["provider_id"], c["key_name"],
                                                      k["padding"], priv or pub, priv is not None)}
                else:
                    obj = {"keyring": mpl_rsa(c["provider_id"], c["key_name"], k["padding"],
                                              priv, pub)}
            else:
                raise ValueError("unknown key type %r" % k["type"])
            self.keys[cache_key] = obj
        return dict(self.keys[cache_key])

    def run(self, c):
        kw = self.key_kwargs(c)
        data = self.read(c["input"]) if c["op"] == "encrypt" else open(c["input"], "rb").read()
        cl = client(c.get("policy", "rr"))
        if c["op"] == "encrypt":
            kw.update(source=data, encryption_context=c.get("ec", {}),
                      frame_length=c["frame_length"],
                      algorithm=Algorithm.get_by_id(int(c["suite"], 16)))
            out, hdr = cl.encrypt(**kw)
        elif c["op"] == "decrypt":
            out, hdr = cl.decrypt(source=data, **kw)
        else:
            raise ValueError("unknown op %r" % c["op"])
        with open(c["output"], "wb") as f:
            f.write(out)
        res = header_info(hdr)
        res["output_len"] = len(out)
        return res


def cmd_cases(a):
    with open(a.cases) as f:
        cases = json.load(f)["cases"]
    runner = CaseRunner()
    results = []
    for c in cases:
        try:
            r = runner.run(c)
            r.update(id=c["id"], ok=True, error=None)
        except Exception as e:  # pylint: disable=broad-except
            r = {"id": c["id"], "ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            if os.path.exists(c["output"]):
                os.remove(c["output"])
        results.append(r)
    with open(a.results, "w") as f:
        json.dump(results, f)
    failed = sum(1 for r in results if not r["ok"])
    print("esdk_batch: %d cases, %d ok, %d failed" % (len(results), len(results) - failed, failed))


# ----------------------------------------------------------------------------------------
# manifest mode
# ----------------------------------------------------------------------------------------

class Skip(Exception):
    """The test cannot run here (e.g. it needs AWS KMS)."""


def uri_path(base, uri):
    if not uri.startswith("file://"):
        raise ValueError("unsupported URI %r" % uri)
    return os.path.join(base, uri[len("file://"):])


class Keys:
    def __init__(self, path):
        with open(path) as f:
            self.keys = json.load(f)["keys"]
        self.cache = {}

    def cached(self, kind, spec, build):
        """Key objects are built once per description: loading a PEM RSA key costs up to
        half a second (full key validation in `cryptography`)."""
        k = (kind, json.dumps(spec, sort_keys=True))
        if k not in self.cache:
            self.cache[k] = build()
        return self.cache[k]

    def entry(self, name):
        if name not in self.keys:
            raise ValueError("key %r not in the keys manifest" % name)
        return self.keys[name]

    def wire_name(self, name):
        return self.entry(name).get("key-id", name)

    def material(self, name):
        e = self.entry(name)
        m = e["material"]
        if isinstance(m, list):
            m = e.get("line-separator", "").join(m)
        enc = e.get("encoding")
        if enc == "base64":
            return base64.b64decode(m)
        if enc == "hex":
            return bytes.fromhex(m)
        if enc == "pem":
            return m.encode()
        raise ValueError("key %r: unknown encoding %r" % (name, enc))


def rsa_padding(spec):
    alg = spec.get("padding-algorithm")
    if alg == "pkcs1":
        return "pkcs1"
    if alg == "oaep-mgf1":
        return "oaep-" + spec["padding-hash"]
    raise ValueError("unknown padding-algorithm %r" % alg)


def master_key_legacy(keys, spec):
    return keys.cached("legacy", spec, lambda: _master_key_legacy(keys, spec))


def _master_key_legacy(keys, spec):
    if spec["type"] != "raw":
        raise Skip("needs AWS KMS (%s)" % spec["type"])
    name, pid = spec["key"], spec["provider-id"]
    e = keys.entry(name)
    if spec["encryption-algorithm"] == "aes":
        return legacy_aes(pid, keys.wire_name(name), keys.material(name))
    if spec["encryption-algorithm"] == "rsa":
        return legacy_rsa(pid, keys.wire_name(name), rsa_padding(spec), keys.material(name),
                          e["type"] == "private")
    raise ValueError("unknown encryption-algorithm %r" % spec["encryption-algorithm"])


def keyring_from_spec(keys, spec):
    return keys.cached("keyring", spec, lambda: _keyring_from_spec(keys, spec))


def _keyring_from_spec(keys, spec):
    t = spec["type"]
    if t == "raw":
        name, pid = spec["key"], spec["provider-id"]
        e = keys.entry(name)
        if spec["encryption-algorithm"] == "aes":
            return mpl_aes(pid, keys.wire_name(name), keys.material(name))
        if spec["encryption-algorithm"] == "rsa":
            pem = keys.material(name)
            priv = pem if e["type"] == "private" else None
            pub = pem if e["type"] == "public" else None
            return mpl_rsa(pid, keys.wire_name(name), rsa_padding(spec), priv, pub)
        raise ValueError("unknown encryption-algorithm %r" % spec["encryption-algorithm"])
    if t == "multi-keyring":
        gen = spec.get("generator")
        return mpl_multi(keyring_from_spec(keys, gen) if gen else None,
                         [keyring_from_spec(keys, c) for c in spec.get("childKeyrings", [])])
    if t.startswith("aws-kms"):
        raise Skip("needs AWS KMS (%s)" % t)
    if t == "raw-ecdh":
        return raw_ecdh_keyring(keys, spec)
    raise ValueError("unknown key description type %r" % t)


def raw_ecdh_keyring(keys, spec):
    """The MPL raw ECDH keyring of a v5 `raw-ecdh` description (decrypt side: `static` or
    `discovery`; `ephemeral` for completeness)."""
    from aws_cryptographic_material_providers.mpl.models import (
        CreateRawEcdhKeyringInput, EphemeralPrivateKeyToStaticPublicKeyInput,
        PublicKeyDiscoveryInput, RawEcdhStaticConfigurationsEphemeralPrivateKeyToStaticPublicKey,
        RawEcdhStaticConfigurationsPublicKeyDiscovery,
        RawEcdhStaticConfigurationsRawPrivateKeyToStaticPublicKey,
        RawPrivateKeyToStaticPublicKeyInput)
    from aws_cryptography_primitives.smithygenerated.aws_cryptography_primitives.models import (
        ECDHCurveSpec)
    curve = {"ecc-256": ECDHCurveSpec.ECC_NIST_P256, "ecc-384": ECDHCurveSpec.ECC_NIST_P384,
             "ecc-521": ECDHCurveSpec.ECC_NIST_P521}[spec["ecc-curve"]]

    def member(name, field):
        e = keys.entry(name)
        if field not in e:
            raise ValueError("key %r has no %r" % (name, field))
        return e[field]

    def public_der(name, field):
        if keys.entry(name).get("public-key-encoding") != "base64-der":
            raise ValueError("key %r: public keys are not base64-der" % name)
        return base64.b64decode(member(name, field))

    schema = spec["schema"]
    if schema == "discovery":
        scheme = RawEcdhStaticConfigurationsPublicKeyDiscovery(PublicKeyDiscoveryInput(
            recipient_static_private_key=member(spec["recipient"], "recipient-material").encode()))
    elif schema == "static":
        scheme = RawEcdhStaticConfigurationsRawPrivateKeyToStaticPublicKey(
            RawPrivateKeyToStaticPublicKeyInput(
                sender_static_private_key=member(spec["sender"], "sender-material").encode(),
                recipient_public_key=public_der(spec["recipient"],
                                                spec["recipient-public-key"])))
    elif schema == "ephemeral":
        scheme = RawEcdhStaticConfigurationsEphemeralPrivateKeyToStaticPublicKey(
            EphemeralPrivateKeyToStaticPublicKeyInput(
                recipient_public_key=public_der(spec["recipient"],
                                                spec["recipient-public-key"])))
    else:
        raise ValueError("unknown raw-ecdh schema %r" % schema)
    return mpl().create_raw_ecdh_keyring(input=CreateRawEcdhKeyringInput(
        key_agreement_scheme=scheme, curve_spec=curve))


def cmm_from_description(keys, spec):
    """(keyring, cmm): exactly one is set."""
    if spec["type"] == "required-encryption-context-cmm":
        from aws_cryptographic_material_providers.mpl.models import (
            CreateDefaultCryptographicMaterialsManagerInput,
            CreateRequiredEncryptionContextCMMInput)
        inner = keyring_from_spec(keys, spec["underlying"])
        default = mpl().create_default_cryptographic_materials_manager(
            CreateDefaultCryptographicMaterialsManagerInput(keyring=inner))
        cmm = mpl().create_required_encryption_context_cmm(
            CreateRequiredEncryptionContextCMMInput(
                required_encryption_context_keys=spec["requiredEncryptionContextKeys"],
                underlying_cmm=default))
        return None, cmm
    return keyring_from_spec(keys, spec), None


def decrypt_both_ways(kw, ciphertext, unsigned_only=False):
    """One-shot and streaming decrypt (as the official handler does); returns the plaintext."""
    cl = client("fa")
    if unsigned_only:
        out = bytearray()
        with cl.stream(mode="decrypt-unsigned", source=io.BytesIO(ciphertext), **kw) as s:
            for chunk in s:
                out.extend(chunk)
        return bytes(out)
    one, _ = cl.decrypt(source=ciphertext, **kw)
    streamed = bytearray()
    with cl.stream(mode="d", source=io.BytesIO(ciphertext), **kw) as s:
        for chunk in s:
            streamed.extend(chunk)
    if bytes(streamed) != one:
        raise ValueError("streaming and one-shot decrypt disagree")
    return one


def run_manifest_test(version, base, keys, test, api):
    """Returns (expected plaintext or None for an expected error, decrypt closure)."""
    if version >= 5:
        s = test["decryption-scenario"]
        if s.get("type") not in ("positive-esdk", "negative-esdk"):
            raise ValueError("unknown scenario type %r" % s.get("type"))
        ct = open(uri_path(base, s["ciphertext"]), "rb").read()
        expected = None
        if s["type"] == "positive-esdk":
            expected = open(uri_path(base, s["result"]), "rb").read()
        keyring, cmm = cmm_from_description(keys, s["decryptKeyDescription"])
        kw = {"keyring": keyring} if keyring is not None else {"materials_manager": cmm}
        rec = s.get("reproduced-encryption-context") or {}
        if rec:
            kw["encryption_context"] = rec
        return expected, lambda: decrypt_both_ways(kw, ct)
    ct = open(uri_path(base, test["ciphertext"]), "rb").read()
    result = test["result"]
    if "output" in result:
        expected = open(uri_path(base, result["output"]["plaintext"]), "rb").read()
    else:
        expected = None
    unsigned = test.get("decryption-method") == "streaming-unsigned-only"
    cmm_type = test.get("cmm") or "Default"
    specs = test["master-keys"]
    if api == "legacy":
        if cmm_type != "Default":
            raise Skip("cmm %s needs the keyring API" % cmm_type)
        mks = [master_key_legacy(keys, s) for s in specs]
        provider = MultiMasterKeyProvider()
        for mk in mks:
            provider.add_master_key_provider(mk)
        kw = {"key_provider": provider}
    else:
        rings = [keyring_from_spec(keys, s) for s in specs]
        kr = rings[0] if len(rings) == 1 else mpl_multi(rings[0], rings[1:])
        if cmm_type == "RequiredEncryptionContext":
            _, cmm = cmm_from_description(keys, {
                "type": "required-encryption-context-cmm", "underlying": specs[0],
                "requiredEncryptionContextKeys": sorted(test.get("encryption-context", {}))})
            if len(rings) > 1:
                raise Skip("multi-key RequiredEncryptionContext not driven by this script")
            kw = {"materials_manager": cmm, "encryption_context": test["encryption-context"]}
        else:
            kw = {"keyring": kr}
    return expected, lambda: decrypt_both_ways(kw, ct, unsigned)


def uses_rsa(test):
    return any(k.get("encryption-algorithm") == "rsa" for k in test.get("master-keys", []))


def cmd_manifest(a):
    path = os.path.abspath(a.manifest)
    base = os.path.dirname(path)
    with open(path) as f:
        m = json.load(f)
    if m["manifest"]["type"] != "awses-decrypt":
        sys.exit("not an awses-decrypt manifest: %r" % m["manifest"]["type"])
    version = m["manifest"]["version"]
    if version not in (2, 3, 4, 5):
        sys.exit("unsupported awses-decrypt manifest version %r" % version)
    keys = Keys(uri_path(base, m["keys"]))
    apis = ["legacy", "keyring"] if a.api == "both" else [a.api]
    if version >= 5:
        apis = ["keyring"]  # v5 key descriptions are keyrings
    passed = failed = skipped = 0
    reasons = {}
    rsa_seen = 0
    for tid in sorted(m["tests"]):
        test_apis = apis
        if version < 5 and len(apis) == 2 and a.keyring_rsa_every > 1 and uses_rsa(m["tests"][tid]):
            # The MPL parses the RSA private PEM (with full key validation) on every
            # decrypt: ~0.5 s for RSA-4096. Sample the keyring API on RSA tests.
            rsa_seen += 1
            if (rsa_seen - 1) % a.keyring_rsa_every:
                test_apis = ["legacy"]
        for api in test_apis:
            label = tid if len(test_apis) == 1 else "%s [%s]" % (tid, api)
            try:
                expected, fn = run_manifest_test(version, base, keys, m["tests"][tid], api)
            except Skip as e:
                skipped += 1
                reasons[str(e)] = reasons.get(str(e), 0) + 1
                continue
            except Exception as e:  # pylint: disable=broad-except
                failed += 1
                print("FAIL %s: cannot load test: %s: %s" % (label, type(e).__name__, e))
                continue
            try:
                got = fn()
                err = None
            except Exception as e:  # pylint: disable=broad-except
                got, err = None, "%s: %s" % (type(e).__name__, e)
                if a.verbose:
                    traceback.print_exc()
            if expected is None:
                ok = err is not None
                why = "decrypt succeeded, but an error was expected"
            else:
                ok = err is None and got == expected
                why = err or "plaintext mismatch: got %d bytes, expected %d" % (
                    len(got), len(expected))
            if ok:
                passed += 1
                if a.verbose:
                    print("ok %s" % label)
            else:
                failed += 1
                print("FAIL %s: %s" % (label, why))
    for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        print("skipped %d: %s" % (n, reason))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 0 if failed == 0 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cases", help="run a JSON list of encrypt/decrypt cases")
    c.add_argument("cases")
    c.add_argument("results")
    m = sub.add_parser("manifest", help="decrypt every test of an awses-decrypt manifest")
    m.add_argument("manifest")
    m.add_argument("--api", default="both", choices=["legacy", "keyring", "both"])
    m.add_argument("--keyring-rsa-every", type=int, default=1, metavar="N",
                   help="with --api both on v2-v4: run RSA tests through the keyring API "
                        "only for every Nth of them (default 1: all)")
    m.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.cmd == "cases":
        cmd_cases(a)
        return 0
    return cmd_manifest(a)


if __name__ == "__main__":
    sys.exit(main())
