//! AWS KMS keyrings (feature `kms`): strict, discovery (with a discovery filter),
//! multi-Region-key aware strict and discovery, the KMS multi-keyrings, the AWS KMS RSA
//! keyring ([`AwsKmsRsaKeyring`]), the AWS KMS ECDH keyring ([`AwsKmsEcdhKeyring`]) and the
//! hierarchical keyring ([`AwsKmsHierarchicalKeyring`], with its DynamoDB [`BranchKeyStore`]),
//! with an async and a blocking front end.
//!
//! # Design
//! The core is sync and sans-I/O, so the KMS keyrings implement [`AsyncKeyring`], not the
//! core's [`Keyring`](esdk_core::Keyring); no `block_on` hides inside a sync keyring.
//!
//! - **Async front end** ([`asynch`], and the tokio streams of `tokio_io` with feature
//!   `tokio`): drives the core's states and awaits KMS at the materials step. On encrypt:
//!   [`Encryptor::request`] and [`Encryptor::materials`] with a signing key it generated
//!   (the KMS call sees the full encryption context, `aws-crypto-public-key` included),
//!   the keyring awaited with an owned copy of what it needs, then the materials rebuilt
//!   with the same signing key, filled, and [`Encryptor::write_header_with`]. On decrypt:
//!   `Decryptor::process` up to `NeedDataKey` (the core's header checks, before any KMS
//!   call), the materials copied out, KMS `Decrypt` awaited, `set_data_key`, and on.
//!   Nothing blocks; it runs on the caller's runtime.
//! - **Blocking front end** ([`blocking`]): [`blocking::encrypt`], [`blocking::decrypt`] and
//!   the streaming [`blocking::encrypt_stream`] / [`blocking::decrypt_stream`] run the async
//!   front end to completion on a [`KmsRuntime`] the caller owns, so they return the same
//!   detailed [`Error`] (key ARN, region, KMS error code, every EDK tried). When called from
//!   a thread inside another tokio runtime the runtime drives the future on a scoped helper
//!   thread, so it never panics with "Cannot start a runtime from within a runtime".
//!   [`BlockingKeyring`] makes a KMS keyring a sync core `Keyring` for the places that need
//!   one (a core `MultiKeyring` next to raw keyrings, the
//!   [caching CMM](crate::caching::CachingCmm)); there its failures are core errors, without
//!   the KMS detail.
//! - **Concurrency**: [`AsyncMultiKeyring`] wraps the data key with all its children at
//!   once (`join_all`), so a message for keys in three regions costs
//!   GenerateDataKey + the slowest Encrypt, not the sum.
//!
//! [`Encryptor::request`]: esdk_core::Encryptor::request
//! [`Encryptor::materials`]: esdk_core::Encryptor::materials
//! [`Encryptor::write_header_with`]: esdk_core::Encryptor::write_header_with
//!
//! # Getting started
//! ```no_run
//! # fn main() -> Result<(), esdk::Error> {
//! use esdk::kms::{self, DefaultClientSupplier, KmsRuntime};
//! let rt = KmsRuntime::new()?;
//! // Credentials, region and endpoint as the AWS CLI finds them (env, profile, SSO, ...).
//! let supplier = rt.block_on(DefaultClientSupplier::from_aws_chain(None))?;
//! let keyring = kms::strict_multi_keyring(
//!     Some("arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
//!     &[],
//!     &supplier,
//!     &[],
//! )?;
//! let cfg = esdk::Config::new();
//! let opts = esdk::EncryptOptions::new();
//! let msg = kms::blocking::encrypt(&rt, &cfg, &keyring, &opts, &[("purpose", "demo")], b"hi")?;
//! let out = kms::blocking::decrypt(&rt, &cfg, &keyring, &[], &msg)?;
//! assert_eq!(out.plaintext, b"hi");
//! # Ok(()) }
//! ```

pub mod arn;
pub mod asynch;
pub mod blocking;
mod branch_key_store;
mod client;
mod ecdh;
mod error;
mod hierarchy;
mod keyring;
mod multi;
mod rsa;
#[cfg(test)]
pub(crate) mod test_keyring;

use async_trait::async_trait;
use esdk_core::AlgorithmSuite;
use esdk_core::materials::{DataKey, Edk};

pub use crate::caching::OwnedEdk;

