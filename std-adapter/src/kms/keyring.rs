//! The single-key KMS keyrings: strict, multi-Region-key aware strict, discovery and
//! multi-Region-key aware discovery (spec `framework/aws-kms/aws-kms-keyring.md`,
//! `aws-kms-mrk-keyring.md`, `aws-kms-discovery-keyring.md`,
//! `aws-kms-mrk-discovery-keyring.md`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::EncryptionAlgorithmSpec;
use esdk_core::AlgorithmSuite;
use esdk_core::error::KeyringError;
use esdk_core::materials::{DataKey, Edk};
use zeroize::Zeroizing;

use super::arn::{KeyIdentifier, KmsArn, mrk_match_for_decrypt};
use super::client::client_region;
use super::error::{Attempt, Failure, KmsOperation, from_sdk};
use super::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest, OwnedEdk, PROVIDER_ID};
use crate::Error;

/// A discovery filter: decrypt only with keys of this partition and these accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryFilter {
    partition: String,
    accounts: Vec<String>,
}

impl DiscoveryFilter {
    /// A filter for `partition` (`aws`, `aws-cn`, ...) and `accounts`.
    ///
    /// # Errors
    /// [`Error::FilterPartition`] for an empty partition, [`Error::FilterAccounts`] for no
    /// account or an empty account.
    pub fn new(partition: &str, accounts: &[&str]) -> Result<Self, Error> {
        if partition.is_empty() {
            return Err(Error::FilterPartition);
        }
        if accounts.is_empty() || accounts.iter().any(|a| a.is_empty()) {
            return Err(Error::FilterAccounts);
        }
        Ok(Self {
            partition: partition.to_owned(),
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
        })
    }

    /// The partition.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The accounts.
    pub fn accounts(&self) -> &[String] {
        &self.accounts
    }

    fn check(&self, arn: &KmsArn) -> Result<(), Failure> {
        if arn.partition() != self.partition {
            return Err(Failure::PartitionFilter {
                allowed: self.partition.clone(),
            });
        }
        if !self.accounts.iter().any(|a| a == arn.account()) {
            return Err(Failure::AccountFilter {
                allowed: self.accounts.clone(),
            });
        }
        Ok(())
    }
}

/// A KMS client with the keyring's grant tokens.
#[derive(Clone)]
pub(crate) struct Kms {
    pub(super) client: Client,
    pub(super) region: Option<String>,
    pub(super) grant_tokens: Vec<String>,
}

