//! Raw RSA keyring: round trips through the whole message engine, key formats, capabilities,
//! per-EDK failure reasons. Keys are fixed files under `tests/data/` (see its README).
#![cfg(feature = "rsa")]
#![allow(clippy::unwrap_used)]

use esdk::core::Error;
use esdk::core::error::{AttemptFailure, KeyAlgorithm, KeyError, KeyringError};
use esdk::core::header::{self, ParseLimits, Parsed};
use esdk::{AlgorithmSuite, Config, EncryptOptions, MultiKeyring};
use esdk_core::Keyring;
use esdk_raw::rsa::{RawRsaKeyring, RsaPadding, RsaPrivateKey, RsaPublicKey};

const NS: &str = "rsa-test-namespace";
const NAME: &str = "rsa-test-key";

fn data(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn public() -> RsaPublicKey {
    RsaPublicKey::from_pem(data("rsa2048-spki.pem")).unwrap()
}

fn private() -> RsaPrivateKey {
    RsaPrivateKey::from_pem(data("rsa2048-pkcs8.pem")).unwrap()
}

fn pair(padding: RsaPadding) -> RawRsaKeyring {
    RawRsaKeyring::new(NS, NAME, padding, Some(public()), Some(private())).unwrap()
}

/// The EDKs of a message as (provider id, provider info, ciphertext).
fn edks(msg: &[u8]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let Parsed::Complete(h) = header::parse(msg, ParseLimits::default()).unwrap() else {
        panic!("incomplete header");
    };
    h.edks
        .iter()
        .map(|(_, e)| {
            (
                e.provider_id.to_owned(),
                e.provider_info.to_vec(),
                e.ciphertext.to_vec(),
            )
        })
        .collect()
}

/// The attempts of a decryption that no keyring could do (a core error through `esdk`).
fn attempts(e: &esdk::Error) -> Vec<(u8, u16, AttemptFailure)> {
    match e.core() {
        Some(Error::Keyring(KeyringError::NoDataKeyDecrypted(a))) => {
            a.iter().map(|a| (a.keyring, a.edk, a.reason)).collect()
        }
        other => panic!("expected NoDataKeyDecrypted, got {other:?}"),
    }
}

#[test]
fn round_trip_every_padding_and_every_suite() {
    let plaintext = b"raw RSA keyring round trip".repeat(300);
    for padding in RsaPadding::ALL {
        let keyring = pair(padding);
        for suite in AlgorithmSuite::ALL {
            let cfg = esdk_test_support::config_for(suite);
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(1024);
            let ec = [("purpose", "test"), ("padding", "any")];
            let expected_len =
                esdk::core::encrypted_len(&cfg, &opts, &keyring, &ec, plaintext.len()).unwrap();
            let msg = esdk::encrypt(&cfg, &keyring, &opts, &ec, &plaintext).unwrap();
            assert_eq!(msg.len(), expected_len, "{padding} {suite}: exact size");

            let e = edks(&msg);
            assert_eq!(e.len(), 1);
            assert_eq!(e[0].0, NS);
            assert_eq!(
                e[0].1,
                NAME.as_bytes(),
                "provider info is the bare key name"
            );
            assert_eq!(e[0].2.len(), 256, "ciphertext is one 2048-bit modulus");

            let out = esdk::decrypt(&cfg, &keyring, &[], &msg).unwrap();
            assert_eq!(out.plaintext, plaintext, "{padding} {suite}");
            assert_eq!(out.suite, suite);
        }
    }
}

#[test]
fn encrypt_only_and_decrypt_only_keyrings_work_together() {
    let cfg = Config::new();
    for padding in RsaPadding::ALL {
        let sender = RawRsaKeyring::encrypt_only(NS, NAME, padding, public()).unwrap();
        let receiver = RawRsaKeyring::decrypt_only(NS, NAME, padding, private()).unwrap();
        assert!(sender.can_encrypt() && !sender.can_decrypt());
        assert!(!receiver.can_encrypt() && receiver.can_decrypt());
        let msg = esdk::encrypt(&cfg, &sender, &EncryptOptions::new(), &[], b"hi").unwrap();
        let out = esdk::decrypt(&cfg, &receiver, &[], &msg).unwrap();
        assert_eq!(out.plaintext, b"hi");
    }
}

#[test]
fn encrypt_only_keyring_refuses_to_decrypt_with_a_clear_error() {
    let cfg = Config::new();
    let sender = RawRsaKeyring::encrypt_only(NS, NAME, RsaPadding::OaepSha256, public()).unwrap();
    let msg = esdk::encrypt(&cfg, &sender, &EncryptOptions::new(), &[], b"secret").unwrap();
    let err = esdk::decrypt(&cfg, &sender, &[], &msg).unwrap_err();
    assert_eq!(err, Error::Keyring(KeyringError::DecryptNotSupported));
}

#[test]
fn decrypt_only_keyring_refuses_to_encrypt() {
    let receiver =
        RawRsaKeyring::decrypt_only(NS, NAME, RsaPadding::OaepSha256, private()).unwrap();
    let err =
        esdk::encrypt(&Config::new(), &receiver, &EncryptOptions::new(), &[], b"x").unwrap_err();
    assert_eq!(err, Error::Keyring(KeyringError::EncryptNotSupported));
    assert_eq!(
        Keyring::encrypted_data_keys_len(&receiver, AlgorithmSuite::ALL[0]),
        None
    );
}

#[test]
fn every_key_format_loads_and_all_are_the_same_key() {
    let publics = [
        RsaPublicKey::from_pem(data("rsa2048-spki.pem")).unwrap(),
        RsaPublicKey::from_pem(data("rsa2048-pkcs1-public.pem")).unwrap(),
        RsaPublicKey::from_der(&data("rsa2048-spki.der")).unwrap(),
        RsaPublicKey::from_der(&data("rsa2048-pkcs1-public.der")).unwrap(),
    ];
    let privates = [
        RsaPrivateKey::from_pem(data("rsa2048-pkcs8.pem")).unwrap(),
        RsaPrivateKey::from_pem(data("rsa2048-pkcs1.pem")).unwrap(),
        RsaPrivateKey::from_der(&data("rsa2048-pkcs8.der")).unwrap(),
        RsaPrivateKey::from_der(&data("rsa2048-pkcs1.der")).unwrap(),
    ];
    let spki = data("rsa2048-spki.der");
    for p in &publics {
        assert_eq!(p.modulus_bits(), 2048);
        assert_eq!(p.to_spki_der().unwrap(), spki);
    }
    for s in &privates {
        assert_eq!(s.modulus_bits(), 2048);
        assert!(publics.iter().all(|p| s.matches(p)));
    }
    // PEM given as &str with CRLF line ends and leading text also loads.
    let pem = String::from_utf8(data("rsa2048-spki.pem")).unwrap();
    let crlf = format!("a comment line\r\n{}", pem.replace('\n', "\r\n"));
    assert_eq!(
        RsaPublicKey::from_pem(&crlf)
            .unwrap()
            .to_spki_der()
            .unwrap(),
        spki
    );
    // Cross: encrypt with each public form, decrypt with each private form.
    let cfg = Config::new();
    for (i, p) in publics.iter().enumerate() {
        let sender =
            RawRsaKeyring::encrypt_only(NS, NAME, RsaPadding::OaepSha1, p.clone()).unwrap();
        let msg = esdk::encrypt(&cfg, &sender, &EncryptOptions::new(), &[], b"k").unwrap();
        let s = privates[i].clone();
        let receiver = RawRsaKeyring::decrypt_only(NS, NAME, RsaPadding::OaepSha1, s).unwrap();
        assert_eq!(
            esdk::decrypt(&cfg, &receiver, &[], &msg).unwrap().plaintext,
            b"k"
        );
    }
}

#[test]
fn bad_keys_are_refused_with_specific_errors() {
    let key = |e: Error| match e {
        Error::Keyring(KeyringError::Key(k)) => k,
        other => panic!("expected a key error, got {other:?}"),
    };
    assert_eq!(
        key(RsaPrivateKey::from_pem(data("rsa1024-pkcs8.pem")).unwrap_err()),
        KeyError::ModulusTooSmall { min_bits: 2048 }
    );
    assert_eq!(
        key(RsaPublicKey::from_pem(data("rsa2048-pkcs8.pem")).unwrap_err()),
        KeyError::PrivateKeyGivenAsPublic
    );
    assert_eq!(
        key(RsaPrivateKey::from_pem(data("rsa2048-spki.pem")).unwrap_err()),
        KeyError::PrivateKeyPemLabel(KeyAlgorithm::Rsa)
    );
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_eq!(
        key(RsaPrivateKey::from_pem(encrypted).unwrap_err()),
        KeyError::EncryptedPrivateKey
    );
    let certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_eq!(
        key(RsaPublicKey::from_pem(certificate).unwrap_err()),
        KeyError::PublicKeyPemLabel(KeyAlgorithm::Rsa)
    );
    assert_eq!(
        key(RsaPublicKey::from_pem("hello").unwrap_err()),
        KeyError::Pem
    );
    let bad_base64 = "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n";
    assert_eq!(
        key(RsaPublicKey::from_pem(bad_base64).unwrap_err()),
        KeyError::Pem
    );
    assert_eq!(
        key(RsaPublicKey::from_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).unwrap_err()),
        KeyError::PublicKeyDer(KeyAlgorithm::Rsa)
    );
    let mut truncated = data("rsa2048-pkcs8.der");
    truncated.truncate(600);
    assert_eq!(
        key(RsaPrivateKey::from_der(&truncated).unwrap_err()),
        KeyError::PrivateKeyDer(KeyAlgorithm::Rsa)
    );
    assert_eq!(
        key(RsaPrivateKey::from_der(&[]).unwrap_err()),
        KeyError::PrivateKeyDer(KeyAlgorithm::Rsa)
    );
    assert_eq!(
        key(RsaPublicKey::from_der(&[]).unwrap_err()),
        KeyError::PublicKeyDer(KeyAlgorithm::Rsa)
    );

    let other = RsaPrivateKey::from_pem(data("rsa2048-other-pkcs8.pem")).unwrap();
    let not_pair = RawRsaKeyring::new(
        NS,
        NAME,
        RsaPadding::OaepSha256,
        Some(public()),
        Some(other),
    )
    .unwrap_err();
    assert_eq!(key(not_pair), KeyError::KeyPairMismatch);
    let none = RawRsaKeyring::new(NS, NAME, RsaPadding::OaepSha256, None, None).unwrap_err();
    assert_eq!(key(none), KeyError::NoKey);
    assert_eq!(
        RawRsaKeyring::encrypt_only("aws-kms-raw", NAME, RsaPadding::OaepSha256, public())
            .unwrap_err(),
        Error::Keyring(KeyringError::InvalidConfiguration)
    );
}

