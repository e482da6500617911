//! The caching CMM: limits, bypasses, partitions, LRU, thread safety, and (with the `kms`
//! feature, against the local KMS server) the KMS calls it saves.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use esdk::caching::{CachingCmm, LocalCache};
use esdk::core::CryptoProvider;
use esdk::core::header::{self, Parsed};
use esdk::core::materials::{DecryptionMaterials, Edks, EncryptionMaterials};
use esdk::raw::RawAesKeyring;
use esdk::{
    AlgorithmSuite, CommitmentPolicy, Config, CryptoMaterialsManager, EncryptOptions,
    EncryptingWriter, Keyring, RequiredEncryptionContextCmm,
};

/// A raw AES keyring that counts its calls and can be slow.
struct Counting {
    inner: RawAesKeyring<'static>,
    enc: AtomicUsize,
    dec: AtomicUsize,
    delay: Duration,
}

impl Counting {
    fn new() -> Self {
        Self::slow(Duration::ZERO)
    }
    fn slow(delay: Duration) -> Self {
        Self {
            inner: RawAesKeyring::new("ns", "key", &[7u8; 32]).unwrap(),
            enc: AtomicUsize::new(0),
            dec: AtomicUsize::new(0),
            delay,
        }
    }
    fn enc(&self) -> usize {
        self.enc.load(Ordering::SeqCst)
    }
    fn dec(&self) -> usize {
        self.dec.load(Ordering::SeqCst)
    }
}

impl Keyring for Counting {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), esdk::core::Error> {
        self.enc.fetch_add(1, Ordering::SeqCst);
        thread::sleep(self.delay);
        self.inner.on_encrypt(m)
    }
    fn on_decrypt(
        &self,
        m: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), esdk::core::Error> {
        self.dec.fetch_add(1, Ordering::SeqCst);
        self.inner.on_decrypt(m, edks)
    }
}

fn plain() -> RawAesKeyring<'static> {
    RawAesKeyring::new("ns", "key", &[7u8; 32]).unwrap()
}

fn cmm(max_age: Duration) -> CachingCmm<Counting> {
    CachingCmm::new(Counting::new(), LocalCache::new(100), max_age).unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

fn public_key(msg: &[u8]) -> Option<String> {
    match header::parse(msg, Default::default()).unwrap() {
        Parsed::Complete(h) => h
            .encryption_context
            .get("aws-crypto-public-key")
            .map(str::to_owned),
        _ => unreachable!(),
    }
}

#[test]
fn encrypt_is_cached_for_every_kdf_suite_and_messages_decrypt_without_the_cache() {
    for suite in AlgorithmSuite::ALL {
        if suite.kdf() == esdk::core::suite::Kdf::Identity {
            continue;
        }
        let cfg = esdk_test_support::config_for(suite);
        let c = cmm(MINUTE);
        let opts = EncryptOptions::new().with_suite(suite);
        let mut keys = Vec::new();
        for i in 0..5u8 {
            let pt = vec![i; 100 + usize::from(i)];
            let msg = esdk::encrypt(&cfg, &c, &opts, &[("tenant", "a")], &pt).unwrap();
            // A plain keyring (no cache) decrypts it: the cached EDKs, data key and signing
            // key are consistent with the header.
            let out = esdk::decrypt(&cfg, &plain(), &[("tenant", "a")], &msg).unwrap();
            assert_eq!(out.plaintext, pt, "{suite}");
            keys.push(public_key(&msg));
        }
        assert_eq!(
            c.inner().enc(),
            1,
            "{suite}: one underlying call for 5 messages"
        );
        let s = c.stats();
        assert_eq!((s.encrypt_misses, s.encrypt_hits), (1, 4), "{suite}");
        // Signing suites reuse the cached signing key, like the official SDKs.
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "{suite}");
        assert_eq!(keys[0].is_some(), suite.signature().is_some());
    }
}

