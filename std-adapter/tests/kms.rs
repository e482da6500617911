//! KMS keyrings against a local KMS-compatible server (`../shared/peers/kms_server.py`,
//! started by `scripts/kms-test.sh`, which exports `ESDK_KMS_ENDPOINT`). These tests never
//! skip: without the server they fail and say how to start it.
#![cfg(feature = "kms")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use esdk::kms::{
    self, AwsKmsDiscoveryKeyring, AwsKmsKeyring, AwsKmsMrkDiscoveryKeyring, AwsKmsMrkKeyring,
    BlockingKeyring, DefaultClientSupplier, DiscoveryFilter, Error, Failure, KmsErrorKind,
    KmsRuntime, asynch,
};
use esdk::{AlgorithmSuite, Config, EncryptOptions};

const ACCOUNT: &str = "123456789012";
const W: &str = "us-west-2";
const E: &str = "us-east-1";
const C: &str = "eu-central-1";

fn endpoint() -> String {
    let ep = std::env::var("ESDK_KMS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "ESDK_KMS_ENDPOINT is not set: these tests need the local KMS server. \
             Run `bash scripts/kms-test.sh` (it installs moto in a venv, starts \
             ../shared/peers/kms_server.py on a free port and runs these tests)."
        )
    });
    let addr = ep.trim_start_matches("http://").trim_end_matches('/');
    if TcpStream::connect(addr).is_err() {
        panic!("the KMS server at {ep} does not answer: start it with scripts/kms-test.sh");
    }
    ep
}

fn creds() -> aws_sdk_kms::config::Credentials {
    aws_sdk_kms::config::Credentials::new("test", "test", None, None, "static")
}

/// A fresh supplier (own connection pool) for the local server.
fn supplier() -> DefaultClientSupplier {
    DefaultClientSupplier::new()
        .with_endpoint_url(&endpoint())
        .with_credentials(creds())
        .with_default_region(W)
}

fn client(region: &str) -> aws_sdk_kms::Client {
    supplier().client_for(region)
}

struct Keys {
    w: String,
    w2: String,
    e: String,
    c: String,
    mrk_w: String,
    mrk_e: String,
    alias_w: String,
    disabled_w: String,
}

/// Keys created once per test binary through the KMS API.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rt = KmsRuntime::new().unwrap();
        let sup = supplier();
        rt.block_on(async {
            let create = |region: &'static str, mrk: bool| {
                let c = sup.client_for(region);
                async move {
                    let out = c.create_key().multi_region(mrk).send().await.unwrap();
                    out.key_metadata().unwrap().arn().unwrap().to_owned()
                }
            };
            let w = create(W, false).await;
            let w2 = create(W, false).await;
            let e = create(E, false).await;
            let c = create(C, false).await;
            let mrk_w = create(W, true).await;
            let rep = sup
                .client_for(W)
                .replicate_key()
                // By bare key id: moto 5.2 answers HTTP 500 to a key ARN here.
                .key_id(mrk_w.rsplit('/').next().unwrap())
                .replica_region(E)
                .send()
                .await
                .unwrap();
            let mrk_e = rep
                .replica_key_metadata()
                .unwrap()
                .arn()
                .unwrap()
                .to_owned();
            let alias_name = format!("alias/esdk-test-{}", std::process::id());
            sup.client_for(W)
                .create_alias()
                .alias_name(&alias_name)
                .target_key_id(&w)
                .send()
                .await
                .unwrap();
            let alias_w = format!("arn:aws:kms:{W}:{ACCOUNT}:{alias_name}");
            let disabled_w = create(W, false).await;
            Keys {
                w,
                w2,
                e,
                c,
                mrk_w,
                mrk_e,
                alias_w,
                disabled_w,
            }
        })
    })
}

/// The blocking front end, on one runtime for all tests.
mod blocking {
    use std::io::{Read, Write};
    use std::sync::OnceLock;

    use esdk::kms::{AsyncKeyring, KmsRuntime};
    use esdk::{Config, Decrypted, EncryptOptions, Error};

    pub fn rt() -> &'static KmsRuntime {
        static RT: OnceLock<KmsRuntime> = OnceLock::new();
        RT.get_or_init(|| KmsRuntime::new().unwrap())
    }

    pub fn encrypt(
        cfg: &Config,
        k: &dyn AsyncKeyring,
        opts: &EncryptOptions,
        ec: &[(&str, &str)],
        pt: &[u8],
    ) -> Result<Vec<u8>, Error> {
        esdk::kms::blocking::encrypt(rt(), cfg, k, opts, ec, pt)
    }

    pub fn decrypt(
        cfg: &Config,
        k: &dyn AsyncKeyring,
        ec: &[(&str, &str)],
        msg: &[u8],
    ) -> Result<Decrypted, Error> {
        esdk::kms::blocking::decrypt(rt(), cfg, k, ec, msg)
    }

    pub fn encrypt_stream(
        cfg: &Config,
        k: &dyn AsyncKeyring,
        opts: &EncryptOptions,
        ec: &[(&str, &str)],
        r: impl Read,
        w: impl Write,
    ) -> Result<u64, Error> {
        esdk::kms::blocking::encrypt_stream(rt(), cfg, k, opts, ec, r, w)
    }

    pub fn decrypt_stream(
        cfg: &Config,
        k: &dyn AsyncKeyring,
        ec: &[(&str, &str)],
        r: impl Read,
        w: impl Write,
    ) -> Result<u64, Error> {
        esdk::kms::blocking::decrypt_stream(rt(), cfg, k, ec, r, w)
    }
}