#[test]
fn wrong_key_gives_unwrap_failed_for_that_edk() {
    let cfg = Config::new();
    for padding in RsaPadding::ALL {
        let msg = esdk::encrypt(&cfg, &pair(padding), &EncryptOptions::new(), &[], b"x").unwrap();
        let other = RsaPrivateKey::from_pem(data("rsa2048-other-pkcs8.pem")).unwrap();
        let wrong = RawRsaKeyring::decrypt_only(NS, NAME, padding, other).unwrap();
        let err = esdk::decrypt(&cfg, &wrong, &[], &msg).unwrap_err();
        assert_eq!(
            attempts(&err),
            [(0, 0, AttemptFailure::UnwrapFailed)],
            "{padding}"
        );
    }
    // The right key but the wrong padding fails the same way.
    let msg = esdk::encrypt(
        &cfg,
        &pair(RsaPadding::OaepSha256),
        &EncryptOptions::new(),
        &[],
        b"x",
    )
    .unwrap();
    let err = esdk::decrypt(&cfg, &pair(RsaPadding::OaepSha1), &[], &msg).unwrap_err();
    assert_eq!(attempts(&err), [(0, 0, AttemptFailure::UnwrapFailed)]);
}

#[test]
fn foreign_edks_are_skipped_with_their_reason_and_the_right_one_is_used() {
    let cfg = Config::new();
    let other_private = RsaPrivateKey::from_pem(data("rsa2048-other-pkcs8.pem")).unwrap();
    // Three EDKs: another namespace, another key name, then ours.
    let a = RawRsaKeyring::new(
        "other-ns",
        NAME,
        RsaPadding::OaepSha256,
        Some(public()),
        None,
    )
    .unwrap();
    let b = RawRsaKeyring::new(
        NS,
        "other-name",
        RsaPadding::OaepSha256,
        Some(public()),
        None,
    )
    .unwrap();
    let c = pair(RsaPadding::OaepSha256);
    let children: [&dyn Keyring; 2] = [&b, &c];
    let multi = MultiKeyring::new(&a, &children);
    let msg = esdk::encrypt(&cfg, &multi, &EncryptOptions::new(), &[], b"three").unwrap();
    assert_eq!(edks(&msg).len(), 3);
    let out = esdk::decrypt(&cfg, &pair(RsaPadding::OaepSha256), &[], &msg).unwrap();
    assert_eq!(out.plaintext, b"three");

    // With the wrong private key, every EDK gets its own reason.
    let wrong =
        RawRsaKeyring::decrypt_only(NS, NAME, RsaPadding::OaepSha256, other_private).unwrap();
    let err = esdk::decrypt(&cfg, &wrong, &[], &msg).unwrap_err();
    assert_eq!(
        attempts(&err),
        [
            (0, 0, AttemptFailure::ProviderIdMismatch),
            (0, 1, AttemptFailure::KeyNameMismatch),
            (0, 2, AttemptFailure::UnwrapFailed),
        ]
    );
}