#[test]
fn identity_kdf_suites_are_never_cached() {
    let cfg = Config::new().with_commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt);
    let c = cmm(MINUTE);
    let opts = EncryptOptions::new().with_suite(AlgorithmSuite::Aes256GcmIv12Tag16NoKdf);
    let mut msgs = Vec::new();
    for _ in 0..3 {
        msgs.push(esdk::encrypt(&cfg, &c, &opts, &[], b"x").unwrap());
    }
    assert_eq!(c.inner().enc(), 3);
    for _ in 0..2 {
        assert_eq!(
            esdk::decrypt(&cfg, &c, &[], &msgs[0]).unwrap().plaintext,
            b"x"
        );
    }
    assert_eq!(c.inner().dec(), 2);
    let s = c.stats();
    assert_eq!(s.encrypt_bypassed, 3);
    assert_eq!(s.decrypt_bypassed, 2);
    assert_eq!(s.encrypt_hits + s.decrypt_hits, 0);
}

/// Encrypts `pt` through an [`EncryptingWriter`] over `cmm`, written in pieces of 7 bytes.
fn stream<M: CryptoMaterialsManager, P: CryptoProvider>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    opts: &EncryptOptions,
    ec: &[(&str, &str)],
    pt: &[u8],
) -> Result<Vec<u8>, std::io::Error> {
    let mut w = EncryptingWriter::new(cfg, provider, cmm, opts, ec, Vec::new())?;
    for piece in pt.chunks(7) {
        w.write_all(piece)?;
    }
    w.finish()
}

#[test]
fn unknown_length_bypasses_the_cache_and_a_declared_length_is_enforced() {
    let cfg = Config::new();
    let c = cmm(MINUTE);
    let p = &esdk::DEFAULT_PROVIDER;
    // A stream that does not declare its length goes around the cache (spec).
    for _ in 0..2 {
        let msg = stream(&cfg, p, &c, &EncryptOptions::new(), &[], b"unknown length").unwrap();
        assert_eq!(
            esdk::decrypt(&cfg, &plain(), &[], &msg).unwrap().plaintext,
            b"unknown length"
        );
    }
    assert_eq!(c.inner().enc(), 2);
    assert_eq!(c.stats().encrypt_bypassed, 2);
    // A declared length uses the cache...
    let ten = EncryptOptions::new().with_plaintext_len(10);
    for _ in 0..2 {
        let msg = stream(&cfg, p, &c, &ten, &[], b"0123456789").unwrap();
        assert_eq!(
            esdk::decrypt(&cfg, &plain(), &[], &msg).unwrap().plaintext,
            b"0123456789"
        );
    }
    assert_eq!(c.inner().enc(), 3);
    let s = c.stats();
    assert_eq!(
        (s.encrypt_misses, s.encrypt_hits, s.encrypt_bypassed),
        (1, 1, 2)
    );
    // ...and the encryptor refuses more plaintext than declared: no message comes out.
    let four = EncryptOptions::new().with_plaintext_len(4);
    let e = stream(&cfg, p, &c, &four, &[], b"too long").unwrap_err();
    assert_eq!(
        esdk::stream::esdk_error(&e),
        Some(esdk::core::Error::Policy(
            esdk::core::error::PolicyViolation::PlaintextLengthBound
        ))
    );
}

