//! The AWS KMS ECDH keyring against the local KMS server (`../shared/peers/kms_server.py`,
//! started by `scripts/kms-test.sh`, which exports `ESDK_KMS_ENDPOINT` and `ESDK_PY`: real
//! ECDH with the KMS key pairs in `DeriveSharedSecret`), the raw ECDH keyring of `esdk-raw`,
//! and the official Python ESDK + Material Providers Library (`../shared/peers/mpl_peer.py`)
//! on the same server. These tests never skip: without the server or the peer they fail and
//! say how to start them.
#![cfg(feature = "kms")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod kms_support;

use std::sync::OnceLock;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use esdk::core::CommitmentPolicy;
use esdk::core::error::AttemptFailure;
use esdk::kms::{
    self, AsyncKeyring, AsyncMultiKeyring, AwsKmsEcdhKeyring, AwsKmsKeyring, BlockingKeyring,
    ECDH_PROVIDER_ID, EcdhKeyProblem, Error, Failure, KmsOperation, KmsRuntime, asynch,
    get_ecdh_public_key,
};
use esdk::raw::ecdh::{EcdhCurve, EcdhPrivateKey, EcdhPublicKey, RawEcdhKeyring};
use esdk::{AlgorithmSuite, Config, EncryptOptions};
use kms_support::{W, attempts, client, edks, endpoint, mpl_peer, mpl_peer_ok, rt};

const CURVES: [EcdhCurve; 3] = [EcdhCurve::P256, EcdhCurve::P384, EcdhCurve::P521];

fn spec(curve: EcdhCurve) -> KeySpec {
    match curve {
        EcdhCurve::P256 => KeySpec::EccNistP256,
        EcdhCurve::P384 => KeySpec::EccNistP384,
        EcdhCurve::P521 => KeySpec::EccNistP521,
    }
}

/// A KMS key on the server: its ARN.
fn create_key(spec: KeySpec, usage: KeyUsageType) -> String {
    rt().block_on(async {
        let out = client(W)
            .create_key()
            .key_spec(spec)
            .key_usage(usage)
            .send()
            .await
            .unwrap();
        out.key_metadata().unwrap().arn().unwrap().to_owned()
    })
}

/// A KEY_AGREEMENT key pair in KMS: its ARN and its public key (GetPublicKey, checked).
struct EcdhKey {
    arn: String,
    public: EcdhPublicKey,
}

impl EcdhKey {
    fn create(curve: EcdhCurve) -> Self {
        let arn = create_key(spec(curve), KeyUsageType::KeyAgreement);
        let public = rt()
            .block_on(get_ecdh_public_key(&client(W), &arn, Some(curve)))
            .unwrap();
        assert_eq!(public.curve(), curve);
        Self { arn, public }
    }
}

/// A sender and a recipient key per curve, created once per test binary.
struct Pair {
    curve: EcdhCurve,
    sender: EcdhKey,
    recipient: EcdhKey,
}

impl Pair {
    /// `KmsPrivateKeyToStaticPublicKey` from the sender to the recipient, the sender's
    /// public key fetched with GetPublicKey.
    fn sender_keyring(&self) -> AwsKmsEcdhKeyring {
        rt().block_on(AwsKmsEcdhKeyring::kms_private_key_to_static_public_key(
            &self.sender.arn,
            self.curve,
            self.recipient.public,
            client(W),
        ))
        .unwrap()
    }

    /// The recipient's view of the same pair: its KMS key, the sender's public key.
    fn mirrored_keyring(&self) -> AwsKmsEcdhKeyring {
        AwsKmsEcdhKeyring::kms_private_key_to_static_public_key_with(
            &self.recipient.arn,
            self.curve,
            self.recipient.public,
            self.sender.public,
            client(W),
        )
        .unwrap()
    }

