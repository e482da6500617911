//! The async multi-keyring and the KMS multi-keyring factories (spec
//! `framework/multi-keyring.md`, `aws-kms/aws-kms-multi-keyrings.md`,
//! `aws-kms/aws-kms-mrk-multi-keyrings.md`).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use esdk_core::error::KeyringError;
use esdk_core::materials::DataKey;
use futures_util::future::join_all;

use super::arn::{KeyIdentifier, assert_mrks_unique};
use super::client::ClientSupplier;
use super::error::{Attempt, Failure};
use super::keyring::{
    AwsKmsDiscoveryKeyring, AwsKmsMrkDiscoveryKeyring, DiscoveryFilter, ExactKey, KeyMatch,
    MultiRegionKey, StrictKmsKeyring,
};
#[cfg(doc)]
use super::keyring::{AwsKmsKeyring, AwsKmsMrkKeyring};
use super::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest};
use crate::Error;

/// A generator keyring plus children, over async keyrings.
///
/// Encrypt: the generator makes the data key, then **all children wrap it concurrently**;
/// any failure fails the whole, and the EDKs keep the order generator, children. Without a
/// generator the request must already carry a data key. Decrypt: the generator, then each
/// child in order, until one succeeds; the error lists every attempt of every child.
pub struct AsyncMultiKeyring {
    generator: Option<Box<dyn AsyncKeyring>>,
    children: Vec<Box<dyn AsyncKeyring>>,
}

impl std::fmt::Debug for AsyncMultiKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncMultiKeyring")
            .field(
                "generator",
                &self.generator.as_ref().map(|g| g.description()),
            )
            .field(
                "children",
                &self
                    .children
                    .iter()
                    .map(|c| c.description())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl AsyncMultiKeyring {
    /// A multi-keyring with an optional generator and children.
    ///
    /// # Errors
    /// [`Error::NoKeyring`] when there is neither a generator nor a child.
    pub fn new(
        generator: Option<Box<dyn AsyncKeyring>>,
        children: Vec<Box<dyn AsyncKeyring>>,
    ) -> Result<Self, Error> {
        if generator.is_none() && children.is_empty() {
            return Err(Error::NoKeyring);
        }
        Ok(Self {
            generator,
            children,
        })
    }

    /// Number of keyrings, generator included.
    pub fn len(&self) -> usize {
        usize::from(self.generator.is_some()) + self.children.len()
    }

    /// Whether it has no keyring (never true for a constructed one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl AsyncKeyring for AsyncMultiKeyring {
    async fn on_encrypt(&self, req: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        let mut out = EncryptOutcome::default();
        let generated;
        let data_key: &DataKey = match (&self.generator, req.data_key) {
            (Some(_), Some(_)) => {
                return Err(Error::Core(KeyringError::DataKeyAlreadyPresent.into()));
            }
            (Some(g), None) => {
                let o = g.on_encrypt(req).await?;
                generated = o
                    .data_key
                    .ok_or(Error::Core(KeyringError::NoDataKeyGenerated.into()))?;
                out.edks = o.edks;
                &generated
            }
            (None, Some(k)) => k,
            (None, None) => {
                return Err(Error::Core(KeyringError::NoDataKeyGenerated.into()));
            }
        };
        let child_req = EncryptRequest {
            data_key: Some(data_key),
            ..*req
        };
        let results = join_all(self.children.iter().map(|c| c.on_encrypt(&child_req))).await;
        for r in results {
            out.edks.extend(r?.edks);
        }
        if self.generator.is_some() {
            out.data_key = Some(data_key.clone());
        }
        Ok(out)
    }

    async fn on_decrypt(&self, req: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        let mut attempts = Vec::new();
        for k in self.generator.iter().chain(self.children.iter()) {
            match k.on_decrypt(req).await {
                Ok(dk) => return Ok(dk),
                Err(Error::NoDataKeyDecrypted { attempts: a }) => attempts.extend(a),
                Err(e) => attempts.push(Attempt {
                    keyring: k.description(),
                    edk: None,
                    edk_key: None,
                    failure: Failure::Keyring(Arc::new(e)),
                }),
            }
        }
        Err(Error::NoDataKeyDecrypted { attempts })
    }

    fn description(&self) -> String {
        format!("multi-keyring of {} keyrings", self.len())
    }
}

fn region_of(key_id: &str) -> Result<Option<String>, Error> {
    let id = KeyIdentifier::parse(key_id).map_err(|reason| Error::InvalidKeyId {
        key_id: key_id.to_owned(),
        reason,
    })?;
    Ok(id.region().map(str::to_owned))
}

/// The one factory behind the four KMS multi-keyrings: a keyring made by `make` for the
/// optional `generator` and for each of `children`, each with the client `supplier` gives
/// for the region `region` names for it.
fn build<K: AsyncKeyring + 'static>(
    generator: Option<&str>,
    children: &[&str],
    supplier: &dyn ClientSupplier,
    region: impl Fn(&str) -> Result<Option<String>, Error>,
    make: impl Fn(&str, Client) -> Result<K, Error>,
) -> Result<AsyncMultiKeyring, Error> {
    let one = |id: &str| -> Result<Box<dyn AsyncKeyring>, Error> {
        let client = supplier.client(region(id)?.as_deref())?;
        Ok(Box::new(make(id, client)?))
    };
    let generator = generator.map(one).transpose()?;
    let children = children
        .iter()
        .map(|id| one(id))
        .collect::<Result<_, _>>()?;
    AsyncMultiKeyring::new(generator, children)
}

