//! The AWS KMS RSA keyring against the local KMS server (`../shared/peers/kms_server.py`,
//! started by `scripts/kms-test.sh`, which exports `ESDK_KMS_ENDPOINT` and `ESDK_PY`), and
//! against the official Python ESDK + Material Providers Library (`../shared/peers/mpl_peer.py`)
//! on the same server. These tests never skip: without the server or the peer they fail and
//! say how to start them.
#![cfg(feature = "kms")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpStream;
use std::sync::{Arc, OnceLock};

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use esdk::core::CommitmentPolicy;
use esdk::kms::{
    self, AsyncKeyring, AwsKmsKeyring, AwsKmsRsaKeyring, BlockingKeyring, DecryptRequest,
    DefaultClientSupplier, EncryptRequest, Error, Failure, KmsRsaAlgorithm, KmsRuntime,
    RSA_PROVIDER_ID, asynch,
};
use esdk::raw::rsa::RsaPublicKey;
use esdk::{AlgorithmSuite, Config, EncryptOptions};

const W: &str = "us-west-2";
const E: &str = "us-east-1";
const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;

fn endpoint() -> String {
    let ep = std::env::var("ESDK_KMS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "ESDK_KMS_ENDPOINT is not set: the KMS RSA keyring tests need the local KMS \
             server. Run `bash scripts/kms-test.sh kms_rsa` (it starts \
             ../shared/peers/kms_server.py on a free port and runs these tests)."
        )
    });
    let addr = ep.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        TcpStream::connect(addr).is_ok(),
        "the KMS server at {ep} does not answer: start it with scripts/kms-test.sh"
    );
    ep
}

fn client(region: &str) -> aws_sdk_kms::Client {
    DefaultClientSupplier::new()
        .with_endpoint_url(&endpoint())
        .with_credentials(aws_sdk_kms::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .with_default_region(W)
        .client_for(region)
}

fn rt() -> &'static KmsRuntime {
    static RT: OnceLock<KmsRuntime> = OnceLock::new();
    RT.get_or_init(|| KmsRuntime::new().unwrap())
}

/// An RSA `ENCRYPT_DECRYPT` key on the server: its ARN and its public key (DER SPKI, from
/// KMS `GetPublicKey`, as a deployment would fetch it once).
struct RsaKey {
    arn: String,
    spki: Vec<u8>,
}

impl RsaKey {
    fn create(region: &str, spec: KeySpec) -> Self {
        Self::create_with(region, spec, false)
    }

    /// A single- or multi-Region key.
    fn create_with(region: &str, spec: KeySpec, multi_region: bool) -> Self {
        let c = client(region);
        rt().block_on(async {
            let out = c
                .create_key()
                .key_spec(spec)
                .key_usage(KeyUsageType::EncryptDecrypt)
                .multi_region(multi_region)
                .send()
                .await
                .unwrap();
            let arn = out.key_metadata().unwrap().arn().unwrap().to_owned();
            let pk = c.get_public_key().key_id(&arn).send().await.unwrap();
            assert_eq!(pk.key_id(), Some(arn.as_str()));
            let spki = pk.public_key().unwrap().as_ref().to_vec();
            Self { arn, spki }
        })
    }

    fn public(&self) -> RsaPublicKey {
        RsaPublicKey::from_der(&self.spki).unwrap()
    }

    fn keyring(&self, alg: KmsRsaAlgorithm) -> AwsKmsRsaKeyring {
        let region = self.arn.split(':').nth(3).unwrap();
        AwsKmsRsaKeyring::new(&self.arn, alg, Some(self.public()), Some(client(region))).unwrap()
    }
}