#[test]
fn tampered_edk_ciphertext_is_unwrap_failed() {
    let cfg = Config::new();
    let keyring = pair(RsaPadding::Pkcs1V15);
    let mut msg = esdk::encrypt(&cfg, &keyring, &EncryptOptions::new(), &[], b"t").unwrap();
    let ct = edks(&msg)[0].2.clone();
    let at = msg.windows(ct.len()).position(|w| w == ct).unwrap();
    msg[at + 100] ^= 0x01;
    let err = esdk::decrypt(&cfg, &keyring, &[], &msg).unwrap_err();
    assert_eq!(attempts(&err), [(0, 0, AttemptFailure::UnwrapFailed)]);
}

#[test]
fn debug_output_shows_no_key_material() {
    let keyring = pair(RsaPadding::OaepSha512);
    let private = private();
    let public = public();
    let shown = format!("{keyring:?} {private:?} {public:?}");
    assert!(shown.contains("RawRsaKeyring"));
    assert!(shown.contains("modulus_bits: 2048"));
    assert!(shown.contains("<redacted>"));
    // No run of base64 or hex from the key files appears.
    let pem = String::from_utf8(data("rsa2048-pkcs8.pem")).unwrap();
    for line in pem.lines().skip(1).take(5) {
        assert!(!shown.contains(&line[..16]), "{shown}");
    }
    assert!(shown.len() < 400, "{shown}");
}