fn strict(key: &str) -> AwsKmsKeyring {
    let region = key.split(':').nth(3).unwrap_or(W);
    AwsKmsKeyring::new(key, client(region)).unwrap()
}

fn no_data_key(e: &Error) -> &[kms::Attempt] {
    match e {
        Error::NoDataKeyDecrypted { attempts } => attempts,
        other => panic!("expected NoDataKeyDecrypted, got {other:?}: {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Configuration errors.

#[test]
fn key_ids_are_validated_with_clear_errors() {
    let c = client(W);
    for bad in [
        "",
        "arn:aws:kms:us-west-2:123:key/",
        "arn:aws:s3:us-west-2:123:key/abc",
        "arn:aws:kms::123:key/abc",
        "arn:aws:kms:us-west-2:123:grant/abc",
        "arn:aws:kms:us-west-2:123",
        "alias/",
        "my key",
    ] {
        let e = AwsKmsKeyring::new(bad, c.clone()).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidKeyId { key_id, .. } if key_id == bad),
            "{bad}: {e:?}"
        );
    }
    // A key ARN of another region than the client's.
    let e =
        AwsKmsKeyring::new(&format!("arn:aws:kms:{E}:{ACCOUNT}:key/abc"), c.clone()).unwrap_err();
    assert!(
        matches!(&e, Error::RegionMismatch { client_region, .. } if client_region == W),
        "{e:?}"
    );
    let e = AwsKmsMrkDiscoveryKeyring::new(c.clone(), E, None).unwrap_err();
    assert!(matches!(e, Error::RegionMismatch { .. }), "{e:?}");
    // Factories.
    let sup = supplier();
    assert!(matches!(
        kms::strict_multi_keyring(None, &[], &sup, &[]),
        Err(Error::NoKeyring)
    ));
    assert!(matches!(
        kms::discovery_multi_keyring(&[], None, &sup, &[]),
        Err(Error::NoRegion)
    ));
    assert!(matches!(
        kms::discovery_multi_keyring(&[W, ""], None, &sup, &[]),
        Err(Error::EmptyRegion)
    ));
    let mrk_w = format!("arn:aws:kms:{W}:{ACCOUNT}:key/mrk-1234");
    let mrk_e = format!("arn:aws:kms:{E}:{ACCOUNT}:key/mrk-1234");
    match kms::mrk_multi_keyring(Some(&mrk_w), &[&mrk_e], &sup, &[]) {
        Err(Error::DuplicateMultiRegionKeys(ids)) => assert_eq!(ids, vec![mrk_w, mrk_e]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        DiscoveryFilter::new("aws", &[]),
        Err(Error::FilterAccounts)
    ));
    assert!(matches!(
        DiscoveryFilter::new("", &["1"]),
        Err(Error::FilterPartition)
    ));
    // A key id with no region and a supplier without a default region.
    let bare = DefaultClientSupplier::new().with_endpoint_url(&endpoint());
    assert!(matches!(
        kms::strict_multi_keyring(Some("alias/x"), &[], &bare, &[]),
        Err(Error::NoDefaultRegion)
    ));
}

// ---------------------------------------------------------------------------------------
// Strict keyring.

#[test]
fn strict_keyring_round_trips_every_suite() {
    let k = keys();
    let kr = strict(&k.w);
    for suite in AlgorithmSuite::ALL {
        let cfg = esdk_test_support::config_for(suite);
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(100);
        let pt: Vec<u8> = (0..333u32).map(|i| i as u8).collect();
        let msg = blocking::encrypt(&cfg, &kr, &opts, &[("purpose", "suite-test")], &pt)
            .unwrap_or_else(|e| panic!("{suite}: {e}"));
        let out = blocking::decrypt(&cfg, &kr, &[("purpose", "suite-test")], &msg).unwrap();
        assert_eq!(out.plaintext, pt, "{suite}");
        assert_eq!(out.suite, suite);
    }
}

#[test]
fn strict_keyring_records_the_key_arn_and_works_with_aliases_on_encrypt_only() {
    let k = keys();
    let cfg = Config::new();
    // Encrypt through the alias ARN: the EDK names the key ARN KMS returned.
    let by_alias = strict(&k.alias_w);
    let msg = blocking::encrypt(&cfg, &by_alias, &EncryptOptions::new(), &[], b"x").unwrap();
    let h = match esdk::core::header::parse(&msg, Default::default()).unwrap() {
        esdk::core::header::Parsed::Complete(h) => h,
        _ => unreachable!(),
    };
    let (_, edk) = h.edks.iter().next().unwrap();
    assert_eq!(edk.provider_id, "aws-kms");
    assert_eq!(edk.provider_info, k.w.as_bytes());
    // The key ARN decrypts it.
    assert_eq!(
        blocking::decrypt(&cfg, &strict(&k.w), &[], &msg)
            .unwrap()
            .plaintext,
        b"x"
    );
    // The alias cannot decrypt, and says why.
    let e = blocking::decrypt(&cfg, &by_alias, &[], &msg).unwrap_err();
    let a = no_data_key(&e);
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].failure, Failure::ConfiguredKeyNotArn { .. }));
    assert_eq!(a[0].edk_key.as_deref(), Some(k.w.as_str()));
}