/// Keys created once per test binary.
struct Keys {
    a: RsaKey,
    b: RsaKey,
    big: RsaKey,
    disabled: RsaKey,
    symmetric: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let symmetric = rt().block_on(async {
            let out = client(W).create_key().send().await.unwrap();
            out.key_metadata().unwrap().arn().unwrap().to_owned()
        });
        Keys {
            a: RsaKey::create(W, KeySpec::Rsa2048),
            b: RsaKey::create(W, KeySpec::Rsa2048),
            big: RsaKey::create(E, KeySpec::Rsa4096),
            disabled: RsaKey::create(W, KeySpec::Rsa3072),
            symmetric,
        }
    })
}

fn opts() -> EncryptOptions {
    EncryptOptions::new().with_suite(UNSIGNED)
}

fn encrypt(k: &dyn AsyncKeyring, ec: &[(&str, &str)], pt: &[u8]) -> Result<Vec<u8>, Error> {
    kms::blocking::encrypt(rt(), &Config::new(), k, &opts(), ec, pt)
}

fn decrypt(k: &dyn AsyncKeyring, ec: &[(&str, &str)], msg: &[u8]) -> Result<Vec<u8>, Error> {
    kms::blocking::decrypt(rt(), &Config::new(), k, ec, msg).map(|d| d.plaintext)
}

fn attempts(e: &Error) -> &[kms::Attempt] {
    match e {
        Error::NoDataKeyDecrypted { attempts } => attempts,
        other => panic!("expected NoDataKeyDecrypted, got {other:?}: {other}"),
    }
}