/// The KMS keyrings' errors are the crate's one [`Error`].
pub use crate::Error;
pub use arn::{ArnError, KeyIdentifier, KmsArn, ResourceType, is_valid_region};
pub use blocking::{BlockingKeyring, KmsRuntime};
pub use branch_key_store::{
    BranchKeyMaterials, BranchKeyStore, BranchKeyStoreError, DynamoDbError,
    dynamodb_client_from_env,
};
pub use client::{ClientSupplier, DefaultClientSupplier, MAX_CACHED_CLIENTS, https_client};
pub use ecdh::{AwsKmsEcdhKeyring, ECDH_PROVIDER_ID, EcdhKeyProblem, get_ecdh_public_key};
pub use error::{Attempt, Failure, KmsError, KmsErrorKind, KmsOperation};
pub use hierarchy::{
    AwsKmsHierarchicalKeyring, BranchKeyIdSupplier, DEFAULT_CACHE_CAPACITY, HIERARCHY_PROVIDER_ID,
};
pub use keyring::{
    AwsKmsDiscoveryKeyring, AwsKmsKeyring, AwsKmsMrkDiscoveryKeyring, AwsKmsMrkKeyring,
    DiscoveryFilter, ExactKey, KeyMatch, MultiRegionKey, StrictKmsKeyring,
};
pub use multi::{
    AsyncMultiKeyring, discovery_multi_keyring, mrk_discovery_multi_keyring, mrk_multi_keyring,
    strict_multi_keyring,
};
pub use rsa::{AwsKmsRsaKeyring, EC_DIGEST_LEN, KmsRsaAlgorithm, RSA_PROVIDER_ID};

/// The key provider id of every EDK a KMS keyring writes.
pub const PROVIDER_ID: &str = "aws-kms";

/// What an async keyring receives on encrypt.
#[derive(Debug, Clone, Copy)]
pub struct EncryptRequest<'a> {
    /// The message's algorithm suite.
    pub suite: AlgorithmSuite,
    /// The full encryption context, sorted by key: the caller's pairs plus
    /// `aws-crypto-public-key` for signing suites. KMS binds the data key to exactly this.
    pub encryption_context: &'a [(&'a str, &'a str)],
    /// The data key when another keyring generated it (then the keyring only wraps it).
    pub data_key: Option<&'a DataKey>,
}

/// What an async keyring returns on encrypt.
#[derive(Debug, Default)]
pub struct EncryptOutcome {
    /// The data key, when this keyring generated it.
    pub data_key: Option<DataKey>,
    /// The EDKs to add to the header, in order.
    pub edks: Vec<OwnedEdk>,
}

/// What an async keyring receives on decrypt.
#[derive(Debug, Clone, Copy)]
pub struct DecryptRequest<'a> {
    /// The message's algorithm suite.
    pub suite: AlgorithmSuite,
    /// The full encryption context: the pairs stored in the message plus the reproduced
    /// pairs it does not store, sorted by key.
    pub encryption_context: &'a [(&'a str, &'a str)],
    /// The message's EDKs with their index in the header.
    pub edks: &'a [(u16, Edk<'a>)],
}

/// A keyring whose work is I/O: KMS calls are awaited, never blocked on.
///
/// Implementations follow the keyring spec: `on_encrypt` generates (when `data_key` is
/// `None`) or wraps the data key and returns the EDKs; `on_decrypt` tries its EDKs in order
/// and returns the first data key, or [`Error::NoDataKeyDecrypted`] with one [`Attempt`]
/// per EDK it rejected or failed on.
#[async_trait]
pub trait AsyncKeyring: Send + Sync {
    /// Generates and/or wraps the data key.
    ///
    /// # Errors
    /// The KMS call failed ([`Error::Kms`]), its response was refused
    /// ([`Error::InvalidResponse`]), or the keyring cannot encrypt
    /// ([`Error::EncryptNotSupported`]).
    async fn on_encrypt(&self, request: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error>;

    /// Decrypts the data key from one of the EDKs.
    ///
    /// # Errors
    /// [`Error::NoDataKeyDecrypted`] with every attempt.
    async fn on_decrypt(&self, request: &DecryptRequest<'_>) -> Result<DataKey, Error>;

    /// A short description for error reports, e.g. `AWS KMS keyring arn:aws:kms:...`.
    fn description(&self) -> String;
}

/// Forwards [`AsyncKeyring`] through a pointer to a keyring.
macro_rules! forward_async_keyring {
    ($($pointer:ty),*) => {$(
        #[async_trait]
        impl<K: AsyncKeyring + ?Sized> AsyncKeyring for $pointer {
            async fn on_encrypt(
                &self,
                request: &EncryptRequest<'_>,
            ) -> Result<EncryptOutcome, Error> {
                (**self).on_encrypt(request).await
            }
            async fn on_decrypt(&self, request: &DecryptRequest<'_>) -> Result<DataKey, Error> {
                (**self).on_decrypt(request).await
            }
            fn description(&self) -> String {
                (**self).description()
            }
        }
    )*};
}

forward_async_keyring!(&K, Box<K>, std::sync::Arc<K>);
