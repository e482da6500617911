//! Raw ECDH keyring: round trips for every schema and curve through the whole message engine,
//! the EDK layout, capabilities, per-EDK failure reasons, key formats, and no allocation.
//! Keys are fixed files under `tests/data/` (see its README).
#![cfg(feature = "ecdh")]
#![allow(clippy::unwrap_used)]

use esdk_test_support::alloc::{Counting, thread_allocations};

use esdk::core::Error;
use esdk::core::error::{AttemptFailure, KeyAlgorithm, KeyError, KeyringError};
use esdk::core::header::{self, ParseLimits, Parsed};
use esdk::{AlgorithmSuite, CommitmentPolicy, Config, EncryptOptions};
use esdk_core::Keyring;
use esdk_raw::ecdh::{
    EcdhCurve, EcdhPrivateKey, EcdhPublicKey, EcdhSchema, KMS_PROVIDER_ID, PROVIDER_ID,
    RawEcdhKeyring, SharedSecretWrap, ciphertext_len, parse_provider_info, provider_info,
};

const CURVES: [(EcdhCurve, &str); 3] = [
    (EcdhCurve::P256, "p256"),
    (EcdhCurve::P384, "p384"),
    (EcdhCurve::P521, "p521"),
];

fn data(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn private(curve: &str, role: &str) -> EcdhPrivateKey {
    EcdhPrivateKey::from_pkcs8_pem(data(&format!("ecc-{curve}-{role}-pkcs8.pem"))).unwrap()
}

fn public(curve: &str, role: &str) -> EcdhPublicKey {
    EcdhPublicKey::from_spki_der(&data(&format!("ecc-{curve}-{role}-spki.der"))).unwrap()
}

/// The keyrings of one curve: static sender, mirrored static (recipient's view), ephemeral
/// sender, discovery recipient.
struct Keyrings {
    sender: RawEcdhKeyring,
    mirrored: RawEcdhKeyring,
    ephemeral: RawEcdhKeyring,
    discovery: RawEcdhKeyring,
}

fn keyrings(curve: EcdhCurve, name: &str) -> Keyrings {
    Keyrings {
        sender: RawEcdhKeyring::raw_private_key_to_static_public_key(
            curve,
            private(name, "sender"),
            public(name, "recipient"),
        )
        .unwrap(),
        mirrored: RawEcdhKeyring::raw_private_key_to_static_public_key(
            curve,
            private(name, "recipient"),
            public(name, "sender"),
        )
        .unwrap(),
        ephemeral: RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
            curve,
            public(name, "recipient"),
        )
        .unwrap(),
        discovery: RawEcdhKeyring::public_key_discovery(curve, private(name, "recipient")).unwrap(),
    }
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

fn attempts(e: Error) -> Vec<(u16, AttemptFailure)> {
    match e {
        Error::Keyring(KeyringError::NoDataKeyDecrypted(a)) => {
            a.iter().map(|a| (a.edk, a.reason)).collect()
        }
        other => panic!("expected NoDataKeyDecrypted, got {other:?}"),
    }
}

fn encrypt(keyring: &RawEcdhKeyring, suite: AlgorithmSuite, plaintext: &[u8]) -> Vec<u8> {
    let cfg = esdk_test_support::config_for(suite);
    let opts = EncryptOptions::new().with_suite(suite);
    let ec = [("tenant", "blue"), ("purpose", "ecdh test")];
    let msg = esdk::encrypt(&cfg, keyring, &opts, &ec, plaintext).unwrap();
    let expected = esdk::core::encrypted_len(&cfg, &opts, keyring, &ec, plaintext.len()).unwrap();
    assert_eq!(msg.len(), expected, "exact size");
    msg
}

fn decrypt(keyring: &RawEcdhKeyring, msg: &[u8]) -> Result<Vec<u8>, Error> {
    let cfg = Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt);
    esdk::decrypt(&cfg, keyring, &[], msg)
        .map(|d| d.plaintext)
        .map_err(|e| e.core().expect("a core error"))
}