#[test]
fn streams_with_the_pure_rust_provider_hit_and_reuse_the_signing_key() {
    let cfg = Config::new();
    let p = &esdk::RUSTCRYPTO_PROVIDER;
    // No aws-lc anywhere: the CMM's own keys and partition id come from the same provider.
    let c = CachingCmm::with_provider(
        Counting::new(),
        LocalCache::new(10),
        MINUTE,
        esdk::RUSTCRYPTO_PROVIDER,
    )
    .unwrap();
    let opts = EncryptOptions::new().with_frame_length(64);
    let mut keys = Vec::new();
    for i in 0..4u8 {
        let pt = vec![i; 300 + usize::from(i)];
        let o = opts.with_plaintext_len(pt.len() as u64);
        let msg = stream(&cfg, p, &c, &o, &[("tenant", "a")], &pt).unwrap();
        // Another keyring instance without the cache decrypts it and verifies the signature
        // made with the reused key.
        let out = esdk::decrypt(&cfg, &plain(), &[("tenant", "a")], &msg).unwrap();
        assert_eq!(out.plaintext, pt);
        keys.push(public_key(&msg).expect("0x0578 signs"));
    }
    assert_eq!(c.inner().enc(), 1);
    let s = c.stats();
    assert_eq!((s.encrypt_misses, s.encrypt_hits), (1, 3));
    assert!(
        keys.windows(2).all(|w| w[0] == w[1]),
        "the cached signing key is reused"
    );
    // Decrypting through the cache with the pure-Rust provider too.
    let msg = stream(&cfg, p, &c, &opts.with_plaintext_len(5), &[], b"hello").unwrap();
    let mut out = Vec::new();
    esdk::DecryptingReader::new(&cfg, p, &c, &[], &msg[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, b"hello");
}

#[test]
fn message_limit() {
    let cfg = Config::new();
    let c = cmm(MINUTE).with_max_messages(3);
    for _ in 0..7 {
        esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[], b"x").unwrap();
    }
    assert_eq!(c.inner().enc(), 3, "entries used 3 + 3 + 1 times");
}

#[test]
fn byte_limit() {
    let cfg = Config::new();
    let c = cmm(MINUTE).with_max_bytes(100);
    for _ in 0..5 {
        esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[], &[0u8; 40]).unwrap();
    }
    assert_eq!(
        c.inner().enc(),
        3,
        "two 40-byte messages per 100-byte entry"
    );
    // A message longer than the limit never uses the cache.
    esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[], &[0u8; 150]).unwrap();
    assert_eq!(c.stats().encrypt_bypassed, 1);
}

#[test]
fn byte_limit_through_a_declared_stream_length() {
    let cfg = Config::new();
    let c = cmm(MINUTE).with_max_bytes(100);
    let p = &esdk::DEFAULT_PROVIDER;
    let o = EncryptOptions::new().with_plaintext_len(40);
    for _ in 0..5 {
        let msg = stream(&cfg, p, &c, &o, &[], &[3u8; 40]).unwrap();
        assert_eq!(
            esdk::decrypt(&cfg, &c, &[], &msg).unwrap().plaintext,
            [3u8; 40]
        );
    }
    // The declared 40 bytes count: 40 + 40 fit an entry, a third does not.
    assert_eq!(c.inner().enc(), 3);
    let s = c.stats();
    assert_eq!((s.encrypt_misses, s.encrypt_hits), (3, 2));
    let long = EncryptOptions::new().with_plaintext_len(150);
    stream(&cfg, p, &c, &long, &[], &[0u8; 150]).unwrap();
    assert_eq!(c.stats().encrypt_bypassed, 1);
    assert_eq!(c.inner().enc(), 4);
}

#[test]
fn max_age() {
    let cfg = Config::new();
    let c = cmm(Duration::from_millis(200));
    let msg = esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[], b"x").unwrap();
    esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[], b"x").unwrap();
    esdk::decrypt(&cfg, &c, &[], &msg).unwrap();
    esdk::decrypt(&cfg, &c, &[], &msg).unwrap();
    assert_eq!((c.inner().enc(), c.inner().dec()), (1, 1));
    thread::sleep(Duration::from_millis(300));
    esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[], b"x").unwrap();
    esdk::decrypt(&cfg, &c, &[], &msg).unwrap();
    assert_eq!((c.inner().enc(), c.inner().dec()), (2, 2));
    assert!(CachingCmm::new(plain(), LocalCache::new(1), Duration::ZERO).is_err());
}

