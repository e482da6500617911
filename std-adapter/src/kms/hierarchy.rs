//! The AWS KMS hierarchical keyring (spec `framework/aws-kms/aws-kms-hierarchical-keyring.md`
//! of the aws-encryption-sdk-specification, as the Material Providers Library implements it
//! in `AwsKmsHierarchicalKeyring.dfy`).
//!
//! See [`AwsKmsHierarchicalKeyring`].

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use esdk_core::AlgorithmSuite;
use esdk_core::error::CryptoError;
use esdk_core::materials::DataKey;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::branch_key_store::{
    BranchKeyMaterials, BranchKeyStore, BranchKeyStoreError, version_string,
};
use super::error::{Attempt, Failure};
use super::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest, OwnedEdk};
use crate::Error;
use crate::caching::LocalCache;
pub use crate::hierarchy::HIERARCHY_PROVIDER_ID;
use crate::hierarchy::{IV_LEN, SALT_LEN, ciphertext_len, edk_version, unwrap, wrap};

/// The entry capacity of a keyring's own cache when none is given (the MPL's default).
pub const DEFAULT_CACHE_CAPACITY: usize = 1000;

const NAME: &str = "AWS KMS hierarchical keyring";

/// Chooses the branch key of a message from its encryption context: one keyring serves
/// many tenants, each with its own branch key (spec "Branch Key Supplier").
///
/// Any `Fn(&[(&str, &str)]) -> Result<String, String>` is a supplier.
pub trait BranchKeyIdSupplier: Send + Sync {
    /// The branch key id for a message with this encryption context (sorted by key; on
    /// encrypt with `aws-crypto-public-key` for signing suites).
    ///
    /// # Errors
    /// Why no branch key fits; reported as [`BranchKeyStoreError::Supplier`].
    fn branch_key_id(&self, encryption_context: &[(&str, &str)]) -> Result<String, String>;
}

impl<F> BranchKeyIdSupplier for F
where
    F: Fn(&[(&str, &str)]) -> Result<String, String> + Send + Sync,
{
    fn branch_key_id(&self, encryption_context: &[(&str, &str)]) -> Result<String, String> {
        self(encryption_context)
    }
}

enum BranchKeyId {
    Fixed(String),
    Supplier(Arc<dyn BranchKeyIdSupplier>),
}

/// What the keyring keeps in the cache: the materials and when they were fetched (the
/// spec's check that an entry of a shared cache is within this keyring's TTL).
struct Cached {
    fetched: Instant,
    materials: Arc<BranchKeyMaterials>,
}

/// The AWS KMS hierarchical keyring: data keys wrapped locally with AES-256-GCM under a key
/// derived from a branch key, which KMS protects in a [`BranchKeyStore`] (spec
/// `framework/aws-kms/aws-kms-hierarchical-keyring.md`).
///
/// Branch keys are cached (per branch key and version, for `ttl`), so most messages cost
/// no KMS or DynamoDB call at all. Encrypt uses the branch key's active version; decrypt
/// the version each EDK names, so messages made before a rotation still decrypt.
///
/// - **Wrapping** ("Branch Key Wrapping"): a random 16-byte salt and 12-byte IV; the
///   wrapping key is the SP 800-108 counter-mode KDF with HMAC-SHA256 of the branch key
///   (label `aws-kms-hierarchy`, context the salt, 32 bytes); AES-256-GCM with AAD =
///   `aws-kms-hierarchy` ‖ branch key id ‖ version (16 bytes) ‖ the serialized encryption
///   context. EDK: provider id `aws-kms-hierarchy`, provider info the branch key id,
///   ciphertext salt ‖ IV ‖ version ‖ wrapped key ‖ tag.
/// - **Decrypt** tries the `aws-kms-hierarchy` EDKs of the configured (or supplied) branch
///   key id; any other encryption context than the one used to encrypt fails the tag
///   ([`Failure::BranchKeyUnwrap`]).
///
/// ```no_run
/// # async fn demo(kms: aws_sdk_kms::Client, ddb: aws_sdk_dynamodb::Client) -> Result<(), esdk::Error> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use esdk::kms::{AwsKmsHierarchicalKeyring, BranchKeyStore};
/// let arn = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// let store = Arc::new(BranchKeyStore::new("KeyStoreTable", "KeyStoreTable", arn, kms, ddb)?);
/// let id = store.create_branch_key(None, &[]).await?;
/// let keyring = AwsKmsHierarchicalKeyring::new(store, &id, Duration::from_secs(600))?;
/// let msg = esdk::kms::asynch::encrypt(
///     &esdk::Config::new(), &keyring, &esdk::EncryptOptions::new(), &[("tenant", "a")], b"hi",
/// ).await?;
/// # let _ = msg; Ok(()) }
/// ```
pub struct AwsKmsHierarchicalKeyring {
    store: Arc<BranchKeyStore>,
    branch_key_id: BranchKeyId,
    ttl: Duration,
    cache: Arc<LocalCache>,
    partition: Vec<u8>,
}