#[test]
fn round_trip_every_schema_curve_and_suite() {
    let plaintext = b"raw ECDH keyring round trip".repeat(200);
    for (curve, name) in CURVES {
        let k = keyrings(curve, name);
        for suite in AlgorithmSuite::ALL {
            // Static: the sender reads its own messages, the recipient (mirrored static
            // configuration, or discovery) reads them too.
            let msg = encrypt(&k.sender, suite, &plaintext);
            for reader in [&k.sender, &k.mirrored, &k.discovery] {
                assert_eq!(decrypt(reader, &msg).unwrap(), plaintext, "{curve} {suite}");
            }
            // The recipient can answer with the mirrored configuration.
            let reply = encrypt(&k.mirrored, suite, b"reply");
            assert_eq!(decrypt(&k.sender, &reply).unwrap(), b"reply");
            // Ephemeral: only the recipient's private key opens it.
            let msg = encrypt(&k.ephemeral, suite, &plaintext);
            assert_eq!(
                decrypt(&k.discovery, &msg).unwrap(),
                plaintext,
                "{curve} {suite}"
            );
            assert_eq!(
                attempts(decrypt(&k.sender, &msg).unwrap_err()),
                [(0, AttemptFailure::KeyNameMismatch)]
            );
        }
    }
}

#[test]
fn edk_layout_matches_the_spec() {
    for (curve, name) in CURVES {
        let k = keyrings(curve, name);
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
        let n = curve.compressed_point_len();
        for (keyring, sender_point) in [
            (
                &k.sender,
                Some(private(name, "sender").public_key().to_compressed()),
            ),
            (&k.ephemeral, None),
        ] {
            let e = edks(&encrypt(keyring, suite, b"x"));
            assert_eq!(e.len(), 1);
            let (id, info, ct) = &e[0];
            assert_eq!(id, PROVIDER_ID);
            assert_eq!(info.len(), curve.provider_info_len());
            assert_eq!(info.len(), [75, 107, 143][n / 20 - 1]);
            assert_eq!(info[0], 1, "version");
            assert_eq!(info[1..5], (n as u32).to_be_bytes());
            let recipient = public(name, "recipient").to_compressed();
            assert_eq!(&info[5..5 + n], recipient.as_bytes());
            assert_eq!(info[5 + n..9 + n], (n as u32).to_be_bytes());
            let sender = &info[9 + n..];
            assert_eq!(sender.len(), n);
            assert!(sender[0] == 2 || sender[0] == 3, "compressed");
            if let Some(p) = sender_point {
                assert_eq!(sender, p.as_bytes());
            }
            assert_eq!(ct.len(), 32 + 32 + 32 + 16, "salt, commitment, key, tag");
        }
        // Ephemeral keys are fresh per message.
        let a = edks(&encrypt(&k.ephemeral, AlgorithmSuite::ALL[0], b"a"));
        let b = edks(&encrypt(&k.ephemeral, AlgorithmSuite::ALL[0], b"b"));
        assert_ne!(a[0].1, b[0].1);
    }
}