#[test]
fn keyring_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RawRsaKeyring>();
    assert_send_sync::<RsaPublicKey>();
    assert_send_sync::<RsaPrivateKey>();
}

/// Prints the time of one RSA-4096 unwrap (OAEP-SHA256) through the whole decrypt of a
/// small message. `cargo test --release -p esdk-raw --features rsa --test rsa -- --ignored
/// --nocapture rsa_4096_decrypt_timing`
#[test]
#[ignore = "timing, run by hand"]
fn rsa_4096_decrypt_timing() {
    let keyring = RawRsaKeyring::new(
        NS,
        NAME,
        RsaPadding::OaepSha256,
        Some(RsaPublicKey::from_pem(data("rsa4096-spki.pem")).unwrap()),
        Some(RsaPrivateKey::from_pem(data("rsa4096-pkcs8.pem")).unwrap()),
    )
    .unwrap();
    // Unsigned suite, so the time is the RSA unwrap, not ECDSA.
    let cfg = Config::new();
    let opts = EncryptOptions::new().with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let msg = esdk::encrypt(&cfg, &keyring, &opts, &[], b"timing").unwrap();
    let n = 50u32;
    let start = std::time::Instant::now();
    for _ in 0..n {
        esdk::decrypt(&cfg, &keyring, &[], &msg).unwrap();
    }
    let per = start.elapsed() / n;
    println!("RSA-4096 OAEP-SHA256 decrypt of a small message: {per:?} per message");
}