    /// `KmsPublicKeyDiscovery` with the recipient's key.
    fn discovery_keyring(&self) -> AwsKmsEcdhKeyring {
        rt().block_on(AwsKmsEcdhKeyring::kms_public_key_discovery(
            &self.recipient.arn,
            self.curve,
            client(W),
        ))
        .unwrap()
    }
}

fn pairs() -> &'static [Pair; 3] {
    static PAIRS: OnceLock<[Pair; 3]> = OnceLock::new();
    PAIRS.get_or_init(|| {
        CURVES.map(|curve| Pair {
            curve,
            sender: EcdhKey::create(curve),
            recipient: EcdhKey::create(curve),
        })
    })
}

fn pair(curve: EcdhCurve) -> &'static Pair {
    pairs().iter().find(|p| p.curve == curve).unwrap()
}

fn encrypt(k: &dyn AsyncKeyring, ec: &[(&str, &str)], pt: &[u8]) -> Result<Vec<u8>, Error> {
    kms::blocking::encrypt(rt(), &Config::new(), k, &EncryptOptions::new(), ec, pt)
}

fn decrypt(k: &dyn AsyncKeyring, ec: &[(&str, &str)], msg: &[u8]) -> Result<Vec<u8>, Error> {
    kms::blocking::decrypt(rt(), &Config::new(), k, ec, msg).map(|d| d.plaintext)
}

/// The one EDK of a message: (provider id, provider info, ciphertext length).
fn one_edk(msg: &[u8]) -> (String, Vec<u8>, usize) {
    let mut e = edks(msg);
    assert_eq!(e.len(), 1);
    e.remove(0)
}

// ---------------------------------------------------------------------------------------
// Round trips.

#[test]
fn kms_ecdh_static_round_trips_every_curve_async_and_blocking() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let ec = [("purpose", "kms-ecdh"), ("tenant", "7")];
    let tokio = tokio::runtime::Runtime::new().unwrap();
    for p in pairs() {
        let sender = p.sender_keyring();
        assert_eq!(sender.schema(), "KmsPrivateKeyToStaticPublicKey");
        assert!(sender.can_encrypt());
        let msg = encrypt(&sender, &ec, &data).unwrap();
        // One EDK in the raw ECDH keyring's layout: recipient then sender, compressed.
        let (id, info, ct_len) = one_edk(&msg);
        assert_eq!(id, ECDH_PROVIDER_ID);
        assert_eq!(info.len(), p.curve.provider_info_len());
        let n = p.curve.compressed_point_len();
        assert_eq!(
            &info[5..5 + n],
            p.recipient.public.to_compressed().as_bytes()
        );
        assert_eq!(&info[9 + n..], p.sender.public.to_compressed().as_bytes());
        assert_eq!(ct_len, 32 + 32 + 32 + 16);
        // The sender reads its own message, and so do the recipient (mirrored static) and
        // the recipient's discovery keyring; async and blocking.
        assert_eq!(decrypt(&sender, &ec, &msg).unwrap(), data, "{}", p.curve);
        assert_eq!(decrypt(&p.mirrored_keyring(), &[], &msg).unwrap(), data);
        let discovery = p.discovery_keyring();
        let out = tokio
            .block_on(asynch::decrypt(&Config::new(), &discovery, &[], &msg))
            .unwrap();
        assert_eq!(out.plaintext, data, "{}", p.curve);
        // The recipient answers (async encrypt), the sender reads it.
        let back = tokio
            .block_on(asynch::encrypt(
                &Config::new(),
                &p.mirrored_keyring(),
                &EncryptOptions::new(),
                &ec,
                b"reply",
            ))
            .unwrap();
        assert_eq!(decrypt(&sender, &[], &back).unwrap(), b"reply");
    }
}

