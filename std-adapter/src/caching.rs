//! The caching CMM (spec `framework/caching-cmm.md`) over a thread-safe local LRU cache, and
//! the [`PrefetchProvider`] that lets materials fetched ahead of a message (from a cache, or
//! awaited from KMS) carry their signing key into the header.
//!
//! # How the cache fits a sans-I/O core
//! For signing suites (the default 0x0578) the core generates the message's signing key pair
//! inside [`Encryptor::write_header`] and adds the public key to the encryption context the
//! keyrings bind the data key to. Cached materials therefore have to bring their signing
//! key with them, like the official SDKs' cached `EncryptionMaterials` do. The caching CMM
//! does this with [`PrefetchProvider`]: the default provider, except that it hands the
//! cached key pair to the next header written on the same thread.
//!
//! The spec also needs the plaintext length: an entry may encrypt at most
//! [`with_max_bytes`](CachingCmm::with_max_bytes) bytes, and a request whose length is
//! unknown must bypass the cache. The core's CMM interface carries no length, so:
//! - [`CachingCmm::encrypt`] and [`CachingCmm::encrypting_writer`] with a known length use
//!   the cache;
//! - the [`CryptoMaterialsManager`] impl (what [`crate::encrypt`], the plain
//!   [`EncryptingWriter`] and the CLI call) is the unknown-length case: it **bypasses** the
//!   cache on encryption (counted in [`CacheStats::encrypt_bypassed`]) and caches decryption
//!   fully.
//!
//! Suites with the identity KDF (0x0014, 0x0046, 0x0078) are never cached. Only one caller
//! refreshes a missing or expired entry; the others wait for it (up to
//! [`LocalCache::with_refresh_wait`]).
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use esdk::caching::{CachingCmm, LocalCache};
//! use esdk::{Config, EncryptOptions, raw::RawAesKeyring};
//! let keyring = RawAesKeyring::new("ns", "key", &[7u8; 32])?;
//! let cmm = CachingCmm::new(keyring, LocalCache::new(100), Duration::from_secs(300))?
//!     .with_max_messages(1000);
//! let cfg = Config::new();
//! for _ in 0..3 {
//!     let msg = cmm.encrypt(&cfg, &EncryptOptions::new(), &[("tenant", "a")], b"record")?;
//!     assert_eq!(esdk::decrypt(&cfg, &cmm, &[], &msg)?.plaintext, b"record");
//! }
//! assert_eq!(cmm.stats().encrypt_misses, 1);
//! assert_eq!(cmm.stats().encrypt_hits, 2);
//! # Ok::<(), esdk::Error>(())
//! ```
//!
//! [`Encryptor::write_header`]: esdk_core::Encryptor::write_header

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use esdk_core::ec;
use esdk_core::error::{CryptoError, KeyringError, PolicyViolation};
use esdk_core::header::{self, ParseLimits, Parsed};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::{CryptoProvider, RandomSource};
use esdk_core::suite::{HashAlg, Kdf, SignatureAlg};
use esdk_core::{AlgorithmSuite, Config, CryptoMaterialsManager, EncryptOptions, Encryptor, Error};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::stream::{EncryptingWriter, io_error};
use crate::{DEFAULT_PROVIDER, DefaultProvider};

// ---------------------------------------------------------------------------------------
// Owned materials and the signing-key hand-off.

/// An encrypted data key owned by the caller (cached materials, async keyrings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEdk {
    /// Key provider id (`aws-kms` for KMS keyrings).
    pub provider_id: String,
    /// Key provider info (the key ARN for KMS keyrings).
    pub provider_info: Vec<u8>,
    /// The wrapped data key.
    pub ciphertext: Vec<u8>,
}

impl OwnedEdk {
    /// A borrowed view.
    pub fn as_edk(&self) -> esdk_core::materials::Edk<'_> {
        esdk_core::materials::Edk {
            provider_id: &self.provider_id,
            provider_info: &self.provider_info,
            ciphertext: &self.ciphertext,
        }
    }
}

/// A message signing key pair (private scalar zeroized on drop).
#[derive(Clone)]
pub(crate) struct SigningKey {
    alg: SignatureAlg,
    private: Zeroizing<[u8; 48]>,
    public: [u8; 49],
}

#[allow(dead_code)] // the async KMS front end no longer uses it (moving to legacy_async.rs)
impl SigningKey {
    /// A fresh key pair from the default provider.
    pub(crate) fn generate(alg: SignatureAlg) -> Result<Self, Error> {
        let mut private = Zeroizing::new([0u8; 48]);
        let mut public = [0u8; 49];
        DEFAULT_PROVIDER.generate_signing_key(
            alg,
            &mut private[..alg.scalar_len()],
            &mut public[..alg.public_key_len()],
        )?;
        Ok(Self {
            alg,
            private,
            public,
        })
    }