fn ec_map(ec: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    if ec.is_empty() {
        None
    } else {
        Some(
            ec.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

fn data_key(plaintext: Option<Blob>, suite: AlgorithmSuite) -> Result<DataKey, Failure> {
    let bytes = Zeroizing::new(
        plaintext
            .ok_or(Failure::MissingField("Plaintext"))?
            .into_inner(),
    );
    if bytes.len() != suite.key_len() {
        return Err(Failure::PlaintextLength {
            expected: suite.key_len(),
            returned: bytes.len(),
        });
    }
    DataKey::from_slice(&bytes).map_err(|_| Failure::PlaintextLength {
        expected: suite.key_len(),
        returned: bytes.len(),
    })
}

/// The response `KeyId` of GenerateDataKey / Encrypt must be a key ARN.
fn response_arn(key_id: Option<String>, asked: &str) -> Result<String, Failure> {
    match key_id {
        Some(k) if KmsArn::parse_key_arn(&k).is_ok() => Ok(k),
        returned => Err(Failure::ResponseKeyId {
            expected: format!("a key ARN for {asked}"),
            returned,
        }),
    }
}

impl Kms {
    pub(super) fn new(client: Client) -> Self {
        Self {
            region: client_region(&client),
            client,
            grant_tokens: Vec::new(),
        }
    }

    pub(super) fn tokens(&self) -> Option<Vec<String>> {
        (!self.grant_tokens.is_empty()).then(|| self.grant_tokens.clone())
    }

    pub(super) fn check_region(&self, key: &KeyIdentifier) -> Result<(), Error> {
        if let (Some(kr), Some(cr)) = (key.region(), self.region.as_deref())
            && kr != cr
        {
            return Err(Error::RegionMismatch {
                key_id: key.to_string(),
                client_region: cr.to_owned(),
            });
        }
        Ok(())
    }

    /// GenerateDataKey, or Encrypt when the request carries a data key.
    async fn encrypt(
        &self,
        key_id: &str,
        req: &EncryptRequest<'_>,
    ) -> Result<EncryptOutcome, Error> {
        let invalid = |operation, failure| Error::InvalidResponse {
            operation,
            key_id: key_id.to_owned(),
            failure: Box::new(failure),
        };
        let region = self.region.as_deref();
        match req.data_key {
            None => {
                let op = KmsOperation::GenerateDataKey;
                let n = i32::try_from(req.suite.key_len())
                    .map_err(|_| Error::Core(KeyringError::DataKeyLength.into()))?;
                let mut resp = self
                    .client
                    .generate_data_key()
                    .key_id(key_id)
                    .number_of_bytes(n)
                    .set_encryption_context(ec_map(req.encryption_context))
                    .set_grant_tokens(self.tokens())
                    .send()
                    .await
                    .map_err(|e| from_sdk(op, key_id, region, e))?;
                let dk = data_key(resp.plaintext.take(), req.suite).map_err(|f| invalid(op, f))?;
                let arn = response_arn(resp.key_id.take(), key_id).map_err(|f| invalid(op, f))?;
                let blob = resp
                    .ciphertext_blob
                    .take()
                    .ok_or_else(|| invalid(op, Failure::MissingField("CiphertextBlob")))?;
                Ok(EncryptOutcome {
                    data_key: Some(dk),
                    edks: vec![OwnedEdk {
                        provider_id: PROVIDER_ID.to_owned(),
                        provider_info: arn.into_bytes(),
                        ciphertext: blob.into_inner(),
                    }],
                })
            }
            Some(dk) => {
                let op = KmsOperation::Encrypt;
                let mut resp = self
                    .client
                    .encrypt()
                    .key_id(key_id)
                    .plaintext(Blob::new(dk.as_bytes().to_vec()))
                    .set_encryption_context(ec_map(req.encryption_context))
                    .set_grant_tokens(self.tokens())
                    .send()
                    .await
                    .map_err(|e| from_sdk(op, key_id, region, e))?;
                let arn = response_arn(resp.key_id.take(), key_id).map_err(|f| invalid(op, f))?;
                let blob = resp
                    .ciphertext_blob
                    .take()
                    .ok_or_else(|| invalid(op, Failure::MissingField("CiphertextBlob")))?;
                Ok(EncryptOutcome {
                    data_key: None,
                    edks: vec![OwnedEdk {
                        provider_id: PROVIDER_ID.to_owned(),
                        provider_info: arn.into_bytes(),
                        ciphertext: blob.into_inner(),
                    }],
                })
            }
        }
    }

    /// Decrypt with `key_id`; the response must name `key_id` and hold a key of the suite's
    /// length.
    async fn decrypt(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        req: &DecryptRequest<'_>,
    ) -> Result<DataKey, Failure> {
        let ec = ec_map(req.encryption_context);
        let plaintext = self.decrypt_call(key_id, ciphertext, ec, None).await?;
        data_key(plaintext, req.suite)
    }

    /// KMS `Decrypt` of `ciphertext` with `key_id`, the encryption context `ec` and
    /// `algorithm` (none: the symmetric default); the response must name `key_id`. Returns
    /// its plaintext, if any.
    pub(super) async fn decrypt_call(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ec: Option<HashMap<String, String>>,
        algorithm: Option<EncryptionAlgorithmSpec>,
    ) -> Result<Option<Blob>, Failure> {
        let mut resp = self
            .client
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(ciphertext.to_vec()))
            .set_encryption_context(ec)
            .set_encryption_algorithm(algorithm)
            .set_grant_tokens(self.tokens())
            .send()
            .await
            .map_err(|e| {
                Failure::Kms(from_sdk(
                    KmsOperation::Decrypt,
                    key_id,
                    self.region.as_deref(),
                    e,
                ))
            })?;
        let returned = resp.key_id.take();
        let plaintext = resp.plaintext.take();
        if returned.as_deref() != Some(key_id) {
            return Err(Failure::ResponseKeyId {
                expected: key_id.to_owned(),
                returned,
            });
        }
        Ok(plaintext)
    }
}

/// How a keyring turns one of its EDKs into the data key with KMS: `Decrypt` of a symmetric
/// key ([`Kms`]) or of an RSA key (the KMS RSA keyring).
#[async_trait]
pub(super) trait EdkDecrypt: Send + Sync {
    /// The provider id of the EDKs it handles.
    const PROVIDER_ID: &'static str;
    /// Decrypts `ciphertext` with `key_id` and checks the response.
    async fn decrypt_edk(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        req: &DecryptRequest<'_>,
    ) -> Result<DataKey, Failure>;
}

#[async_trait]
impl EdkDecrypt for Kms {
    const PROVIDER_ID: &'static str = PROVIDER_ID;
    async fn decrypt_edk(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        req: &DecryptRequest<'_>,
    ) -> Result<DataKey, Failure> {
        self.decrypt(key_id, ciphertext, req).await
    }
}

/// What a keyring does with one EDK.
pub(super) enum Plan {
    /// Call Decrypt with this `KeyId`.
    Decrypt(String),
    /// Skip it, recording why.
    Skip(Failure),
}

/// The decrypt loop shared by the KMS keyrings: filter each EDK with `plan`, try the
/// candidates one at a time, return the first data key or every failure.
pub(super) async fn decrypt_loop<D: EdkDecrypt>(
    kms: &D,
    description: &str,
    req: &DecryptRequest<'_>,
    plan: impl Fn(&KmsArn, &str) -> Plan + Send + Sync,
) -> Result<DataKey, Error> {
    let mut attempts = Vec::new();
    let record = |attempts: &mut Vec<Attempt>, i: u16, e: &Edk<'_>, failure| {
        attempts.push(Attempt {
            keyring: description.to_owned(),
            edk: Some(i),
            edk_key: std::str::from_utf8(e.provider_info).ok().map(str::to_owned),
            failure,
        });
    };
    for (i, e) in req.edks {
        if e.provider_id != D::PROVIDER_ID {
            record(
                &mut attempts,
                *i,
                e,
                Failure::ProviderId(e.provider_id.to_owned()),
            );
            continue;
        }
        // A KMS EDK whose provider info is not a key ARN fails the keyring
        // (spec: "... with a resource type of key or OnDecrypt MUST fail").
        let info = match std::str::from_utf8(e.provider_info) {
            Ok(s) => s,
            Err(_) => {
                record(
                    &mut attempts,
                    *i,
                    e,
                    Failure::ProviderInfo(super::arn::ArnError::NotArn),
                );
                return Err(Error::NoDataKeyDecrypted { attempts });
            }
        };
        let arn = match KmsArn::parse_key_arn(info) {
            Ok(a) => a,
            Err(err) => {
                record(&mut attempts, *i, e, Failure::ProviderInfo(err));
                return Err(Error::NoDataKeyDecrypted { attempts });
            }
        };
        match plan(&arn, info) {
            Plan::Skip(f) => record(&mut attempts, *i, e, f),
            Plan::Decrypt(key_id) => match kms.decrypt_edk(&key_id, e.ciphertext, req).await {
                Ok(dk) => return Ok(dk),
                Err(f) => record(&mut attempts, *i, e, f),
            },
        }
    }
    Err(Error::NoDataKeyDecrypted { attempts })
}

/// What a strict keyring (configured with `configured`, a key ARN when `is_arn`) does with
/// an EDK whose key `matches` it or not: decrypt with the configured key, or skip.
pub(super) fn strict_plan(configured: &str, is_arn: bool, matches: bool) -> Plan {
    if !is_arn {
        Plan::Skip(Failure::ConfiguredKeyNotArn {
            configured: configured.to_owned(),
        })
    } else if matches {
        Plan::Decrypt(configured.to_owned())
    } else {
        Plan::Skip(Failure::KeyMismatch {
            configured: configured.to_owned(),
        })
    }
}

pub(super) fn parse_identifier(key_id: &str) -> Result<KeyIdentifier, Error> {
    KeyIdentifier::parse(key_id).map_err(|reason| Error::InvalidKeyId {
        key_id: key_id.to_owned(),
        reason,
    })
}

/// How a strict keyring matches an EDK's key ARN against its configured key ARN.
///
/// Implemented by [`ExactKey`] ([`AwsKmsKeyring`]) and [`MultiRegionKey`]
/// ([`AwsKmsMrkKeyring`]); sealed.
pub trait KeyMatch: sealed::Sealed + Send + Sync + 'static {
    /// The keyring's name in descriptions and error reports.
    const NAME: &'static str;
    /// Whether the EDK made with `edk_key` is the configured key's.
    fn matches(configured: &str, edk_key: &str) -> bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ExactKey {}
    impl Sealed for super::MultiRegionKey {}
}

