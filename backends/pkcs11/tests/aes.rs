//! The PKCS#11 AES-GCM keyring against a real token: round trips for every suite, the EDK
//! byte format, and cross-decryption both ways with the raw AES keyring holding the same key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aes_gcm::aead::{AeadInOut, KeyInit};
use common::*;
use esdk_core::error::{AttemptFailure, KeyringError};
use esdk_core::{AlgorithmSuite, EncryptOptions, Error, MultiKeyring};
use esdk_pkcs11::{KeySelector, Pkcs11AesKeyring, Pkcs11Error, Randomness, TokenIv};
use esdk_raw::RawAesKeyring;
use esdk_test_support::config_for;

const EC: &[(&str, &str)] = &[("purpose", "pkcs11-test"), ("tenant", "ünïcödé")];

/// Checks the raw AES EDK layout: name ‖ tag bits ‖ IV length ‖ IV, ciphertext = key ‖ tag.
fn assert_raw_aes_edk(message: &[u8], suite: AlgorithmSuite) {
    let edks = edks_of(message);
    assert_eq!(edks.len(), 1);
    let e = &edks[0];
    assert_eq!(e.provider_id, NS);
    let info = &e.provider_info;
    assert_eq!(info.len(), AES_NAME.len() + 20);
    assert_eq!(&info[..AES_NAME.len()], AES_NAME.as_bytes());
    assert_eq!(
        &info[AES_NAME.len()..AES_NAME.len() + 8],
        &[0, 0, 0, 128, 0, 0, 0, 12]
    );
    assert_eq!(e.ciphertext.len(), suite.key_len() + 16);
}

#[test]
fn round_trip_every_suite() {
    let kr = aes_keyring();
    for suite in AlgorithmSuite::ALL {
        let cfg = config_for(suite);
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(64);
        let pt = plaintext(300);
        let msg = esdk::encrypt(&cfg, &kr, &opts, EC, &pt).unwrap();
        assert_eq!(
            esdk_core::encrypted_len(&cfg, &opts, &kr, EC, pt.len()).unwrap(),
            msg.len(),
            "encrypted_len is exact for {suite:?}"
        );
        assert_raw_aes_edk(&msg, suite);
        let out = esdk::decrypt(&cfg, &kr, &[], &msg).unwrap();
        assert_eq!(out.plaintext, pt, "{suite:?}");
        assert_eq!(out.suite, suite);
    }
}

#[test]
fn token_wrapped_messages_open_with_the_raw_aes_keyring() {
    let kr = aes_keyring();
    let key = aes_key();
    let raw = RawAesKeyring::new(NS, AES_NAME, &key).unwrap();
    for suite in AlgorithmSuite::ALL {
        let cfg = config_for(suite);
        let opts = EncryptOptions::new().with_suite(suite);
        let pt = plaintext(1000);
        let msg = esdk::encrypt(&cfg, &kr, &opts, EC, &pt).unwrap();
        let out = esdk::decrypt(&cfg, &raw, &[], &msg).unwrap();
        assert_eq!(out.plaintext, pt, "{suite:?}");
    }
}

#[test]
fn raw_aes_messages_open_on_the_token() {
    let kr = aes_keyring();
    let key = aes_key();
    let raw = RawAesKeyring::new(NS, AES_NAME, &key).unwrap();
    for suite in AlgorithmSuite::ALL {
        let cfg = config_for(suite);
        let opts = EncryptOptions::new().with_suite(suite);
        let pt = plaintext(1000);
        let msg = esdk::encrypt(&cfg, &raw, &opts, EC, &pt).unwrap();
        let out = esdk::decrypt(&cfg, &kr, &[], &msg).unwrap();
        assert_eq!(out.plaintext, pt, "{suite:?}");
    }
}

#[test]
fn token_ciphertext_is_byte_identical_to_software_aes_gcm() {
    let kr = aes_keyring();
    let key = aes_key();
    let sw = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let iv = [7u8; 12];
    let aad = b"\x00\x01\x00\x03key\x00\x05value";
    for len in [16usize, 24, 32] {
        let dk = plaintext(len);
        let token_ct = kr.encrypt_data_key(&iv, aad, &dk).unwrap();
        let mut buf = dk.clone();
        let tag = sw
            .encrypt_inout_detached((&iv).into(), aad, buf.as_mut_slice().into())
            .unwrap();
        buf.extend_from_slice(&tag);
        assert_eq!(token_ct, buf, "{len}-byte data key");
        assert_eq!(
            kr.decrypt_data_key(&iv, aad, &buf).unwrap().as_bytes(),
            dk.as_slice()
        );
    }
}

