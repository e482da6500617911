//! The caching CMM (spec `framework/caching-cmm.md`) over a thread-safe local LRU cache.
//!
//! # How the cache answers the engine's materials step
//! The encryptor asks a CMM twice before it writes a header (see
//! [`Encryptor`](esdk_core::Encryptor)), and the caching CMM looks its entry up both times,
//! under the id of the spec's Appendix A: partition, algorithm suite, and the encryption
//! context as the caller gave it (without `aws-crypto-public-key`).
//! 1. [`encryption_signing_key`](CryptoMaterialsManager::encryption_signing_key), for
//!    signing suites, before the context is final: a usable entry gives its signing key,
//!    because the cached data key is bound to a context holding that key's public half.
//!    On a miss the CMM makes the key (the underlying CMM's, or a fresh one from its
//!    provider) and reserves it in the entry, so that concurrent messages take the same key
//!    and wait for one refresh instead of each asking the underlying CMM.
//! 2. [`get_encryption_materials`](CryptoMaterialsManager::get_encryption_materials), with
//!    the final context: the entry is used only if it is still usable and was made with the
//!    message's signing key; then the data key and the EDKs come from the cache and the
//!    message and its bytes are counted. Otherwise (a miss, an entry evicted or replaced
//!    between the two steps, another key) the underlying CMM fills the materials and they
//!    are stored with the signing key.
//!
//! An entry encrypts at most [`with_max_messages`](CachingCmm::with_max_messages) messages
//! and [`with_max_bytes`](CachingCmm::with_max_bytes) bytes during its maximum age. The byte
//! count needs the plaintext length: [`crate::encrypt`] declares it, a stream declares it
//! with [`EncryptOptions::with_plaintext_len`](esdk_core::EncryptOptions::with_plaintext_len)
//! (the encryptor then refuses more plaintext). A message of unknown length bypasses the
//! cache (counted in [`CacheStats::encrypt_bypassed`]), as do suites with the identity KDF
//! (0x0014, 0x0046, 0x0078), which are never cached. Decryption is cached per EDK set and
//! context. Only one caller refreshes a missing or expired entry; the others wait for it (up
//! to [`LocalCache::with_refresh_wait`]). Any [`CryptoProvider`] works: the CMM uses its own
//! only for the partition id and the signing keys of new entries.
//!
//! Two differences from the spec, both because the engine resolves the request first: the
//! entry id always includes the algorithm suite (the request always has one), and the
//! underlying CMM sees the message's declared length, not the byte limit, as the maximum
//! plaintext length (the materials carry no other).
//!
//! ```
//! use std::time::Duration;
//! use esdk::caching::{CachingCmm, LocalCache};
//! use esdk::{Config, EncryptOptions, EncryptingWriter, raw::RawAesKeyring};
//! let keyring = RawAesKeyring::new("ns", "key", &[7u8; 32])?;
//! let cmm = CachingCmm::new(keyring, LocalCache::new(100), Duration::from_secs(300))?
//!     .with_max_messages(1000);
//! let cfg = Config::new();
//! for _ in 0..3 {
//!     let msg = esdk::encrypt(&cfg, &cmm, &EncryptOptions::new(), &[("tenant", "a")], b"record")?;
//!     assert_eq!(esdk::decrypt(&cfg, &cmm, &[], &msg)?.plaintext, b"record");
//! }
//! // A stream uses the cache when it declares its length.
//! let opts = EncryptOptions::new().with_plaintext_len(6);
//! let mut w = EncryptingWriter::new(&cfg, &esdk::DEFAULT_PROVIDER, &cmm, &opts, &[("tenant", "a")], Vec::new())?;
//! std::io::Write::write_all(&mut w, b"stream")?;
//! assert_eq!(esdk::decrypt(&cfg, &cmm, &[], &w.finish()?)?.plaintext, b"stream");
//! assert_eq!((cmm.stats().encrypt_misses, cmm.stats().encrypt_hits), (1, 3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use esdk_core::encryption_context::{self, PUBLIC_KEY_CONTEXT_KEY, RawPair};
use esdk_core::error::KeyringError;
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::CryptoProvider;
use esdk_core::suite::Kdf;
use esdk_core::{AlgorithmSuite, CryptoMaterialsManager, EncryptionRequest, Error};
use sha2::{Digest, Sha512};

use crate::{DEFAULT_PROVIDER, DefaultProvider};

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

