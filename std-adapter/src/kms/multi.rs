//! The async multi-keyring and the KMS multi-keyring factories (spec
//! `framework/multi-keyring.md`, `aws-kms/aws-kms-multi-keyrings.md`,
//! `aws-kms/aws-kms-mrk-multi-keyrings.md`).

use std::sync::Arc;

use async_trait::async_trait;
use esdk_core::materials::DataKey;
use futures_util::future::join_all;

use super::arn::{KeyIdentifier, assert_mrks_unique};
use super::client::ClientSupplier;
use super::error::{Attempt, Error, Failure};
use super::keyring::{
    AwsKmsDiscoveryKeyring, AwsKmsKeyring, AwsKmsMrkDiscoveryKeyring, AwsKmsMrkKeyring,
    DiscoveryFilter,
};
use super::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest};

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
    /// [`Error::Config`] when there is neither a generator nor a child.
    pub fn new(
        generator: Option<Box<dyn AsyncKeyring>>,
        children: Vec<Box<dyn AsyncKeyring>>,
    ) -> Result<Self, Error> {
        if generator.is_none() && children.is_empty() {
            return Err(Error::Config(
                "a multi-keyring needs a generator or at least one child keyring",
            ));
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
                return Err(Error::Config(
                    "a multi-keyring with a generator got materials that already hold a data \
                     key",
                ));
            }
            (Some(g), None) => {
                let o = g.on_encrypt(req).await?;
                generated = o.data_key.ok_or(Error::Core(
                    esdk_core::error::KeyringError::NoDataKeyGenerated.into(),
                ))?;
                out.edks = o.edks;
                &generated
            }
            (None, Some(k)) => k,
            (None, None) => {
                return Err(Error::Core(
                    esdk_core::error::KeyringError::NoDataKeyGenerated.into(),
                ));
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

fn check_regions(regions: &[&str]) -> Result<(), Error> {
    if regions.is_empty() {
        return Err(Error::Config(
            "a discovery multi-keyring needs at least one region",
        ));
    }
    if regions.iter().any(|r| r.is_empty()) {
        return Err(Error::Config("a region must not be empty"));
    }
    Ok(())
}

/// The strict KMS multi-keyring: an [`AwsKmsKeyring`] generator for `generator` and one
/// child per `key_ids`, each with the client `supplier` gives for the key's region (the
/// supplier's default region for key ids and aliases).
///
/// # Errors
/// [`Error::InvalidKeyId`], [`Error::Config`] (no key at all, no region), supplier errors.
pub fn strict_multi_keyring(
    generator: Option<&str>,
    key_ids: &[&str],
    supplier: &dyn ClientSupplier,
    grant_tokens: &[String],
) -> Result<AsyncMultiKeyring, Error> {
    let make = |id: &str| -> Result<Box<dyn AsyncKeyring>, Error> {
        let client = supplier.client(region_of(id)?.as_deref())?;
        Ok(Box::new(
            AwsKmsKeyring::new(id, client)?.with_grant_tokens(grant_tokens),
        ))
    };
    let generator = generator.map(make).transpose()?;
    let children = key_ids
        .iter()
        .map(|id| make(id))
        .collect::<Result<_, _>>()?;
    AsyncMultiKeyring::new(generator, children)
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
    let make = |id: &str| -> Result<Box<dyn AsyncKeyring>, Error> {
        let client = supplier.client(region_of(id)?.as_deref())?;
        Ok(Box::new(
            AwsKmsMrkKeyring::new(id, client)?.with_grant_tokens(grant_tokens),
        ))
    };
    let generator = generator.map(make).transpose()?;
    let children = key_ids
        .iter()
        .map(|id| make(id))
        .collect::<Result<_, _>>()?;
    AsyncMultiKeyring::new(generator, children)
}

/// The discovery multi-keyring: one [`AwsKmsDiscoveryKeyring`] per region, all with the same
/// optional filter (decrypt-only).
///
/// # Errors
/// [`Error::Config`] for no region or an empty one; supplier errors.
pub fn discovery_multi_keyring(
    regions: &[&str],
    filter: Option<DiscoveryFilter>,
    supplier: &dyn ClientSupplier,
    grant_tokens: &[String],
) -> Result<AsyncMultiKeyring, Error> {
    check_regions(regions)?;
    let children = regions
        .iter()
        .map(|r| -> Result<Box<dyn AsyncKeyring>, Error> {
            let client = supplier.client(Some(r))?;
            Ok(Box::new(
                AwsKmsDiscoveryKeyring::new(client, filter.clone()).with_grant_tokens(grant_tokens),
            ))
        })
        .collect::<Result<_, _>>()?;
    AsyncMultiKeyring::new(None, children)
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
    check_regions(regions)?;
    let children = regions
        .iter()
        .map(|r| -> Result<Box<dyn AsyncKeyring>, Error> {
            let client = supplier.client(Some(r))?;
            Ok(Box::new(
                AwsKmsMrkDiscoveryKeyring::new(client, r, filter.clone())?
                    .with_grant_tokens(grant_tokens),
            ))
        })
        .collect::<Result<_, _>>()?;
    AsyncMultiKeyring::new(None, children)
}
