//! Secrets in memory (issue #13, point 5): key material is zeroized when its holder is
//! dropped, checked by looking at the memory, not by `needs_drop`.
//!
//! A scanning global allocator looks at every heap block when it is freed (after the value's
//! drop glue ran, before the block goes back to the system allocator) for the byte patterns of
//! the keys a case registered. Two kinds of checks use it:
//!
//! - **Zeroized on drop:** a key holder (AEAD key, raw AES keyring, `Encryptor` and
//!   `Decryptor` after their header step, the std streams) is moved into a `Box`; the key's
//!   pattern must be found in the box's bytes while it lives (so the check can see it), and
//!   must be gone when the box is freed. For the pure-Rust provider the AES key schedule
//!   starts with the key itself, so the content key's bytes are what is looked for.
//! - **No copies left in freed heap:** whole std flows (`esdk::encrypt`/`decrypt`, the caching
//!   CMM filling and rehashing its map) run with data keys the test knows, and no block freed
//!   meanwhile may hold one.
//!
//! A control case first shows the scanner catches a key left in a freed `Vec`, and misses one
//! that was zeroized. aws-lc keeps its keys in its own C heap (cleansed by `OPENSSL_free`),
//! which this allocator does not see; the flows through aws-lc still check the Rust side.
//! The cases run one after the other in one test, so no other test's frees interleave.

use std::alloc::Layout;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use esdk_core::error::Error;
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::{CryptoProvider, HkdfOutput};
use esdk_core::suite::HashAlg;
use esdk_core::{AlgorithmSuite, Config, Decryptor, EncryptOptions, Encryptor, Keyring, Status};
use esdk_test_support::alloc::Counting;

const MAX_PATTERNS: usize = 512;

/// The registered patterns (fixed storage: the allocator must not allocate).
struct Patterns {
    keys: [[u8; 32]; MAX_PATTERNS],
    lens: [usize; MAX_PATTERNS],
    n: usize,
    /// One bit per value of a pattern's first two bytes: the scan compares patterns only
    /// where a block's two bytes start one, so a block costs one pass, not one per pattern.
    starts: [u64; 1024],
}

/// Whether `hay` holds `needle` anywhere (the live-value checks: one pattern, small values).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

impl Patterns {
    /// Whether `hay` holds one of the patterns.
    fn found_in(&self, hay: &[u8]) -> bool {
        // Every pattern is at least 16 bytes long.
        for i in 0..hay.len().saturating_sub(15) {
            let w = usize::from(u16::from_le_bytes([hay[i], hay[i + 1]]));
            if self.starts[w / 64] & (1 << (w % 64)) != 0
                && (0..self.n).any(|k| hay[i..].starts_with(&self.keys[k][..self.lens[k]]))
            {
                return true;
            }
        }
        false
    }
}

static PATTERNS: Mutex<Patterns> = Mutex::new(Patterns {
    keys: [[0; 32]; MAX_PATTERNS],
    lens: [0; MAX_PATTERNS],
    n: 0,
    starts: [0; 1024],
});
static HITS: AtomicUsize = AtomicUsize::new(0);
static SCANNED: AtomicUsize = AtomicUsize::new(0);

/// The free hook: looks for the registered patterns in the block being freed.
///
/// # Safety
/// As `esdk_test_support::alloc::FreeHook`: `ptr` is valid for reads of `layout.size()` bytes. It reads them byte by
/// byte with volatile reads; bytes never written read as whatever the allocator left there,
/// which at worst makes a match less likely (the test only counts matches).
#[allow(unsafe_code)]
unsafe fn scan(ptr: *const u8, layout: Layout) {
    if let Ok(p) = PATTERNS.try_lock()
        && p.n > 0
        && layout.size() >= 16
    {
        SCANNED.fetch_add(1, Ordering::Relaxed);
        let size = layout.size();
        // Copy out in pieces (stack only), overlapping by the longest pattern.
        let mut buf = [0u8; 4096 + 32];
        let mut at = 0usize;
        while at < size {
            let n = (size - at).min(buf.len());
            for (i, b) in buf[..n].iter_mut().enumerate() {
                // SAFETY: `at + i < size`: inside the block being freed.
                *b = unsafe { std::ptr::read_volatile(ptr.add(at + i)) };
            }
            if p.found_in(&buf[..n]) {
                HITS.fetch_add(1, Ordering::Relaxed);
                break;
            }
            if at + n >= size {
                break;
            }
            at += n - 32;
        }
    }
}

