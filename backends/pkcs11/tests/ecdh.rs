//! The PKCS#11 ECDH keyring against a real token, on P-256, P-384 and P-521, with key pairs
//! generated on the token (`CKM_EC_KEY_PAIR_GEN`): the device flow (the raw ECDH keyring's
//! ephemeral sender encrypts to the token key's public key, the token's discovery keyring
//! opens it), the static schema on the token read by the raw ECDH keyring holding the
//! recipient's private key, round trips, and the errors for the wrong key or curve.
//! Raw private keys come from `openssl genpkey` (the setup script requires openssl).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use esdk_core::error::KeyringError;
use esdk_core::{AlgorithmSuite, EncryptOptions, Error};
use esdk_pkcs11::{EcdhCurve, EcdhPublicKey, KeySelector, Pkcs11EcdhKeyring, Pkcs11Error};
use esdk_raw::ecdh::{EcdhPrivateKey, RawEcdhKeyring};
use esdk_test_support::config_for;

const EC: &[(&str, &str)] = &[("purpose", "pkcs11-ecdh-test")];
const CURVES: [EcdhCurve; 3] = [EcdhCurve::P256, EcdhCurve::P384, EcdhCurve::P521];

/// Generates an EC key pair on the test token under a fresh label and returns its selector.
/// `derive` sets the private key's `CKA_DERIVE`.
fn token_key(curve: EcdhCurve, derive: bool) -> KeySelector {
    static N: AtomicUsize = AtomicUsize::new(0);
    let label = format!(
        "ecdh-{curve}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    generate_ec_key(token(), curve, &label, derive)
}

/// A raw EC private key on `curve` made by openssl.
fn raw_private(curve: EcdhCurve) -> EcdhPrivateKey {
    let name = match curve {
        EcdhCurve::P256 => "P-256",
        EcdhCurve::P384 => "P-384",
        _ => "P-521",
    };
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
        .arg(format!("ec_paramgen_curve:{name}"))
        .output()
        .expect("running openssl genpkey");
    assert!(out.status.success(), "openssl genpkey failed: {out:?}");
    EcdhPrivateKey::from_pkcs8_pem(&out.stdout).unwrap()
}

#[test]
fn device_encrypts_to_the_token_key_and_the_token_decrypts() {
    for curve in CURVES {
        let key = token_key(curve, true);
        let server = Pkcs11EcdhKeyring::public_key_discovery(token(), key).unwrap();
        assert_eq!(server.curve(), curve);
        assert_eq!(server.schema(), "PublicKeyDiscovery");
        assert!(!server.can_encrypt());
        let device =
            RawEcdhKeyring::ephemeral_private_key_to_static_public_key(curve, server.public_key())
                .unwrap();
        for suite in AlgorithmSuite::ALL {
            let cfg = config_for(suite);
            let opts = EncryptOptions::new().with_suite(suite);
            let pt = plaintext(300);
            let msg = esdk::encrypt(&cfg, &device, &opts, EC, &pt).unwrap();
            let edks = edks_of(&msg);
            assert_eq!(edks.len(), 1);
            assert_eq!(edks[0].provider_id, "raw-ecdh");
            let out = esdk::decrypt(&cfg, &server, &[], &msg).unwrap();
            assert_eq!(out.plaintext, pt, "{curve} {suite:?}");
        }
        // A changed commitment key fails to unwrap.
        let cfg = esdk_core::Config::new();
        let msg = esdk::encrypt(&cfg, &device, &EncryptOptions::new(), EC, b"x").unwrap();
        let tampered = tamper(&msg, &edks_of(&msg)[0].ciphertext[..40]);
        let err = esdk::decrypt(&cfg, &server, &[], &tampered).unwrap_err();
        assert!(
            format!("{err:?}").contains("UnwrapFailed"),
            "tampered commitment: {err:?}"
        );
    }
}

#[test]
fn token_static_sender_round_trips_and_the_raw_recipient_reads_it() {
    for curve in CURVES {
        let recipient = raw_private(curve);
        let recipient_public = recipient.public_key();
        let key = token_key(curve, true);
        let sender =
            Pkcs11EcdhKeyring::private_key_to_static_public_key(token(), key, recipient_public)
                .unwrap();
        assert!(sender.can_encrypt());
        assert_eq!(sender.schema(), "RawPrivateKeyToStaticPublicKey");
        let raw_recipient = RawEcdhKeyring::raw_private_key_to_static_public_key(
            curve,
            recipient,
            sender.public_key(),
        )
        .unwrap();
        for suite in AlgorithmSuite::ALL {
            let cfg = config_for(suite);
            let opts = EncryptOptions::new().with_suite(suite);
            let pt = plaintext(123);
            let msg = esdk::encrypt(&cfg, &sender, &opts, EC, &pt).unwrap();
            assert_eq!(
                esdk_core::encrypted_len(&cfg, &opts, &sender, EC, pt.len()).unwrap(),
                msg.len()
            );
            // The sender reads its own messages, the raw recipient too, and the other way.
            assert_eq!(
                esdk::decrypt(&cfg, &sender, &[], &msg).unwrap().plaintext,
                pt
            );
            assert_eq!(
                esdk::decrypt(&cfg, &raw_recipient, &[], &msg)
                    .unwrap()
                    .plaintext,
                pt,
                "token → raw {curve} {suite:?}"
            );
            let back = esdk::encrypt(&cfg, &raw_recipient, &opts, EC, &pt).unwrap();
            assert_eq!(
                esdk::decrypt(&cfg, &sender, &[], &back).unwrap().plaintext,
                pt,
                "raw → token {curve} {suite:?}"
            );
        }
    }
}

#[test]
fn the_token_shared_secret_is_the_raw_one() {
    // Discovery on the token and on a raw keyring give the same secret for the same pair:
    // the raw recipient decrypts what the token sender wrote for it (above); here the token
    // discovery keyring opens what a raw static sender wrote to the token key.
    let curve = EcdhCurve::P384;
    let server = Pkcs11EcdhKeyring::public_key_discovery(token(), token_key(curve, true)).unwrap();
    let raw_sender = RawEcdhKeyring::raw_private_key_to_static_public_key(
        curve,
        raw_private(curve),
        server.public_key(),
    )
    .unwrap();
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &raw_sender, &EncryptOptions::new(), EC, b"static").unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &server, &[], &msg).unwrap().plaintext,
        b"static"
    );
    let secret = server
        .shared_secret(&raw_private(curve).public_key())
        .unwrap();
    assert_eq!(secret.len(), 48);
}

