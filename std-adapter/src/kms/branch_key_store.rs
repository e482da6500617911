//! The branch key store of the hierarchical keyring: branch keys wrapped by AWS KMS in a
//! DynamoDB table, item for item as the Material Providers Library writes them (spec
//! `framework/branch-key-store.md` and `framework/key-store/dynamodb-key-storage.md` of the
//! aws-encryption-sdk-specification; MPL `AwsCryptographyKeyStore`: `Structure.dfy`,
//! `CreateKeys.dfy`, `GetKeys.dfy`, `DDBKeystoreOperations.dfy`).
//!
//! See [`BranchKeyStore`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use super::arn::{KmsArn, ResourceType};
use super::error::{
    KmsError, KmsErrorKind, KmsOperation, fmt_call_failure, from_sdk, sdk_error_kind,
};
use crate::Error;

/// Item attribute: the branch key id (the table's partition key).
pub const BRANCH_KEY_ID_FIELD: &str = "branch-key-id";
/// Item attribute: the item type (the table's sort key): [`ACTIVE_TYPE`], [`BEACON_TYPE`] or
/// [`VERSION_PREFIX`] + version.
pub const TYPE_FIELD: &str = "type";
/// Item attribute: when the key was made (ISO 8601, UTC).
pub const CREATE_TIME_FIELD: &str = "create-time";
/// Item attribute: the key store's hierarchy version, a DynamoDB number (`1`).
pub const HIERARCHY_VERSION_FIELD: &str = "hierarchy-version";
/// Encryption context key of the logical key store name (never stored in an item).
pub const TABLE_FIELD: &str = "tablename";
/// Item attribute: the ARN of the KMS key that wraps the branch key.
pub const KMS_FIELD: &str = "kms-arn";
/// Item attribute: the KMS-wrapped branch key (binary).
pub const ENC_FIELD: &str = "enc";
/// Item attribute of the ACTIVE item: [`VERSION_PREFIX`] + the active version.
pub const VERSION_FIELD: &str = "version";
/// The type of the ACTIVE item of a branch key.
pub const ACTIVE_TYPE: &str = "branch:ACTIVE";
/// The type of the beacon key item (searchable encryption; created, never read here).
pub const BEACON_TYPE: &str = "beacon:ACTIVE";
/// The type prefix of a branch key version item.
pub const VERSION_PREFIX: &str = "branch:version:";
/// The prefix of custom encryption context attributes in items and in the KMS context.
pub const EC_PREFIX: &str = "aws-crypto-ec:";
/// The only hierarchy version this store reads and writes (`2` uses other KMS calls).
pub const HIERARCHY_VERSION: &str = "1";
pub use crate::hierarchy::BRANCH_KEY_LEN;

/// One branch key version, decrypted by KMS: what the hierarchical keyring wraps data keys
/// with. The key is zeroized on drop and never printed.
pub struct BranchKeyMaterials {
    branch_key_id: String,
    version: String,
    version_bytes: [u8; 16],
    key: Zeroizing<[u8; BRANCH_KEY_LEN]>,
    encryption_context: Vec<(String, String)>,
}

impl fmt::Debug for BranchKeyMaterials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BranchKeyMaterials")
            .field("branch_key_id", &self.branch_key_id)
            .field("version", &self.version)
            .field("encryption_context", &self.encryption_context)
            .finish_non_exhaustive()
    }
}

impl BranchKeyMaterials {
    /// The branch key id.
    pub fn branch_key_id(&self) -> &str {
        &self.branch_key_id
    }

    /// The version (a UUID, lowercase with hyphens).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version as the 16 bytes the hierarchical keyring writes into each EDK.
    pub fn version_bytes(&self) -> &[u8; 16] {
        &self.version_bytes
    }

    /// The 32-byte branch key.
    pub fn branch_key(&self) -> &[u8; BRANCH_KEY_LEN] {
        &self.key
    }

    /// The custom encryption context the key was created with (without the
    /// `aws-crypto-ec:` prefix), sorted by key.
    pub fn encryption_context(&self) -> &[(String, String)] {
        &self.encryption_context
    }
}

/// A failed DynamoDB call, with the table and the service error code.
#[derive(Clone)]
pub struct DynamoDbError {
    /// The operation (`GetItem`, `TransactWriteItems`, `CreateTable`).
    pub operation: &'static str,
    /// The table.
    pub table: String,
    /// What kind of failure.
    pub kind: KmsErrorKind,
    /// The DynamoDB error code (`ResourceNotFoundException`, `AccessDeniedException`,
    /// `TransactionCanceledException`, ...), when DynamoDB answered.
    pub code: Option<String>,
    /// The error message, when there is one.
    pub message: Option<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Debug for DynamoDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbError")
            .field("operation", &self.operation)
            .field("table", &self.table)
            .field("kind", &self.kind)
            .field("code", &self.code)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for DynamoDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DynamoDB {} on table {} failed: ",
            self.operation, self.table
        )?;
        fmt_call_failure(
            f,
            self.kind,
            self.code.as_deref(),
            self.message.as_deref(),
            self.source.as_deref(),
        )
    }
}

