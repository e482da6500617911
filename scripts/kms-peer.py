#!/usr/bin/env python3
"""KMS interop peer: the official Python ESDK (aws-encryption-sdk 4.x with the MPL) against a
local KMS-compatible server.

  kms-peer.py encrypt|decrypt --endpoint URL --key ARN [--key ARN ...] -i IN -o OUT
      [--discovery REGION ...] [--ec k=v ...] [--suite 0x0578]

encrypt: an MPL multi-keyring whose generator is the first --key and whose children are the
others, each an AWS KMS keyring with a boto3 client for the key's region pointed at --endpoint.
decrypt: the same strict keyrings (the first one that works decrypts), or with --discovery one
AWS KMS discovery keyring per region. On decrypt, --ec pairs must match the message's context.
Credentials: any static values (the local server accepts everything).
"""
import argparse
import sys

import aws_encryption_sdk
import boto3
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import (
    CreateAwsKmsDiscoveryKeyringInput, CreateAwsKmsKeyringInput, CreateMultiKeyringInput)


def kms_client(region, endpoint):
    return boto3.client("kms", region_name=region, endpoint_url=endpoint,
                        aws_access_key_id="test", aws_secret_access_key="test")


def keyring(a):
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    if a.discovery:
        kids = [mpl.create_aws_kms_discovery_keyring(input=CreateAwsKmsDiscoveryKeyringInput(
            kms_client=kms_client(r, a.endpoint))) for r in a.discovery]
        return mpl.create_multi_keyring(input=CreateMultiKeyringInput(generator=None,
                                                                       child_keyrings=kids))
    rings = [mpl.create_aws_kms_keyring(input=CreateAwsKmsKeyringInput(
        kms_key_id=k, kms_client=kms_client(k.split(":")[3], a.endpoint))) for k in a.key]
    return mpl.create_multi_keyring(input=CreateMultiKeyringInput(generator=rings[0],
                                                                   child_keyrings=rings[1:]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["encrypt", "decrypt"])
    ap.add_argument("-i", "--input", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--key", action="append", default=[], help="KMS key ARN (repeat)")
    ap.add_argument("--discovery", nargs="*", help="decrypt with discovery keyrings in REGIONs")
    ap.add_argument("--ec", nargs="*", default=[], help="encryption context k=v pairs")
    ap.add_argument("--suite", help="algorithm suite id, e.g. 0x0578")
    a = ap.parse_args(argv)
    if not a.key and not a.discovery:
        ap.error("--key or --discovery is required")

    ec = dict(kv.split("=", 1) for kv in a.ec)
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    kr = keyring(a)
    data = open(a.input, "rb").read()
    if a.mode == "encrypt":
        kw = {"encryption_context": ec}
        if a.suite:
            kw["algorithm"] = Algorithm.get_by_id(int(a.suite, 16))
        out, _ = client.encrypt(source=data, keyring=kr, **kw)
    else:
        out, hdr = client.decrypt(source=data, keyring=kr)
        missing = {k: v for k, v in ec.items() if hdr.encryption_context.get(k) != v}
        if missing:
            sys.exit("encryption context mismatch: %r" % missing)
        sys.stderr.write("edks: %s\n" % ", ".join(
            k.key_provider.key_info.decode() for k in hdr.encrypted_data_keys))
    with open(a.output, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
