//! The caching CMM: limits, bypasses, partitions, LRU, thread safety, and (with the `kms`
//! feature, against the local KMS server) the KMS calls it saves.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use esdk::caching::{CachingCmm, LocalCache};
use esdk::core::header::{self, Parsed};
use esdk::core::materials::{DecryptionMaterials, Edks, EncryptionMaterials};
use esdk::raw::RawAesKeyring;
use esdk::{
    AlgorithmSuite, CommitmentPolicy, Config, EncryptOptions, Keyring, RequiredEncryptionContextCmm,
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
        let cfg = if suite.is_committing() {
            Config::new()
        } else {
            Config::new().with_commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        };
        let c = cmm(MINUTE);
        let opts = EncryptOptions::new().with_suite(suite);
        let mut keys = Vec::new();
        for i in 0..5u8 {
            let pt = vec![i; 100 + usize::from(i)];
            let msg = c.encrypt(&cfg, &opts, &[("tenant", "a")], &pt).unwrap();
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
        msgs.push(c.encrypt(&cfg, &opts, &[], b"x").unwrap());
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

#[test]
fn unknown_length_bypasses_the_cache_and_known_length_is_enforced() {
    let cfg = Config::new();
    let c = cmm(MINUTE);
    // Through the plain CMM interface (esdk::encrypt, streams, CLI) the length is unknown.
    for _ in 0..2 {
        esdk::encrypt(&cfg, &c, &EncryptOptions::new(), &[], b"x").unwrap();
    }
    let mut w = c
        .encrypting_writer(&cfg, &EncryptOptions::new(), &[], None, Vec::new())
        .unwrap();
    w.write_all(b"unknown length").unwrap();
    let msg = w.finish().unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &plain(), &[], &msg).unwrap().plaintext,
        b"unknown length"
    );
    assert_eq!(c.inner().enc(), 3);
    assert_eq!(c.stats().encrypt_bypassed, 3);
    // A declared length uses the cache, and more plaintext than declared is refused.
    for _ in 0..2 {
        let mut w = c
            .encrypting_writer(&cfg, &EncryptOptions::new(), &[], Some(10), Vec::new())
            .unwrap();
        w.write_all(b"0123456789").unwrap();
        let msg = w.finish().unwrap();
        assert_eq!(
            esdk::decrypt(&cfg, &plain(), &[], &msg).unwrap().plaintext,
            b"0123456789"
        );
    }
    assert_eq!(c.inner().enc(), 4);
    let mut w = c
        .encrypting_writer(&cfg, &EncryptOptions::new(), &[], Some(4), Vec::new())
        .unwrap();
    let e = w.write_all(b"too long").unwrap_err();
    assert_eq!(
        esdk::stream::esdk_error(&e),
        Some(esdk::core::Error::Policy(
            esdk::core::error::PolicyViolation::PlaintextLengthBound
        ))
    );
}

#[test]
fn message_limit() {
    let cfg = Config::new();
    let c = cmm(MINUTE).with_max_messages(3);
    for _ in 0..7 {
        c.encrypt(&cfg, &EncryptOptions::new(), &[], b"x").unwrap();
    }
    assert_eq!(c.inner().enc(), 3, "entries used 3 + 3 + 1 times");
}

#[test]
fn byte_limit() {
    let cfg = Config::new();
    let c = cmm(MINUTE).with_max_bytes(100);
    for _ in 0..5 {
        c.encrypt(&cfg, &EncryptOptions::new(), &[], &[0u8; 40])
            .unwrap();
    }
    assert_eq!(
        c.inner().enc(),
        3,
        "two 40-byte messages per 100-byte entry"
    );
    // A message longer than the limit never uses the cache.
    c.encrypt(&cfg, &EncryptOptions::new(), &[], &[0u8; 150])
        .unwrap();
    assert_eq!(c.stats().encrypt_bypassed, 1);
}

#[test]
fn max_age() {
    let cfg = Config::new();
    let c = cmm(Duration::from_millis(200));
    let msg = c.encrypt(&cfg, &EncryptOptions::new(), &[], b"x").unwrap();
    c.encrypt(&cfg, &EncryptOptions::new(), &[], b"x").unwrap();
    esdk::decrypt(&cfg, &c, &[], &msg).unwrap();
    esdk::decrypt(&cfg, &c, &[], &msg).unwrap();
    assert_eq!((c.inner().enc(), c.inner().dec()), (1, 1));
    thread::sleep(Duration::from_millis(300));
    c.encrypt(&cfg, &EncryptOptions::new(), &[], b"x").unwrap();
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
            let msg = c.encrypt(&cfg, &EncryptOptions::new(), &[], b"x").unwrap();
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
                c.encrypt(&cfg, &EncryptOptions::new(), &[], b"y").unwrap();
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
    a.encrypt(&cfg, &EncryptOptions::new(), &[("t", "1")], b"x")
        .unwrap();
    a.encrypt(&cfg, &EncryptOptions::new(), &[("t", "2")], b"x")
        .unwrap();
    let o = EncryptOptions::new().with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    a.encrypt(&cfg, &o, &[("t", "1")], b"x").unwrap();
    assert_eq!(a.inner().enc(), 3);
    // Another CMM on the same cache does not see a's entries...
    let b = CachingCmm::new(Counting::new(), cache.clone(), MINUTE).unwrap();
    b.encrypt(&cfg, &EncryptOptions::new(), &[("t", "1")], b"x")
        .unwrap();
    assert_eq!(b.inner().enc(), 1);
    // ...unless they share a partition id.
    let p = CachingCmm::new(Counting::new(), cache.clone(), MINUTE)
        .unwrap()
        .with_partition_id("shared");
    let q = CachingCmm::new(Counting::new(), cache, MINUTE)
        .unwrap()
        .with_partition_id("shared");
    p.encrypt(&cfg, &EncryptOptions::new(), &[], b"x").unwrap();
    let msg = q.encrypt(&cfg, &EncryptOptions::new(), &[], b"x").unwrap();
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
    let e = |v: &str| {
        c.encrypt(&cfg, &EncryptOptions::new(), &[("k", v)], b"x")
            .unwrap()
    };
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
            c.encrypt(
                &cfg,
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
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (c, b) = (c.clone(), barrier.clone());
            thread::spawn(move || {
                b.wait();
                let pt = vec![i as u8; 64];
                let msg = c
                    .encrypt(&cfg, &EncryptOptions::new(), &[("s", "x")], &pt)
                    .unwrap();
                assert_eq!(
                    esdk::decrypt(&cfg, &plain(), &[], &msg).unwrap().plaintext,
                    pt
                );
                assert_eq!(esdk::decrypt(&cfg, &*c, &[], &msg).unwrap().plaintext, pt);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(c.inner().enc(), 1, "one refresher, seven waiters");
    assert_eq!(c.inner().dec(), 1);
    let s = c.stats();
    assert_eq!((s.encrypt_misses, s.encrypt_hits), (1, 7));
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
            cached
                .encrypt(&cfg, &opts, &ec, format!("record {i}").as_bytes())
                .unwrap(),
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