#[test]
fn wrong_key_wrong_curve_and_wrong_schema_are_specific_errors() {
    let cfg = esdk_core::Config::new();
    let p256 = token_key(EcdhCurve::P256, true);
    // A recipient public key on another curve than the token key.
    let p384_public: EcdhPublicKey = raw_private(EcdhCurve::P384).public_key();
    let err =
        Pkcs11EcdhKeyring::private_key_to_static_public_key(token(), p256.clone(), p384_public)
            .unwrap_err();
    assert!(
        matches!(
            err,
            Pkcs11Error::EcdhCurve {
                token: EcdhCurve::P256,
                public: EcdhCurve::P384,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(format!("{err}").contains("P-384"), "{err}");
    let server = Pkcs11EcdhKeyring::public_key_discovery(token(), p256).unwrap();
    assert!(matches!(
        server.shared_secret(&p384_public),
        Err(Pkcs11Error::EcdhCurve { .. })
    ));
    // Discovery cannot encrypt.
    let err = esdk::encrypt(&cfg, &server, &EncryptOptions::new(), EC, b"x").unwrap_err();
    assert!(
        matches!(
            err,
            esdk::Error::Core(Error::Keyring(KeyringError::EncryptNotSupported))
        ),
        "{err:?}"
    );
    // A message for another key: its EDK is not addressed to this one.
    let other =
        Pkcs11EcdhKeyring::public_key_discovery(token(), token_key(EcdhCurve::P256, true)).unwrap();
    let device = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
        EcdhCurve::P256,
        other.public_key(),
    )
    .unwrap();
    let msg = esdk::encrypt(&cfg, &device, &EncryptOptions::new(), EC, b"x").unwrap();
    let err = esdk::decrypt(&cfg, &server, &[], &msg).unwrap_err();
    assert!(format!("{err:?}").contains("KeyNameMismatch"), "{err:?}");
    assert_eq!(
        esdk::decrypt(&cfg, &other, &[], &msg).unwrap().plaintext,
        b"x"
    );
    // A message to a P-384 key: the provider info is not of the token key's curve.
    let device384 =
        RawEcdhKeyring::ephemeral_private_key_to_static_public_key(EcdhCurve::P384, p384_public)
            .unwrap();
    let msg = esdk::encrypt(&cfg, &device384, &EncryptOptions::new(), EC, b"x").unwrap();
    let err = esdk::decrypt(&cfg, &server, &[], &msg).unwrap_err();
    assert!(format!("{err:?}").contains("ProviderInfoFormat"), "{err:?}");
}

#[test]
fn keys_that_cannot_do_ecdh_are_refused_when_the_keyring_is_made() {
    // A private key without CKA_DERIVE.
    let err = Pkcs11EcdhKeyring::public_key_discovery(token(), token_key(EcdhCurve::P256, false))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Pkcs11Error::KeyUsage {
                attribute: esdk_pkcs11::Pkcs11Attribute::Derive,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(format!("{err}").contains("CKA_DERIVE"), "{err}");
    // No EC private key under that label (the AES key is a secret key).
    let err = Pkcs11EcdhKeyring::public_key_discovery(token(), aes_selector()).unwrap_err();
    assert!(
        matches!(
            err,
            Pkcs11Error::KeyNotFound {
                class: esdk_pkcs11::Pkcs11ObjectClass::PrivateKey,
                ..
            }
        ),
        "{err:?}"
    );
    // An RSA key pair is not an EC key.
    let err = Pkcs11EcdhKeyring::public_key_discovery(token(), rsa_selector()).unwrap_err();
    assert!(
        matches!(
            err,
            Pkcs11Error::KeyType {
                expected: esdk_pkcs11::Pkcs11KeyType::Ec,
                ..
            }
        ),
        "{err:?}"
    );
}