/// A strict multi-keyring of `StrictKmsKeyring<M>`s.
fn strict<M: KeyMatch>(
    generator: Option<&str>,
    key_ids: &[&str],
    supplier: &dyn ClientSupplier,
    grant_tokens: &[String],
) -> Result<AsyncMultiKeyring, Error> {
    build(generator, key_ids, supplier, region_of, |id, client| {
        Ok(StrictKmsKeyring::<M>::new(id, client)?.with_grant_tokens(grant_tokens))
    })
}

/// A discovery multi-keyring: one keyring made by `make` per region.
fn discovery<K: AsyncKeyring + 'static>(
    regions: &[&str],
    supplier: &dyn ClientSupplier,
    make: impl Fn(&str, Client) -> Result<K, Error>,
) -> Result<AsyncMultiKeyring, Error> {
    if regions.is_empty() {
        return Err(Error::NoRegion);
    }
    if regions.iter().any(|r| r.is_empty()) {
        return Err(Error::EmptyRegion);
    }
    build(None, regions, supplier, |r| Ok(Some(r.to_owned())), make)
}

/// The strict KMS multi-keyring: an [`AwsKmsKeyring`] generator for `generator` and one
/// child per `key_ids`, each with the client `supplier` gives for the key's region (the
/// supplier's default region for key ids and aliases).
///
/// # Errors
/// [`Error::InvalidKeyId`], [`Error::NoKeyring`] (no key at all), supplier errors
/// ([`Error::NoDefaultRegion`], ...).
pub fn strict_multi_keyring(
    generator: Option<&str>,
    key_ids: &[&str],
    supplier: &dyn ClientSupplier,
    grant_tokens: &[String],
) -> Result<AsyncMultiKeyring, Error> {
    strict::<ExactKey>(generator, key_ids, supplier, grant_tokens)
}

/// The MRK-aware multi-keyring: as [`strict_multi_keyring`] with [`AwsKmsMrkKeyring`]s,
/// after checking that no two identifiers name the same multi-Region key.
///
/// # Errors
/// As [`strict_multi_keyring`]; [`Error::DuplicateMultiRegionKeys`].
pub fn mrk_multi_keyring(
    generator: Option<&str>,
    key_ids: &[&str],
    supplier: &dyn ClientSupplier,
    grant_tokens: &[String],
) -> Result<AsyncMultiKeyring, Error> {
    let all: Vec<&str> = generator
        .into_iter()
        .chain(key_ids.iter().copied())
        .collect();
    for id in &all {
        region_of(id)?;
    }
    assert_mrks_unique(&all).map_err(Error::DuplicateMultiRegionKeys)?;
    strict::<MultiRegionKey>(generator, key_ids, supplier, grant_tokens)
}

/// The discovery multi-keyring: one [`AwsKmsDiscoveryKeyring`] per region, all with the same
/// optional filter (decrypt-only).
///
/// # Errors
/// [`Error::NoRegion`], [`Error::EmptyRegion`]; supplier errors.
pub fn discovery_multi_keyring(
    regions: &[&str],
    filter: Option<DiscoveryFilter>,
    supplier: &dyn ClientSupplier,
    grant_tokens: &[String],
) -> Result<AsyncMultiKeyring, Error> {
    discovery(regions, supplier, |_, client| {
        Ok(AwsKmsDiscoveryKeyring::new(client, filter.clone()).with_grant_tokens(grant_tokens))
    })
}

/// The MRK-aware discovery multi-keyring: one [`AwsKmsMrkDiscoveryKeyring`] per region
/// (decrypt-only).
///
/// # Errors
/// As [`discovery_multi_keyring`].
pub fn mrk_discovery_multi_keyring(
    regions: &[&str],
    filter: Option<DiscoveryFilter>,
    supplier: &dyn ClientSupplier,
    grant_tokens: &[String],
) -> Result<AsyncMultiKeyring, Error> {
    discovery(regions, supplier, |region, client| {
        Ok(
            AwsKmsMrkDiscoveryKeyring::new(client, region, filter.clone())?
                .with_grant_tokens(grant_tokens),
        )
    })
}