// ---------------------------------------------------------------------------------------
// The local cache.

type CacheId = [u8; 64];

/// What the keyrings produced for one encryption context: shared by the messages that use
/// the entry (the data key is zeroized when the last of them drops it).
struct CachedMaterials {
    data_key: DataKey,
    edks: Vec<OwnedEdk>,
}

struct EncryptEntry {
    suite: AlgorithmSuite,
    /// The signing key whose public half is in the context the data key is bound to
    /// (signing suites).
    signing_key: Option<esdk_core::SigningKey>,
    /// `None` while the entry only reserves its signing key (a miss of step 1): the first
    /// message with that key fills it.
    materials: Option<Arc<CachedMaterials>>,
    messages: u64,
    bytes: u64,
}

/// Boxed, so that a rehash of the map moves a pointer, never a key: the one copy is
/// zeroized when the entry is dropped ([`DataKey`] and the signing key zeroize on drop).
enum Entry {
    Encrypt(Box<EncryptEntry>),
    Decrypt(Box<DataKey>),
    /// Materials a keyring keeps in the cache itself (the hierarchical keyring's branch
    /// keys, which zeroize when the last `Arc` is dropped).
    #[cfg_attr(not(feature = "kms"), allow(dead_code))]
    Keyring(Arc<dyn Any + Send + Sync>),
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
    /// the one refresher of `id`, waiting while another caller refreshes it. An entry that is
    /// not usable stays until the refresher replaces it (it may hold a reserved signing key
    /// that concurrent messages are about to use).
    fn lookup<T>(
        &self,
        id: &CacheId,
        mut usable: impl FnMut(&mut Entry) -> Option<T>,
    ) -> Lookup<'_, T> {
        let deadline = after(self.refresh_wait);
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            let found = st
                .entries
                .get_mut(id)
                .filter(|slot| fresh(slot.expires, now))
                .and_then(|slot| usable(&mut slot.entry));
            if let Some(v) = found {
                st.touch(id);
                return Lookup::Hit(v);
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

    /// A keyring's own entry under `id` while it is fresh (no waiting for a refresh: the
    /// keyring's async callers must not block).
    #[cfg_attr(not(feature = "kms"), allow(dead_code))]
    pub(crate) fn keyring_entry(&self, id: &CacheId) -> Option<Arc<dyn Any + Send + Sync>> {
        let mut st = self.lock();
        let now = Instant::now();
        let found = st
            .entries
            .get(id)
            .filter(|slot| fresh(slot.expires, now))
            .and_then(|slot| match &slot.entry {
                Entry::Keyring(v) => Some(Arc::clone(v)),
                Entry::Encrypt(_) | Entry::Decrypt(_) => None,
            });
        if found.is_some() {
            st.touch(id);
        }
        found
    }

    /// Stores a keyring's own entry under `id` until `expires` (`None`: no age limit).
    #[cfg_attr(not(feature = "kms"), allow(dead_code))]
    pub(crate) fn put_keyring_entry(
        &self,
        id: &CacheId,
        value: Arc<dyn Any + Send + Sync>,
        expires: Option<Instant>,
    ) {
        self.put(id, Entry::Keyring(value), expires);
    }

    fn put(&self, id: &CacheId, entry: Entry, expires: Option<Instant>) {
        self.insert(&mut self.lock(), id, entry, expires);
    }

    /// [`put`](Self::put) under a lock the caller holds.
    fn insert(&self, st: &mut State, id: &CacheId, entry: Entry, expires: Option<Instant>) {
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
/// Thread-safe when the underlying CMM is (`Sync`). `P` is the provider the CMM makes its
/// partition id and the signing keys of new entries with (any provider; [`CachingCmm::new`]
/// takes the default one). See the [module docs](self) for which calls use the cache.
pub struct CachingCmm<C, P = DefaultProvider> {
    inner: C,
    provider: P,
    cache: Arc<LocalCache>,
    partition_id: String,
    partition_hash: [u8; 64],
    max_age: Duration,
    max_messages: u64,
    max_bytes: u64,
    counters: Counters,
}

impl<C, P> std::fmt::Debug for CachingCmm<C, P> {
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

impl<C, P> CachingCmm<C, P> {
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

    /// The length a message of `suite` with the declared length `len` counts against an
    /// entry, or `None` when it bypasses the cache (spec: unknown length, identity KDF;
    /// and longer than the byte limit, which no entry could take).
    fn cached_len(&self, suite: AlgorithmSuite, len: Option<u64>) -> Option<u64> {
        len.filter(|n| suite.kdf() != Kdf::Identity && *n <= self.max_bytes)
    }

    /// Whether `e` can encrypt one more message of `len` bytes with `suite`.
    fn fits(&self, e: &EncryptEntry, suite: AlgorithmSuite, len: u64) -> bool {
        e.suite == suite
            && e.messages < self.max_messages
            && e.bytes.saturating_add(len) <= self.max_bytes
    }

    /// Cache entry id for encryption (spec Appendix A, with the algorithm suite, which the
    /// engine has always resolved): partition, suite, and the caller's encryption context
    /// (`context`, sorted, without the signing public key).
    fn encrypt_id<'a, I>(&self, suite: AlgorithmSuite, context: I) -> CacheId
    where
        I: Iterator<Item = RawPair<'a>> + Clone,
    {
        let mut ec_hash = Sha512::new();
        encryption_context::feed(context, &mut |b| ec_hash.update(b));
        let ec_hash: [u8; 64] = ec_hash.finalize().into();
        sha512(&[
            &self.partition_hash,
            &[1],
            &suite.id().to_be_bytes(),
            &ec_hash,
        ])
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

    /// The signing key of the fresh entry `id` if it can take one more message of `len`
    /// bytes with `suite` (whether its materials are filled yet or not).
    fn usable_signing_key(
        &self,
        st: &mut State,
        id: &CacheId,
        suite: AlgorithmSuite,
        len: u64,
    ) -> Option<esdk_core::SigningKey> {
        let now = Instant::now();
        let key = match st.entries.get(id) {
            Some(Slot {
                entry: Entry::Encrypt(e),
                expires,
                ..
            }) if fresh(*expires, now) && self.fits(e, suite, len) => e.signing_key.clone(),
            _ => None,
        };
        if key.is_some() {
            st.touch(id);
        }
        key
    }
}

impl<C: CryptoMaterialsManager> CachingCmm<C> {
    /// Caches the materials of `inner` (a keyring or a CMM) in `cache` for at most `max_age`,
    /// with the default provider ([`crate::DEFAULT_PROVIDER`]); see
    /// [`with_provider`](Self::with_provider).
    ///
    /// # Errors
    /// As [`with_provider`](Self::with_provider).
    pub fn new(inner: C, cache: Arc<LocalCache>, max_age: Duration) -> Result<Self, Error> {
        Self::with_provider(inner, cache, max_age, DEFAULT_PROVIDER)
    }
}

impl<C: CryptoMaterialsManager, P: CryptoProvider> CachingCmm<C, P> {
    /// Caches the materials of `inner` (a keyring or a CMM) in `cache` for at most `max_age`,
    /// with the default limits (2^32 messages and 2^63 - 1 bytes per data key) and a partition
    /// id unique to this CMM, drawn from `provider`, which also makes the signing keys of new
    /// entries. A `max_age` too long for the clock to represent (`Duration::MAX`, `u64::MAX`
    /// seconds) means entries never expire by age (the other limits and the capacity still
    /// apply).
    ///
    /// # Errors
    /// [`KeyringError::InvalidConfiguration`] when `max_age` is zero; `CryptoError::Rng`.
    pub fn with_provider(
        inner: C,
        cache: Arc<LocalCache>,
        max_age: Duration,
        provider: P,
    ) -> Result<Self, Error> {
        if max_age.is_zero() {
            return Err(KeyringError::InvalidConfiguration.into());
        }
        let mut rnd = [0u8; 16];
        provider.fill_random(&mut rnd)?;
        let partition_id: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            inner,
            provider,
            cache,
            partition_hash: sha512(&[partition_id.as_bytes()]),
            partition_id,
            max_age,
            max_messages: 1 << 32,
            max_bytes: i64::MAX as u64,
            counters: Counters::default(),
        })
    }
}

impl<C: CryptoMaterialsManager, P: CryptoProvider> CryptoMaterialsManager for CachingCmm<C, P> {
    fn required_encryption_context_keys(&self) -> &[&str] {
        self.inner.required_encryption_context_keys()
    }

    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        // Cached EDKs are the underlying CMM's.
        self.inner.encrypted_data_keys_len(suite)
    }

    /// Step 1 (signing suites): the signing key of a usable entry; on a miss a new key (the
    /// underlying CMM's, or a fresh one from the provider), reserved in the entry so that
    /// concurrent messages share it and wait for one refresh in step 2. Messages that
    /// bypass the cache get the underlying CMM's answer.
    fn encryption_signing_key(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Result<Option<esdk_core::SigningKey>, Error> {
        let suite = request.suite();
        let (Some(alg), Some(len)) = (
            suite.signature(),
            self.cached_len(suite, request.plaintext_length()),
        ) else {
            return self.inner.encryption_signing_key(request);
        };
        let id = self.encrypt_id(
            suite,
            encryption_context::raw_pairs(request.encryption_context()),
        );
        if let Some(key) = self.usable_signing_key(&mut self.cache.lock(), &id, suite, len) {
            return Ok(Some(key));
        }
        // Made outside the lock; another caller may have reserved a key meanwhile.
        let key = match self.inner.encryption_signing_key(request)? {
            Some(k) => k,
            None => esdk_core::SigningKey::generate(&self.provider, alg)?,
        };
        let mut st = self.cache.lock();
        if let Some(theirs) = self.usable_signing_key(&mut st, &id, suite, len) {
            return Ok(Some(theirs));
        }
        let reserved = EncryptEntry {
            suite,
            signing_key: Some(key.clone()),
            materials: None,
            messages: 0,
            bytes: 0,
        };
        let expires = after(self.max_age);
        self.cache
            .insert(&mut st, &id, Entry::Encrypt(Box::new(reserved)), expires);
        Ok(Some(key))
    }

    /// Step 2: the cached data key and EDKs when the entry is usable and was made with the
    /// message's signing key; otherwise the underlying CMM's materials, stored.
    fn get_encryption_materials(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let suite = m.suite();
        let Some(len) = self.cached_len(suite, m.plaintext_length()) else {
            self.counters.bump(ENC_BYPASS);
            return self.inner.get_encryption_materials(m);
        };
        let caller_context = m
            .encryption_context()
            .iter_sorted()
            .filter(|(k, _)| *k != PUBLIC_KEY_CONTEXT_KEY.as_bytes());
        let id = self.encrypt_id(suite, caller_context);
        let lookup = {
            let key = m.signing_key();
            self.cache.lookup(&id, |entry| match entry {
                Entry::Encrypt(e) if self.fits(e, suite, len) && e.signing_key.as_ref() == key => {
                    let materials = e.materials.clone()?;
                    e.messages += 1;
                    e.bytes += len;
                    Some(materials)
                }
                _ => None,
            })
        };
        match lookup {
            Lookup::Hit(cached) => {
                self.counters.bump(ENC_HIT);
                m.set_data_key(cached.data_key.clone())?;
                for e in &cached.edks {
                    m.push_edk(&e.provider_id, &[&e.provider_info], &[&e.ciphertext])?;
                }
                Ok(())
            }
            Lookup::Refresh(guard) => {
                self.counters.bump(ENC_MISS);
                self.inner.get_encryption_materials(m)?;
                let data_key = m
                    .data_key()
                    .ok_or(KeyringError::NoDataKeyGenerated)?
                    .clone();
                let edks = m
                    .encrypted_data_keys()
                    .iter()
                    .map(|(_, e)| OwnedEdk {
                        provider_id: e.provider_id.to_owned(),
                        provider_info: e.provider_info.to_vec(),
                        ciphertext: e.ciphertext.to_vec(),
                    })
                    .collect();
                let entry = EncryptEntry {
                    suite,
                    signing_key: m.signing_key().cloned(),
                    materials: Some(Arc::new(CachedMaterials { data_key, edks })),
                    messages: 1,
                    bytes: len,
                };
                self.cache
                    .put(&id, Entry::Encrypt(Box::new(entry)), after(self.max_age));
                drop(guard);
                Ok(())
            }
        }
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
            Entry::Encrypt(_) | Entry::Keyring(_) => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The address of the boxed data key of entry `id`.
    fn key_address(c: &LocalCache, id: &CacheId) -> Option<usize> {
        match &c.lock().entries.get(id)?.entry {
            Entry::Decrypt(k) => Some(std::ptr::from_ref::<DataKey>(k) as usize),
            Entry::Encrypt(_) | Entry::Keyring(_) => None,
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
                Entry::Encrypt(_) | Entry::Keyring(_) => None,
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