/// The scanning allocator: the shared counting allocator with [`scan`] on every freed block.
#[global_allocator]
static GLOBAL: Counting = Counting::new().with_free_hook(scan);

/// Registers `keys` for the duration of `f` and returns how many freed blocks held one.
fn freed_blocks_holding(keys: &[&[u8]], f: impl FnOnce()) -> usize {
    {
        let mut p = PATTERNS.lock().expect("patterns");
        assert!(keys.len() <= MAX_PATTERNS);
        p.starts = [0; 1024];
        for (i, k) in keys.iter().enumerate() {
            assert!(k.len() >= 16 && k.len() <= 32, "pattern length");
            p.keys[i][..k.len()].copy_from_slice(k);
            p.lens[i] = k.len();
            let w = usize::from(u16::from_le_bytes([k[0], k[1]]));
            p.starts[w / 64] |= 1 << (w % 64);
        }
        p.n = keys.len();
    }
    let before = HITS.load(Ordering::SeqCst);
    f();
    let hits = HITS.load(Ordering::SeqCst) - before;
    PATTERNS.lock().expect("patterns").n = 0;
    hits
}

/// The bytes of a live value (volatile reads; padding reads as whatever it holds).
#[allow(unsafe_code)]
fn bytes_of<T>(v: &T) -> Vec<u8> {
    let p = (v as *const T).cast::<u8>();
    (0..std::mem::size_of::<T>())
        // SAFETY: inside the live value `v`.
        .map(|i| unsafe { std::ptr::read_volatile(p.add(i)) })
        .collect()
}

/// `value` holds `key` inline while alive, and no longer once dropped (checked on the freed
/// box). Returns a line for the report.
fn zeroized_on_drop<T>(what: &str, value: T, key: &[u8]) -> String {
    let boxed = Box::new(value);
    assert!(
        contains(&bytes_of(&*boxed), key),
        "{what}: the key is not in the value's own bytes, so this check could not see it"
    );
    let hits = freed_blocks_holding(&[key], || drop(boxed));
    assert_eq!(hits, 0, "{what}: the key is still in its memory after drop");
    format!(
        "{what} ({} bytes): key present while alive, gone after drop",
        std::mem::size_of::<T>()
    )
}

/// A distinctive key, different from the other secret tests' patterns.
fn key(n: usize, salt: u8) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate().take(n) {
        *b = (i as u8).wrapping_mul(29).wrapping_add(0x13) ^ salt.wrapping_mul(101);
    }
    k
}

/// A keyring that hands out a data key the test knows: `key(32, salt)` with `salt` counting up
/// from `first`, one per encrypt call (so every cache entry has its own).
struct KnownKeys {
    next: std::sync::atomic::AtomicU8,
}

impl KnownKeys {
    fn new(first: u8) -> Self {
        Self {
            next: std::sync::atomic::AtomicU8::new(first),
        }
    }
}

impl Keyring for KnownKeys {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let salt = self.next.fetch_add(1, Ordering::SeqCst);
        let n = m.suite().key_len();
        // The keyring's own stack copy is wiped like a real keyring's would be: the test is
        // about what the library leaves behind.
        let k = zeroize::Zeroizing::new(key(32, salt));
        m.set_data_key(DataKey::from_slice(&k[..n])?)?;
        m.push_edk("known", &[&[salt]], &[b"k"])
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        let n = m.suite().key_len();
        let Some((_, edk)) = edks.iter().next() else {
            return Ok(());
        };
        let salt = edk.provider_info.first().copied().unwrap_or(0);
        let k = zeroize::Zeroizing::new(key(32, salt));
        m.set_data_key(DataKey::from_slice(&k[..n])?)
    }
}

/// The content key the core derives for `msg` (a v2 message of a committing suite, or any
/// identity-KDF message) from `data_key`. Derived on a thread of its own: the HKDF leaves
/// the key in stack bytes, and on this thread a value built later over them (the unused
/// payload of an `Option` that is `None`, padding) would carry it into a heap block the
/// scan then blames on the engine. A thread's stack is unmapped, not freed through the
/// allocator.
fn content_key(suite: AlgorithmSuite, data_key: &[u8], msg: &[u8]) -> Vec<u8> {
    let (data_key, msg) = (data_key.to_vec(), msg.to_vec());
    std::thread::spawn(move || derive_content_key(suite, &data_key, &msg))
        .join()
        .expect("content key thread")
}