#[test]
fn iv_from_the_provider_and_data_key_from_the_token() {
    let key = aes_key();
    let raw = RawAesKeyring::new(NS, AES_NAME, &key).unwrap();
    for (iv, dk) in [
        (Randomness::Provider, Randomness::Token),
        (Randomness::Token, Randomness::Token),
        (Randomness::Provider, Randomness::Provider),
    ] {
        let kr = aes_keyring().with_iv_source(iv).with_data_key_source(dk);
        for suite in [
            AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
            AlgorithmSuite::Aes192GcmIv12Tag16HkdfSha256,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        ] {
            let cfg = config_for(suite);
            let opts = EncryptOptions::new().with_suite(suite);
            let msg = esdk::encrypt(&cfg, &kr, &opts, EC, b"hello").unwrap();
            assert_raw_aes_edk(&msg, suite);
            assert_eq!(
                esdk::decrypt(&cfg, &raw, &[], &msg).unwrap().plaintext,
                b"hello"
            );
        }
    }
}

#[test]
fn ivs_differ_between_messages() {
    let kr = aes_keyring();
    let cfg = esdk_core::Config::new();
    let opts = EncryptOptions::new();
    let a = edks_of(&esdk::encrypt(&cfg, &kr, &opts, EC, b"x").unwrap());
    let b = edks_of(&esdk::encrypt(&cfg, &kr, &opts, EC, b"x").unwrap());
    assert_ne!(a[0].provider_info, b[0].provider_info);
}

#[test]
fn key_selected_by_id() {
    let id = hex(&env("ESDK_TEST_PKCS11_AES_ID"));
    let kr = Pkcs11AesKeyring::new(token(), KeySelector::id(id), NS, AES_NAME).unwrap();
    let raw = RawAesKeyring::new(NS, AES_NAME, &aes_key()).unwrap();
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &kr, &EncryptOptions::new(), EC, b"by id").unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &raw, &[], &msg).unwrap().plaintext,
        b"by id"
    );
}

#[test]
fn tampered_edk_is_an_unwrap_failure() {
    let kr = aes_keyring();
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &kr, &EncryptOptions::new(), EC, b"secret").unwrap();
    let edk = edks_of(&msg).remove(0);
    let bad = tamper(&msg, &edk.ciphertext);
    match esdk::decrypt(&cfg, &kr, &[], &bad) {
        Err(esdk::Error::Core(Error::Keyring(KeyringError::NoDataKeyDecrypted(a)))) => {
            let v: Vec<_> = a.iter().collect();
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].reason, AttemptFailure::UnwrapFailed);
        }
        other => panic!("expected an unwrap failure, got {other:?}"),
    }
    // The direct API says the same with the token's return value.
    let info = &edk.provider_info;
    let iv: [u8; 12] = info[info.len() - 12..].try_into().unwrap();
    let mut ct = edk.ciphertext.clone();
    ct[0] ^= 1;
    let e = kr.decrypt_data_key(&iv, b"", &ct).unwrap_err();
    assert!(matches!(e, Pkcs11Error::UnwrapFailed { .. }), "{e:?}");
}

#[test]
fn another_encryption_context_is_an_unwrap_failure() {
    let kr = aes_keyring();
    let iv = [1u8; 12];
    let dk = [9u8; 32];
    let ct = kr.encrypt_data_key(&iv, b"context A", &dk).unwrap();
    assert_eq!(
        kr.decrypt_data_key(&iv, b"context A", &ct)
            .unwrap()
            .as_bytes(),
        dk
    );
    let e = kr.decrypt_data_key(&iv, b"context B", &ct).unwrap_err();
    assert!(matches!(e, Pkcs11Error::UnwrapFailed { .. }), "{e:?}");
    // The session that saw the failure is still usable.
    assert_eq!(
        kr.decrypt_data_key(&iv, b"context A", &ct)
            .unwrap()
            .as_bytes(),
        dk
    );
}