/// An EDK matches when its key ARN is the configured one (the strict keyring).
#[derive(Debug, Clone, Copy)]
pub struct ExactKey;

impl KeyMatch for ExactKey {
    const NAME: &'static str = "AWS KMS keyring";
    fn matches(configured: &str, edk_key: &str) -> bool {
        configured == edk_key
    }
}

/// An EDK matches when its key is the configured key or, for a multi-Region key, any of its
/// replicas (spec "AWS KMS MRK Match for Decrypt"); it is decrypted with the configured
/// replica.
#[derive(Debug, Clone, Copy)]
pub struct MultiRegionKey;

impl KeyMatch for MultiRegionKey {
    const NAME: &'static str = "AWS KMS MRK keyring";
    fn matches(configured: &str, edk_key: &str) -> bool {
        mrk_match_for_decrypt(configured, edk_key)
    }
}

/// A KMS keyring for one key: encrypts with it (any identifier: key ARN, alias ARN, key id,
/// alias name) and decrypts only the EDKs that `M` matches to it, which must then be given
/// as a key ARN. Use it as [`AwsKmsKeyring`] or [`AwsKmsMrkKeyring`].
pub struct StrictKmsKeyring<M> {
    key_id: String,
    parsed: KeyIdentifier,
    kms: Kms,
    _match: std::marker::PhantomData<M>,
}