#[test]
fn kms_ecdh_every_suite_p256() {
    let p = pair(EcdhCurve::P256);
    let (sender, discovery) = (p.sender_keyring(), p.discovery_keyring());
    let forbid = Config::new().with_commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt);
    for suite in AlgorithmSuite::ALL {
        let cfg = if suite.is_committing() {
            Config::new()
        } else {
            forbid
        };
        let o = EncryptOptions::new().with_suite(suite);
        let msg = kms::blocking::encrypt(rt(), &cfg, &sender, &o, &[("s", "x")], b"suite").unwrap();
        assert_eq!(one_edk(&msg).2, 64 + suite.key_len() + 16, "{suite}");
        let out = kms::blocking::decrypt(rt(), &cfg, &discovery, &[], &msg).unwrap();
        assert_eq!(out.plaintext, b"suite", "{suite}");
    }
}

#[test]
fn kms_ecdh_discovery_refuses_to_encrypt() {
    let d = pair(EcdhCurve::P256).discovery_keyring();
    assert!(!d.can_encrypt());
    assert_eq!(d.schema(), "KmsPublicKeyDiscovery");
    let e = encrypt(&d, &[], b"x").unwrap_err();
    match &e {
        Error::EncryptNotSupported { keyring } => {
            assert!(keyring.contains("KmsPublicKeyDiscovery"), "{keyring}");
            assert!(keyring.contains(&pair(EcdhCurve::P256).recipient.arn));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("decrypt-only"), "{e}");
}

/// The point of the keyring: a device with the no_std raw ECDH keyring and only the KMS
/// key's public key (ephemeral sender) writes messages that the server decrypts with
/// `KmsPublicKeyDiscovery`, its private key never leaving KMS.
#[test]
fn raw_ecdh_device_to_kms_discovery() {
    for p in pairs() {
        // The device: the core one-shot API, no KMS, no heap needed.
        let device =
            RawEcdhKeyring::ephemeral_private_key_to_static_public_key(p.curve, p.recipient.public)
                .unwrap();
        let cfg = Config::new();
        let ec = [("device", "sensor-7")];
        let telemetry = b"temperature=21.5";
        let msg = esdk::encrypt(&cfg, &device, &EncryptOptions::new(), &ec, telemetry).unwrap();
        let (id, _, _) = one_edk(&msg);
        assert_eq!(id, "raw-ecdh");
        // The server.
        let server = p.discovery_keyring();
        assert_eq!(
            decrypt(&server, &ec, &msg).unwrap(),
            telemetry,
            "{}",
            p.curve
        );
        // Another KMS key of the curve (the sender's) is not the EDK's recipient.
        let wrong = rt()
            .block_on(AwsKmsEcdhKeyring::kms_public_key_discovery(
                &p.sender.arn,
                p.curve,
                client(W),
            ))
            .unwrap();
        let e = decrypt(&wrong, &[], &msg).unwrap_err();
        assert!(
            matches!(attempts(&e)[0].failure, Failure::EcdhPublicKeys),
            "{e}"
        );
    }
}

/// And the other way: a KMS sender to a recipient whose private key is local (raw ECDH
/// `PublicKeyDiscovery` reads the `aws-kms-ecdh` EDK).
#[test]
fn kms_ecdh_sender_to_raw_ecdh_recipient() {
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../backends/raw/tests/data/ecc-p384-recipient-pkcs8.pem"
    ))
    .unwrap();
    let local = EcdhPrivateKey::from_pkcs8_pem(pem).unwrap();
    let p = pair(EcdhCurve::P384);
    let sender = rt()
        .block_on(AwsKmsEcdhKeyring::kms_private_key_to_static_public_key(
            &p.sender.arn,
            EcdhCurve::P384,
            local.public_key(),
            client(W),
        ))
        .unwrap();
    let msg = encrypt(&sender, &[("to", "local")], b"from kms").unwrap();
    let raw = RawEcdhKeyring::public_key_discovery(EcdhCurve::P384, local).unwrap();
    let out = esdk::decrypt(&Config::new(), &raw, &[], &msg).unwrap();
    assert_eq!(out.plaintext, b"from kms");
}

