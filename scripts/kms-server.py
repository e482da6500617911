#!/usr/bin/env python3
"""Runs ../shared/peers/kms_server.py (moto 5.2.x with its MRK and DeriveSharedSecret fixes)
with one more fix for the tests: key state is enforced like AWS KMS does it.

moto 5.2 lets Encrypt, Decrypt and GenerateDataKey succeed with a disabled or
pending-deletion key; AWS answers DisabledException / KMSInvalidStateException. Without this,
a "disabled key" test would test nothing. The shared file is not modified: this wrapper patches
moto, then runs it.

Usage: kms-server.py -H 127.0.0.1 -p PORT   (same flags as kms_server.py / moto_server)
"""
import os
import runpy
import sys

from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend


class DisabledException(JsonRESTError):
    code = 400

    def __init__(self, arn):
        super().__init__("DisabledException", "%s is disabled." % arn)


class KMSInvalidStateException(JsonRESTError):
    code = 400

    def __init__(self, arn):
        super().__init__("KMSInvalidStateException", "%s is pending deletion." % arn)


def _check_state(backend, key_id):
    key = backend.keys.get(backend.any_id_to_key_id(key_id))
    if key is None:
        return
    if key.key_state == "Disabled":
        raise DisabledException(key.arn)
    if key.key_state == "PendingDeletion":
        raise KMSInvalidStateException(key.arn)


_encrypt = KmsBackend.encrypt
_decrypt = KmsBackend.decrypt


def encrypt(self, key_id, plaintext, encryption_context):
    _check_state(self, key_id)
    return _encrypt(self, key_id, plaintext, encryption_context)


def decrypt(self, ciphertext_blob, encryption_context, key_id=None):
    plaintext, arn = _decrypt(self, ciphertext_blob, encryption_context, key_id)
    _check_state(self, arn)
    return plaintext, arn


KmsBackend.encrypt = encrypt  # GenerateDataKey and ReEncrypt go through encrypt/decrypt
KmsBackend.decrypt = decrypt

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("ESDK_SHARED_DIR", os.path.join(here, "..", "..", "shared"))
    server = os.path.join(shared, "peers", "kms_server.py")
    sys.argv = [server] + sys.argv[1:]
    runpy.run_path(server, run_name="__main__")