/// The strict AWS KMS keyring: decrypts only the EDKs of its configured key.
pub type AwsKmsKeyring = StrictKmsKeyring<ExactKey>;

/// The multi-Region-key aware strict keyring: like [`AwsKmsKeyring`], but an EDK made with
/// any replica of a configured multi-Region key matches, and is decrypted with the
/// configured replica (spec "AWS KMS MRK Match for Decrypt").
pub type AwsKmsMrkKeyring = StrictKmsKeyring<MultiRegionKey>;

impl<M: KeyMatch> std::fmt::Debug for StrictKmsKeyring<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(M::NAME)
            .field("key_id", &self.key_id)
            .field("region", &self.kms.region)
            .finish()
    }
}

impl<M: KeyMatch> StrictKmsKeyring<M> {
    /// A keyring for `key_id` with `client`.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] for an identifier that is not valid;
    /// [`Error::RegionMismatch`] when `key_id` is an ARN of another region than `client`'s.
    pub fn new(key_id: &str, client: Client) -> Result<Self, Error> {
        let parsed = parse_identifier(key_id)?;
        let kms = Kms::new(client);
        kms.check_region(&parsed)?;
        Ok(Self {
            key_id: key_id.to_owned(),
            parsed,
            kms,
            _match: std::marker::PhantomData,
        })
    }

    /// Sends these grant tokens with every KMS call.
    pub fn with_grant_tokens(mut self, tokens: &[String]) -> Self {
        self.kms.grant_tokens = tokens.to_vec();
        self
    }

    /// The configured key identifier.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

#[async_trait]
impl<M: KeyMatch> AsyncKeyring for StrictKmsKeyring<M> {
    async fn on_encrypt(&self, req: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        self.kms.encrypt(&self.key_id, req).await
    }

    async fn on_decrypt(&self, req: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        let configured = self.key_id.as_str();
        let is_arn = self.parsed.is_key_arn();
        decrypt_loop(&self.kms, &self.description(), req, |_, info| {
            strict_plan(configured, is_arn, M::matches(configured, info))
        })
        .await
    }