#[test]
fn unrepresentable_ages_and_waits_mean_no_limit_not_a_panic() {
    let cfg = Config::new();
    // `Instant + Duration::MAX` overflows: the age is clamped to "never expires".
    let caches = [
        ("max_age MAX", LocalCache::new(10), Duration::MAX),
        (
            "max_age u64::MAX s",
            LocalCache::new(10),
            Duration::from_secs(u64::MAX),
        ),
        (
            "refresh wait MAX",
            LocalCache::with_refresh_wait(10, Duration::MAX),
            MINUTE,
        ),
    ];
    let mut runs = 0;
    for (what, cache, age) in caches {
        let c = CachingCmm::new(Counting::new(), cache, age).unwrap();
        for _ in 0..3 {
            let msg = esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[], b"x").unwrap();
            assert_eq!(esdk::decrypt(&cfg, &c, &[], &msg).unwrap().plaintext, b"x");
            runs += 1;
        }
        let s = c.stats();
        assert_eq!((s.encrypt_misses, s.encrypt_hits), (1, 2), "{what}");
        assert_eq!(c.inner().enc(), 1, "{what}");
    }
    // Several threads waiting without a time limit are all released by the refresher.
    let c = Arc::new(
        CachingCmm::new(
            Counting::slow(Duration::from_millis(100)),
            LocalCache::with_refresh_wait(10, Duration::MAX),
            Duration::MAX,
        )
        .unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            thread::spawn(move || {
                esdk::encrypt(&cfg, &*c, &EncryptOptions::new(), &[], b"y").unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(c.inner().enc(), 1, "one refresher, three unbounded waiters");
    println!("{runs} messages through caches without age or wait limits, 4 threads");
}

#[test]
fn context_suite_and_partition_are_part_of_the_entry() {
    let cfg = Config::new();
    let cache = LocalCache::new(100);
    let a = CachingCmm::new(Counting::new(), cache.clone(), MINUTE).unwrap();
    esdk::encrypt(&cfg, &a, &EncryptOptions::new(), &[("t", "1")], b"x").unwrap();
    esdk::encrypt(&cfg, &a, &EncryptOptions::new(), &[("t", "2")], b"x").unwrap();
    let o = EncryptOptions::new().with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    esdk::encrypt(&cfg, &a, &o, &[("t", "1")], b"x").unwrap();
    assert_eq!(a.inner().enc(), 3);
    // Another CMM on the same cache does not see a's entries...
    let b = CachingCmm::new(Counting::new(), cache.clone(), MINUTE).unwrap();
    esdk::encrypt(&cfg, &b, &EncryptOptions::new(), &[("t", "1")], b"x").unwrap();
    assert_eq!(b.inner().enc(), 1);
    // ...unless they share a partition id.
    let p = CachingCmm::new(Counting::new(), cache.clone(), MINUTE)
        .unwrap()
        .with_partition_id("shared");
    let q = CachingCmm::new(Counting::new(), cache, MINUTE)
        .unwrap()
        .with_partition_id("shared");
    esdk::encrypt(&cfg, &p, &EncryptOptions::new(), &[], b"x").unwrap();
    let msg = esdk::encrypt(&cfg, &q, &EncryptOptions::new(), &[], b"x").unwrap();
    assert_eq!((p.inner().enc(), q.inner().enc()), (1, 0));
    assert_eq!(
        esdk::decrypt(&cfg, &plain(), &[], &msg).unwrap().plaintext,
        b"x"
    );
}

#[test]
fn lru_capacity() {
    let cfg = Config::new();
    let c = CachingCmm::new(Counting::new(), LocalCache::new(2), MINUTE).unwrap();
    let e = |v: &str| esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[("k", v)], b"x").unwrap();
    e("1");
    e("2");
    e("1"); // hit; "2" is now the least recently used
    e("3"); // evicts "2"
    e("1"); // hit
    assert_eq!(c.inner().enc(), 3);
    e("2"); // miss again
    assert_eq!(c.inner().enc(), 4);
}

#[test]
fn decrypt_is_cached_per_message_keys_and_context() {
    let cfg = Config::new();
    let c = cmm(MINUTE);
    let m1 = esdk::encrypt(
        &cfg,
        &plain(),
        &EncryptOptions::new(),
        &[("a", "1")],
        b"one",
    )
    .unwrap();
    let m2 = esdk::encrypt(
        &cfg,
        &plain(),
        &EncryptOptions::new(),
        &[("a", "1")],
        b"two",
    )
    .unwrap();
    for _ in 0..10 {
        assert_eq!(esdk::decrypt(&cfg, &c, &[], &m1).unwrap().plaintext, b"one");
    }
    assert_eq!(esdk::decrypt(&cfg, &c, &[], &m2).unwrap().plaintext, b"two");
    assert_eq!(c.inner().dec(), 2);
    let s = c.stats();
    assert_eq!((s.decrypt_misses, s.decrypt_hits), (2, 9));
    // A tampered message still fails (the cached key does not skip authentication).
    let mut bad = m1.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(esdk::decrypt(&cfg, &c, &[], &bad).is_err());
}

#[test]
fn required_encryption_context_cmm_underneath() {
    let cfg = Config::new();
    let kr = Counting::new();
    let req = RequiredEncryptionContextCmm::new(&kr, &["tenant"]);
    let c = CachingCmm::new(req, LocalCache::new(10), MINUTE).unwrap();
    let mut msgs = Vec::new();
    for _ in 0..3 {
        msgs.push(
            esdk::encrypt(
                &cfg,
                &c,
                &EncryptOptions::new(),
                &[("tenant", "a"), ("x", "y")],
                b"r",
            )
            .unwrap(),
        );
    }
    assert_eq!(kr.enc(), 1);
    for m in &msgs {
        // The required pair is not stored: decryption needs it back.
        assert!(esdk::decrypt(&cfg, &plain(), &[], m).is_err());
        assert_eq!(
            esdk::decrypt(&cfg, &plain(), &[("tenant", "a")], m)
                .unwrap()
                .plaintext,
            b"r"
        );
    }
}

#[test]
fn thread_safe_and_only_one_caller_refreshes() {
    // A signing suite (the waiters take the signing key reserved by the first caller) and
    // an unsigned one.
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    ] {
        let cfg = Config::new();
        let c = Arc::new(
            CachingCmm::new(
                Counting::slow(Duration::from_millis(200)),
                LocalCache::new(10),
                MINUTE,
            )
            .unwrap(),
        );
        let n = 8;
        let barrier = Arc::new(Barrier::new(n));
        let opts = EncryptOptions::new().with_suite(suite);
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (c, b) = (c.clone(), barrier.clone());
                thread::spawn(move || {
                    b.wait();
                    let pt = vec![i as u8; 64];
                    // Half through the one-shot API, half through a stream.
                    let msg = if i % 2 == 0 {
                        esdk::encrypt(&cfg, &*c, &opts, &[("s", "x")], &pt).unwrap()
                    } else {
                        let o = opts.with_plaintext_len(64);
                        stream(&cfg, &esdk::DEFAULT_PROVIDER, &*c, &o, &[("s", "x")], &pt).unwrap()
                    };
                    assert_eq!(
                        esdk::decrypt(&cfg, &plain(), &[], &msg).unwrap().plaintext,
                        pt
                    );
                    assert_eq!(esdk::decrypt(&cfg, &*c, &[], &msg).unwrap().plaintext, pt);
                    public_key(&msg)
                })
            })
            .collect();
        let keys: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(c.inner().enc(), 1, "{suite}: one refresher, seven waiters");
        assert_eq!(c.inner().dec(), 1, "{suite}");
        let s = c.stats();
        assert_eq!((s.encrypt_misses, s.encrypt_hits), (1, 7), "{suite}");
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "{suite}");
        assert_eq!(keys[0].is_some(), suite.signature().is_some());
    }
}