    /// The base64 text the core stores under `aws-crypto-public-key`.
    #[cfg(feature = "kms")]
    pub(crate) fn public_b64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.public[..self.alg.public_key_len()])
    }
}

#[derive(Default)]
struct Handoff {
    preset: Option<SigningKey>,
    record: bool,
    recorded: Option<SigningKey>,
}

thread_local! {
    static HANDOFF: RefCell<Handoff> = RefCell::new(Handoff::default());
}

/// Arms the hand-off on this thread until dropped, then restores what was armed before (so
/// guards nest). Not `Send`: it must be dropped on the thread that wrote the header.
pub(crate) struct HandoffGuard {
    previous: Option<Handoff>,
    _not_send: PhantomData<*const ()>,
}

impl HandoffGuard {
    fn arm(state: Handoff) -> Self {
        let previous = HANDOFF.with(|h| std::mem::replace(&mut *h.borrow_mut(), state));
        Self {
            previous: Some(previous),
            _not_send: PhantomData,
        }
    }

    /// The next headers written on this thread use `key` as their signing key.
    pub(crate) fn preset(key: Option<SigningKey>) -> Self {
        Self::arm(Handoff {
            preset: key,
            record: false,
            recorded: None,
        })
    }

    /// The next headers written on this thread generate their key as usual and record it.
    pub(crate) fn record() -> Self {
        Self::arm(Handoff {
            preset: None,
            record: true,
            recorded: None,
        })
    }

    /// The last key generated while recording.
    pub(crate) fn take_recorded(&self) -> Option<SigningKey> {
        HANDOFF.with(|h| h.borrow_mut().recorded.take())
    }
}

impl Drop for HandoffGuard {
    fn drop(&mut self) {
        let previous = self.previous.take().unwrap_or_default();
        HANDOFF.with(|h| *h.borrow_mut() = previous);
    }
}

/// The default provider ([`DEFAULT_PROVIDER`]), except that a message's signing key pair can
/// be handed to it ahead of the header, on the same thread, by the caching CMM and by the
/// async KMS front end. With nothing handed over it behaves exactly like the default
/// provider.
///
/// It exists because the core generates the signing key inside
/// [`Encryptor::write_header`](esdk_core::Encryptor::write_header), after which the
/// encryption context the keyrings saw can no longer change.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefetchProvider;

/// The [`PrefetchProvider`] instance.
pub const PREFETCH_PROVIDER: PrefetchProvider = PrefetchProvider;

impl RandomSource for PrefetchProvider {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        DEFAULT_PROVIDER.fill_random(out)
    }
}

impl CryptoProvider for PrefetchProvider {
    type Aead = <DefaultProvider as CryptoProvider>::Aead;
    type Hasher = <DefaultProvider as CryptoProvider>::Hasher;

    fn aead_key(&self, key: &[u8]) -> Result<Self::Aead, CryptoError> {
        DEFAULT_PROVIDER.aead_key(key)
    }

    fn hkdf(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
        info: &[&[u8]],
        okm: &mut [u8],
    ) -> Result<(), CryptoError> {
        DEFAULT_PROVIDER.hkdf(hash, salt, ikm, info, okm)
    }

    fn hasher(&self, alg: SignatureAlg) -> Result<Self::Hasher, CryptoError> {
        DEFAULT_PROVIDER.hasher(alg)
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlg,
        private: &mut [u8],
        public: &mut [u8],
    ) -> Result<(), CryptoError> {
        HANDOFF.with(|h| {
            let mut h = h.borrow_mut();
            let (sl, pl) = (alg.scalar_len(), alg.public_key_len());
            if let Some(k) = &h.preset {
                if k.alg != alg || private.len() != sl || public.len() != pl {
                    return Err(CryptoError::InvalidKey);
                }
                private.copy_from_slice(&k.private[..sl]);
                public.copy_from_slice(&k.public[..pl]);
                return Ok(());
            }
            DEFAULT_PROVIDER.generate_signing_key(alg, private, public)?;
            if h.record && private.len() == sl && public.len() == pl {
                let mut k = SigningKey {
                    alg,
                    private: Zeroizing::new([0u8; 48]),
                    public: [0u8; 49],
                };
                k.private[..sl].copy_from_slice(private);
                k.public[..pl].copy_from_slice(public);
                h.recorded = Some(k);
            }
            Ok(())
        })
    }