/// The pub helpers the AWS KMS ECDH keyring builds on (it gets the shared secret from KMS):
/// the SPKI DER of a public key, the provider info, and unwrapping a raw keyring's EDK with
/// the shared secret computed outside the keyring.
#[test]
fn shared_secret_helpers_match_the_keyring() {
    for (curve, name) in CURVES {
        // SPKI DER: the test files' DER (uncompressed points) byte for byte.
        let der = data(&format!("ecc-{name}-recipient-spki.der"));
        let spki = public(name, "recipient").to_spki_der();
        assert_eq!(spki.as_bytes(), der.as_slice(), "{curve}");
        assert_eq!(
            EcdhPublicKey::from_spki_der(spki.as_bytes()).unwrap(),
            public(name, "recipient")
        );
        // An EDK of the static raw keyring, opened with the helper and the x-coordinate
        // computed by the recipient's side (with the mirrored key pair).
        let k = keyrings(curve, name);
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let msg = encrypt(&k.sender, suite, b"helpers");
        let e = edks(&msg);
        let (recipient, sender) = parse_provider_info(curve, &e[0].1).unwrap();
        let s = public(name, "sender").to_compressed();
        let r = public(name, "recipient").to_compressed();
        assert_eq!((recipient, sender), (r.as_bytes(), s.as_bytes()));
        let info = provider_info(curve, &r, &s).unwrap();
        assert_eq!(info.as_bytes(), e[0].1.as_slice());
        assert!(parse_provider_info(curve, &e[0].1[1..]).is_none());
        let other = if curve == EcdhCurve::P256 {
            EcdhCurve::P384
        } else {
            EcdhCurve::P256
        };
        assert!(parse_provider_info(other, &e[0].1).is_none());
        assert!(provider_info(other, &r, &s).is_err());
        assert_eq!(e[0].2.len(), ciphertext_len(32));
        // The message's serialized context (`encrypt` sorts the pairs) and the x-coordinate
        // of the key pair.
        let mut ec = Vec::new();
        esdk::core::encryption_context::feed(
            [(&b"purpose"[..], &b"ecdh test"[..]), (b"tenant", b"blue")],
            &mut |b: &[u8]| ec.extend_from_slice(b),
        );
        let z = shared_x(name);
        let w = |z: &[u8], ec: &[u8], ct: &[u8], n| {
            SharedSecretWrap {
                curve,
                shared_secret: z,
                sender,
                recipient,
                serialized_ec: ec,
            }
            .unwrap(ct, n)
        };
        assert!(w(&z, &ec, &e[0].2, 32).is_ok(), "{curve}");
        // Another context or secret: the commitment key differs.
        let failed = Err(AttemptFailure::UnwrapFailed);
        assert_eq!(w(&z, &[], &e[0].2, 32).map(|_| ()), failed);
        let mut bad = z.clone();
        bad[0] ^= 1;
        assert_eq!(w(&bad, &ec, &e[0].2, 32).map(|_| ()), failed);
        let short = Err(AttemptFailure::DataKeyLength);
        assert_eq!(w(&z, &ec, &e[0].2, 24).map(|_| ()), short);
        // Wrap and unwrap with the helper alone.
        let helper = SharedSecretWrap {
            curve,
            shared_secret: &z,
            sender,
            recipient,
            serialized_ec: b"ec",
        };
        assert!(format!("{helper:?}").contains("shared_secret: \"<redacted>\""));
        let wrapped = helper.wrap(&[7; 32], &[9; 16]).unwrap();
        assert_eq!(wrapped.as_bytes().len(), ciphertext_len(16));
        assert_eq!(&wrapped.as_bytes()[..32], &[7; 32]);
        let back = w(&z, b"ec", wrapped.as_bytes(), 16).unwrap();
        assert_eq!(back.as_bytes(), &[9; 16]);
    }
}

/// The ECDH x-coordinate of the test key pairs, computed with the curve crates directly.
fn shared_x(name: &str) -> Vec<u8> {
    let pem = data(&format!("ecc-{name}-recipient-pkcs8.pem"));
    let mut buf = [0u8; 512];
    let (_, key) = pem_rfc7468::decode(&pem, &mut buf).unwrap();
    let der = data(&format!("ecc-{name}-sender-spki.der"));
    use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
    match name {
        "p256" => p256::SecretKey::from_pkcs8_der(key)
            .unwrap()
            .diffie_hellman(&p256::PublicKey::from_public_key_der(&der).unwrap())
            .raw_secret_bytes()
            .to_vec(),
        "p384" => p384::SecretKey::from_pkcs8_der(key)
            .unwrap()
            .diffie_hellman(&p384::PublicKey::from_public_key_der(&der).unwrap())
            .raw_secret_bytes()
            .to_vec(),
        _ => p521::SecretKey::from_pkcs8_der(key)
            .unwrap()
            .diffie_hellman(&p521::PublicKey::from_public_key_der(&der).unwrap())
            .raw_secret_bytes()
            .to_vec(),
    }
}