/// Next to a symmetric KMS key that generates the data key (the ECDH keyring then wraps a
/// key it did not make), and as a sync core keyring through the blocking adapter.
#[test]
fn kms_ecdh_in_a_multi_keyring_and_as_a_core_keyring() {
    let p = pair(EcdhCurve::P256);
    let symmetric = create_key(KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt);
    let generator = AwsKmsKeyring::new(&symmetric, client(W)).unwrap();
    let multi = AsyncMultiKeyring::new(
        Some(Box::new(generator)),
        vec![Box::new(p.sender_keyring())],
    )
    .unwrap();
    let msg = encrypt(&multi, &[("m", "1")], b"both").unwrap();
    let ids: Vec<String> = edks(&msg).into_iter().map(|e| e.0).collect();
    assert_eq!(ids, ["aws-kms", ECDH_PROVIDER_ID]);
    // The ECDH keyring alone decrypts: it records why it skipped the aws-kms EDK.
    assert_eq!(decrypt(&p.discovery_keyring(), &[], &msg).unwrap(), b"both");
    let stranger = EcdhKey::create(EcdhCurve::P256);
    let d = AwsKmsEcdhKeyring::kms_public_key_discovery_with(
        &stranger.arn,
        EcdhCurve::P256,
        stranger.public,
        client(W),
    )
    .unwrap();
    let e = decrypt(&d, &[], &msg).unwrap_err();
    let why: Vec<String> = attempts(&e).iter().map(ToString::to_string).collect();
    assert!(why[0].contains("provider id \"aws-kms\""), "{why:?}");
    assert!(why[1].contains("other public keys"), "{why:?}");
    // The blocking adapter: the core's one-shot API with the KMS ECDH keyring.
    let sync = BlockingKeyring::with_runtime(
        p.sender_keyring(),
        std::sync::Arc::new(KmsRuntime::new().unwrap()),
    );
    let cfg = Config::new();
    let ct = esdk::encrypt(&cfg, &sync, &EncryptOptions::new(), &[("s", "y")], b"sync").unwrap();
    assert_eq!(decrypt(&p.discovery_keyring(), &[], &ct).unwrap(), b"sync");
    assert_eq!(
        esdk::decrypt(&cfg, &sync, &[], &ct).unwrap().plaintext,
        b"sync"
    );
}

// ---------------------------------------------------------------------------------------
// Errors.

#[test]
fn kms_ecdh_wrong_recipient_and_wrong_sender() {
    let a = pair(EcdhCurve::P256);
    let msg = encrypt(&a.sender_keyring(), &[], b"secret").unwrap();
    // A discovery keyring of another key: skipped without a KMS call.
    let other = EcdhKey::create(EcdhCurve::P256);
    let d = AwsKmsEcdhKeyring::kms_public_key_discovery_with(
        &other.arn,
        EcdhCurve::P256,
        other.public,
        client(W),
    )
    .unwrap();
    let e = decrypt(&d, &[], &msg).unwrap_err();
    let at = attempts(&e);
    assert_eq!(at.len(), 1);
    assert!(matches!(at[0].failure, Failure::EcdhPublicKeys), "{e}");
    assert!(e.kms_codes().is_empty());
    assert!(e.to_string().contains("other public keys"), "{e}");
    // A static keyring with the right recipient but another sender.
    let s = AwsKmsEcdhKeyring::kms_private_key_to_static_public_key_with(
        &other.arn,
        EcdhCurve::P256,
        other.public,
        a.recipient.public,
        client(W),
    )
    .unwrap();
    let e = decrypt(&s, &[], &msg).unwrap_err();
    assert!(
        matches!(attempts(&e)[0].failure, Failure::EcdhPublicKeys),
        "{e}"
    );
    // A static keyring whose configured sender public key is not its KMS key's: it writes
    // EDKs that name that public key, so the recipient's KMS key derives another secret.
    let liar = AwsKmsEcdhKeyring::kms_private_key_to_static_public_key_with(
        &other.arn,
        EcdhCurve::P256,
        a.sender.public,
        a.recipient.public,
        client(W),
    )
    .unwrap();
    let bad = encrypt(&liar, &[], b"x").unwrap();
    let e = decrypt(&a.discovery_keyring(), &[], &bad).unwrap_err();
    assert!(
        matches!(
            attempts(&e)[0].failure,
            Failure::EcdhUnwrap(AttemptFailure::UnwrapFailed)
        ),
        "{e}"
    );
}