    fn description(&self) -> String {
        format!("{} {}", M::NAME, self.key_id)
    }
}

/// The discovery keyring: decrypt-only, it asks KMS to decrypt every `aws-kms` EDK with the
/// key named in the EDK, optionally limited by a [`DiscoveryFilter`].
pub struct AwsKmsDiscoveryKeyring {
    filter: Option<DiscoveryFilter>,
    kms: Kms,
}

impl std::fmt::Debug for AwsKmsDiscoveryKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsDiscoveryKeyring")
            .field("region", &self.kms.region)
            .field("filter", &self.filter)
            .finish()
    }
}

impl AwsKmsDiscoveryKeyring {
    /// A discovery keyring with `client` and an optional filter.
    pub fn new(client: Client, filter: Option<DiscoveryFilter>) -> Self {
        Self {
            filter,
            kms: Kms::new(client),
        }
    }

    /// Sends these grant tokens with every KMS call.
    pub fn with_grant_tokens(mut self, tokens: &[String]) -> Self {
        self.kms.grant_tokens = tokens.to_vec();
        self
    }
}

#[async_trait]
impl AsyncKeyring for AwsKmsDiscoveryKeyring {
    async fn on_encrypt(&self, _req: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        Err(Error::EncryptNotSupported {
            keyring: self.description(),
        })
    }

    async fn on_decrypt(&self, req: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        let filter = self.filter.as_ref();
        decrypt_loop(
            &self.kms,
            &self.description(),
            req,
            |arn, info| match filter.map(|f| f.check(arn)) {
                Some(Err(f)) => Plan::Skip(f),
                _ => Plan::Decrypt(info.to_owned()),
            },
        )
        .await
    }

    fn description(&self) -> String {
        format!(
            "AWS KMS discovery keyring ({})",
            self.kms.region.as_deref().unwrap_or("default region")
        )
    }
}

/// The multi-Region-key aware discovery keyring: decrypt-only, for one region. Single-Region
/// keys of other regions are skipped; a multi-Region key of any region is decrypted with its
/// replica in this keyring's region.
pub struct AwsKmsMrkDiscoveryKeyring {
    region: String,
    filter: Option<DiscoveryFilter>,
    kms: Kms,
}

impl std::fmt::Debug for AwsKmsMrkDiscoveryKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsMrkDiscoveryKeyring")
            .field("region", &self.region)
            .field("filter", &self.filter)
            .finish()
    }
}

impl AwsKmsMrkDiscoveryKeyring {
    /// A discovery keyring for `region` with `client` (whose region must be `region`) and an
    /// optional filter.
    ///
    /// # Errors
    /// [`Error::EmptyRegion`] for an empty region; [`Error::RegionMismatch`] when the client
    /// is configured for another region.
    pub fn new(
        client: Client,
        region: &str,
        filter: Option<DiscoveryFilter>,
    ) -> Result<Self, Error> {
        if region.is_empty() {
            return Err(Error::EmptyRegion);
        }
        let kms = Kms::new(client);
        if let Some(cr) = kms.region.as_deref()
            && cr != region
        {
            return Err(Error::RegionMismatch {
                key_id: format!("(MRK discovery keyring for {region})"),
                client_region: cr.to_owned(),
            });
        }
        Ok(Self {
            region: region.to_owned(),
            filter,
            kms,
        })
    }

    /// Sends these grant tokens with every KMS call.
    pub fn with_grant_tokens(mut self, tokens: &[String]) -> Self {
        self.kms.grant_tokens = tokens.to_vec();
        self
    }
}

#[async_trait]
impl AsyncKeyring for AwsKmsMrkDiscoveryKeyring {
    async fn on_encrypt(&self, _req: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        Err(Error::EncryptNotSupported {
            keyring: self.description(),
        })
    }

    async fn on_decrypt(&self, req: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        let filter = self.filter.as_ref();
        let region = self.region.as_str();
        decrypt_loop(&self.kms, &self.description(), req, |arn, info| {
            if let Some(Err(f)) = filter.map(|f| f.check(arn)) {
                return Plan::Skip(f);
            }
            if arn.is_multi_region_key() {
                Plan::Decrypt(arn.with_region(region).to_string())
            } else if arn.region() == region {
                Plan::Decrypt(info.to_owned())
            } else {
                Plan::Skip(Failure::RegionMismatch {
                    client_region: region.to_owned(),
                })
            }
        })
        .await
    }

    fn description(&self) -> String {
        format!("AWS KMS MRK discovery keyring ({})", self.region)
    }
}