/// The EDKs of a message: (provider id, provider info, ciphertext length).
fn edks(msg: &[u8]) -> Vec<(String, String, usize)> {
    esdk_test_support::header_edks(msg)
        .into_iter()
        .map(|(id, info, ct)| (id, String::from_utf8(info).unwrap(), ct.len()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Round trips.

#[test]
fn kms_rsa_round_trips_every_unsigned_suite_both_paddings_async_and_blocking() {
    let k = keys();
    let forbid = Config::new().with_commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt);
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    let ec = [("purpose", "kms-rsa"), ("tenant", "7")];
    let tokio = tokio::runtime::Runtime::new().unwrap();
    for alg in KmsRsaAlgorithm::ALL {
        let kr = k.a.keyring(alg);
        for suite in AlgorithmSuite::ALL
            .into_iter()
            .filter(|s| s.signature().is_none())
        {
            let cfg = if suite.is_committing() {
                Config::new()
            } else {
                forbid
            };
            let o = EncryptOptions::new().with_suite(suite);
            let msg = kms::blocking::encrypt(rt(), &cfg, &kr, &o, &ec, &data).unwrap();
            // One EDK: provider id aws-kms-rsa, the key ARN, one 2048-bit modulus.
            assert_eq!(
                edks(&msg),
                [(RSA_PROVIDER_ID.to_owned(), k.a.arn.clone(), 256)],
                "{suite} {alg}"
            );
            let out = kms::blocking::decrypt(rt(), &cfg, &kr, &ec, &msg).unwrap();
            assert_eq!(out.plaintext, data, "{suite} {alg}");
            // The async front end decrypts it too (no reproduced context: it is stored).
            let out = tokio
                .block_on(asynch::decrypt(&cfg, &kr, &[], &msg))
                .unwrap();
            assert_eq!(out.plaintext, data, "{suite} {alg}");
        }
        // Async encrypt, blocking decrypt; a 4096-bit key in another region.
        let big = k.big.keyring(alg);
        let msg = tokio
            .block_on(asynch::encrypt(&Config::new(), &big, &opts(), &ec, &data))
            .unwrap();
        assert_eq!(edks(&msg)[0].2, 512);
        assert_eq!(decrypt(&big, &ec, &msg).unwrap(), data);
    }
}

#[test]
fn kms_rsa_encrypt_needs_no_client_and_decrypt_needs_no_public_key() {
    let k = keys();
    let alg = KmsRsaAlgorithm::RsaesOaepSha256;
    // A sender with only the public key: no AWS client, no credentials, no KMS call.
    let sender = AwsKmsRsaKeyring::new(&k.a.arn, alg, Some(k.a.public()), None).unwrap();
    assert!(sender.can_encrypt() && !sender.can_decrypt());
    let msg = encrypt(&sender, &[("a", "b")], b"offline").unwrap();
    let e = decrypt(&sender, &[], &msg).unwrap_err();
    assert!(matches!(e, Error::DecryptNotSupported { .. }), "{e:?}");
    assert!(e.to_string().contains("no KMS client"), "{e}");
    // A receiver with only the client.
    let receiver = AwsKmsRsaKeyring::new(&k.a.arn, alg, None, Some(client(W))).unwrap();
    assert!(!receiver.can_encrypt() && receiver.can_decrypt());
    assert_eq!(decrypt(&receiver, &[], &msg).unwrap(), b"offline");
    let e = encrypt(&receiver, &[], b"x").unwrap_err();
    assert!(matches!(e, Error::EncryptNotSupported { .. }), "{e:?}");
}

#[test]
fn kms_rsa_next_to_a_symmetric_kms_key_in_a_multi_keyring_and_as_a_core_keyring() {
    let k = keys();
    let alg = KmsRsaAlgorithm::RsaesOaepSha1;
    // The symmetric key generates the data key; the RSA keyring wraps the same key.
    let generator = AwsKmsKeyring::new(&k.symmetric, client(W)).unwrap();
    let multi =
        kms::AsyncMultiKeyring::new(Some(Box::new(generator)), vec![Box::new(k.a.keyring(alg))])
            .unwrap();
    let msg = encrypt(&multi, &[("m", "1")], b"both").unwrap();
    let ids: Vec<String> = edks(&msg).into_iter().map(|e| e.0).collect();
    assert_eq!(ids, ["aws-kms", RSA_PROVIDER_ID]);
    // Either keyring alone decrypts: the RSA one skips the aws-kms EDK.
    assert_eq!(decrypt(&k.a.keyring(alg), &[], &msg).unwrap(), b"both");
    // Another RSA key records why it skipped each EDK.
    let e = decrypt(&k.b.keyring(alg), &[], &msg).unwrap_err();
    let why: Vec<String> = attempts(&e).iter().map(ToString::to_string).collect();
    assert!(
        why[0].contains("not an EDK this keyring handles (provider id \"aws-kms\")"),
        "{why:?}"
    );
    assert!(why[1].contains("wrapped under another key"), "{why:?}");
    assert_eq!(
        decrypt(
            &AwsKmsKeyring::new(&k.symmetric, client(W)).unwrap(),
            &[],
            &msg
        )
        .unwrap(),
        b"both"
    );
    // The blocking adapter makes it a sync core keyring (e.g. for the caching CMM).
    let rsa = k.a.keyring(alg);
    let sync = BlockingKeyring::with_runtime(&rsa, Arc::new(KmsRuntime::new().unwrap()));
    let cfg = Config::new();
    let ct = esdk::encrypt(&cfg, &sync, &opts(), &[("s", "y")], b"sync").unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &sync, &[], &ct).unwrap().plaintext,
        b"sync"
    );
}