/// Writes messages for a by-hand interop check with the Python ESDK peer into
/// `$ESDK_RSA_INTEROP_DIR` (one per padding, key = `tests/data/rsa2048-pkcs8.pem`).
#[test]
#[ignore = "writes files for a by-hand interop check"]
fn write_messages_for_python_peer() {
    let Ok(dir) = std::env::var("ESDK_RSA_INTEROP_DIR") else {
        panic!("set ESDK_RSA_INTEROP_DIR");
    };
    let cfg = Config::new();
    for (padding, tag) in [
        (RsaPadding::Pkcs1V15, "pkcs1"),
        (RsaPadding::OaepSha1, "oaep-sha1"),
        (RsaPadding::OaepSha256, "oaep-sha256"),
        (RsaPadding::OaepSha384, "oaep-sha384"),
        (RsaPadding::OaepSha512, "oaep-sha512"),
    ] {
        let sender = RawRsaKeyring::encrypt_only(NS, NAME, padding, public()).unwrap();
        let msg = esdk::encrypt(
            &cfg,
            &sender,
            &EncryptOptions::new(),
            &[("interop", tag)],
            format!("hello from rust, {tag}\n").as_bytes(),
        )
        .unwrap();
        std::fs::write(format!("{dir}/rust-{tag}.esdk"), msg).unwrap();
    }
}

#[test]
fn rsa_encryptor_limits_and_errors() {
    use esdk_raw::rsa::RsaEncryptor;
    for (padding, max) in [
        (RsaPadding::OaepSha1, 256 - 42),
        (RsaPadding::OaepSha256, 256 - 66),
        (RsaPadding::OaepSha512, 256 - 130),
        (RsaPadding::Pkcs1V15, 256 - 11),
    ] {
        let enc = RsaEncryptor::new(public(), padding).unwrap();
        assert_eq!(
            (enc.padding(), enc.modulus_bits(), enc.ciphertext_len()),
            (padding, 2048, 256)
        );
        assert_eq!(enc.max_message_len(), max, "{padding}");
        // The longest message fits; the padding is randomized.
        let msg = vec![7u8; max];
        let a = enc.encrypt_to_vec(&msg).unwrap();
        let b = enc.encrypt_to_vec(&msg).unwrap();
        assert_eq!((a.len(), b.len()), (256, 256));
        assert_ne!(a, b, "{padding}");
        // One byte more does not.
        assert_eq!(
            enc.encrypt_to_vec(&vec![7u8; max + 1]),
            Err(Error::Keyring(KeyringError::Key(
                KeyError::ModulusTooSmallForPadding
            )))
        );
        // The output must hold a modulus.
        assert_eq!(
            enc.encrypt(&msg, &mut [0u8; 255]),
            Err(Error::BufferTooSmall { required: 256 })
        );
        assert!(format!("{enc:?}").contains("modulus_bits: 2048"));
    }
}