    fn sign_digest(
        &self,
        alg: SignatureAlg,
        private: &[u8],
        digest: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        DEFAULT_PROVIDER.sign_digest(alg, private, digest, out)
    }

    fn verify_digest(
        &self,
        alg: SignatureAlg,
        public: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError> {
        DEFAULT_PROVIDER.verify_digest(alg, public, digest, sig)
    }
}

/// Encryption materials obtained ahead of the header: the data key, the EDKs, the signing
/// key, and the full encryption context they are bound to.
pub(crate) struct Materials {
    pub(crate) suite: AlgorithmSuite,
    pub(crate) data_key: DataKey,
    pub(crate) edks: Vec<OwnedEdk>,
    pub(crate) signing: Option<SigningKey>,
    pub(crate) full_ec: Vec<(String, String)>,
}

/// A CMM that hands prefetched [`Materials`] to the header, after checking that the header's
/// suite and full encryption context are the ones the materials were made for.
pub(crate) struct ReplayCmm<'a> {
    pub(crate) materials: &'a Materials,
    pub(crate) required: &'a [&'a str],
}

impl CryptoMaterialsManager for ReplayCmm<'_> {
    fn required_encryption_context_keys(&self) -> &[&str] {
        self.required
    }

    fn get_encryption_materials(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let mat = self.materials;
        if m.suite() != mat.suite {
            return Err(KeyringError::Other(
                "prefetched materials are for another algorithm suite",
            )
            .into());
        }
        let same = m.encryption_context().len() == mat.full_ec.len()
            && m.encryption_context()
                .iter_sorted()
                .zip(mat.full_ec.iter())
                .all(|((k, v), (ek, ev))| k == ek.as_bytes() && v == ev.as_bytes());
        if !same {
            return Err(KeyringError::Other(
                "the header's encryption context differs from the one the data key is bound to",
            )
            .into());
        }
        m.set_data_key(mat.data_key.clone())?;
        for e in &mat.edks {
            m.push_edk(&e.provider_id, &[&e.provider_info], &[&e.ciphertext])?;
        }
        Ok(())
    }

    fn decrypt_materials(
        &self,
        _m: &mut DecryptionMaterials<'_>,
        _edks: Edks<'_>,
    ) -> Result<(), Error> {
        Err(KeyringError::Other("prefetched encryption materials cannot decrypt").into())
    }
}

/// The full encryption context the core builds for `pairs` (sorted, checked) and `signing`
/// (used by the async KMS front end).
#[cfg(feature = "kms")]
#[allow(dead_code)] // the async KMS front end no longer uses it (moving to legacy_async.rs)
pub(crate) fn full_context(
    pairs: &[(&str, &str)],
    signing: Option<&SigningKey>,
) -> Vec<(String, String)> {
    let mut full: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(s) = signing {
        full.push((ec::PUBLIC_KEY_EC_KEY.to_owned(), s.public_b64()));
    }
    full.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    full
}

/// Encrypts a whole message into a `Vec` with `provider` and `cmm`, growing the buffer when
/// the core asks for more.
pub(crate) fn encrypt_vec<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    opts: &EncryptOptions,
    ec: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut ec: Vec<(&str, &str)> = ec.to_vec();
    let mut cap = plaintext.len() + plaintext.len() / 64 + 4096;
    loop {
        let mut out = vec![0u8; cap];
        match esdk_core::encrypt(cfg, provider, cmm, opts, &mut ec, plaintext, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(Error::BufferTooSmall { required }) if required > cap => cap = required,
            Err(Error::BufferTooSmall { .. }) => cap = cap.saturating_mul(2),
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The local cache.

type CacheId = [u8; 64];

enum Entry {
    Encrypt {
        materials: Arc<Materials>,
        messages: u64,
        bytes: u64,
    },
    /// Boxed, so that a rehash of the map moves a pointer, never the key: the one copy is
    /// zeroized when the entry is dropped ([`DataKey`] is zeroize-on-drop).
    Decrypt(Box<DataKey>),
}

struct Slot {
    entry: Entry,
    /// `None`: never expires (the age limit is past what [`Instant`] can represent).
    expires: Option<Instant>,
    tick: u64,
}

/// `d` from now, or `None` ("never") when that instant cannot be represented: a huge
/// `max_age` or refresh wait is clamped to "no limit" instead of overflowing.
fn after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Whether an entry expiring at `expires` is still fresh at `now`.
fn fresh(expires: Option<Instant>, now: Instant) -> bool {
    expires.is_none_or(|e| e > now)
}

#[derive(Default)]
struct State {
    entries: HashMap<CacheId, Slot>,
    lru: BTreeMap<u64, CacheId>,
    tick: u64,
    refreshing: HashSet<CacheId>,
}

impl State {
    fn touch(&mut self, id: &CacheId) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.entries.get_mut(id) {
            self.lru.remove(&slot.tick);
            slot.tick = tick;
            self.lru.insert(tick, *id);
        }
    }

    fn remove(&mut self, id: &CacheId) {
        if let Some(slot) = self.entries.remove(id) {
            self.lru.remove(&slot.tick);
        }
    }
}

/// A thread-safe, in-memory LRU cache of cryptographic materials with a fixed entry
/// capacity. Share one between several [`CachingCmm`]s with `Arc`; entries are kept apart
/// by partition id.
pub struct LocalCache {
    capacity: usize,
    refresh_wait: Duration,
    state: Mutex<State>,
    refreshed: Condvar,
}

impl std::fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

enum Lookup<'a, T> {
    Hit(T),
    /// The caller refreshes the entry; the guard releases the other callers when dropped.
    Refresh(RefreshGuard<'a>),
}

struct RefreshGuard<'a> {
    cache: &'a LocalCache,
    id: CacheId,
}

