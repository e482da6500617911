//! The PKCS#11 RSA-OAEP keyring against a real token: round trips for every suite with every
//! OAEP hash the token supports, cross-decryption both ways with the raw RSA keyring holding
//! the same key pair, and a specific error for the hashes it does not support.
//!
//! Which hashes the token does is set by the setup script in `ESDK_TEST_PKCS11_OAEP_HASHES`
//! (SoftHSM2 2.6.1: `sha1`; Kryoptic: all four). For a hash the token lacks, the test checks
//! that the constructor reports `MechanismNotSupported` naming it: nothing is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use esdk_core::error::{AttemptFailure, KeyringError};
use esdk_core::{AlgorithmSuite, EncryptOptions, Error};
use esdk_pkcs11::{OaepHash, Pkcs11Error, Pkcs11RsaKeyring, Randomness};
use esdk_test_support::config_for;

const EC: &[(&str, &str)] = &[("purpose", "pkcs11-rsa-test")];

#[test]
fn round_trip_every_suite_with_every_supported_hash() {
    let hashes = supported_hashes();
    assert!(!hashes.is_empty());
    for hash in hashes {
        let kr = rsa_keyring(hash);
        assert!(kr.can_encrypt() && kr.can_decrypt());
        for suite in AlgorithmSuite::ALL {
            let cfg = config_for(suite);
            let opts = EncryptOptions::new().with_suite(suite);
            let pt = plaintext(777);
            let msg = esdk::encrypt(&cfg, &kr, &opts, EC, &pt).unwrap();
            assert_eq!(
                esdk_core::encrypted_len(&cfg, &opts, &kr, EC, pt.len()).unwrap(),
                msg.len()
            );
            let edks = edks_of(&msg);
            assert_eq!(edks.len(), 1);
            assert_eq!(edks[0].provider_id, NS);
            assert_eq!(edks[0].provider_info, RSA_NAME.as_bytes());
            assert_eq!(edks[0].ciphertext.len(), 256, "RSA-2048 ciphertext");
            let out = esdk::decrypt(&cfg, &kr, &[], &msg).unwrap();
            assert_eq!(out.plaintext, pt, "{hash:?} {suite:?}");
        }
    }
}

#[test]
fn cross_decrypt_with_the_raw_rsa_keyring_both_ways() {
    for hash in supported_hashes() {
        let kr = rsa_keyring(hash);
        let raw = raw_rsa_keyring(hash);
        for suite in AlgorithmSuite::ALL {
            let cfg = config_for(suite);
            let opts = EncryptOptions::new().with_suite(suite);
            let pt = plaintext(100);
            let msg = esdk::encrypt(&cfg, &kr, &opts, EC, &pt).unwrap();
            assert_eq!(
                esdk::decrypt(&cfg, &raw, &[], &msg).unwrap().plaintext,
                pt,
                "token → raw, {hash:?} {suite:?}"
            );
            let msg = esdk::encrypt(&cfg, &raw, &opts, EC, &pt).unwrap();
            assert_eq!(
                esdk::decrypt(&cfg, &kr, &[], &msg).unwrap().plaintext,
                pt,
                "raw → token, {hash:?} {suite:?}"
            );
        }
    }
}

#[test]
fn unsupported_hashes_are_reported_by_the_constructor() {
    let supported = supported_hashes();
    for hash in OaepHash::ALL {
        let r = Pkcs11RsaKeyring::new(token(), rsa_selector(), NS, RSA_NAME, hash);
        if supported.contains(&hash) {
            assert!(r.is_ok(), "{hash:?}: {r:?}");
        } else {
            match r {
                Err(Pkcs11Error::MechanismNotSupported { mechanism, .. }) => {
                    assert_eq!(mechanism, hash.mechanism_id());
                    println!("{hash:?} not supported by this token, as expected: {mechanism}");
                }
                other => panic!("{hash:?}: expected MechanismNotSupported, got {other:?}"),
            }
        }
    }
}

#[test]
fn data_key_from_the_token_rng() {
    let hash = supported_hashes()[0];
    let kr = rsa_keyring(hash).with_data_key_source(Randomness::Token);
    let raw = raw_rsa_keyring(hash);
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &kr, &EncryptOptions::new(), EC, b"token rng").unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &raw, &[], &msg).unwrap().plaintext,
        b"token rng"
    );
}

#[test]
fn tampered_or_foreign_edks_fail_with_their_reason() {
    let hash = supported_hashes()[0];
    let kr = rsa_keyring(hash);
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &kr, &EncryptOptions::new(), EC, b"x").unwrap();
    let ct = edks_of(&msg).remove(0).ciphertext;
    let bad = tamper(&msg, &ct);
    match esdk::decrypt(&cfg, &kr, &[], &bad) {
        Err(esdk::Error::Core(Error::Keyring(KeyringError::NoDataKeyDecrypted(a)))) => {
            let v: Vec<_> = a.iter().map(|x| x.reason).collect();
            assert_eq!(v, [AttemptFailure::UnwrapFailed]);
        }
        other => panic!("expected an unwrap failure, got {other:?}"),
    }
    let mut c = ct.clone();
    c[10] ^= 0x40;
    assert!(matches!(
        kr.decrypt_data_key(&c),
        Err(Pkcs11Error::UnwrapFailed { .. })
    ));
    // Same key pair, other key name: not this keyring's EDK.
    let other = Pkcs11RsaKeyring::new(token(), rsa_selector(), NS, "other-name", hash).unwrap();
    match esdk::decrypt(&cfg, &other, &[], &msg) {
        Err(esdk::Error::Core(Error::Keyring(KeyringError::NoDataKeyDecrypted(a)))) => {
            let v: Vec<_> = a.iter().map(|x| x.reason).collect();
            assert_eq!(v, [AttemptFailure::KeyNameMismatch]);
        }
        other => panic!("expected a key name mismatch, got {other:?}"),
    }
}

#[test]
fn a_message_under_another_oaep_hash_does_not_decrypt() {
    let supported = supported_hashes();
    // Encrypt with the raw keyring under a hash the token keyring is not configured for.
    let token_hash = supported[0];
    let other = OaepHash::ALL
        .into_iter()
        .find(|h| *h != token_hash)
        .unwrap();
    let raw = raw_rsa_keyring(other);
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &raw, &EncryptOptions::new(), EC, b"x").unwrap();
    let kr = rsa_keyring(token_hash);
    match esdk::decrypt(&cfg, &kr, &[], &msg) {
        Err(esdk::Error::Core(Error::Keyring(KeyringError::NoDataKeyDecrypted(a)))) => {
            let v: Vec<_> = a.iter().map(|x| x.reason).collect();
            assert_eq!(v, [AttemptFailure::UnwrapFailed]);
        }
        other => panic!("expected an unwrap failure, got {other:?}"),
    }
}