#[test]
fn wrong_key_is_reported_per_edk() {
    let k = keys();
    let cfg = Config::new();
    let msg = blocking::encrypt(&cfg, &strict(&k.w), &EncryptOptions::new(), &[], b"x").unwrap();
    // Configured with another key: the EDK is skipped, no KMS call, and the report says so.
    let e = blocking::decrypt(&cfg, &strict(&k.w2), &[], &msg).unwrap_err();
    let a = no_data_key(&e);
    assert!(matches!(a[0].failure, Failure::KeyMismatch { .. }), "{e}");
    assert_eq!(a[0].edk_key.as_deref(), Some(k.w.as_str()));
    // Force KMS to try the wrong key: relabel the EDK with the other key's ARN (same length).
    assert_eq!(k.w.len(), k.w2.len());
    let mut forged = msg.clone();
    let at = forged
        .windows(k.w.len())
        .position(|w| w == k.w.as_bytes())
        .unwrap();
    forged[at..at + k.w2.len()].copy_from_slice(k.w2.as_bytes());
    let e = blocking::decrypt(&cfg, &strict(&k.w2), &[], &forged).unwrap_err();
    eprintln!("wrong key: {e}");
    let codes = e.kms_codes();
    assert!(
        codes.iter().any(|c| c == "IncorrectKeyException"
            || c == "AccessDeniedException"
            || c == "InvalidCiphertextException"),
        "{e}"
    );
    match &no_data_key(&e)[0].failure {
        Failure::Kms(call) => {
            assert_eq!(call.operation, kms::KmsOperation::Decrypt);
            assert_eq!(call.key_id, k.w2);
            assert_eq!(call.region.as_deref(), Some(W));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn encryption_context_mismatch() {
    let k = keys();
    let cfg = Config::new();
    let kr = strict(&k.w);
    let msg = blocking::encrypt(
        &cfg,
        &kr,
        &EncryptOptions::new(),
        &[("purpose", "aaaa")],
        b"x",
    )
    .unwrap();
    // A reproduced context that contradicts the stored one: refused by the engine.
    let e = blocking::decrypt(&cfg, &kr, &[("purpose", "bbbb")], &msg).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(esdk::core::Error::Policy(
                esdk::core::error::PolicyViolation::EncryptionContextMismatch
            ))
        ),
        "{e:?}"
    );
    // A message whose stored context was altered: KMS refuses the data key (the context is
    // bound to it), before the header tag would.
    let mut tampered = msg.clone();
    let at = tampered.windows(4).position(|w| w == b"aaaa").unwrap();
    tampered[at] = b'z';
    let e = blocking::decrypt(&cfg, &kr, &[], &tampered).unwrap_err();
    assert!(
        e.kms_codes()
            .iter()
            .any(|c| c == "InvalidCiphertextException"),
        "{e}"
    );
    // The async front end checks the reproduced context before calling KMS.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ak = AwsKmsKeyring::new(&k.w, client(W)).unwrap();
    let e = rt
        .block_on(asynch::decrypt(&cfg, &ak, &[("purpose", "bbbb")], &msg))
        .unwrap_err();
    assert!(matches!(e, Error::Core(_)), "{e:?}");
}

#[test]
fn disabled_key() {
    let k = keys();
    let cfg = Config::new();
    let kr = strict(&k.disabled_w);
    let msg = blocking::encrypt(&cfg, &kr, &EncryptOptions::new(), &[], b"x").unwrap();
    let rt = KmsRuntime::new().unwrap();
    // DisableKey by bare key id: moto 5.2 answers HTTP 500 to a key ARN here.
    let key_id = k.disabled_w.rsplit('/').next().unwrap();
    rt.block_on(client(W).disable_key().key_id(key_id).send())
        .unwrap();
    let e = blocking::decrypt(&cfg, &kr, &[], &msg).unwrap_err();
    eprintln!("disabled key: {e}");
    assert_eq!(e.kms_codes(), vec!["DisabledException".to_owned()], "{e}");
    match &no_data_key(&e)[0].failure {
        Failure::Kms(k2) => assert_eq!(k2.key_id, k.disabled_w),
        other => panic!("{other:?}"),
    }
    // As a sync core keyring (for a core multi-keyring or a sync CMM) the failed call is
    // reported through the core's attempt record: a backend failure of EDK #0.
    let sync = BlockingKeyring::with_runtime(&kr, Arc::new(KmsRuntime::new().unwrap()));
    match esdk::decrypt_detailed(&cfg, &sync, &[], &msg) {
        Err(esdk::Error::NoKeyringDecrypted { attempts }) => {
            let seen: Vec<_> = attempts.iter().map(|a| (a.edk, a.reason)).collect();
            assert_eq!(seen, [(0, esdk::core::error::AttemptFailure::Backend)]);
        }
        other => panic!("{other:?}"),
    }
    let e = blocking::encrypt(&cfg, &kr, &EncryptOptions::new(), &[], b"x").unwrap_err();
    match &e {
        Error::Kms(k2) => {
            assert_eq!(k2.code.as_deref(), Some("DisabledException"));
            assert_eq!(k2.kind, KmsErrorKind::Service);
            assert_eq!(k2.key_id, k.disabled_w);
            assert_eq!(k2.region.as_deref(), Some(W));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Discovery.

#[test]
fn discovery_keyring_and_filter() {
    let k = keys();
    let cfg = Config::new();
    let msg = blocking::encrypt(&cfg, &strict(&k.w), &EncryptOptions::new(), &[], b"d").unwrap();
    let open = AwsKmsDiscoveryKeyring::new(client(W), None);
    assert_eq!(
        blocking::decrypt(&cfg, &open, &[], &msg).unwrap().plaintext,
        b"d"
    );
    let ok = DiscoveryFilter::new("aws", &["999999999999", ACCOUNT]).unwrap();
    let filtered = AwsKmsDiscoveryKeyring::new(client(W), Some(ok));
    assert_eq!(
        blocking::decrypt(&cfg, &filtered, &[], &msg)
            .unwrap()
            .plaintext,
        b"d"
    );
    // Wrong account, wrong partition.
    let acct = DiscoveryFilter::new("aws", &["999999999999"]).unwrap();
    let e = blocking::decrypt(
        &cfg,
        &AwsKmsDiscoveryKeyring::new(client(W), Some(acct)),
        &[],
        &msg,
    )
    .unwrap_err();
    assert!(
        matches!(no_data_key(&e)[0].failure, Failure::AccountFilter { .. }),
        "{e}"
    );
    let part = DiscoveryFilter::new("aws-cn", &[ACCOUNT]).unwrap();
    let e = blocking::decrypt(
        &cfg,
        &AwsKmsDiscoveryKeyring::new(client(W), Some(part)),
        &[],
        &msg,
    )
    .unwrap_err();
    assert!(
        matches!(no_data_key(&e)[0].failure, Failure::PartitionFilter { .. }),
        "{e}"
    );
    // Discovery cannot encrypt.
    let e = blocking::encrypt(&cfg, &open, &EncryptOptions::new(), &[], b"d").unwrap_err();
    assert!(matches!(e, Error::EncryptNotSupported { .. }), "{e:?}");
}

#[test]
fn discovery_multi_keyring_across_regions() {
    let k = keys();
    let cfg = Config::new();
    let sup = supplier();
    let disc = kms::discovery_multi_keyring(&[W, E, C], None, &sup, &[]).unwrap();
    for key in [&k.w, &k.e, &k.c] {
        let msg = blocking::encrypt(&cfg, &strict(key), &EncryptOptions::new(), &[], b"m").unwrap();
        assert_eq!(
            blocking::decrypt(&cfg, &disc, &[], &msg).unwrap().plaintext,
            b"m"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Multi-Region keys.

#[test]
fn mrk_strict_keyring_decrypts_with_the_local_replica() {
    let k = keys();
    let cfg = Config::new();
    let west = AwsKmsMrkKeyring::new(&k.mrk_w, client(W)).unwrap();
    let msg =
        blocking::encrypt(&cfg, &west, &EncryptOptions::new(), &[("r", "1")], b"mrk").unwrap();
    // Decrypt in us-east-1 with the replica.
    let east = AwsKmsMrkKeyring::new(&k.mrk_e, client(E)).unwrap();
    assert_eq!(
        blocking::decrypt(&cfg, &east, &[], &msg).unwrap().plaintext,
        b"mrk"
    );
    // The plain strict keyring does not treat replicas as the same key.
    let e = blocking::decrypt(&cfg, &strict(&k.mrk_e), &[], &msg).unwrap_err();
    assert!(
        matches!(no_data_key(&e)[0].failure, Failure::KeyMismatch { .. }),
        "{e}"
    );
    // An MRK keyring does not match a different key.
    let e = blocking::decrypt(
        &cfg,
        &AwsKmsMrkKeyring::new(&k.w2, client(W)).unwrap(),
        &[],
        &msg,
    )
    .unwrap_err();
    assert!(
        matches!(no_data_key(&e)[0].failure, Failure::KeyMismatch { .. }),
        "{e}"
    );
}

#[test]
fn mrk_discovery_keyring_rewrites_region_and_skips_foreign_single_region_keys() {
    let k = keys();
    let cfg = Config::new();
    let sup = supplier();
    let east = kms::mrk_discovery_multi_keyring(&[E], None, &sup, &[]).unwrap();
    let msg =
        blocking::encrypt(&cfg, &strict(&k.mrk_w), &EncryptOptions::new(), &[], b"a").unwrap();
    assert_eq!(
        blocking::decrypt(&cfg, &east, &[], &msg).unwrap().plaintext,
        b"a"
    );
    let msg = blocking::encrypt(&cfg, &strict(&k.w), &EncryptOptions::new(), &[], b"b").unwrap();
    let e = blocking::decrypt(&cfg, &east, &[], &msg).unwrap_err();
    assert!(
        matches!(no_data_key(&e)[0].failure, Failure::RegionMismatch { .. }),
        "{e}"
    );
    let single = AwsKmsMrkDiscoveryKeyring::new(client(W), W, None).unwrap();
    assert_eq!(
        blocking::decrypt(&cfg, &single, &[], &msg)
            .unwrap()
            .plaintext,
        b"b"
    );
    // MRK multi-keyring: generator in us-west-2, decrypt with the us-east-1 replica.
    let generator = kms::mrk_multi_keyring(Some(&k.mrk_w), &[&k.c], &sup, &[]).unwrap();
    let msg = blocking::encrypt(&cfg, &generator, &EncryptOptions::new(), &[], b"c").unwrap();
    let rep = kms::mrk_multi_keyring(Some(&k.mrk_e), &[], &sup, &[]).unwrap();
    assert_eq!(
        blocking::decrypt(&cfg, &rep, &[], &msg).unwrap().plaintext,
        b"c"
    );
}

// ---------------------------------------------------------------------------------------
// Multi-keyrings.

#[test]
fn strict_multi_keyring_generator_and_children() {
    let k = keys();
    let cfg = Config::new();
    let sup = supplier();
    let multi = kms::strict_multi_keyring(Some(&k.w), &[&k.e, &k.c], &sup, &[]).unwrap();
    let msg = blocking::encrypt(
        &cfg,
        &multi,
        &EncryptOptions::new(),
        &[("a", "b")],
        b"multi",
    )
    .unwrap();
    let h = match esdk::core::header::parse(&msg, Default::default()).unwrap() {
        esdk::core::header::Parsed::Complete(h) => h,
        _ => unreachable!(),
    };
    let infos: Vec<&[u8]> = h.edks.iter().map(|(_, e)| e.provider_info).collect();
    assert_eq!(infos, vec![k.w.as_bytes(), k.e.as_bytes(), k.c.as_bytes()]);
    for key in [&k.w, &k.e, &k.c] {
        assert_eq!(
            blocking::decrypt(&cfg, &strict(key), &[], &msg)
                .unwrap()
                .plaintext,
            b"multi"
        );
    }
    assert_eq!(
        blocking::decrypt(&cfg, &multi, &[], &msg)
            .unwrap()
            .plaintext,
        b"multi"
    );
    // No key of the message: every child reports.
    let other = kms::strict_multi_keyring(Some(&k.w2), &[], &sup, &[]).unwrap();
    let e = blocking::decrypt(&cfg, &other, &[], &msg).unwrap_err();
    eprintln!("no matching key: {e}");
    assert_eq!(no_data_key(&e).len(), 3, "{e}");
}

#[test]
fn core_multi_keyring_of_blocking_keyrings_reports_through_the_core_error() {
    use esdk::core::error::AttemptFailure;
    let k = keys();
    let cfg = Config::new();
    let rt = Arc::new(KmsRuntime::new().unwrap());
    let a = BlockingKeyring::with_runtime(strict(&k.w2), Arc::clone(&rt));
    let b = BlockingKeyring::with_runtime(
        AwsKmsDiscoveryKeyring::new(
            client(W),
            Some(DiscoveryFilter::new("aws", &["999999999999"]).unwrap()),
        ),
        Arc::clone(&rt),
    );
    let children: [&dyn esdk::Keyring; 1] = [&b];
    let multi = esdk::MultiKeyring::new(&a, &children);
    let msg = blocking::encrypt(&cfg, &strict(&k.w), &EncryptOptions::new(), &[], b"x").unwrap();
    // Every keyring's attempt on the EDK, in the core's terms: no side channel.
    match esdk::decrypt_detailed(&cfg, &multi, &[], &msg) {
        Err(esdk::Error::NoKeyringDecrypted { attempts }) => {
            let seen: Vec<(u8, u16, AttemptFailure)> = attempts
                .iter()
                .map(|a| (a.keyring, a.edk, a.reason))
                .collect();
            assert_eq!(
                seen,
                [
                    (0, 0, AttemptFailure::KeyNameMismatch),
                    (1, 0, AttemptFailure::KeyNameMismatch)
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Front ends.

#[test]
fn async_front_end_one_shot_and_streaming() {
    let k = keys();
    let cfg = Config::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sup = supplier();
    let multi = kms::strict_multi_keyring(Some(&k.w), &[&k.e], &sup, &[]).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    rt.block_on(async {
        let opts = EncryptOptions::new().with_frame_length(4096);
        let msg = asynch::encrypt(&cfg, &multi, &opts, &[("k", "v")], &data)
            .await
            .unwrap();
        let out = asynch::decrypt(&cfg, &multi, &[("k", "v")], &msg)
            .await
            .unwrap();
        assert_eq!(out.plaintext, data);

        // Streaming encrypt: KMS awaited once, then frames through a std Write.
        let prepared = asynch::prepare_encrypt(&cfg, &multi, &opts, &[("k", "v")])
            .await
            .unwrap();
        assert_eq!(prepared.edks().len(), 2);
        assert!(
            prepared
                .encryption_context()
                .iter()
                .any(|(k, _)| k == "aws-crypto-public-key")
        );
        let mut w = prepared.encrypting_writer(Vec::new()).unwrap();
        for chunk in data.chunks(10_000) {
            w.write_all(chunk).unwrap();
        }
        let streamed = w.finish().unwrap();
        assert!(matches!(
            prepared.encrypting_writer(Vec::new()),
            Err(Error::MaterialsAlreadyUsed)
        ));

        // Streaming decrypt: read the header, await KMS, stream the rest.
        let mut src = Cursor::new(streamed.clone());
        let header = asynch::read_header(&cfg, &mut src).unwrap();
        let pd = asynch::prepare_decrypt(&cfg, &multi, &[], &header)
            .await
            .unwrap();
        assert_eq!(pd.header_len(), header.len());
        let mut r = pd.decrypting_reader(src);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    });
    // Messages of the async front end decrypt with the blocking one, and back.
    let blk = kms::strict_multi_keyring(Some(&k.e), &[], &supplier(), &[]).unwrap();
    let msg = rt
        .block_on(asynch::encrypt(
            &cfg,
            &multi,
            &EncryptOptions::new(),
            &[],
            b"x",
        ))
        .unwrap();
    assert_eq!(
        blocking::decrypt(&cfg, &blk, &[], &msg).unwrap().plaintext,
        b"x"
    );
    let msg = blocking::encrypt(&cfg, &blk, &EncryptOptions::new(), &[], b"y").unwrap();
    let single = AwsKmsKeyring::new(&k.e, sup.client_for(E)).unwrap();
    assert_eq!(
        rt.block_on(asynch::decrypt(&cfg, &single, &[], &msg))
            .unwrap()
            .plaintext,
        b"y"
    );
}

#[test]
fn blocking_front_end_works_inside_a_tokio_runtime() {
    let k = keys();
    let cfg = Config::new();
    let kr = strict(&k.w);
    let check = || {
        let msg = blocking::encrypt(&cfg, &kr, &EncryptOptions::new(), &[], b"nested").unwrap();
        assert_eq!(
            blocking::decrypt(&cfg, &kr, &[], &msg).unwrap().plaintext,
            b"nested"
        );
    };
    // From a current-thread runtime's task, a multi-thread runtime's task, and
    // spawn_blocking: no "Cannot start a runtime from within a runtime" panic.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { check() });
    let mt = tokio::runtime::Runtime::new().unwrap();
    mt.block_on(async { check() });
    let kr2 = Arc::new(strict(&k.w));
    let cfg2 = cfg;
    mt.block_on(async move {
        tokio::task::spawn_blocking(move || {
            let msg = blocking::encrypt(&cfg2, &*kr2, &EncryptOptions::new(), &[], b"sb").unwrap();
            blocking::decrypt(&cfg2, &*kr2, &[], &msg)
                .unwrap()
                .plaintext
        })
        .await
        .unwrap()
    });
    check();
    // Dropping a keyring (and its runtime) inside an async context does not panic either.
    mt.block_on(async { drop(strict(&k.w)) });
}

#[test]
fn streaming_through_blocking_keyring() {
    let k = keys();
    let cfg = Config::new();
    let kr = strict(&k.w);
    let data = vec![0x5Au8; 1 << 20];
    let mut msg = Vec::new();
    blocking::encrypt_stream(
        &cfg,
        &kr,
        &EncryptOptions::new(),
        &[("f", "1")],
        &data[..],
        &mut msg,
    )
    .unwrap();
    let mut out = Vec::new();
    let n = blocking::decrypt_stream(&cfg, &kr, &[], &msg[..], &mut out).unwrap();
    assert_eq!(n as usize, data.len());
    assert_eq!(out, data);
}

// ---------------------------------------------------------------------------------------
// Network failures and response checks, against small stub servers.

fn read_http(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return if buf.is_empty() { None } else { Some(buf) },
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match len {
        Some(n) => {
            let mut body = vec![0u8; n];
            s.read_exact(&mut body).ok()?;
            buf.extend(body);
        }
        None if !head.starts_with("get") && !head.starts_with("post") => {
            s.read_to_end(&mut buf).ok()?;
        }
        None => {}
    }
    Some(buf)
}

/// A server that answers every request with `respond(request)` = (status, body).
fn stub_server(
    respond: impl Fn(&str) -> Option<(u16, String)> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let n = count.clone();
    let respond = Arc::new(respond);
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let respond = respond.clone();
            let n = n.clone();
            thread::spawn(move || {
                while let Some(req) = read_http(&mut c) {
                    n.fetch_add(1, Ordering::SeqCst);
                    let Some((status, body)) = respond(&String::from_utf8_lossy(&req)) else {
                        // Never answer (a hung server).
                        thread::sleep(Duration::from_secs(30));
                        return;
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if c.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, count)
}

fn stub_supplier(url: &str) -> DefaultClientSupplier {
    DefaultClientSupplier::new()
        .with_endpoint_url(url)
        .with_credentials(creds())
        .with_max_attempts(3)
}

const FAKE_KEY: &str =
    "arn:aws:kms:us-west-2:123456789012:key/11111111-2222-3333-4444-555555555555";

#[test]
fn throttling_is_retried_then_reported() {
    let (url, count) = stub_server(|_| {
        Some((
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(),
        ))
    });
    let sup = stub_supplier(&url);
    let kr = AwsKmsKeyring::new(FAKE_KEY, sup.client_for(W)).unwrap();
    let t = Instant::now();
    let e = blocking::encrypt(&Config::new(), &kr, &EncryptOptions::new(), &[], b"x").unwrap_err();
    match &e {
        Error::Kms(k) => {
            assert_eq!(k.operation, kms::KmsOperation::GenerateDataKey);
            assert_eq!(k.kind, KmsErrorKind::Throttled);
            assert_eq!(k.code.as_deref(), Some("ThrottlingException"));
            assert_eq!(k.key_id, FAKE_KEY);
            assert_eq!(k.region.as_deref(), Some(W));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "three attempts with backoff"
    );
    eprintln!("throttled after 3 attempts in {:?}: {e}", t.elapsed());
}

#[test]
fn unavailable_endpoint_and_timeouts_are_reported() {
    // Nothing listens on a port that was just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sup = stub_supplier(&format!("http://127.0.0.1:{port}")).with_max_attempts(2);
    let kr = AwsKmsKeyring::new(FAKE_KEY, sup.client_for(W)).unwrap();
    let e = blocking::encrypt(&Config::new(), &kr, &EncryptOptions::new(), &[], b"x").unwrap_err();
    match &e {
        Error::Kms(k) => assert_eq!(k.kind, KmsErrorKind::Unavailable, "{e}"),
        other => panic!("{other:?}"),
    }
    // On decrypt the unreachable endpoint is one attempt of the report.
    let msg = blocking::encrypt(
        &Config::new(),
        &strict(&keys().w),
        &EncryptOptions::new(),
        &[],
        b"x",
    )
    .unwrap();
    let relabeled = {
        let k = &keys().w;
        let mut m = msg.clone();
        let at = m.windows(k.len()).position(|w| w == k.as_bytes()).unwrap();
        m[at..at + k.len()].copy_from_slice(FAKE_KEY.as_bytes());
        m
    };
    let e = blocking::decrypt(&Config::new(), &kr, &[], &relabeled).unwrap_err();
    match &no_data_key(&e)[0].failure {
        Failure::Kms(k) => assert_eq!(k.kind, KmsErrorKind::Unavailable),
        other => panic!("{other:?}"),
    }
    // A server that never answers: the operation timeout ends the call.
    let (url, _) = stub_server(|_| None);
    let sup = stub_supplier(&url)
        .with_max_attempts(1)
        .with_timeouts(Duration::from_millis(500), Duration::from_millis(400));
    let kr = AwsKmsKeyring::new(FAKE_KEY, sup.client_for(W)).unwrap();
    let t = Instant::now();
    let e = blocking::encrypt(&Config::new(), &kr, &EncryptOptions::new(), &[], b"x").unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    match &e {
        Error::Kms(k) => assert_eq!(k.kind, KmsErrorKind::Timeout, "{e}"),
        other => panic!("{other:?}"),
    }
}

fn b64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

#[test]
fn kms_responses_are_checked() {
    // GenerateDataKey returning a 16-byte key for a 32-byte suite, then a non-ARN KeyId;
    // Decrypt answering for another key. The requests carry the context and grant tokens.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let mode = Arc::new(AtomicUsize::new(0));
    let (s2, m2) = (seen.clone(), mode.clone());
    let (url, _) = stub_server(move |req| {
        s2.lock().unwrap().push(req.to_owned());
        let blob = b64(&[9u8; 40]);
        let body = match m2.load(Ordering::SeqCst) {
            0 => format!(
                r#"{{"CiphertextBlob":"{blob}","KeyId":"{FAKE_KEY}","Plaintext":"{}"}}"#,
                b64(&[1u8; 16])
            ),
            1 => format!(
                r#"{{"CiphertextBlob":"{blob}","KeyId":"alias/not-a-key","Plaintext":"{}"}}"#,
                b64(&[1u8; 32])
            ),
            _ => format!(
                r#"{{"KeyId":"{}","Plaintext":"{}"}}"#,
                FAKE_KEY.replace("1111", "9999"),
                b64(&[1u8; 32])
            ),
        };
        Some((200, body))
    });
    let sup = stub_supplier(&url);
    let tokens = vec!["grant-token-1".to_owned()];
    let kr = AwsKmsKeyring::new(FAKE_KEY, sup.client_for(W))
        .unwrap()
        .with_grant_tokens(&tokens);
    let cfg = Config::new();
    let e =
        blocking::encrypt(&cfg, &kr, &EncryptOptions::new(), &[("ctx", "v")], b"x").unwrap_err();
    match &e {
        Error::InvalidResponse { failure, .. } => assert!(
            matches!(
                **failure,
                Failure::PlaintextLength {
                    expected: 32,
                    returned: 16
                }
            ),
            "{e:?}"
        ),
        other => panic!("{other:?}"),
    }
    let req = seen.lock().unwrap()[0].clone();
    assert!(req.contains("TrentService.GenerateDataKey"), "{req}");
    assert!(
        req.contains("grant-token-1") && req.contains("\"ctx\":\"v\""),
        "{req}"
    );
    assert!(
        req.contains("aws-crypto-public-key"),
        "the full context goes to KMS: {req}"
    );
    mode.store(1, Ordering::SeqCst);
    let e = blocking::encrypt(&cfg, &kr, &EncryptOptions::new(), &[], b"x").unwrap_err();
    match &e {
        Error::InvalidResponse { failure, .. } => {
            assert!(matches!(**failure, Failure::ResponseKeyId { .. }), "{e:?}")
        }
        other => panic!("{other:?}"),
    }
    // Decrypt: a message for FAKE_KEY, answered for another key.
    let real =
        blocking::encrypt(&cfg, &strict(&keys().w), &EncryptOptions::new(), &[], b"x").unwrap();
    let k = &keys().w;
    let mut m = real.clone();
    let at = m.windows(k.len()).position(|w| w == k.as_bytes()).unwrap();
    m[at..at + k.len()].copy_from_slice(FAKE_KEY.as_bytes());
    mode.store(2, Ordering::SeqCst);
    let e = blocking::decrypt(&cfg, &kr, &[], &m).unwrap_err();
    assert!(
        matches!(no_data_key(&e)[0].failure, Failure::ResponseKeyId { .. }),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Concurrency: three regions behind 150 ms of simulated latency each.

/// A forwarding proxy that delays every request by `delay` (simulated network latency).
fn delay_proxy(upstream: String, delay: Duration) -> String {
    let up = upstream.trim_start_matches("http://").to_owned();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let up = up.clone();
            thread::spawn(move || {
                while let Some(req) = read_http(&mut c) {
                    thread::sleep(delay);
                    let Ok(mut u) = TcpStream::connect(up.as_str()) else {
                        return;
                    };
                    if u.write_all(&req).is_err() {
                        return;
                    }
                    let Some(resp) = read_http(&mut u) else {
                        return;
                    };
                    if c.write_all(&resp).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn multi_keyring_calls_run_concurrently() {
    let k = keys();
    let delay = Duration::from_millis(150);
    let proxies: Vec<(String, String)> = [W, E, C]
        .iter()
        .map(|r| ((*r).to_owned(), delay_proxy(endpoint(), delay)))
        .collect();
    let per_region = {
        let map = proxies.clone();
        move |region: Option<&str>| -> Result<aws_sdk_kms::Client, Error> {
            let region = region.unwrap_or(W);
            let url = &map.iter().find(|(r, _)| r == region).unwrap().1;
            Ok(DefaultClientSupplier::new()
                .with_endpoint_url(url)
                .with_credentials(creds())
                .client_for(region))
        }
    };
    let cfg = Config::new();
    let opts = EncryptOptions::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let multi = kms::strict_multi_keyring(Some(&k.w), &[&k.e, &k.c], &per_region, &[]).unwrap();
    let single = kms::strict_multi_keyring(Some(&k.w), &[], &per_region, &[]).unwrap();
    // Warm up the connections.
    rt.block_on(asynch::encrypt(&cfg, &multi, &opts, &[], b"w"))
        .unwrap();
    let time = |kr: &kms::AsyncMultiKeyring| {
        let runs = 5;
        let t = Instant::now();
        for _ in 0..runs {
            rt.block_on(asynch::encrypt(&cfg, kr, &opts, &[], b"x"))
                .unwrap();
        }
        t.elapsed() / runs
    };
    let one_call = time(&single);
    let three_regions = time(&multi);
    // The same three keyrings one after the other (the core's sequential MultiKeyring).
    let seq = |key: &str| {
        let region = key.split(':').nth(3).unwrap();
        let client = per_region(Some(region)).unwrap();
        BlockingKeyring::new(AwsKmsKeyring::new(key, client).unwrap()).unwrap()
    };
    let (sw, se, sc) = (seq(&k.w), seq(&k.e), seq(&k.c));
    let children: [&dyn esdk::Keyring; 2] = [&se, &sc];
    let sequential = esdk::MultiKeyring::new(&sw, &children);
    esdk::encrypt(&cfg, &sequential, &opts, &[], b"w").unwrap();
    let t = Instant::now();
    for _ in 0..5 {
        esdk::encrypt(&cfg, &sequential, &opts, &[], b"x").unwrap();
    }
    let sequential_time = t.elapsed() / 5;
    // Sequential would be generator + 2 children = 3 calls; concurrent is generator + the
    // slowest child = 2 calls.
    eprintln!(
        "MEASURE concurrency: one KMS call {one_call:?}; 3-region multi-keyring encrypt \
         {three_regions:?}; the same 3 keyrings called one after the other \
         {sequential_time:?}"
    );
    assert!(sequential_time > three_regions + one_call / 2);
    assert!(
        three_regions < one_call * 5 / 2,
        "children are not concurrent: {three_regions:?} vs one call {one_call:?}"
    );
    // The blocking front end fans out the same way.
    let t = Instant::now();
    blocking::encrypt(&cfg, &multi, &opts, &[], b"x").unwrap();
    let b = t.elapsed();
    eprintln!("MEASURE concurrency (blocking front end): {b:?}");
    assert!(b < one_call * 5 / 2 + Duration::from_millis(100));
}

// ---------------------------------------------------------------------------------------
// Interop with the official Python ESDK on the same server.

fn python() -> String {
    std::env::var("ESDK_PY").unwrap_or_else(|_| {
        panic!(
            "ESDK_PY is not set: the Python interop test needs the official Python ESDK. \
             Run `bash scripts/kms-test.sh` (it sets ESDK_PY from scripts/python-peer.sh)."
        )
    })
}

fn peer(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kms-peer.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kms-peer.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn python_esdk_interop_both_ways() {
    let k = keys();
    let ep = endpoint();
    let dir = std::env::temp_dir().join(format!("esdk-kms-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(path("pt"), &data).unwrap();
    let cfg = Config::new();
    let sup = supplier();

    // Rust encrypts under two keys in two regions; Python decrypts with each key alone.
    let two = kms::strict_multi_keyring(Some(&k.w), &[&k.e], &sup, &[]).unwrap();
    let msg = blocking::encrypt(
        &cfg,
        &two,
        &EncryptOptions::new(),
        &[("app", "interop")],
        &data,
    )
    .unwrap();
    std::fs::write(path("rust.ct"), &msg).unwrap();
    for key in [&k.w, &k.e] {
        peer(&[
            "decrypt",
            "--endpoint",
            &ep,
            "--key",
            key,
            "-i",
            &path("rust.ct"),
            "-o",
            &path("py.pt"),
            "--ec",
            "app=interop",
        ]);
        assert_eq!(std::fs::read(path("py.pt")).unwrap(), data);
    }
    peer(&[
        "decrypt",
        "--endpoint",
        &ep,
        "--discovery",
        E,
        "-i",
        &path("rust.ct"),
        "-o",
        &path("py.pt"),
    ]);
    assert_eq!(std::fs::read(path("py.pt")).unwrap(), data);

    // Python encrypts under two keys; Rust decrypts with each key alone.
    for suite in ["0x0578", "0x0478"] {
        peer(&[
            "encrypt",
            "--endpoint",
            &ep,
            "--key",
            &k.w,
            "--key",
            &k.e,
            "-i",
            &path("pt"),
            "-o",
            &path("py.ct"),
            "--ec",
            "app=interop",
            "--suite",
            suite,
        ]);
        let ct = std::fs::read(path("py.ct")).unwrap();
        for key in [&k.w, &k.e] {
            let out = blocking::decrypt(&cfg, &strict(key), &[("app", "interop")], &ct).unwrap();
            assert_eq!(out.plaintext, data);
        }
        let disc = AwsKmsDiscoveryKeyring::new(client(E), None);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let out = rt.block_on(asynch::decrypt(&cfg, &disc, &[], &ct)).unwrap();
        assert_eq!(out.plaintext, data);
    }
    std::fs::remove_dir_all(&dir).ok();
}