impl Drop for RefreshGuard<'_> {
    fn drop(&mut self) {
        self.cache.lock().refreshing.remove(&self.id);
        self.cache.refreshed.notify_all();
    }
}

impl LocalCache {
    /// A cache of at most `capacity` entries (at least 1); the least recently used entry is
    /// evicted first.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self::with_capacity(capacity))
    }

    fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            refresh_wait: Duration::from_secs(10),
            state: Mutex::new(State::default()),
            refreshed: Condvar::new(),
        }
    }

    /// A cache whose waiters give up waiting for another caller's refresh after `wait` and
    /// refresh themselves (default 10 s, like the storm-tracking cache's in-flight TTL). A
    /// `wait` too long for the clock to represent (`Duration::MAX`) means waiting as long as
    /// the refresh takes.
    pub fn with_refresh_wait(capacity: usize, wait: Duration) -> Arc<Self> {
        let mut c = Self::with_capacity(capacity);
        c.refresh_wait = wait;
        Arc::new(c)
    }

    /// The entry capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of entries (expired ones included until they are pruned).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry.
    pub fn clear(&self) {
        let mut st = self.lock();
        st.entries.clear();
        st.lru.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Finds a usable entry with `usable` (which may update its usage), or makes the caller
    /// the one refresher of `id`, waiting while another caller refreshes it.
    fn lookup<T>(
        &self,
        id: &CacheId,
        mut usable: impl FnMut(&mut Entry) -> Option<T>,
    ) -> Lookup<'_, T> {
        let deadline = after(self.refresh_wait);
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            let mut found = None;
            let mut stale = false;
            if let Some(slot) = st.entries.get_mut(id) {
                if fresh(slot.expires, now) {
                    found = usable(&mut slot.entry);
                }
                stale = found.is_none();
            }
            if let Some(v) = found {
                st.touch(id);
                return Lookup::Hit(v);
            }
            if stale {
                st.remove(id);
            }
            let waited_enough = deadline.is_some_and(|d| now >= d);
            if !st.refreshing.contains(id) || waited_enough {
                st.refreshing.insert(*id);
                return Lookup::Refresh(RefreshGuard {
                    cache: self,
                    id: *id,
                });
            }
            st = match deadline {
                Some(d) => {
                    self.refreshed
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .refreshed
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    fn put(&self, id: &CacheId, entry: Entry, expires: Option<Instant>) {
        let mut st = self.lock();
        st.remove(id);
        // Prune expired entries among the least recently used, then evict to make room.
        let now = Instant::now();
        let old: Vec<CacheId> = st.lru.values().take(8).copied().collect();
        for o in old {
            if st.entries.get(&o).is_some_and(|s| !fresh(s.expires, now)) {
                st.remove(&o);
            }
        }
        while st.entries.len() >= self.capacity {
            match st.lru.pop_first() {
                Some((_, victim)) => {
                    st.entries.remove(&victim);
                }
                None => break,
            }
        }
        st.tick += 1;
        let tick = st.tick;
        st.entries.insert(
            *id,
            Slot {
                entry,
                expires,
                tick,
            },
        );
        st.lru.insert(tick, *id);
    }
}

// ---------------------------------------------------------------------------------------
// The caching CMM.

/// Counters of a [`CachingCmm`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Encryptions served from the cache.
    pub encrypt_hits: u64,
    /// Encryptions that asked the underlying CMM and stored the result.
    pub encrypt_misses: u64,
    /// Encryptions that went to the underlying CMM without the cache (identity-KDF suite,
    /// unknown plaintext length, or longer than the byte limit).
    pub encrypt_bypassed: u64,
    /// Decryptions served from the cache.
    pub decrypt_hits: u64,
    /// Decryptions that asked the underlying CMM and stored the result.
    pub decrypt_misses: u64,
    /// Decryptions with an identity-KDF suite (never cached).
    pub decrypt_bypassed: u64,
}

#[derive(Default)]
struct Counters([AtomicU64; 6]);

impl Counters {
    fn bump(&self, i: usize) {
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }
}

const ENC_HIT: usize = 0;
const ENC_MISS: usize = 1;
const ENC_BYPASS: usize = 2;
const DEC_HIT: usize = 3;
const DEC_MISS: usize = 4;
const DEC_BYPASS: usize = 5;

/// A CMM that caches the materials of an underlying keyring or CMM in a [`LocalCache`].
///
/// Thread-safe when the underlying CMM is (`Sync`). See the [module docs](self) for which
/// calls use the cache.
pub struct CachingCmm<C> {
    inner: C,
    cache: Arc<LocalCache>,
    partition_id: String,
    partition_hash: [u8; 64],
    max_age: Duration,
    max_messages: u64,
    max_bytes: u64,
    counters: Counters,
}

impl<C> std::fmt::Debug for CachingCmm<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingCmm")
            .field("partition_id", &self.partition_id)
            .field("max_age", &self.max_age)
            .field("max_messages", &self.max_messages)
            .field("max_bytes", &self.max_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn serialize_ec(pairs: &[(&str, &str)]) -> Result<Vec<u8>, Error> {
    let mut out = vec![
        0u8;
        2 + pairs
            .iter()
            .map(|(k, v)| 4 + k.len() + v.len())
            .sum::<usize>()
    ];
    let n = ec::write(ec::raw_pairs(pairs), &mut out)?;
    out.truncate(n);
    Ok(out)
}

impl<C> CachingCmm<C> {
    /// The partition id.
    pub fn partition_id(&self) -> &str {
        &self.partition_id
    }

    /// The underlying CMM.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let v = |i: usize| self.counters.0[i].load(Ordering::Relaxed);
        CacheStats {
            encrypt_hits: v(ENC_HIT),
            encrypt_misses: v(ENC_MISS),
            encrypt_bypassed: v(ENC_BYPASS),
            decrypt_hits: v(DEC_HIT),
            decrypt_misses: v(DEC_MISS),
            decrypt_bypassed: v(DEC_BYPASS),
        }
    }
}

impl<C: CryptoMaterialsManager> CachingCmm<C> {
    /// Caches the materials of `inner` (a keyring or a CMM) in `cache` for at most `max_age`,
    /// with the default limits (2^32 messages and 2^63 - 1 bytes per data key) and a partition
    /// id unique to this CMM. A `max_age` too long for the clock to represent
    /// (`Duration::MAX`, `u64::MAX` seconds) means entries never expire by age (the other
    /// limits and the capacity still apply).
    ///
    /// # Errors
    /// [`KeyringError::InvalidConfiguration`] when `max_age` is zero; `CryptoError::Rng`.
    pub fn new(inner: C, cache: Arc<LocalCache>, max_age: Duration) -> Result<Self, Error> {
        if max_age.is_zero() {
            return Err(KeyringError::InvalidConfiguration.into());
        }
        let mut rnd = [0u8; 16];
        DEFAULT_PROVIDER.fill_random(&mut rnd)?;
        let partition_id: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            inner,
            cache,
            partition_hash: sha512(&[partition_id.as_bytes()]),
            partition_id,
            max_age,
            max_messages: 1 << 32,
            max_bytes: i64::MAX as u64,
            counters: Counters::default(),
        })
    }

    /// Shares entries with every other caching CMM on the same cache with this partition id.
    pub fn with_partition_id(mut self, id: &str) -> Self {
        self.partition_id = id.to_owned();
        self.partition_hash = sha512(&[id.as_bytes()]);
        self
    }

    /// At most `n` (at least 1) messages per cached data key.
    pub fn with_max_messages(mut self, n: u64) -> Self {
        self.max_messages = n.max(1);
        self
    }

    /// At most `n` plaintext bytes per cached data key.
    pub fn with_max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    /// Cache entry id for encryption (spec Appendix A: with or without algorithm suite).
    fn encrypt_id(
        &self,
        suite: Option<AlgorithmSuite>,
        ec: &[(&str, &str)],
    ) -> Result<CacheId, Error> {
        let ec_hash = sha512(&[&serialize_ec(ec)?]);
        Ok(match suite {
            None => sha512(&[&self.partition_hash, &[0], &ec_hash]),
            Some(s) => sha512(&[&self.partition_hash, &[1], &s.id().to_be_bytes(), &ec_hash]),
        })
    }

    /// Cache entry id for decryption: partition, suite, sorted EDK hashes, 64 zero bytes, EC.
    fn decrypt_id(&self, suite: AlgorithmSuite, edks: &Edks<'_>, ec_bytes: &[u8]) -> CacheId {
        let mut hashes: Vec<[u8; 64]> = edks
            .iter()
            .map(|(_, e)| {
                let f = |b: &[u8]| (b.len() as u16).to_be_bytes();
                sha512(&[
                    &f(e.provider_id.as_bytes()),
                    e.provider_id.as_bytes(),
                    &f(e.provider_info),
                    e.provider_info,
                    &f(e.ciphertext),
                    e.ciphertext,
                ])
            })
            .collect();
        hashes.sort_unstable();
        let mut h = Sha512::new();
        h.update(self.partition_hash);
        h.update(suite.id().to_be_bytes());
        for x in &hashes {
            h.update(x);
        }
        h.update([0u8; 64]);
        h.update(sha512(&[ec_bytes]));
        h.finalize().into()
    }

    /// Materials for a message of `len` bytes with the sorted, checked context `ec`: from the
    /// cache, or fetched from the underlying CMM and stored; `None` when the cache must be
    /// bypassed.
    fn cached_materials(
        &self,
        cfg: &Config,
        opts: &EncryptOptions,
        ec: &[(&str, &str)],
        len: Option<u64>,
    ) -> Result<Option<Arc<Materials>>, Error> {
        let suite = opts.suite.unwrap_or(cfg.commitment_policy.default_suite());
        cfg.commitment_policy.check_encrypt(suite)?;
        let len = match len {
            Some(n) if suite.kdf() != Kdf::Identity && n <= self.max_bytes => n,
            _ => {
                self.counters.bump(ENC_BYPASS);
                return Ok(None);
            }
        };
        let id = self.encrypt_id(opts.suite, ec)?;
        let (max_messages, max_bytes) = (self.max_messages, self.max_bytes);
        let lookup = self.cache.lookup(&id, |entry| match entry {
            Entry::Encrypt {
                materials,
                messages,
                bytes,
            } if materials.suite == suite
                && *messages < max_messages
                && bytes.saturating_add(len) <= max_bytes =>
            {
                *messages += 1;
                *bytes += len;
                Some(materials.clone())
            }
            _ => None,
        });
        match lookup {
            Lookup::Hit(m) => {
                self.counters.bump(ENC_HIT);
                Ok(Some(m))
            }
            Lookup::Refresh(guard) => {
                self.counters.bump(ENC_MISS);
                let m = Arc::new(self.fetch(cfg, opts, suite, ec)?);
                self.cache.put(
                    &id,
                    Entry::Encrypt {
                        materials: m.clone(),
                        messages: 1,
                        bytes: len,
                    },
                    after(self.max_age),
                );
                drop(guard);
                Ok(Some(m))
            }
        }
    }

    /// Gets fresh materials from the underlying CMM by writing a scratch header: the CMM
    /// sees exactly the request a real message would make.
    fn fetch(
        &self,
        cfg: &Config,
        opts: &EncryptOptions,
        suite: AlgorithmSuite,
        ec: &[(&str, &str)],
    ) -> Result<Materials, Error> {
        type Captured = Option<(DataKey, Vec<(String, String)>)>;
        struct Capture<'a, C: ?Sized> {
            inner: &'a C,
            got: RefCell<Captured>,
        }
        impl<C: CryptoMaterialsManager + ?Sized> CryptoMaterialsManager for Capture<'_, C> {
            fn required_encryption_context_keys(&self) -> &[&str] {
                self.inner.required_encryption_context_keys()
            }
            fn get_encryption_materials(
                &self,
                m: &mut EncryptionMaterials<'_>,
            ) -> Result<(), Error> {
                self.inner.get_encryption_materials(m)?;
                let ec = m
                    .encryption_context()
                    .iter_sorted()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect();
                *self.got.borrow_mut() = m.data_key().cloned().map(|k| (k, ec));
                Ok(())
            }
            fn decrypt_materials(
                &self,
                m: &mut DecryptionMaterials<'_>,
                edks: Edks<'_>,
            ) -> Result<(), Error> {
                self.inner.decrypt_materials(m, edks)
            }
        }

        let recorder = HandoffGuard::record();
        let capture = Capture {
            inner: &self.inner,
            got: RefCell::new(None),
        };
        let opts = opts.with_suite(suite);
        let mut ec: Vec<(&str, &str)> = ec.to_vec();
        let mut buf = vec![0u8; 4096];
        let n = loop {
            let mut enc = Encryptor::new(cfg, &PREFETCH_PROVIDER, &opts)?;
            match enc.write_header(&capture, &mut ec, &mut buf) {
                Ok(n) => break n,
                Err(Error::BufferTooSmall { required }) => {
                    buf.resize(required.max(buf.len() * 2), 0);
                }
                Err(e) => return Err(e),
            }
        };
        let signing = recorder.take_recorded();
        drop(recorder);
        let (data_key, full_ec) = capture
            .got
            .into_inner()
            .ok_or(KeyringError::NoDataKeyGenerated)?;
        let h = match header::parse(&buf[..n], ParseLimits::default())? {
            Parsed::Complete(h) => h,
            Parsed::Need(_) => return Err(Error::Truncated { offset: n }),
        };
        let edks = h
            .edks
            .iter()
            .map(|(_, e)| OwnedEdk {
                provider_id: e.provider_id.to_owned(),
                provider_info: e.provider_info.to_vec(),
                ciphertext: e.ciphertext.to_vec(),
            })
            .collect();
        if suite.signature().is_some() != signing.is_some() {
            return Err(KeyringError::Other("the signing key was not recorded").into());
        }
        Ok(Materials {
            suite,
            data_key,
            edks,
            signing,
            full_ec,
        })
    }

    /// Encrypts `plaintext` into a new message, with cached materials when allowed.
    ///
    /// # Errors
    /// As [`crate::encrypt`].
    pub fn encrypt(
        &self,
        cfg: &Config,
        opts: &EncryptOptions,
        encryption_context: &[(&str, &str)],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut ec: Vec<(&str, &str)> = encryption_context.to_vec();
        ec::sort_and_check(&mut ec)?;
        match self.cached_materials(cfg, opts, &ec, Some(plaintext.len() as u64))? {
            None => encrypt_vec(cfg, &DEFAULT_PROVIDER, &self.inner, opts, &ec, plaintext),
            Some(m) => {
                let _handoff = HandoffGuard::preset(m.signing.clone());
                let replay = ReplayCmm {
                    materials: &m,
                    required: self.inner.required_encryption_context_keys(),
                };
                encrypt_vec(cfg, &PREFETCH_PROVIDER, &replay, opts, &ec, plaintext)
            }
        }
    }

    /// A streaming encryptor. With `plaintext_len = Some(n)` it uses the cache and refuses to
    /// encrypt more than `n` bytes; with `None` (unknown length) it bypasses the cache.
    ///
    /// # Errors
    /// As [`EncryptingWriter::new`].
    pub fn encrypting_writer<'a, W: Write>(
        &self,
        cfg: &'a Config,
        opts: &EncryptOptions,
        encryption_context: &[(&str, &str)],
        plaintext_len: Option<u64>,
        inner: W,
    ) -> io::Result<BoundedWriter<'a, W>> {
        let mut ec: Vec<(&str, &str)> = encryption_context.to_vec();
        ec::sort_and_check(&mut ec).map_err(io_error)?;
        let writer = match self
            .cached_materials(cfg, opts, &ec, plaintext_len)
            .map_err(io_error)?
        {
            None => EncryptingWriter::new(cfg, &PREFETCH_PROVIDER, &self.inner, opts, &ec, inner)?,
            Some(m) => {
                let _handoff = HandoffGuard::preset(m.signing.clone());
                let replay = ReplayCmm {
                    materials: &m,
                    required: self.inner.required_encryption_context_keys(),
                };
                EncryptingWriter::new(cfg, &PREFETCH_PROVIDER, &replay, opts, &ec, inner)?
            }
        };
        Ok(BoundedWriter {
            inner: writer,
            remaining: plaintext_len,
        })
    }
}