/// A front end between the caching CMM and the engine that meddles between the two
/// lookups: `Evict` clears the cache; `Replace` clears it and encrypts another message
/// with the same context, so that the entry holds another signing key; `FreshKey` never
/// asks for the cached signing key (the engine makes a new one).
enum Meddle {
    Evict,
    Replace,
    FreshKey,
}

struct Meddling<'a> {
    cmm: &'a CachingCmm<Counting>,
    cache: Arc<LocalCache>,
    how: Meddle,
}

impl CryptoMaterialsManager for Meddling<'_> {
    fn encryption_signing_key(
        &self,
        request: &esdk::core::EncryptionRequest<'_>,
    ) -> Result<Option<esdk::core::SigningKey>, esdk::core::Error> {
        match self.how {
            Meddle::FreshKey => Ok(None),
            _ => self.cmm.encryption_signing_key(request),
        }
    }

    fn get_encryption_materials(
        &self,
        m: &mut EncryptionMaterials<'_>,
    ) -> Result<(), esdk::core::Error> {
        match self.how {
            Meddle::Evict => self.cache.clear(),
            Meddle::Replace => {
                self.cache.clear();
                let ec: Vec<(&str, &str)> = m
                    .encryption_context()
                    .iter()
                    .filter(|(k, _)| !k.starts_with("aws-crypto-"))
                    .collect();
                let other =
                    esdk::encrypt(&Config::new(), self.cmm, &EncryptOptions::new(), &ec, b"o")
                        .expect("another message with the same context");
                assert_ne!(
                    public_key(&other).as_deref(),
                    m.encryption_context().get("aws-crypto-public-key")
                );
            }
            Meddle::FreshKey => {}
        }
        self.cmm.get_encryption_materials(m)
    }

    fn decrypt_materials(
        &self,
        m: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), esdk::core::Error> {
        self.cmm.decrypt_materials(m, edks)
    }
}