fn derive_content_key(suite: AlgorithmSuite, data_key: &[u8], msg: &[u8]) -> Vec<u8> {
    let n = suite.key_len();
    match suite {
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
        | AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => {
            let mid = &msg[3..35];
            let id = suite.id().to_be_bytes();
            let mut out = vec![0u8; n];
            esdk::RUSTCRYPTO_PROVIDER
                .hkdf(
                    HashAlg::Sha512,
                    mid,
                    data_key,
                    &mut [HkdfOutput::new(&[&id, b"DERIVEKEY"], &mut out)],
                )
                .expect("hkdf");
            out
        }
        _ => data_key[..n].to_vec(),
    }
}

#[test]
fn no_key_material_reaches_freed_heap() {
    let mut report = Vec::new();

    // Control: the scanner sees a key left in a freed Vec, and not a zeroized one.
    let k = key(32, 200);
    let leaked = freed_blocks_holding(&[&k], || drop(k.to_vec()));
    assert_eq!(leaked, 1, "control: a key left in a freed Vec must be seen");
    let clean = freed_blocks_holding(&[&k], || {
        drop(zeroize::Zeroizing::new(k.to_vec()));
    });
    assert_eq!(clean, 0, "control: a zeroized Vec must not be seen");
    report.push("control: a key in a freed Vec is seen, a zeroized one is not".to_string());

    // AEAD keys of the pure-Rust provider.
    for len in [16usize, 24, 32] {
        let k = key(len, len as u8);
        let aead = esdk::RUSTCRYPTO_PROVIDER
            .aead_key(&k[..len])
            .expect("aead key");
        report.push(zeroized_on_drop(
            &format!("RustCryptoAead AES-{}", len * 8),
            aead,
            &k[..len],
        ));
    }

    // Raw AES keyring (its AES-GCM key schedule holds the wrapping key).
    let wrap = key(32, 77);
    let ring = esdk_raw::RawAesKeyring::new("ns", "name", &wrap).expect("keyring");
    report.push(zeroized_on_drop("RawAesKeyring", ring, &wrap));

    // Encryptor and Decryptor after their header step, identity and derived content keys.
    for suite in [
        AlgorithmSuite::Aes256GcmIv12Tag16NoKdf,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let known = KnownKeys::new(10);
        let cfg = esdk_test_support::config_for(suite);
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(64);
        let provider = esdk::RUSTCRYPTO_PROVIDER;
        let mut enc = Encryptor::new(&cfg, &provider, &opts).expect("encryptor");
        let mut head = vec![0u8; 4096];
        let mut ec = [("a", "b")];
        let n = enc
            .write_header(&known, &mut ec, &mut head)
            .expect("header");
        let ck = content_key(suite, &key(32, 10), &head[..n]);
        report.push(zeroized_on_drop(
            &format!("Encryptor {suite} after its header"),
            enc,
            &ck,
        ));

        let mut dec = Decryptor::new(&cfg, &provider, &[]);
        let mut out = [0u8; 256];
        let p = dec
            .process_with(&known, &head[..n], &mut out)
            .expect("header step");
        assert_eq!(p.status, Status::Header);
        report.push(zeroized_on_drop(
            &format!("Decryptor {suite} after its header"),
            dec,
            &ck,
        ));
    }

    // std flows with known data keys: no freed block may hold a data key or a content key.
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let cfg = Config::new();
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(512);
    let pt = vec![0x42u8; 5000];
    let dk = key(32, 50);
    let known = KnownKeys::new(50);
    let mut msg = Vec::new();
    let hits = freed_blocks_holding(&[&dk], || {
        msg = esdk::encrypt(&cfg, &known, &opts, &[("a", "b")], &pt).expect("encrypt");
        let d = esdk::decrypt(&cfg, &known, &[], &msg).expect("decrypt");
        assert_eq!(d.plaintext, pt);
    });
    assert_eq!(
        hits, 0,
        "esdk::encrypt/decrypt left a data key in freed heap"
    );
    report.push("esdk::encrypt + esdk::decrypt (aws-lc): no data key in freed heap".into());

    // std streams on the pure-Rust provider (its keys live inside the stream objects).
    let ck = content_key(suite, &dk, &msg);
    let hits = freed_blocks_holding(&[&dk, &ck], || {
        let mut r = Box::new(esdk::DecryptingReader::new(
            &cfg,
            &esdk::RUSTCRYPTO_PROVIDER,
            &known,
            &[],
            &msg[..],
        ));
        let mut first = [0u8; 100];
        std::io::Read::read(&mut *r, &mut first).expect("read");
        drop(r);
        let mut w = Box::new(esdk::DecryptingWriter::new(
            &cfg,
            &esdk::RUSTCRYPTO_PROVIDER,
            &known,
            &[],
            Vec::new(),
        ));
        std::io::Write::write_all(&mut *w, &msg[..msg.len() / 2]).expect("write");
        drop(w);
    });
    assert_eq!(
        hits, 0,
        "a std decrypting stream left a key in freed heap when dropped mid-message"
    );
    report.push(
        "DecryptingReader / DecryptingWriter (pure Rust) dropped mid-message: no key in freed heap"
            .into(),
    );
    let known_enc = KnownKeys::new(60);
    let dk60 = key(32, 60);
    let hits = freed_blocks_holding(&[&dk60], || {
        let mut w = Box::new(
            esdk::EncryptingWriter::new(
                &cfg,
                &esdk::RUSTCRYPTO_PROVIDER,
                &known_enc,
                &opts,
                &[("a", "b")],
                Vec::new(),
            )
            .expect("writer"),
        );
        std::io::Write::write_all(&mut *w, &pt).expect("write");
        drop(w);
    });
    assert_eq!(hits, 0, "EncryptingWriter left its data key in freed heap");
    report
        .push("EncryptingWriter (pure Rust) dropped mid-message: no data key in freed heap".into());

    // The caching CMM: 300 entries with their own data keys (the map rehashes several times
    // as it grows), then the cache is dropped.
    let entries = 300usize;
    let known = KnownKeys::new(0);
    let keys: Vec<[u8; 32]> = (0..entries).map(|i| key(32, i as u8)).collect();
    // Salts wrap at 256: distinct keys for the first 256 entries; the rest repeat patterns.
    let patterns: Vec<&[u8]> = keys.iter().take(256).map(|k| &k[..]).collect();
    let contexts: Vec<String> = (0..entries).map(|i| format!("tenant-{i}")).collect();
    let hits = freed_blocks_holding(&patterns, || {
        let cache = esdk::caching::LocalCache::new(1000);
        let cmm =
            esdk::caching::CachingCmm::new(&known, cache, std::time::Duration::from_secs(300))
                .expect("caching cmm");
        for c in &contexts {
            esdk::encrypt(&cfg, &cmm, &opts, &[("tenant", c)], b"x").expect("encrypt");
        }
        drop(cmm);
    });
    assert_eq!(
        hits, 0,
        "the caching CMM (encrypt entries) left data keys in freed heap ({hits} blocks)"
    );
    // Decrypt entries: one per message (each has its own EDK and data key).
    let known = KnownKeys::new(0);
    let messages: Vec<Vec<u8>> = contexts
        .iter()
        .take(256)
        .map(|c| esdk::encrypt(&cfg, &known, &opts, &[("tenant", c)], b"x").expect("encrypt"))
        .collect();
    let hits = freed_blocks_holding(&patterns, || {
        let cache = esdk::caching::LocalCache::new(1000);
        let cmm =
            esdk::caching::CachingCmm::new(&known, cache, std::time::Duration::from_secs(300))
                .expect("caching cmm");
        for m in &messages {
            assert_eq!(
                esdk::decrypt(&cfg, &cmm, &[], m)
                    .expect("decrypt")
                    .plaintext,
                b"x"
            );
        }
        drop(cmm);
    });
    assert_eq!(
        hits, 0,
        "the caching CMM (decrypt entries) left data keys in freed heap ({hits} blocks)"
    );
    report.push(format!(
        "CachingCmm: {entries} encrypt entries and {} decrypt entries (the map rehashed while \
         growing), dropped: no data key in freed heap",
        messages.len()
    ));

    for line in &report {
        println!("secrets (memory): {line}");
    }
    println!(
        "secrets (memory): {} checks passed, {} freed blocks scanned",
        report.len(),
        SCANNED.load(Ordering::SeqCst)
    );
}