impl std::error::Error for DynamoDbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn ddb_error<E>(
    operation: &'static str,
    table: &str,
    err: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> DynamoDbError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    let code = err.code().map(str::to_owned);
    DynamoDbError {
        operation,
        table: table.to_owned(),
        kind: sdk_error_kind(&err, code.as_deref()),
        message: err.message().map(str::to_owned),
        code,
        source: Some(Arc::new(err)),
    }
}

/// Why the branch key store or the hierarchical keyring failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BranchKeyStoreError {
    /// The table has no such branch key (no ACTIVE item for it), or no such version.
    NotFound {
        /// The table.
        table: String,
        /// The branch key id.
        branch_key_id: String,
        /// The version asked for (`None`: the active version).
        version: Option<String>,
    },
    /// An item of the table is not a branch key item as the key store writes them.
    InvalidItem {
        /// The table.
        table: String,
        /// The branch key id.
        branch_key_id: String,
        /// The item type.
        item_type: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The item is wrapped by another KMS key than the store's.
    KmsKeyMismatch {
        /// The branch key id.
        branch_key_id: String,
        /// The item's `kms-arn`.
        item_kms_arn: String,
        /// The store's KMS key ARN.
        configured: String,
    },
    /// The item has a hierarchy version this store does not read.
    UnsupportedHierarchyVersion {
        /// The branch key id.
        branch_key_id: String,
        /// The item's `hierarchy-version`.
        hierarchy_version: String,
    },
    /// A KMS call of the store failed (the key, the region, the KMS error code).
    Kms {
        /// The branch key id.
        branch_key_id: String,
        /// The call.
        error: Box<KmsError>,
    },
    /// KMS answered, but not as expected (another key, no ciphertext, a key of the wrong
    /// length).
    KmsResponse {
        /// The operation.
        operation: KmsOperation,
        /// The branch key id.
        branch_key_id: String,
        /// What was wrong.
        reason: String,
    },
    /// A DynamoDB call failed.
    DynamoDb(Box<DynamoDbError>),
    /// Creating a branch key whose id is already in the table.
    AlreadyExists {
        /// The table.
        table: String,
        /// The branch key id.
        branch_key_id: String,
    },
    /// Another writer changed the branch key while it was being versioned; try again.
    VersionConflict {
        /// The table.
        table: String,
        /// The branch key id.
        branch_key_id: String,
    },
    /// A branch key created with a chosen id needs a custom encryption context (spec
    /// "CreateKey"), so that keys created by mistake under a guessed id are distinguishable.
    CustomContextRequired,
    /// A branch key id is empty.
    EmptyBranchKeyId,
    /// A custom encryption context key is empty or repeated.
    InvalidContextKey {
        /// The key.
        key: String,
    },
    /// The store's KMS key is not a key ARN (the key store records and checks the ARN).
    KmsKeyNotArn {
        /// The identifier given.
        key_id: String,
    },
    /// The branch key id supplier failed or returned an empty id.
    Supplier {
        /// Its error.
        reason: String,
    },
    /// The operating system's random number generator failed.
    Random,
}

impl BranchKeyStoreError {
    /// Whether the store or keyring is misconfigured (rather than a call failing).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::CustomContextRequired
                | Self::EmptyBranchKeyId
                | Self::InvalidContextKey { .. }
                | Self::KmsKeyNotArn { .. }
        )
    }

    /// The KMS error code, when a KMS call failed.
    pub fn kms_code(&self) -> Option<&str> {
        match self {
            Self::Kms { error, .. } => error.code.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for BranchKeyStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound {
                table,
                branch_key_id,
                version: None,
            } => write!(
                f,
                "branch key {branch_key_id:?} not found in key store table {table} (no active \
                 version): create it, or check the id and the table"
            ),
            Self::NotFound {
                table,
                branch_key_id,
                version: Some(v),
            } => write!(
                f,
                "version {v} of branch key {branch_key_id:?} not found in key store table {table}"
            ),
            Self::InvalidItem {
                table,
                branch_key_id,
                item_type,
                reason,
            } => write!(
                f,
                "item {item_type:?} of branch key {branch_key_id:?} in table {table} is not a \
                 valid branch key item: {reason}"
            ),
            Self::KmsKeyMismatch {
                branch_key_id,
                item_kms_arn,
                configured,
            } => write!(
                f,
                "branch key {branch_key_id:?} is wrapped by KMS key {item_kms_arn}, not by the \
                 key store's {configured}"
            ),
            Self::UnsupportedHierarchyVersion {
                branch_key_id,
                hierarchy_version,
            } => write!(
                f,
                "branch key {branch_key_id:?} has hierarchy-version {hierarchy_version}; this key \
                 store reads version {HIERARCHY_VERSION} only"
            ),
            Self::Kms {
                branch_key_id,
                error,
            } => write!(f, "branch key {branch_key_id:?}: {error}"),
            Self::KmsResponse {
                operation,
                branch_key_id,
                reason,
            } => write!(f, "branch key {branch_key_id:?}: KMS {operation}: {reason}"),
            Self::DynamoDb(e) => e.fmt(f),
            Self::AlreadyExists {
                table,
                branch_key_id,
            } => write!(
                f,
                "branch key {branch_key_id:?} already exists in table {table}: version it \
                 instead, or choose another id"
            ),
            Self::VersionConflict {
                table,
                branch_key_id,
            } => write!(
                f,
                "branch key {branch_key_id:?} in table {table} changed while it was being \
                 versioned: try again"
            ),
            Self::CustomContextRequired => f.write_str(
                "a branch key created with a chosen id needs a custom encryption context",
            ),
            Self::EmptyBranchKeyId => f.write_str("a branch key id must not be empty"),
            Self::InvalidContextKey { key } => write!(
                f,
                "custom encryption context key {key:?} is empty or repeated"
            ),
            Self::KmsKeyNotArn { key_id } => write!(
                f,
                "the key store needs the KMS key's ARN (arn:<partition>:kms:<region>:<account>:key/<id>), \
                 not {key_id:?}"
            ),
            Self::Supplier { reason } => write!(f, "the branch key id supplier failed: {reason}"),
            Self::Random => f.write_str("the operating system's random number generator failed"),
        }
    }
}