#[test]
fn an_entry_evicted_or_replaced_between_the_two_lookups_is_not_used() {
    let cfg = Config::new();
    for how in [Meddle::Evict, Meddle::Replace, Meddle::FreshKey] {
        let cache = LocalCache::new(10);
        let c = CachingCmm::new(Counting::new(), cache.clone(), MINUTE).unwrap();
        let ec = [("tenant", "a")];
        // An entry exists; its signing key is what step 1 hands out.
        esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &ec, b"first").unwrap();
        let before = c.stats();
        let replaced = matches!(how, Meddle::Replace);
        let m = Meddling {
            cmm: &c,
            cache,
            how,
        };
        let msg = esdk::encrypt(&cfg, &m, &EncryptOptions::new(), &ec, b"second").unwrap();
        // The second lookup missed: the underlying keyring made materials for the message's
        // own signing key, and the message decrypts (with a keyring that knows no cache).
        let out = esdk::decrypt(&cfg, &plain(), &[], &msg).unwrap();
        assert_eq!(out.plaintext, b"second");
        let s = c.stats();
        let extra = u64::from(replaced);
        assert_eq!(s.encrypt_hits, before.encrypt_hits, "no hit");
        assert_eq!(s.encrypt_misses, before.encrypt_misses + 1 + extra);
        // The entry now holds the second message's materials: the next message hits.
        let next = esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &ec, b"third").unwrap();
        assert_eq!(public_key(&next), public_key(&msg));
        assert_eq!(c.stats().encrypt_hits, s.encrypt_hits + 1);
        assert_eq!(
            esdk::decrypt(&cfg, &plain(), &[], &next).unwrap().plaintext,
            b"third"
        );
    }
}