#[test]
fn kms_ecdh_key_without_key_agreement_usage() {
    // An ECC key for signing: GetPublicKey answers, but the usage is SIGN_VERIFY.
    let signing = create_key(KeySpec::EccNistP256, KeyUsageType::SignVerify);
    let e = rt()
        .block_on(AwsKmsEcdhKeyring::kms_public_key_discovery(
            &signing,
            EcdhCurve::P256,
            client(W),
        ))
        .unwrap_err();
    match &e {
        Error::EcdhKey { key, problem } => {
            assert_eq!(key, &signing);
            assert_eq!(
                problem,
                &EcdhKeyProblem::KeyUsage {
                    usage: Some("SIGN_VERIFY".into())
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_configuration());
    assert!(e.to_string().contains("KEY_AGREEMENT"), "{e}");
    // A symmetric key has no public key: KMS refuses GetPublicKey.
    let symmetric = create_key(KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt);
    let e = rt()
        .block_on(get_ecdh_public_key(&client(W), &symmetric, None))
        .unwrap_err();
    match &e {
        Error::Kms(call) => {
            assert_eq!(call.operation, KmsOperation::GetPublicKey);
            assert_eq!(call.key_id, symmetric);
            assert_eq!(call.code.as_deref(), Some("UnsupportedOperationException"));
        }
        other => panic!("{other:?}"),
    }
    // Given a public key, the keyring is built without a KMS call; DeriveSharedSecret
    // then fails on the key's usage, with the key and the KMS error code.
    let p = pair(EcdhCurve::P256);
    let k = AwsKmsEcdhKeyring::kms_private_key_to_static_public_key_with(
        &signing,
        EcdhCurve::P256,
        p.sender.public,
        p.recipient.public,
        client(W),
    )
    .unwrap();
    let e = encrypt(&k, &[], b"x").unwrap_err();
    match &e {
        Error::Kms(call) => {
            assert_eq!(call.operation, KmsOperation::DeriveSharedSecret);
            assert_eq!(call.key_id, signing);
            assert!(call.code.is_some(), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("DeriveSharedSecret"), "{e}");
    // On decrypt the same failure is recorded for the EDK.
    let msg = encrypt(&p.sender_keyring(), &[], b"x").unwrap();
    let liar = AwsKmsEcdhKeyring::kms_public_key_discovery_with(
        &signing,
        EcdhCurve::P256,
        p.recipient.public,
        client(W),
    )
    .unwrap();
    let e = decrypt(&liar, &[], &msg).unwrap_err();
    assert_eq!(e.kms_codes().len(), 1, "{e}");
}

#[test]
fn kms_ecdh_curve_mismatch() {
    let p256 = pair(EcdhCurve::P256);
    // A P-384 keyring on a P-256 KMS key: refused from GetPublicKey's key spec.
    let e = rt()
        .block_on(AwsKmsEcdhKeyring::kms_public_key_discovery(
            &p256.recipient.arn,
            EcdhCurve::P384,
            client(W),
        ))
        .unwrap_err();
    match &e {
        Error::EcdhKey { problem, .. } => assert_eq!(
            problem,
            &EcdhKeyProblem::KeySpec {
                expected: Some(EcdhCurve::P384),
                spec: Some("ECC_NIST_P256".into())
            }
        ),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("ECC_NIST_P256"), "{e}");
    // A recipient public key on another curve than the keyring's.
    let p384 = pair(EcdhCurve::P384);
    let e = rt()
        .block_on(AwsKmsEcdhKeyring::kms_private_key_to_static_public_key(
            &p256.sender.arn,
            EcdhCurve::P256,
            p384.recipient.public,
            client(W),
        ))
        .unwrap_err();
    match &e {
        Error::EcdhKey { key, problem } => {
            assert_eq!(key, "the recipient public key");
            assert_eq!(
                problem,
                &EcdhKeyProblem::Curve {
                    expected: EcdhCurve::P256,
                    found: EcdhCurve::P384
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // An EDK of another curve is not this keyring's.
    let msg = encrypt(&p384.sender_keyring(), &[], b"x").unwrap();
    let e = decrypt(&p256.discovery_keyring(), &[], &msg).unwrap_err();
    match &attempts(&e)[0].failure {
        Failure::EcdhProviderInfo { curve } => assert_eq!(*curve, EcdhCurve::P256),
        other => panic!("{other:?}"),
    }
    // The curve from the key spec, when none is given.
    let pk = rt()
        .block_on(get_ecdh_public_key(&client(W), &p384.sender.arn, None))
        .unwrap();
    assert_eq!(pk, p384.sender.public);
}

#[test]
fn kms_ecdh_configuration_errors() {
    let p = pair(EcdhCurve::P256);
    let (curve, rp) = (EcdhCurve::P256, p.recipient.public);
    for bad in ["alias/ecdh", "1234abcd-12ab-34cd-56ef-1234567890ab"] {
        let e = AwsKmsEcdhKeyring::kms_public_key_discovery_with(bad, curve, rp, client(W))
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::EcdhKey {
                    problem: EcdhKeyProblem::NotKeyArn,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let e = AwsKmsEcdhKeyring::kms_public_key_discovery_with("", curve, rp, client(W)).unwrap_err();
    assert!(matches!(e, Error::InvalidKeyId { .. }), "{e:?}");
    let e = AwsKmsEcdhKeyring::kms_public_key_discovery_with(
        &p.recipient.arn,
        curve,
        rp,
        client("us-east-1"),
    )
    .unwrap_err();
    assert!(matches!(e, Error::RegionMismatch { .. }), "{e:?}");
    // A key that does not exist.
    let missing = p.recipient.arn.replace(
        p.recipient.arn.rsplit('/').next().unwrap(),
        "00000000-0000-0000-0000-000000000000",
    );
    let e = rt()
        .block_on(get_ecdh_public_key(&client(W), &missing, Some(curve)))
        .unwrap_err();
    assert_eq!(e.kms_codes(), ["NotFoundException"], "{e}");
}

#[test]
fn kms_ecdh_wrong_encryption_context() {
    let p = pair(EcdhCurve::P256);
    let (sender, discovery) = (p.sender_keyring(), p.discovery_keyring());
    let msg = encrypt(&sender, &[("purpose", "aaaa")], b"ec").unwrap();
    // A reproduced context that contradicts the stored one: refused before any KMS call.
    let e = decrypt(&discovery, &[("purpose", "bbbb")], &msg).unwrap_err();
    assert!(matches!(e, Error::Core(_)), "{e:?}");
    // The stored context altered: the context is in the KDF, so the derived commitment key
    // differs, before the header tag would be checked.
    let mut tampered = msg.clone();
    let at = tampered.windows(4).position(|w| w == b"aaaa").unwrap();
    tampered[at] = b'z';
    for k in [&discovery, &sender] {
        let e = decrypt(k, &[], &tampered).unwrap_err();
        assert!(
            matches!(
                attempts(&e)[0].failure,
                Failure::EcdhUnwrap(AttemptFailure::UnwrapFailed)
            ),
            "{e}"
        );
        assert!(e.to_string().contains("another encryption context"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------
// Interop with the official Python ESDK + Material Providers Library on the same server.

#[test]
fn kms_ecdh_mpl_interop_both_ways() {
    let ep = endpoint();
    let (dir, path) = kms_support::scratch("kms-ecdh-interop");
    let (pt, rust_ct, py_ct, py_pt, pem) = (
        path("pt"),
        path("rust.ct"),
        path("py.ct"),
        path("py.pt"),
        path("recipient.pem"),
    );
    let data: Vec<u8> = (0..30_000u32).map(|i| (i % 239) as u8).collect();
    std::fs::write(&pt, &data).unwrap();
    let ec = [("app", "interop"), ("side", "both")];
    let ctx = ["-c", "app=interop", "side=both"];
    for curve in [EcdhCurve::P256, EcdhCurve::P384] {
        let p = pair(curve);
        let base = |mode: &'static str, input: &str, output: &str| {
            let mut a = vec![
                mode.to_owned(),
                "-i".into(),
                input.to_owned(),
                "-o".into(),
                output.to_owned(),
                "--endpoint".into(),
                ep.clone(),
            ];
            a.extend(ctx.iter().map(|s| (*s).to_owned()));
            a
        };
        let run = |mut args: Vec<String>, extra: &[&str]| {
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            mpl_peer(&refs);
        };
        let static_args = [
            "--kms-ecdh-sender-key",
            p.sender.arn.as_str(),
            "--recipient-public-key",
            p.recipient.arn.as_str(),
        ];
        let discovery_args = ["--kms-ecdh-discovery-key", p.recipient.arn.as_str()];

        // Our KmsPrivateKeyToStaticPublicKey -> the MPL's static keyring and its discovery.
        std::fs::write(&rust_ct, encrypt(&p.sender_keyring(), &ec, &data).unwrap()).unwrap();
        for keyring in [&static_args[..], &discovery_args[..]] {
            run(base("decrypt", &rust_ct, &py_pt), keyring);
            assert_eq!(std::fs::read(&py_pt).unwrap(), data, "{curve}");
        }
        // The MPL's static keyring -> our static (both sides) and discovery keyrings.
        run(base("encrypt", &pt, &py_ct), &static_args);
        let ct = std::fs::read(&py_ct).unwrap();
        assert_eq!(one_edk(&ct).0, ECDH_PROVIDER_ID);
        for k in [
            p.sender_keyring(),
            p.mirrored_keyring(),
            p.discovery_keyring(),
        ] {
            assert_eq!(decrypt(&k, &ec, &ct).unwrap(), data, "{curve} {k:?}");
        }
        // The MPL's raw ECDH device (ephemeral sender, the PEM of KMS GetPublicKey) -> our
        // KMS discovery keyring; our raw device -> the MPL's KMS discovery keyring.
        mpl_peer(&[
            "public-key",
            "--endpoint",
            &ep,
            "--kms-key",
            &p.recipient.arn,
            "-o",
            &pem,
        ]);
        let fetched = EcdhPublicKey::from_spki_pem(std::fs::read(&pem).unwrap()).unwrap();
        assert_eq!(
            fetched, p.recipient.public,
            "GetPublicKey agrees with the MPL"
        );
        run(
            base("encrypt", &pt, &py_ct),
            &["--raw-ecdh-recipient-public-key", &pem],
        );
        let ct = std::fs::read(&py_ct).unwrap();
        assert_eq!(one_edk(&ct).0, "raw-ecdh");
        assert_eq!(decrypt(&p.discovery_keyring(), &ec, &ct).unwrap(), data);
        let device =
            RawEcdhKeyring::ephemeral_private_key_to_static_public_key(curve, fetched).unwrap();
        let msg = esdk::encrypt(&Config::new(), &device, &EncryptOptions::new(), &ec, &data);
        std::fs::write(&rust_ct, msg.unwrap()).unwrap();
        run(base("decrypt", &rust_ct, &py_pt), &discovery_args);
        assert_eq!(std::fs::read(&py_pt).unwrap(), data, "{curve}");
        // A discovery keyring of the sender's key cannot read what was sent to the recipient,
        // on either side.
        let mut args = base("decrypt", &rust_ct, &py_pt);
        args.extend(["--kms-ecdh-discovery-key".into(), p.sender.arn.clone()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(!mpl_peer_ok(&refs), "{curve}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