impl std::fmt::Debug for AwsKmsHierarchicalKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsHierarchicalKeyring")
            .field("store", &self.store)
            .field("branch_key_id", &self.fixed_id())
            .field("ttl", &self.ttl)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl AwsKmsHierarchicalKeyring {
    /// A keyring for branch key `branch_key_id` of `store`, caching branch keys for `ttl`
    /// in a cache of its own ([`DEFAULT_CACHE_CAPACITY`] entries).
    ///
    /// # Errors
    /// [`BranchKeyStoreError::EmptyBranchKeyId`] for an empty id.
    pub fn new(
        store: Arc<BranchKeyStore>,
        branch_key_id: &str,
        ttl: Duration,
    ) -> Result<Self, Error> {
        if branch_key_id.is_empty() {
            return Err(BranchKeyStoreError::EmptyBranchKeyId.into());
        }
        Ok(Self::with(
            store,
            BranchKeyId::Fixed(branch_key_id.to_owned()),
            ttl,
        ))
    }

    /// A keyring that asks `supplier` for each message's branch key id (multi-tenant).
    pub fn with_supplier(
        store: Arc<BranchKeyStore>,
        supplier: impl BranchKeyIdSupplier + 'static,
        ttl: Duration,
    ) -> Self {
        Self::with(store, BranchKeyId::Supplier(Arc::new(supplier)), ttl)
    }

    fn with(store: Arc<BranchKeyStore>, branch_key_id: BranchKeyId, ttl: Duration) -> Self {
        let mut partition = vec![0u8; 16];
        // A random partition keeps keyrings that share a cache apart unless told otherwise;
        // on an RNG failure the partition is still unique enough (its address is not used).
        if getrandom::fill(&mut partition).is_err() {
            partition = store.logical_name().as_bytes().to_vec();
        }
        Self {
            store,
            branch_key_id,
            ttl,
            cache: LocalCache::new(DEFAULT_CACHE_CAPACITY),
            partition,
        }
    }

    /// Keeps branch keys in `cache`, which other keyrings may share (the MPL's shared
    /// cache). Keyrings with the same [partition id](Self::with_partition_id) and key store
    /// then share entries, each still honouring its own TTL.
    pub fn with_cache(mut self, cache: Arc<LocalCache>) -> Self {
        self.cache = cache;
        self
    }

    /// A cache of its own with room for `capacity` branch key versions.
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = LocalCache::new(capacity);
        self
    }

    /// Sets the partition id of its cache entries (default: random per keyring).
    pub fn with_partition_id(mut self, partition_id: &str) -> Self {
        self.partition = partition_id.as_bytes().to_vec();
        self
    }

    /// The branch key store.
    pub fn store(&self) -> &BranchKeyStore {
        &self.store
    }

    /// The branch key id, unless a supplier chooses it.
    pub fn fixed_id(&self) -> Option<&str> {
        match &self.branch_key_id {
            BranchKeyId::Fixed(id) => Some(id),
            BranchKeyId::Supplier(_) => None,
        }
    }

    /// The cache TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<LocalCache> {
        &self.cache
    }

    fn resolve(&self, ec: &[(&str, &str)]) -> Result<String, Error> {
        match &self.branch_key_id {
            BranchKeyId::Fixed(id) => Ok(id.clone()),
            BranchKeyId::Supplier(s) => match s.branch_key_id(ec) {
                Ok(id) if !id.is_empty() => Ok(id),
                Ok(_) => Err(BranchKeyStoreError::Supplier {
                    reason: "it returned an empty branch key id".into(),
                }
                .into()),
                Err(reason) => Err(BranchKeyStoreError::Supplier { reason }.into()),
            },
        }
    }

    /// The cache id of a branch key's active version (`None`) or of a version.
    fn cache_id(&self, id: &str, version: Option<&str>) -> [u8; 64] {
        let mut h = Sha512::new();
        // Resource "hierarchical keyring" (2), scope encrypt (1) or decrypt (2), as the
        // spec's cache identifiers; each field NUL-separated.
        h.update([2, 0, if version.is_some() { 2 } else { 1 }, 0]);
        for part in [
            self.partition.as_slice(),
            self.store.logical_name().as_bytes(),
            id.as_bytes(),
        ] {
            h.update(part);
            h.update([0]);
        }
        if let Some(v) = version {
            h.update(v.as_bytes());
        }
        h.finalize().into()
    }

    /// The branch key materials: from the cache while fresh, else from the store (cached).
    async fn materials(
        &self,
        id: &str,
        version: Option<&str>,
    ) -> Result<Arc<BranchKeyMaterials>, Error> {
        let cache_id = self.cache_id(id, version);
        let now = Instant::now();
        if let Some(entry) = self.cache.keyring_entry(&cache_id)
            && let Some(c) = (entry as Arc<dyn Any + Send + Sync>).downcast_ref::<Cached>()
            && now.saturating_duration_since(c.fetched) <= self.ttl
        {
            return Ok(Arc::clone(&c.materials));
        }
        let materials = Arc::new(match version {
            None => self.store.get_active_branch_key(id).await?,
            Some(v) => self.store.get_branch_key_version(id, v).await?,
        });
        let fetched = Instant::now();
        let entry = Cached {
            fetched,
            materials: Arc::clone(&materials),
        };
        self.cache
            .put_keyring_entry(&cache_id, Arc::new(entry), fetched.checked_add(self.ttl));
        Ok(materials)
    }
}