/// KMS calls per 10 000 small messages with and without the cache, against the local KMS
/// server (run by `scripts/kms-test.sh`).
#[cfg(feature = "kms")]
#[test]
fn kms_calls_per_10000_messages_with_and_without_cache() {
    use esdk::kms::{AwsKmsKeyring, BlockingKeyring, DefaultClientSupplier, KmsRuntime};
    use std::time::Instant;

    #[derive(Debug, Clone, Default)]
    struct CountCalls(Arc<AtomicUsize>);
    impl aws_sdk_kms::config::Intercept for CountCalls {
        fn name(&self) -> &'static str {
            "CountCalls"
        }
        fn read_before_execution(
            &self,
            _ctx: &aws_sdk_kms::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
            _cfg: &mut aws_sdk_kms::config::ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    let ep = std::env::var("ESDK_KMS_ENDPOINT")
        .unwrap_or_else(|_| panic!("ESDK_KMS_ENDPOINT is not set: run `bash scripts/kms-test.sh`"));
    let n: usize = std::env::var("ESDK_KMS_MEASURE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let calls = CountCalls::default();
    let sup = DefaultClientSupplier::new()
        .with_endpoint_url(&ep)
        .with_credentials(aws_sdk_kms::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .with_interceptor(calls.clone());
    let client = sup.client_for("us-west-2");
    let rt = KmsRuntime::new().unwrap();
    let key = rt
        .block_on(client.create_key().send())
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let strict = AwsKmsKeyring::new(&key, client).unwrap();
    let kr = BlockingKeyring::with_runtime(&strict, Arc::new(KmsRuntime::new().unwrap()));
    let cfg = Config::new();
    let opts = EncryptOptions::new();
    let ec = [("tenant", "measure")];
    let count = || calls.0.swap(0, Ordering::SeqCst);
    count();

    let t = Instant::now();
    for i in 0..n {
        esdk::kms::blocking::encrypt(
            &rt,
            &cfg,
            &strict,
            &opts,
            &ec,
            format!("record {i}").as_bytes(),
        )
        .unwrap();
    }
    let (without, t_without) = (count(), t.elapsed());

    let cached = CachingCmm::new(&kr, LocalCache::new(1000), Duration::from_secs(300))
        .unwrap()
        .with_max_messages(1000);
    let t = Instant::now();
    let mut msgs = Vec::with_capacity(n);
    for i in 0..n {
        msgs.push(
            esdk::encrypt(&cfg, &cached, &opts, &ec, format!("record {i}").as_bytes()).unwrap(),
        );
    }
    let (with, t_with) = (count(), t.elapsed());

    let t = Instant::now();
    for (i, m) in msgs.iter().enumerate() {
        let out = esdk::decrypt(&cfg, &cached, &[], m).unwrap();
        assert_eq!(out.plaintext, format!("record {i}").as_bytes());
    }
    let (dec_with, t_dec_with) = (count(), t.elapsed());
    let sample = (n / 10).max(1);
    let t = Instant::now();
    for m in msgs.iter().take(sample) {
        esdk::decrypt(&cfg, &kr, &[], m).unwrap();
    }
    let (dec_without, t_dec_without) = (count(), t.elapsed());

    eprintln!(
        "MEASURE cache: {n} messages of ~12 B, suite 0x0578, max 1000 messages per data key\n\
         MEASURE cache: encrypt without cache: {without} KMS calls in {t_without:?}\n\
         MEASURE cache: encrypt with cache:    {with} KMS calls in {t_with:?}\n\
         MEASURE cache: decrypt with cache:    {dec_with} KMS calls in {t_dec_with:?}\n\
         MEASURE cache: decrypt without cache: {dec_without} KMS calls for {sample} messages \
         in {t_dec_without:?}"
    );
    assert_eq!(without, n);
    assert_eq!(with, n.div_ceil(1000));
    assert_eq!(dec_with, n.div_ceil(1000));
    assert_eq!(dec_without, sample);
}