impl<C: CryptoMaterialsManager> CryptoMaterialsManager for CachingCmm<C> {
    fn required_encryption_context_keys(&self) -> &[&str] {
        self.inner.required_encryption_context_keys()
    }

    /// The core's CMM request carries no plaintext length, so this is the "unknown length"
    /// case of the spec: the cache is bypassed.
    fn get_encryption_materials(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        self.counters.bump(ENC_BYPASS);
        self.inner.get_encryption_materials(m)
    }

    fn decrypt_materials(
        &self,
        m: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), Error> {
        let suite = m.suite();
        if suite.kdf() == Kdf::Identity {
            self.counters.bump(DEC_BYPASS);
            return self.inner.decrypt_materials(m, edks);
        }
        if m.data_key().is_some() {
            return Err(KeyringError::DataKeyAlreadyPresent.into());
        }
        let id = self.decrypt_id(suite, &edks, m.serialized_encryption_context());
        match self.cache.lookup(&id, |entry| match entry {
            Entry::Decrypt(k) => Some(DataKey::clone(k)),
            Entry::Encrypt { .. } => None,
        }) {
            Lookup::Hit(k) => {
                self.counters.bump(DEC_HIT);
                m.set_data_key(k)
            }
            Lookup::Refresh(guard) => {
                self.counters.bump(DEC_MISS);
                self.inner.decrypt_materials(m, edks)?;
                if let Some(k) = m.data_key() {
                    self.cache.put(
                        &id,
                        Entry::Decrypt(Box::new(k.clone())),
                        after(self.max_age),
                    );
                }
                drop(guard);
                Ok(())
            }
        }
    }
}