#[test]
fn edks_of_other_keys_are_skipped_with_their_reason() {
    let kr = aes_keyring();
    let key = aes_key();
    let other_name = RawAesKeyring::new(NS, "another-key", &key).unwrap();
    let other_ns = RawAesKeyring::new("another-ns", AES_NAME, &key).unwrap();
    let cfg = esdk_core::Config::new();
    let children: [&dyn esdk_core::Keyring; 1] = [&other_ns];
    let both = MultiKeyring::new(&other_name, &children);
    let msg = esdk::encrypt(&cfg, &both, &EncryptOptions::new(), EC, b"x").unwrap();
    match esdk::decrypt(&cfg, &kr, &[], &msg) {
        Err(esdk::Error::Core(Error::Keyring(KeyringError::NoDataKeyDecrypted(a)))) => {
            let reasons: Vec<_> = a.iter().map(|x| (x.edk, x.reason)).collect();
            assert_eq!(
                reasons,
                [
                    (0, AttemptFailure::KeyNameMismatch),
                    (1, AttemptFailure::ProviderIdMismatch)
                ]
            );
        }
        other => panic!("expected no data key, got {other:?}"),
    }
}

#[test]
fn multi_keyring_with_the_token_as_generator() {
    let kr = aes_keyring();
    let raw_other = RawAesKeyring::new("backup-ns", "backup", &[3u8; 16]).unwrap();
    let children: [&dyn esdk_core::Keyring; 1] = [&raw_other];
    let multi = MultiKeyring::new(&kr, &children);
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &multi, &EncryptOptions::new(), EC, b"multi").unwrap();
    assert_eq!(edks_of(&msg).len(), 2);
    assert_eq!(
        esdk::decrypt(&cfg, &kr, &[], &msg).unwrap().plaintext,
        b"multi"
    );
    assert_eq!(
        esdk::decrypt(&cfg, &raw_other, &[], &msg)
            .unwrap()
            .plaintext,
        b"multi"
    );
    // And as a child wrapping a data key generated elsewhere.
    let children: [&dyn esdk_core::Keyring; 1] = [&kr];
    let multi = MultiKeyring::new(&raw_other, &children);
    let msg = esdk::encrypt(&cfg, &multi, &EncryptOptions::new(), EC, b"child").unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &kr, &[], &msg).unwrap().plaintext,
        b"child"
    );
}

/// The token-generated IV modes this token supports (the setup script says which; the
/// others must be refused with a specific error).
fn token_iv_modes() -> Vec<TokenIv> {
    let list = std::env::var("ESDK_TEST_PKCS11_TOKEN_IV").unwrap_or_default();
    list.split(',')
        .filter(|m| !m.trim().is_empty())
        .map(|m| match m.trim() {
            "gcm-params" => TokenIv::GcmParams,
            "message-random" => TokenIv::MessageRandom,
            other => panic!("unknown mode {other:?} in ESDK_TEST_PKCS11_TOKEN_IV"),
        })
        .collect()
}

/// With a token-generated IV, a token that generates it yields EDKs in the raw AES format
/// whose IV is the one the data key was encrypted with (the raw AES keyring, holding the
/// same key, opens them), fresh each time; a token that ignores the request is refused at
/// configuration with a specific error, before any EDK is written.
#[test]
fn token_generated_iv() {
    let supported = token_iv_modes();
    let raw = RawAesKeyring::new(NS, AES_NAME, &aes_key()).unwrap();
    let cfg = config_for(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    for mode in [TokenIv::GcmParams, TokenIv::MessageRandom] {
        let r = aes_keyring().with_token_generated_iv(mode);
        if !supported.contains(&mode) {
            let e = r.unwrap_err();
            assert!(
                matches!(
                    e,
                    Pkcs11Error::IvNotGenerated { .. } | Pkcs11Error::MechanismNotSupported { .. }
                ),
                "{mode:?}: {e:?}"
            );
            eprintln!("token_generated_iv: {mode:?} refused as expected: {e}");
            continue;
        }
        let kr = r.unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(kr.token_generated_iv(), Some(mode));
        let mut ivs = Vec::new();
        for i in 0..3 {
            let pt = plaintext(100 + i);
            let msg = esdk::encrypt(&cfg, &kr, &EncryptOptions::new(), EC, &pt).unwrap();
            assert_raw_aes_edk(&msg, AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
            let info = edks_of(&msg)[0].provider_info.clone();
            let iv = info[AES_NAME.len() + 8..].to_vec();
            assert_ne!(iv, [0u8; 12], "{mode:?}: zero IV in the EDK");
            ivs.push(iv);
            assert_eq!(esdk::decrypt(&cfg, &raw, &[], &msg).unwrap().plaintext, pt);
            assert_eq!(esdk::decrypt(&cfg, &kr, &[], &msg).unwrap().plaintext, pt);
        }
        ivs.sort();
        ivs.dedup();
        assert_eq!(ivs.len(), 3, "{mode:?}: the token repeated an IV");
        eprintln!("token_generated_iv: {mode:?} works on this token");
    }
}