impl std::error::Error for BranchKeyStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Kms { error, .. } => Some(error.as_ref()),
            Self::DynamoDb(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<BranchKeyStoreError> for Error {
    fn from(e: BranchKeyStoreError) -> Self {
        Error::BranchKeyStore(Box::new(e))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A DynamoDB client of `region` for a [`BranchKeyStore`], configured from the environment
/// as [`DefaultClientSupplier::from_env`](super::DefaultClientSupplier::from_env) configures
/// KMS clients: the endpoint `endpoint_url`, else `AWS_ENDPOINT_URL_DYNAMODB`, else
/// `AWS_ENDPOINT_URL`, else the regional AWS endpoint; credentials from `AWS_ACCESS_KEY_ID`
/// / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`; the same HTTPS client
/// ([`https_client`](super::https_client)). For the full AWS credential chain, build the
/// client with `aws-config` instead.
pub fn dynamodb_client_from_env(
    region: &str,
    endpoint_url: Option<&str>,
) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let mut b = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .http_client(super::https_client());
    let endpoint = endpoint_url
        .map(str::to_owned)
        .or_else(|| env("AWS_ENDPOINT_URL_DYNAMODB"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    if let Some(url) = endpoint {
        b = b.endpoint_url(url);
    }
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        let token = env("AWS_SESSION_TOKEN");
        b = b.credentials_provider(Credentials::new(id, secret, token, None, "environment"));
    }
    aws_sdk_dynamodb::Client::from_conf(b.build())
}

/// A random UUID (version 4) from the operating system's CSPRNG.
pub(crate) fn random_uuid() -> Result<uuid::Uuid, BranchKeyStoreError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|_| BranchKeyStoreError::Random)?;
    Ok(uuid::Builder::from_random_bytes(b).into_uuid())
}

/// The 16 bytes of a version string: a UUID in its 36-character hyphenated form.
pub(crate) fn version_bytes(version: &str) -> Option<[u8; 16]> {
    if version.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse(version)
        .ok()
        .map(uuid::Uuid::into_bytes)
}

/// The version string of 16 EDK bytes (lowercase, hyphenated, as the MPL formats it).
pub(crate) fn version_string(bytes: [u8; 16]) -> String {
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// An encrypted branch key item read from the table.
struct EncryptedKey {
    /// The KMS encryption context: every attribute but `enc`, with `tablename`.
    context: HashMap<String, String>,
    ciphertext: Vec<u8>,
    version: String,
}

/// The hierarchical keyring's branch key store: a DynamoDB table of branch keys, each
/// wrapped by one AWS KMS key (spec `framework/branch-key-store.md`).
///
/// Its items are those the Material Providers Library writes: per branch key an ACTIVE item
/// (`type` `branch:ACTIVE`, `version` `branch:version:<uuid>`), one item per version
/// (`type` `branch:version:<uuid>`), and a beacon key item (`beacon:ACTIVE`); each with
/// `branch-key-id`, `create-time`, `hierarchy-version` (number 1), `kms-arn`, `enc` (the
/// branch key wrapped by KMS) and the custom encryption context as `aws-crypto-ec:<key>`
/// attributes. KMS binds each wrapped key to its item: the encryption context is the item's
/// attributes (without `enc`) plus `tablename` = the logical key store name, so a key store
/// must be opened with the logical name it was created with. A store made by the MPL works
/// here, and the other way round.
///
/// - **Get**: DynamoDB `GetItem`, then KMS `Decrypt` with the item's context.
/// - **Create**: KMS `GenerateDataKeyWithoutPlaintext` (the version), `ReEncrypt` (the same
///   key under the ACTIVE context), `GenerateDataKeyWithoutPlaintext` (the beacon key), then
///   one `TransactWriteItems` that fails if the id exists.
/// - **Version** (rotate): the ACTIVE item authenticated with KMS `ReEncrypt`, a new version
///   as above, and one `TransactWriteItems` writing it and the new ACTIVE item. Older
///   versions stay, so older messages still decrypt.
///
/// The calls are async; a blocking caller runs them on a
/// [`KmsRuntime`](super::KmsRuntime) (`rt.block_on(store.create_branch_key(None, &[]))`).
pub struct BranchKeyStore {
    table: String,
    logical_name: String,
    kms_key_arn: String,
    kms: aws_sdk_kms::Client,
    kms_region: Option<String>,
    ddb: aws_sdk_dynamodb::Client,
    grant_tokens: Vec<String>,
}

impl fmt::Debug for BranchKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BranchKeyStore")
            .field("table", &self.table)
            .field("logical_name", &self.logical_name)
            .field("kms_key_arn", &self.kms_key_arn)
            .finish_non_exhaustive()
    }
}