#[test]
fn kms_rsa_multi_region_key_decrypts_with_its_replica() {
    // A multi-Region RSA key and its replica share the key pair: an EDK that names the
    // us-west-2 key is decrypted by a keyring configured with the us-east-1 replica (spec:
    // "AWS KMS MRK Match for Decrypt"), which calls KMS with the replica's ARN.
    let w = RsaKey::create_with(W, KeySpec::Rsa2048, true);
    let rep = rt()
        .block_on(
            client(W)
                .replicate_key()
                .key_id(w.arn.rsplit('/').next().unwrap())
                .replica_region(E)
                .send(),
        )
        .unwrap();
    let e = rep
        .replica_key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let alg = KmsRsaAlgorithm::RsaesOaepSha256;
    let sender = AwsKmsRsaKeyring::new(&w.arn, alg, Some(w.public()), None).unwrap();
    let msg = encrypt(&sender, &[("mrk", "yes")], b"replica").unwrap();
    let replica = AwsKmsRsaKeyring::new(&e, alg, None, Some(client(E))).unwrap();
    assert_eq!(decrypt(&replica, &[], &msg).unwrap(), b"replica");
    // A single-Region key's ARN in another region does not match.
    let other = AwsKmsRsaKeyring::new(&keys().big.arn, alg, None, Some(client(E))).unwrap();
    let err = decrypt(&other, &[], &msg).unwrap_err();
    assert!(
        matches!(attempts(&err)[0].failure, Failure::KeyMismatch { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Errors.

#[test]
fn kms_rsa_configuration_errors() {
    let k = keys();
    let alg = KmsRsaAlgorithm::RsaesOaepSha256;
    let alias = AwsKmsRsaKeyring::new("alias/my-rsa", alg, Some(k.a.public()), None).unwrap_err();
    assert!(matches!(alias, Error::AliasNotAllowed { .. }), "{alias:?}");
    assert!(alias.is_configuration());
    let alias_arn = "arn:aws:kms:us-west-2:123456789012:alias/my-rsa";
    let e = AwsKmsRsaKeyring::new(alias_arn, alg, Some(k.a.public()), None).unwrap_err();
    assert!(matches!(e, Error::AliasNotAllowed { .. }), "{e:?}");
    let e = AwsKmsRsaKeyring::new("", alg, Some(k.a.public()), None).unwrap_err();
    assert!(matches!(e, Error::InvalidKeyId { .. }), "{e:?}");
    let e = AwsKmsRsaKeyring::new(&k.big.arn, alg, None, Some(client(W))).unwrap_err();
    assert!(matches!(e, Error::RegionMismatch { .. }), "{e:?}");
    // A bare key id encrypts (it is written as the provider info), but decryption needs
    // the key ARN, which every EDK records.
    let id = k.a.arn.rsplit('/').next().unwrap();
    let by_id = AwsKmsRsaKeyring::new(id, alg, Some(k.a.public()), Some(client(W))).unwrap();
    let msg = encrypt(&k.a.keyring(alg), &[], b"x").unwrap();
    let e = decrypt(&by_id, &[], &msg).unwrap_err();
    assert!(
        matches!(attempts(&e)[0].failure, Failure::ConfiguredKeyNotArn { .. }),
        "{e}"
    );
}

#[test]
fn kms_rsa_signing_suites_are_refused_on_encrypt_and_decrypt() {
    let k = keys();
    let kr = k.a.keyring(KmsRsaAlgorithm::RsaesOaepSha256);
    // The default suite (0x0578) signs.
    let e = kms::blocking::encrypt(rt(), &Config::new(), &kr, &EncryptOptions::new(), &[], b"x")
        .unwrap_err();
    match &e {
        Error::SigningSuiteNotSupported { suite, keyring } => {
            assert_eq!(*suite, SIGNED);
            assert!(keyring.contains(&k.a.arn));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("0x0578"), "{e}");
    // On decrypt the keyring refuses a signing suite before looking at any EDK.
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let req = DecryptRequest {
        suite: SIGNED,
        encryption_context: &[],
        edks: &[],
    };
    let e = tokio.block_on(kr.on_decrypt(&req)).unwrap_err();
    assert!(matches!(e, Error::SigningSuiteNotSupported { .. }), "{e:?}");
    let req = EncryptRequest {
        suite: AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
        encryption_context: &[],
        data_key: None,
    };
    let e = tokio.block_on(kr.on_encrypt(&req)).unwrap_err();
    assert!(matches!(e, Error::SigningSuiteNotSupported { .. }), "{e:?}");
}

#[test]
fn kms_rsa_wrong_key_wrong_public_key_and_wrong_padding() {
    let k = keys();
    let sha256 = KmsRsaAlgorithm::RsaesOaepSha256;
    let msg = encrypt(&k.a.keyring(sha256), &[], b"secret").unwrap();
    // Another key: the EDK is skipped without a KMS call.
    let e = decrypt(&k.b.keyring(sha256), &[], &msg).unwrap_err();
    let a = attempts(&e);
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].failure, Failure::KeyMismatch { .. }), "{e}");
    assert_eq!(a[0].edk_key.as_deref(), Some(k.a.arn.as_str()));
    assert!(e.kms_codes().is_empty());
    // The right key ARN with another key's public key: KMS cannot decrypt what was made.
    let wrong_pub =
        AwsKmsRsaKeyring::new(&k.a.arn, sha256, Some(k.b.public()), Some(client(W))).unwrap();
    let bad = encrypt(&wrong_pub, &[], b"secret").unwrap();
    let e = decrypt(&k.a.keyring(sha256), &[], &bad).unwrap_err();
    assert_eq!(e.kms_codes(), ["InvalidCiphertextException"], "{e}");
    // The other padding: KMS refuses the ciphertext.
    let e = decrypt(&k.a.keyring(KmsRsaAlgorithm::RsaesOaepSha1), &[], &msg).unwrap_err();
    assert_eq!(e.kms_codes(), ["InvalidCiphertextException"], "{e}");
    match &attempts(&e)[0].failure {
        Failure::Kms(call) => {
            assert_eq!(call.key_id, k.a.arn);
            assert_eq!(call.operation, kms::KmsOperation::Decrypt);
        }
        other => panic!("{other:?}"),
    }
    // An RSA keyring pointed at a symmetric key: KMS refuses the key usage.
    let sym =
        AwsKmsRsaKeyring::new(&k.symmetric, sha256, Some(k.a.public()), Some(client(W))).unwrap();
    let msg = encrypt(&sym, &[], b"x").unwrap();
    let e = decrypt(&sym, &[], &msg).unwrap_err();
    assert_eq!(e.kms_codes(), ["InvalidKeyUsageException"], "{e}");
}

#[test]
fn kms_rsa_wrong_encryption_context() {
    let k = keys();
    let kr = k.a.keyring(KmsRsaAlgorithm::RsaesOaepSha256);
    let msg = encrypt(&kr, &[("purpose", "aaaa")], b"ec").unwrap();
    // A reproduced context that contradicts the stored one: refused before any KMS call.
    let e = decrypt(&kr, &[("purpose", "bbbb")], &msg).unwrap_err();
    assert!(matches!(e, Error::Core(_)), "{e:?}");
    // A message whose stored context was altered: KMS decrypts the EDK, but the digest
    // inside no longer matches, so the keyring refuses it (before the header tag would).
    let mut tampered = msg.clone();
    let at = tampered.windows(4).position(|w| w == b"aaaa").unwrap();
    tampered[at] = b'z';
    let e = decrypt(&kr, &[], &tampered).unwrap_err();
    assert!(
        matches!(attempts(&e)[0].failure, Failure::EncryptionContextDigest),
        "{e}"
    );
    assert!(e.to_string().contains("encryption context digest"), "{e}");
}

#[test]
fn kms_rsa_disabled_key() {
    let k = keys();
    let kr = k.disabled.keyring(KmsRsaAlgorithm::RsaesOaepSha1);
    let key_id = k.disabled.arn.rsplit('/').next().unwrap();
    rt().block_on(client(W).disable_key().key_id(key_id).send())
        .unwrap();
    // Encryption is local: it still works with the public key.
    let msg = encrypt(&kr, &[], b"x").unwrap();
    let e = decrypt(&kr, &[], &msg).unwrap_err();
    assert_eq!(e.kms_codes(), ["DisabledException"], "{e}");
    match &attempts(&e)[0].failure {
        Failure::Kms(call) => assert_eq!(call.key_id, k.disabled.arn),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Interop with the official Python ESDK + Material Providers Library on the same server.

/// Runs `mpl_peer.py` and returns its output.
fn mpl_peer_run(args: &[&str]) -> std::process::Output {
    esdk_test_support::mpl_peer("kms_rsa", args)
}

/// Runs `mpl_peer.py`, which must succeed.
fn mpl_peer(args: &[&str]) {
    let out = mpl_peer_run(args);
    assert!(
        out.status.success(),
        "mpl_peer.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `mpl_peer.py` and says whether it succeeded (a failure must be its own error line).
fn mpl_peer_ok(args: &[&str]) -> bool {
    let out = mpl_peer_run(args);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("mpl_peer: error:"), "{err}");
        eprintln!("mpl_peer (expected failure): {}", err.trim());
    }
    out.status.success()
}

#[test]
fn kms_rsa_mpl_interop_both_ways() {
    let k = keys();
    let ep = endpoint();
    let dir = std::env::temp_dir().join(format!("esdk-kms-rsa-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (pt, rust_ct, py_ct, py_pt, der) = (
        path("pt"),
        path("rust.ct"),
        path("py.ct"),
        path("py.pt"),
        path("a.der"),
    );
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(&pt, &data).unwrap();
    std::fs::write(&der, &k.a.spki).unwrap();
    let ec = [("app", "interop"), ("side", "both")];
    let tokio = tokio::runtime::Runtime::new().unwrap();
    for alg in KmsRsaAlgorithm::ALL {
        let kr = k.a.keyring(alg);
        let key = [
            "--endpoint",
            ep.as_str(),
            "--kms-rsa-key",
            k.a.arn.as_str(),
            "--rsa-alg",
            alg.as_str(),
            "-c",
            "app=interop",
            "side=both",
        ];
        // Rust encrypts; the MPL decrypts (with the context as its reproduced context).
        let msg = encrypt(&kr, &ec, &data).unwrap();
        std::fs::write(&rust_ct, &msg).unwrap();
        let mut args = vec!["decrypt", "-i", rust_ct.as_str(), "-o", py_pt.as_str()];
        args.extend(key);
        mpl_peer(&args);
        assert_eq!(std::fs::read(&py_pt).unwrap(), data, "{alg}");
        // The MPL encrypts, with the public key given and fetched by GetPublicKey; Rust
        // decrypts, async and blocking.
        for with_key in [true, false] {
            let mut args = vec!["encrypt", "-i", pt.as_str(), "-o", py_ct.as_str()];
            args.extend(key);
            if with_key {
                args.extend(["--public-key-pem", der.as_str()]);
            }
            mpl_peer(&args);
            let ct = std::fs::read(&py_ct).unwrap();
            assert_eq!(
                edks(&ct),
                [(RSA_PROVIDER_ID.to_owned(), k.a.arn.clone(), 256)]
            );
            assert_eq!(decrypt(&kr, &ec, &ct).unwrap(), data, "{alg}");
            let out = tokio
                .block_on(asynch::decrypt(&Config::new(), &kr, &[], &ct))
                .unwrap();
            assert_eq!(out.plaintext, data, "{alg}");
        }
        // The other padding fails on both sides: the MPL on our message, we on its.
        let other = match alg {
            KmsRsaAlgorithm::RsaesOaepSha1 => KmsRsaAlgorithm::RsaesOaepSha256,
            KmsRsaAlgorithm::RsaesOaepSha256 => KmsRsaAlgorithm::RsaesOaepSha1,
        };
        let mut args = vec!["decrypt", "-i", rust_ct.as_str(), "-o", py_pt.as_str()];
        args.extend(key);
        let at = args.iter().position(|a| *a == "--rsa-alg").unwrap() + 1;
        args[at] = other.as_str();
        assert!(!mpl_peer_ok(&args), "{alg}");
        let ct = std::fs::read(&py_ct).unwrap();
        let e = decrypt(&k.a.keyring(other), &ec, &ct).unwrap_err();
        assert_eq!(e.kms_codes(), ["InvalidCiphertextException"], "{e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
