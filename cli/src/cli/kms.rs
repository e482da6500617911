//! AWS KMS keys on the command line (`--kms-key`, `--kms-discovery`, `--kms-endpoint`):
//! keyrings of [`esdk::kms`] behind the blocking front end, so they compose with the raw and
//! PKCS#11 keys in one core multi-keyring.

use super::Mode;
#[cfg(not(feature = "kms"))]
use super::error::CliError;
#[cfg(not(feature = "kms"))]
use esdk::Keyring;

/// The KMS options of the command line.
#[cfg_attr(not(feature = "kms"), allow(dead_code))]
pub(crate) struct KmsOptions<'a> {
    /// `--kms-endpoint`.
    pub endpoint: Option<&'a str>,
    /// `--discovery-account` (empty: no discovery filter).
    pub discovery_accounts: &'a [String],
    /// `--discovery-partition` (default `aws`).
    pub discovery_partition: Option<&'a str>,
}

#[cfg(not(feature = "kms"))]
const NOT_BUILT: &str = "not built with AWS KMS support: this esdk was built without the `kms` \
                         feature (cargo install --path cli, default features)";

/// One keyring for all `--kms-key` keys (their calls run concurrently); `generator` when it
/// is the first keyring of the command line.
#[cfg(not(feature = "kms"))]
pub(crate) fn keys_keyring<'a>(
    _ids: &[&str],
    _generator: bool,
    _opts: &KmsOptions<'_>,
) -> Result<Box<dyn Keyring + 'a>, CliError> {
    Err(CliError::usage(NOT_BUILT))
}

/// The `--kms-discovery` keyring (decrypt only).
#[cfg(not(feature = "kms"))]
pub(crate) fn discovery_keyring<'a>(
    _mode: Mode,
    _opts: &KmsOptions<'_>,
) -> Result<Box<dyn Keyring + 'a>, CliError> {
    Err(CliError::usage(NOT_BUILT))
}

/// The detail of the last KMS failure on this thread (key, region, KMS error), if any.
#[cfg(not(feature = "kms"))]
pub(crate) fn take_detail() -> Option<String> {
    None
}

#[cfg(feature = "kms")]
pub(crate) use with_kms::{discovery_keyring, keys_keyring, take_detail};

#[cfg(feature = "kms")]
mod with_kms {
    use std::collections::HashMap;
    use std::sync::Arc;

    use async_trait::async_trait;
    use esdk::Keyring;
    use esdk::core::materials::{DataKey, Edk};
    use esdk::kms::{
        self, AsyncKeyring, AwsKmsDiscoveryKeyring, BlockingKeyring, ClientSupplier,
        DecryptRequest, DefaultClientSupplier, DiscoveryFilter, EncryptOutcome, EncryptRequest,
        KmsArn, KmsRuntime,
    };

    use super::{KmsOptions, Mode};
    use crate::cli::error::CliError;

    fn supplier(opts: &KmsOptions<'_>) -> DefaultClientSupplier {
        let s = DefaultClientSupplier::from_env();
        match opts.endpoint {
            Some(url) => s.with_endpoint_url(url),
            None => s,
        }
    }

    fn runtime() -> Result<Arc<KmsRuntime>, CliError> {
        KmsRuntime::new()
            .map(Arc::new)
            .map_err(|e| CliError::usage(format!("AWS KMS: {e}")))
    }

    /// One MRK-aware multi-keyring for every `--kms-key` (strict: each decrypts only with
    /// its own key, or that multi-Region key's replica in the ARN's region).
    pub(crate) fn keys_keyring<'a>(
        ids: &[&str],
        generator: bool,
        opts: &KmsOptions<'_>,
    ) -> Result<Box<dyn Keyring + 'a>, CliError> {
        let supplier = supplier(opts);
        let (g, children) = match ids.split_first() {
            Some((first, rest)) if generator => (Some(*first), rest),
            _ => (None, ids),
        };
        let multi = kms::mrk_multi_keyring(g, children, &supplier, &[])
            .map_err(|e| CliError::usage(format!("--kms-key: {e}")))?;
        Ok(Box::new(BlockingKeyring::with_runtime(multi, runtime()?)))
    }

    /// `--kms-discovery`: every `aws-kms` EDK, with a client of its ARN's region.
    pub(crate) fn discovery_keyring<'a>(
        mode: Mode,
        opts: &KmsOptions<'_>,
    ) -> Result<Box<dyn Keyring + 'a>, CliError> {
        if mode == Mode::Encrypt {
            return Err(CliError::usage(
                "--kms-discovery decrypts only: encrypt with --kms-key ARN",
            ));
        }
        let filter = if opts.discovery_accounts.is_empty() {
            None
        } else {
            let accounts: Vec<&str> = opts.discovery_accounts.iter().map(String::as_str).collect();
            Some(
                DiscoveryFilter::new(opts.discovery_partition.unwrap_or("aws"), &accounts)
                    .map_err(|e| CliError::usage(format!("--discovery-account: {e}")))?,
            )
        };
        let keyring = AnyRegionDiscovery {
            supplier: supplier(opts),
            filter,
        };
        Ok(Box::new(BlockingKeyring::with_runtime(keyring, runtime()?)))
    }

    /// The detail of the last KMS failure on this thread.
    pub(crate) fn take_detail() -> Option<String> {
        kms::blocking::take_last_error().map(|e| e.to_string())
    }

    /// A discovery keyring that calls KMS in the region each EDK's key ARN names (the
    /// official CLI's discovery behaviour), one [`AwsKmsDiscoveryKeyring`] per region.
    struct AnyRegionDiscovery {
        supplier: DefaultClientSupplier,
        filter: Option<DiscoveryFilter>,
    }

    fn edk_region(e: &Edk<'_>) -> Option<String> {
        if e.provider_id != kms::PROVIDER_ID {
            return None;
        }
        let arn = KmsArn::parse(std::str::from_utf8(e.provider_info).ok()?).ok()?;
        Some(arn.region().to_owned())
    }

    #[async_trait]
    impl AsyncKeyring for AnyRegionDiscovery {
        async fn on_encrypt(
            &self,
            _req: &EncryptRequest<'_>,
        ) -> Result<EncryptOutcome, kms::Error> {
            Err(kms::Error::EncryptNotSupported {
                keyring: self.description(),
            })
        }

        async fn on_decrypt(&self, req: &DecryptRequest<'_>) -> Result<DataKey, kms::Error> {
            // The EDKs grouped by region in one pass, regions in order of first appearance
            // (linear in the EDK count, which the message's author chooses).
            let mut groups: Vec<(String, Vec<(u16, Edk<'_>)>)> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            for &(i, e) in req.edks {
                if let Some(r) = edk_region(&e) {
                    let at = *index.entry(r.clone()).or_insert_with(|| {
                        groups.push((r, Vec::new()));
                        groups.len() - 1
                    });
                    groups[at].1.push((i, e));
                }
            }
            let mut attempts = Vec::new();
            for (region, edks) in groups {
                let keyring = AwsKmsDiscoveryKeyring::new(
                    self.supplier.client(Some(&region))?,
                    self.filter.clone(),
                );
                let one = DecryptRequest {
                    edks: &edks,
                    ..*req
                };
                match keyring.on_decrypt(&one).await {
                    Ok(k) => return Ok(k),
                    Err(kms::Error::NoDataKeyDecrypted { attempts: a }) => attempts.extend(a),
                    Err(e) => return Err(e),
                }
            }
            Err(kms::Error::NoDataKeyDecrypted { attempts })
        }

        fn description(&self) -> String {
            "AWS KMS discovery keyring (each key's region)".to_owned()
        }
    }
}