/// What a write of new items checks.
#[derive(Clone, Copy)]
enum Condition {
    /// The item must not exist yet.
    New,
    /// The item must exist (the ACTIVE item being replaced).
    Exists,
}

impl BranchKeyStore {
    /// A store on DynamoDB table `table` (logical name `logical_name`: the name bound into
    /// every key's KMS encryption context; the MPL's `logicalKeyStoreName`), whose branch
    /// keys are wrapped by the KMS key `kms_key_arn` through `kms` (a client of the key's
    /// region).
    ///
    /// # Errors
    /// [`BranchKeyStoreError::KmsKeyNotArn`] when `kms_key_arn` is not a key ARN (an alias,
    /// a bare key id); [`Error::RegionMismatch`] when `kms` is a client of another region.
    pub fn new(
        table: &str,
        logical_name: &str,
        kms_key_arn: &str,
        kms: aws_sdk_kms::Client,
        ddb: aws_sdk_dynamodb::Client,
    ) -> Result<Self, Error> {
        let arn = KmsArn::parse(kms_key_arn).map_err(|_| BranchKeyStoreError::KmsKeyNotArn {
            key_id: kms_key_arn.to_owned(),
        })?;
        if arn.resource_type() != ResourceType::Key {
            return Err(BranchKeyStoreError::KmsKeyNotArn {
                key_id: kms_key_arn.to_owned(),
            }
            .into());
        }
        let kms_region = super::client::client_region(&kms);
        if let Some(cr) = &kms_region
            && cr != arn.region()
        {
            return Err(Error::RegionMismatch {
                key_id: kms_key_arn.to_owned(),
                client_region: cr.clone(),
            });
        }
        Ok(Self {
            table: table.to_owned(),
            logical_name: logical_name.to_owned(),
            kms_key_arn: kms_key_arn.to_owned(),
            kms,
            kms_region,
            ddb,
            grant_tokens: Vec::new(),
        })
    }

    /// Sends these grant tokens with every KMS call.
    pub fn with_grant_tokens(mut self, tokens: &[String]) -> Self {
        self.grant_tokens = tokens.to_vec();
        self
    }

    /// The DynamoDB table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The logical key store name.
    pub fn logical_name(&self) -> &str {
        &self.logical_name
    }

    /// The KMS key ARN.
    pub fn kms_key_arn(&self) -> &str {
        &self.kms_key_arn
    }

    fn tokens(&self) -> Option<Vec<String>> {
        (!self.grant_tokens.is_empty()).then(|| self.grant_tokens.clone())
    }

    fn kms_error(&self, id: &str, e: KmsError) -> BranchKeyStoreError {
        BranchKeyStoreError::Kms {
            branch_key_id: id.to_owned(),
            error: Box::new(e),
        }
    }