#[test]
fn capabilities_follow_the_schema() {
    let k = keyrings(EcdhCurve::P256, "p256");
    assert_eq!(
        k.sender.schema(),
        EcdhSchema::RawPrivateKeyToStaticPublicKey
    );
    assert_eq!(
        k.ephemeral.schema(),
        EcdhSchema::EphemeralPrivateKeyToStaticPublicKey
    );
    assert_eq!(k.discovery.schema(), EcdhSchema::PublicKeyDiscovery);
    assert!(k.sender.can_encrypt() && k.sender.can_decrypt());
    assert!(k.ephemeral.can_encrypt() && !k.ephemeral.can_decrypt());
    assert!(!k.discovery.can_encrypt() && k.discovery.can_decrypt());

    let err = esdk::encrypt(
        &Config::new(),
        &k.discovery,
        &EncryptOptions::new(),
        &[],
        b"x",
    )
    .unwrap_err();
    assert_eq!(err, Error::Keyring(KeyringError::EncryptNotSupported));
    assert_eq!(
        Keyring::encrypted_data_keys_len(&k.discovery, AlgorithmSuite::ALL[0]),
        None
    );

    let msg = encrypt(&k.ephemeral, AlgorithmSuite::ALL[10], b"x");
    let err = decrypt(&k.ephemeral, &msg).unwrap_err();
    assert_eq!(err, Error::Keyring(KeyringError::DecryptNotSupported));
}

#[test]
fn foreign_and_tampered_edks_get_their_reasons() {
    let k = keyrings(EcdhCurve::P384, "p384");
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let msg = encrypt(&k.sender, suite, b"payload");

    // Another recipient: the public keys in the provider info are not ours.
    let other =
        RawEcdhKeyring::public_key_discovery(EcdhCurve::P384, private("p384", "sender")).unwrap();
    assert_eq!(
        attempts(decrypt(&other, &msg).unwrap_err()),
        [(0, AttemptFailure::KeyNameMismatch)]
    );
    // Another curve: the provider info has another length.
    let p256 = keyrings(EcdhCurve::P256, "p256");
    assert_eq!(
        attempts(decrypt(&p256.discovery, &msg).unwrap_err()),
        [(0, AttemptFailure::ProviderInfoFormat)]
    );

    // Flip a byte of the salt, the commitment key, the wrapped key and the tag: each is
    // caught by the keyring (commitment or tag), not later.
    let ct = edks(&msg)[0].2.clone();
    let at = msg.windows(ct.len()).position(|w| w == ct).unwrap();
    for offset in [0, 40, 70, ct.len() - 1] {
        let mut bad = msg.clone();
        bad[at + offset] ^= 0x80;
        assert_eq!(
            attempts(decrypt(&k.discovery, &bad).unwrap_err()),
            [(0, AttemptFailure::UnwrapFailed)],
            "offset {offset}"
        );
    }
}