/// An [`EncryptingWriter`] that refuses more plaintext than declared (the "plaintext length
/// bound" of the spec), returned by [`CachingCmm::encrypting_writer`].
pub struct BoundedWriter<'a, W: Write> {
    inner: EncryptingWriter<'a, W, PrefetchProvider>,
    remaining: Option<u64>,
}

impl<W: Write> std::fmt::Debug for BoundedWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedWriter")
            .field("inner", &self.inner)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl<W: Write> BoundedWriter<'_, W> {
    /// Writes the final frame and the footer and returns the inner writer.
    ///
    /// # Errors
    /// As [`EncryptingWriter::finish`].
    pub fn finish(self) -> io::Result<W> {
        self.inner.finish()
    }
}

impl<W: Write> Write for BoundedWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(r) = &mut self.remaining {
            let n = data.len() as u64;
            if n > *r {
                return Err(io_error(PolicyViolation::PlaintextLengthBound.into()));
            }
            *r -= n;
        }
        self.inner.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address of the boxed data key of entry `id`.
    fn key_address(c: &LocalCache, id: &CacheId) -> Option<usize> {
        match &c.lock().entries.get(id)?.entry {
            Entry::Decrypt(k) => Some(std::ptr::from_ref::<DataKey>(k) as usize),
            Entry::Encrypt { .. } => None,
        }
    }

    #[test]
    fn cached_data_keys_stay_put_when_the_map_rehashes() {
        let c = LocalCache::new(10_000);
        let never = after(Duration::MAX);
        assert!(never.is_none(), "Duration::MAX is past the clock");
        c.put(
            &[0; 64],
            Entry::Decrypt(Box::new(DataKey::from_slice(&[5u8; 32]).unwrap())),
            never,
        );
        let before = key_address(&c, &[0; 64]).expect("entry");
        let cap_before = c.lock().entries.capacity();
        let n = 5000u16;
        for i in 1..=n {
            let mut id = [0u8; 64];
            id[..2].copy_from_slice(&i.to_be_bytes());
            c.put(
                &id,
                Entry::Decrypt(Box::new(DataKey::from_slice(&[1u8; 32]).unwrap())),
                never,
            );
        }
        let cap_after = c.lock().entries.capacity();
        assert!(
            cap_after > cap_before,
            "the map rehashed ({cap_before} -> {cap_after})"
        );
        assert_eq!(key_address(&c, &[0; 64]), Some(before), "the key moved");
        assert!(matches!(
            c.lookup(&[0; 64], |e| match e {
                Entry::Decrypt(k) => Some(k.as_bytes() == [5u8; 32]),
                Entry::Encrypt { .. } => None,
            }),
            Lookup::Hit(true)
        ));
        println!("{n} inserts, map capacity {cap_before} -> {cap_after}, key address unchanged");
    }

    #[test]
    fn lru_evicts_least_recently_used() {
        let c = LocalCache::new(2);
        let k = || Box::new(DataKey::from_slice(&[1u8; 32]).unwrap());
        let far = after(Duration::from_secs(60));
        c.put(&[1; 64], Entry::Decrypt(k()), far);
        c.put(&[2; 64], Entry::Decrypt(k()), far);
        // Use 1, so 2 is the least recently used.
        assert!(matches!(c.lookup(&[1; 64], |_| Some(())), Lookup::Hit(())));
        c.put(&[3; 64], Entry::Decrypt(k()), far);
        assert_eq!(c.len(), 2);
        assert!(matches!(c.lookup(&[1; 64], |_| Some(())), Lookup::Hit(())));
        assert!(matches!(
            c.lookup(&[2; 64], |_| Some(())),
            Lookup::Refresh(_)
        ));
    }
}