/// A fresh data key of the suite's length from the operating system's CSPRNG.
fn random_data_key(suite: AlgorithmSuite) -> Result<DataKey, Error> {
    let mut key = Zeroizing::new(vec![0u8; suite.key_len()]);
    getrandom::fill(&mut key).map_err(|_| Error::Core(CryptoError::Rng.into()))?;
    Ok(DataKey::from_slice(&key)?)
}

#[async_trait]
impl AsyncKeyring for AwsKmsHierarchicalKeyring {
    async fn on_encrypt(&self, req: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        let id = self.resolve(req.encryption_context)?;
        let materials = self.materials(&id, None).await?;
        let mut generated = None;
        let key: &DataKey = match req.data_key {
            Some(k) => k,
            None => generated.insert(random_data_key(req.suite)?),
        };
        let mut salt_iv = [0u8; SALT_LEN + IV_LEN];
        getrandom::fill(&mut salt_iv).map_err(|_| Error::Core(CryptoError::Rng.into()))?;
        let ciphertext = wrap(
            materials.branch_key(),
            materials.branch_key_id(),
            materials.version_bytes(),
            req.encryption_context,
            key.as_bytes(),
            &salt_iv,
        )?;
        Ok(EncryptOutcome {
            data_key: generated,
            edks: vec![OwnedEdk {
                provider_id: HIERARCHY_PROVIDER_ID.to_owned(),
                provider_info: id.into_bytes(),
                ciphertext,
            }],
        })
    }

    async fn on_decrypt(&self, req: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        let id = self.resolve(req.encryption_context)?;
        let description = self.description();
        let mut attempts = Vec::new();
        let mut record = |i: u16, info: &[u8], failure| {
            attempts.push(Attempt {
                keyring: description.clone(),
                edk: Some(i),
                edk_key: std::str::from_utf8(info).ok().map(str::to_owned),
                failure,
            });
        };
        let expected = ciphertext_len(req.suite);
        for (i, e) in req.edks {
            if e.provider_id != HIERARCHY_PROVIDER_ID {
                record(
                    *i,
                    e.provider_info,
                    Failure::ProviderId(e.provider_id.into()),
                );
                continue;
            }
            if e.provider_info != id.as_bytes() {
                record(
                    *i,
                    e.provider_info,
                    Failure::KeyMismatch {
                        configured: format!("branch key {id}"),
                    },
                );
                continue;
            }
            let Some(v) = edk_version(e.ciphertext, req.suite) else {
                record(
                    *i,
                    e.provider_info,
                    Failure::CiphertextLength {
                        expected,
                        found: e.ciphertext.len(),
                    },
                );
                continue;
            };
            let version = version_string(v);
            let materials = match self.materials(&id, Some(&version)).await {
                Ok(m) => m,
                Err(Error::BranchKeyStore(err)) => {
                    record(*i, e.provider_info, Failure::BranchKeyStore(Arc::from(err)));
                    continue;
                }
                Err(other) => {
                    record(*i, e.provider_info, Failure::Keyring(Arc::new(other)));
                    continue;
                }
            };
            let m = &materials;
            let ec = req.encryption_context;
            let (key, bk_id, bk_v) = (m.branch_key(), m.branch_key_id(), m.version_bytes());
            match unwrap(key, bk_id, bk_v, ec, e.ciphertext, req.suite) {
                Some(dk) => return Ok(dk),
                None => record(
                    *i,
                    e.provider_info,
                    Failure::BranchKeyUnwrap {
                        version: m.version().to_owned(),
                    },
                ),
            }
        }
        Err(Error::NoDataKeyDecrypted { attempts })
    }

    fn description(&self) -> String {
        match &self.branch_key_id {
            BranchKeyId::Fixed(id) => {
                format!("{NAME} (branch key {id}, table {})", self.store.table())
            }
            BranchKeyId::Supplier(_) => {
                format!("{NAME} (supplied branch key, table {})", self.store.table())
            }
        }
    }
}