    /// Creates the table (partition key `branch-key-id`, sort key `type`, both strings;
    /// on-demand capacity), as the MPL's `CreateKeyStore` does. The table may take a moment
    /// to become active on AWS.
    ///
    /// # Errors
    /// [`BranchKeyStoreError::DynamoDb`] (code `ResourceInUseException` when it exists).
    pub async fn create_table(&self) -> Result<(), Error> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
        };
        let built = (|| {
            Ok::<_, aws_sdk_dynamodb::error::BuildError>((
                attr(BRANCH_KEY_ID_FIELD)?,
                attr(TYPE_FIELD)?,
                key(BRANCH_KEY_ID_FIELD, KeyType::Hash)?,
                key(TYPE_FIELD, KeyType::Range)?,
            ))
        })();
        let (a1, a2, k1, k2) = built.map_err(|e| self.build_error("CreateTable", e))?;
        self.ddb
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(a1)
            .attribute_definitions(a2)
            .key_schema(k1)
            .key_schema(k2)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| {
                BranchKeyStoreError::DynamoDb(Box::new(ddb_error("CreateTable", &self.table, e)))
            })?;
        Ok(())
    }

    fn build_error(
        &self,
        operation: &'static str,
        e: aws_sdk_dynamodb::error::BuildError,
    ) -> BranchKeyStoreError {
        BranchKeyStoreError::DynamoDb(Box::new(DynamoDbError {
            operation,
            table: self.table.clone(),
            kind: KmsErrorKind::Request,
            code: None,
            message: Some(e.to_string()),
            source: None,
        }))
    }

    /// The active version of branch key `branch_key_id`, decrypted (spec
    /// `GetActiveBranchKey`).
    ///
    /// # Errors
    /// [`BranchKeyStoreError::NotFound`] for an unknown id; `InvalidItem`,
    /// `KmsKeyMismatch`, `UnsupportedHierarchyVersion` for an item this store does not
    /// accept; `Kms` / `DynamoDb` for failed calls.
    pub async fn get_active_branch_key(
        &self,
        branch_key_id: &str,
    ) -> Result<BranchKeyMaterials, Error> {
        let item = self.get_item(branch_key_id, ACTIVE_TYPE, None).await?;
        let key = self.parse_item(branch_key_id, ACTIVE_TYPE, item)?;
        Ok(self.decrypt(branch_key_id, key).await?)
    }

    /// Version `version` of branch key `branch_key_id`, decrypted (spec
    /// `GetBranchKeyVersion`).
    ///
    /// # Errors
    /// As [`get_active_branch_key`](Self::get_active_branch_key).
    pub async fn get_branch_key_version(
        &self,
        branch_key_id: &str,
        version: &str,
    ) -> Result<BranchKeyMaterials, Error> {
        let item_type = format!("{VERSION_PREFIX}{version}");
        let item = self
            .get_item(branch_key_id, &item_type, Some(version))
            .await?;
        let key = self.parse_item(branch_key_id, &item_type, item)?;
        Ok(self.decrypt(branch_key_id, key).await?)
    }

    async fn get_item(
        &self,
        id: &str,
        item_type: &str,
        version: Option<&str>,
    ) -> Result<HashMap<String, AttributeValue>, BranchKeyStoreError> {
        if id.is_empty() {
            return Err(BranchKeyStoreError::EmptyBranchKeyId);
        }
        let resp = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(BRANCH_KEY_ID_FIELD, AttributeValue::S(id.to_owned()))
            .key(TYPE_FIELD, AttributeValue::S(item_type.to_owned()))
            .send()
            .await
            .map_err(|e| {
                BranchKeyStoreError::DynamoDb(Box::new(ddb_error("GetItem", &self.table, e)))
            })?;
        match resp.item {
            Some(item) if !item.is_empty() => Ok(item),
            _ => Err(BranchKeyStoreError::NotFound {
                table: self.table.clone(),
                branch_key_id: id.to_owned(),
                version: version.map(str::to_owned),
            }),
        }
    }

    /// Checks an item as the MPL's `BranchKeyItem?` does and builds its KMS context.
    fn parse_item(
        &self,
        id: &str,
        item_type: &str,
        mut item: HashMap<String, AttributeValue>,
    ) -> Result<EncryptedKey, BranchKeyStoreError> {
        let invalid = |reason: String| BranchKeyStoreError::InvalidItem {
            table: self.table.clone(),
            branch_key_id: id.to_owned(),
            item_type: item_type.to_owned(),
            reason,
        };
        let ciphertext = match item.remove(ENC_FIELD) {
            Some(AttributeValue::B(b)) => b.into_inner(),
            Some(_) => return Err(invalid(format!("{ENC_FIELD} is not binary"))),
            None => return Err(invalid(format!("no {ENC_FIELD} attribute"))),
        };
        if item.contains_key(TABLE_FIELD) {
            return Err(invalid(format!("it has a {TABLE_FIELD} attribute")));
        }
        let mut context = HashMap::with_capacity(item.len() + 1);
        for (k, v) in item {
            let text = match (k.as_str(), v) {
                (HIERARCHY_VERSION_FIELD, AttributeValue::N(n)) => n,
                (HIERARCHY_VERSION_FIELD, _) => {
                    return Err(invalid(format!(
                        "{HIERARCHY_VERSION_FIELD} is not a number"
                    )));
                }
                (_, AttributeValue::S(s)) => s,
                (_, _) => return Err(invalid(format!("attribute {k:?} is not a string"))),
            };
            context.insert(k, text);
        }
        let field = |name: &str| context.get(name).map(String::as_str);
        for name in [
            BRANCH_KEY_ID_FIELD,
            TYPE_FIELD,
            CREATE_TIME_FIELD,
            HIERARCHY_VERSION_FIELD,
            KMS_FIELD,
        ] {
            if field(name).is_none() {
                return Err(invalid(format!("no {name} attribute")));
            }
        }
        if field(BRANCH_KEY_ID_FIELD) != Some(id) || field(TYPE_FIELD) != Some(item_type) {
            return Err(invalid(
                "its key attributes are not the ones asked for".into(),
            ));
        }
        match field(HIERARCHY_VERSION_FIELD) {
            Some(HIERARCHY_VERSION) => {}
            Some(other) => {
                return Err(BranchKeyStoreError::UnsupportedHierarchyVersion {
                    branch_key_id: id.to_owned(),
                    hierarchy_version: other.to_owned(),
                });
            }
            None => {}
        }
        let version_text = if item_type == ACTIVE_TYPE {
            field(VERSION_FIELD).ok_or_else(|| invalid(format!("no {VERSION_FIELD} attribute")))?
        } else {
            if field(VERSION_FIELD).is_some() {
                return Err(invalid(format!(
                    "a version item with a {VERSION_FIELD} attribute"
                )));
            }
            item_type
        };
        let version = version_text
            .strip_prefix(VERSION_PREFIX)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid(format!("version {version_text:?} lacks {VERSION_PREFIX:?}")))?
            .to_owned();
        if let Some(arn) = field(KMS_FIELD)
            && arn != self.kms_key_arn
        {
            return Err(BranchKeyStoreError::KmsKeyMismatch {
                branch_key_id: id.to_owned(),
                item_kms_arn: arn.to_owned(),
                configured: self.kms_key_arn.clone(),
            });
        }
        context.insert(TABLE_FIELD.to_owned(), self.logical_name.clone());
        Ok(EncryptedKey {
            context,
            ciphertext,
            version,
        })
    }

    /// KMS `Decrypt` of an item's branch key with its context, then the materials.
    async fn decrypt(
        &self,
        id: &str,
        key: EncryptedKey,
    ) -> Result<BranchKeyMaterials, BranchKeyStoreError> {
        let op = KmsOperation::Decrypt;
        let bad = |reason: String| BranchKeyStoreError::KmsResponse {
            operation: op,
            branch_key_id: id.to_owned(),
            reason,
        };
        let version_bytes =
            version_bytes(&key.version).ok_or_else(|| BranchKeyStoreError::InvalidItem {
                table: self.table.clone(),
                branch_key_id: id.to_owned(),
                item_type: key.context.get(TYPE_FIELD).cloned().unwrap_or_default(),
                reason: format!("version {:?} is not a UUID", key.version),
            })?;
        let mut resp = self
            .kms
            .decrypt()
            .key_id(&self.kms_key_arn)
            .ciphertext_blob(Blob::new(key.ciphertext))
            .set_encryption_context(Some(key.context.clone()))
            .set_grant_tokens(self.tokens())
            .send()
            .await
            .map_err(|e| {
                let e = from_sdk(op, &self.kms_key_arn, self.kms_region.as_deref(), e);
                self.kms_error(id, e)
            })?;
        if resp.key_id.as_deref() != Some(self.kms_key_arn.as_str()) {
            return Err(bad(format!(
                "answered for key {}",
                resp.key_id.as_deref().unwrap_or("<none>")
            )));
        }
        let plaintext = Zeroizing::new(
            resp.plaintext
                .take()
                .ok_or_else(|| bad("no Plaintext".into()))?
                .into_inner(),
        );
        let mut branch_key = Zeroizing::new([0u8; BRANCH_KEY_LEN]);
        if plaintext.len() != BRANCH_KEY_LEN {
            return Err(bad(format!(
                "a {}-byte branch key, not {BRANCH_KEY_LEN}",
                plaintext.len()
            )));
        }
        branch_key.copy_from_slice(&plaintext);
        let mut custom: Vec<(String, String)> = key
            .context
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(EC_PREFIX).map(|k| (k.to_owned(), v.clone())))
            .collect();
        custom.sort();
        Ok(BranchKeyMaterials {
            branch_key_id: id.to_owned(),
            version: key.version,
            version_bytes,
            key: branch_key,
            encryption_context: custom,
        })
    }

    /// KMS `GenerateDataKeyWithoutPlaintext` of a 32-byte key under `context`.
    async fn generate(
        &self,
        id: &str,
        context: &HashMap<String, String>,
    ) -> Result<Vec<u8>, BranchKeyStoreError> {
        let op = KmsOperation::GenerateDataKeyWithoutPlaintext;
        let resp = self
            .kms
            .generate_data_key_without_plaintext()
            .key_id(&self.kms_key_arn)
            .number_of_bytes(32)
            .set_encryption_context(Some(context.clone()))
            .set_grant_tokens(self.tokens())
            .send()
            .await
            .map_err(|e| {
                let e = from_sdk(op, &self.kms_key_arn, self.kms_region.as_deref(), e);
                self.kms_error(id, e)
            })?;
        resp.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| BranchKeyStoreError::KmsResponse {
                operation: op,
                branch_key_id: id.to_owned(),
                reason: "no CiphertextBlob".into(),
            })
    }

    /// KMS `ReEncrypt` of `ciphertext` from `source` to `destination` context, same key.
    async fn re_encrypt(
        &self,
        id: &str,
        ciphertext: &[u8],
        source: &HashMap<String, String>,
        destination: &HashMap<String, String>,
    ) -> Result<Vec<u8>, BranchKeyStoreError> {
        let op = KmsOperation::ReEncrypt;
        let resp = self
            .kms
            .re_encrypt()
            .ciphertext_blob(Blob::new(ciphertext.to_vec()))
            .source_key_id(&self.kms_key_arn)
            .set_source_encryption_context(Some(source.clone()))
            .destination_key_id(&self.kms_key_arn)
            .set_destination_encryption_context(Some(destination.clone()))
            .set_grant_tokens(self.tokens())
            .send()
            .await
            .map_err(|e| {
                let e = from_sdk(op, &self.kms_key_arn, self.kms_region.as_deref(), e);
                self.kms_error(id, e)
            })?;
        resp.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| BranchKeyStoreError::KmsResponse {
                operation: op,
                branch_key_id: id.to_owned(),
                reason: "no CiphertextBlob".into(),
            })
    }

    /// The DynamoDB item of a key: its context without `tablename`, the hierarchy version
    /// as a number, and `enc`.
    fn item(context: &HashMap<String, String>, enc: Vec<u8>) -> HashMap<String, AttributeValue> {
        let mut item: HashMap<String, AttributeValue> = context
            .iter()
            .filter(|(k, _)| k.as_str() != TABLE_FIELD)
            .map(|(k, v)| {
                let value = if k == HIERARCHY_VERSION_FIELD {
                    AttributeValue::N(v.clone())
                } else {
                    AttributeValue::S(v.clone())
                };
                (k.clone(), value)
            })
            .collect();
        item.insert(ENC_FIELD.to_owned(), AttributeValue::B(Blob::new(enc)));
        item
    }

    /// One `TransactWriteItems` of `puts`; a cancelled transaction is `on_conflict`.
    async fn write(
        &self,
        puts: Vec<(HashMap<String, AttributeValue>, Condition)>,
        on_conflict: BranchKeyStoreError,
    ) -> Result<(), BranchKeyStoreError> {
        let mut items = Vec::with_capacity(puts.len());
        for (item, condition) in puts {
            let expression = match condition {
                Condition::New => "attribute_not_exists(#BranchKeyIdentifierField)",
                Condition::Exists => "attribute_exists(#BranchKeyIdentifierField)",
            };
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(expression)
                .expression_attribute_names("#BranchKeyIdentifierField", BRANCH_KEY_ID_FIELD)
                .build()
                .map_err(|e| self.build_error("TransactWriteItems", e))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        match self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = ddb_error("TransactWriteItems", &self.table, e);
                if e.code.as_deref() == Some("TransactionCanceledException") {
                    Err(on_conflict)
                } else {
                    Err(BranchKeyStoreError::DynamoDb(Box::new(e)))
                }
            }
        }
    }

    /// Creates a branch key (and its beacon key) and returns its id: `branch_key_id`, or a
    /// new UUID when `None` (spec `CreateKey`). `encryption_context` is bound to every
    /// version (stored as `aws-crypto-ec:<key>` attributes); a chosen id needs one.
    ///
    /// # Errors
    /// [`BranchKeyStoreError::AlreadyExists`] when the id is taken;
    /// `CustomContextRequired`, `EmptyBranchKeyId`, `InvalidContextKey` for the arguments;
    /// `Kms` / `DynamoDb` for failed calls.
    pub async fn create_branch_key(
        &self,
        branch_key_id: Option<&str>,
        encryption_context: &[(&str, &str)],
    ) -> Result<String, Error> {
        let id = match branch_key_id {
            Some("") => return Err(BranchKeyStoreError::EmptyBranchKeyId.into()),
            Some(_) if encryption_context.is_empty() => {
                return Err(BranchKeyStoreError::CustomContextRequired.into());
            }
            Some(id) => id.to_owned(),
            None => random_uuid()?.hyphenated().to_string(),
        };
        let mut context = HashMap::new();
        for (k, v) in encryption_context {
            let key = format!("{EC_PREFIX}{k}");
            if k.is_empty() || context.insert(key, (*v).to_owned()).is_some() {
                return Err(BranchKeyStoreError::InvalidContextKey {
                    key: (*k).to_owned(),
                }
                .into());
            }
        }
        let version = random_uuid()?.hyphenated().to_string();
        for (k, v) in [
            (BRANCH_KEY_ID_FIELD, id.clone()),
            (TYPE_FIELD, format!("{VERSION_PREFIX}{version}")),
            (CREATE_TIME_FIELD, timestamp()),
            (TABLE_FIELD, self.logical_name.clone()),
            (KMS_FIELD, self.kms_key_arn.clone()),
            (HIERARCHY_VERSION_FIELD, HIERARCHY_VERSION.to_owned()),
        ] {
            context.insert(k.to_owned(), v);
        }
        let active = active_context(&context);
        let mut beacon = context.clone();
        beacon.insert(TYPE_FIELD.to_owned(), BEACON_TYPE.to_owned());

        let wrapped = self.generate(&id, &context).await?;
        let wrapped_active = self.re_encrypt(&id, &wrapped, &context, &active).await?;
        let wrapped_beacon = self.generate(&id, &beacon).await?;
        self.write(
            vec![
                (Self::item(&context, wrapped), Condition::New),
                (Self::item(&active, wrapped_active), Condition::New),
                (Self::item(&beacon, wrapped_beacon), Condition::New),
            ],
            BranchKeyStoreError::AlreadyExists {
                table: self.table.clone(),
                branch_key_id: id.clone(),
            },
        )
        .await?;
        Ok(id)
    }

    /// Makes a new version of branch key `branch_key_id` the active one and returns it
    /// (spec `VersionKey`). Earlier versions stay in the table, so their messages still
    /// decrypt.
    ///
    /// # Errors
    /// [`BranchKeyStoreError::NotFound`] for an unknown id; `VersionConflict` when another
    /// writer changed it meanwhile; as [`get_active_branch_key`](Self::get_active_branch_key)
    /// for the ACTIVE item and the calls.
    pub async fn version_branch_key(&self, branch_key_id: &str) -> Result<String, Error> {
        let id = branch_key_id;
        let item = self.get_item(id, ACTIVE_TYPE, None).await?;
        let old = self.parse_item(id, ACTIVE_TYPE, item)?;
        // The ACTIVE item's key must be KMS's under its own context (spec "VersionKey":
        // authenticated with ReEncrypt, which needs no Decrypt permission).
        self.re_encrypt(id, &old.ciphertext, &old.context, &old.context)
            .await?;
        let version = random_uuid()?.hyphenated().to_string();
        let mut context = old.context;
        context.remove(VERSION_FIELD);
        context.insert(TYPE_FIELD.to_owned(), format!("{VERSION_PREFIX}{version}"));
        context.insert(CREATE_TIME_FIELD.to_owned(), timestamp());
        let active = active_context(&context);
        let wrapped = self.generate(id, &context).await?;
        let wrapped_active = self.re_encrypt(id, &wrapped, &context, &active).await?;
        self.write(
            vec![
                (Self::item(&context, wrapped), Condition::New),
                (Self::item(&active, wrapped_active), Condition::Exists),
            ],
            BranchKeyStoreError::VersionConflict {
                table: self.table.clone(),
                branch_key_id: id.to_owned(),
            },
        )
        .await?;
        Ok(version)
    }
}