#[test]
fn keys_load_in_the_spec_forms_and_mismatches_are_refused() {
    let key = |e: Error| match e {
        Error::Keyring(KeyringError::Key(k)) => k,
        other => panic!("expected a key error, got {other:?}"),
    };
    // PKCS#8 DER, SPKI PEM, SEC1 points (compressed and uncompressed).
    let der = EcdhPrivateKey::from_pkcs8_der(&data("ecc-p384-sender-pkcs8.der")).unwrap();
    assert_eq!(der.curve(), EcdhCurve::P384);
    assert_eq!(der.public_key(), public("p384", "sender"));
    let pem = EcdhPublicKey::from_spki_pem(data("ecc-p256-sender-spki.pem")).unwrap();
    assert_eq!(pem, public("p256", "sender"));
    for (curve, name) in CURVES {
        let p = public(name, "recipient");
        assert_eq!(p.curve(), curve);
        let c = p.to_compressed();
        assert_eq!(c.as_bytes().len(), curve.compressed_point_len());
        assert_eq!(EcdhPublicKey::from_sec1(curve, c.as_bytes()).unwrap(), p);
        // The uncompressed point is the tail of the SPKI DER.
        let spki = data(&format!("ecc-{name}-recipient-spki.der"));
        let unc = &spki[spki.len() - (2 * curve.shared_secret_len() + 1)..];
        assert_eq!(EcdhPublicKey::from_sec1(curve, unc).unwrap(), p);
        assert_eq!(private(name, "recipient").public_key(), p);
    }

    // Wrong forms.
    let private_label = KeyError::PrivateKeyPemLabel(KeyAlgorithm::Ec);
    assert_eq!(
        key(EcdhPrivateKey::from_pkcs8_pem(data("ecc-p256-sender-sec1.pem")).unwrap_err()),
        private_label
    );
    assert_eq!(
        key(EcdhPrivateKey::from_pkcs8_pem(data("rsa2048-pkcs8.pem")).unwrap_err()),
        KeyError::PrivateKeyDer(KeyAlgorithm::Ec)
    );
    assert_eq!(
        key(EcdhPublicKey::from_spki_der(&data("rsa2048-spki.der")).unwrap_err()),
        KeyError::PublicKeyDer(KeyAlgorithm::Ec)
    );
    assert_eq!(
        key(EcdhPublicKey::from_spki_pem(data("ecc-p256-sender-pkcs8.pem")).unwrap_err()),
        KeyError::PublicKeyPemLabel(KeyAlgorithm::Ec)
    );
    assert_eq!(
        key(EcdhPrivateKey::from_pkcs8_pem("nonsense").unwrap_err()),
        KeyError::Pem
    );
    // x = 2^256 - 1 is not a field element of P-256.
    let mut not_x = [0xFFu8; 33];
    not_x[0] = 2;
    let bad_points: [(EcdhCurve, &[u8]); 3] = [
        (EcdhCurve::P256, &not_x),
        (EcdhCurve::P256, &[0]), // the identity
        (EcdhCurve::P384, &[]),
    ];
    for (curve, bytes) in bad_points {
        assert_eq!(
            key(EcdhPublicKey::from_sec1(curve, bytes).unwrap_err()),
            KeyError::InvalidPoint,
            "{bytes:02x?}"
        );
    }
    // Well-formed PEM, but 1200 bytes of DER: too large for any key of the three curves.
    let big_pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}-----END PRIVATE KEY-----\n",
        format!("{}\n", "QUFB".repeat(16)).repeat(25)
    );
    assert_eq!(
        key(EcdhPrivateKey::from_pkcs8_pem(big_pem).unwrap_err()),
        KeyError::PrivateKeyDer(KeyAlgorithm::Ec)
    );

    // Keys on another curve than the keyring's.
    let wrong_curve = [
        RawEcdhKeyring::raw_private_key_to_static_public_key(
            EcdhCurve::P256,
            private("p256", "sender"),
            public("p384", "recipient"),
        )
        .unwrap_err(),
        RawEcdhKeyring::public_key_discovery(EcdhCurve::P521, private("p384", "recipient"))
            .unwrap_err(),
        RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
            EcdhCurve::P384,
            public("p256", "recipient"),
        )
        .unwrap_err(),
    ];
    for e in wrong_curve {
        assert_eq!(key(e), KeyError::WrongCurve);
    }
}

#[test]
fn debug_output_shows_no_private_key() {
    let k = keyrings(EcdhCurve::P256, "p256");
    let key = private("p256", "sender");
    let shown = format!("{:?} {:?} {key:?}", k.sender, k.discovery);
    assert!(shown.contains("RawPrivateKeyToStaticPublicKey"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let pem = String::from_utf8(data("ecc-p256-sender-pkcs8.pem")).unwrap();
    let b64 = pem.lines().nth(1).unwrap();
    assert!(!shown.contains(&b64[40..56]), "{shown}");
    assert_eq!(PROVIDER_ID, "raw-ecdh");
    assert_eq!(KMS_PROVIDER_ID, "aws-kms-ecdh");
}

#[test]
fn keyring_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RawEcdhKeyring>();
    assert_send_sync::<EcdhPrivateKey>();
}

#[global_allocator]
static GLOBAL: Counting = Counting::new();

#[test]
fn encrypt_and_decrypt_allocate_nothing() {
    for (curve, name) in CURVES {
        let k = keyrings(curve, name);
        let cfg = Config::new();
        let opts = EncryptOptions::new();
        let mut out = [0u8; 4096];
        let mut plain = [0u8; 64];
        // The pure-Rust provider: the no_std configuration (aws-lc allocates internally).
        let provider = &esdk::RUSTCRYPTO_PROVIDER;
        let before = thread_allocations();
        let mut ec = [("k", "v")];
        let n = esdk_core::encrypt(
            &cfg,
            provider,
            &k.ephemeral,
            &opts,
            &mut ec,
            b"fw",
            &mut out,
        );
        let d = n.and_then(|n| {
            esdk_core::decrypt(&cfg, provider, &k.discovery, &[], &out[..n], &mut plain)
        });
        let allocations = thread_allocations() - before;
        assert_eq!(&plain[..d.unwrap().plaintext_len], b"fw");
        assert_eq!(allocations, 0, "{curve}");
    }
}