/// The ACTIVE context of a version's context: `version` = its type, `type` = ACTIVE.
fn active_context(version: &HashMap<String, String>) -> HashMap<String, String> {
    let mut active = version.clone();
    if let Some(t) = version.get(TYPE_FIELD) {
        active.insert(VERSION_FIELD.to_owned(), t.clone());
    }
    active.insert(TYPE_FIELD.to_owned(), ACTIVE_TYPE.to_owned());
    active
}

/// Now, ISO 8601 in UTC (`create-time`; informational, bound into the KMS context).
fn timestamp() -> String {
    DateTime::from(SystemTime::now())
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_uuids_both_ways() {
        let u = random_uuid().unwrap().hyphenated().to_string();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4', "version 4: {u}");
        let b = version_bytes(&u).unwrap();
        assert_eq!(version_string(b), u);
        assert_eq!(version_bytes(&u.replace('-', "")), None);
        assert_eq!(version_bytes("not-a-uuid-not-a-uuid-not-a-uuid-xx"), None);
        // Upper case parses to the same bytes; the string is always lowercase.
        assert_eq!(version_bytes(&u.to_uppercase()), Some(b));
    }

    #[test]
    fn items_and_contexts_match_the_mpl_layout() {
        let mut c = HashMap::new();
        for (k, v) in [
            (BRANCH_KEY_ID_FIELD, "id"),
            (TYPE_FIELD, "branch:version:v"),
            (CREATE_TIME_FIELD, "t"),
            (TABLE_FIELD, "logical"),
            (KMS_FIELD, "arn"),
            (HIERARCHY_VERSION_FIELD, "1"),
            ("aws-crypto-ec:tenant", "a"),
        ] {
            c.insert(k.to_owned(), v.to_owned());
        }
        let active = active_context(&c);
        assert_eq!(active[TYPE_FIELD], ACTIVE_TYPE);
        assert_eq!(active[VERSION_FIELD], "branch:version:v");
        let item = BranchKeyStore::item(&active, vec![1, 2]);
        assert!(!item.contains_key(TABLE_FIELD));
        assert_eq!(item[HIERARCHY_VERSION_FIELD], AttributeValue::N("1".into()));
        assert_eq!(item[ENC_FIELD], AttributeValue::B(Blob::new(vec![1, 2])));
        assert_eq!(item["aws-crypto-ec:tenant"], AttributeValue::S("a".into()));
        assert_eq!(item.len(), 8);
        let t = timestamp();
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }
}
