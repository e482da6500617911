//! AWS KMS keys on the command line (`--kms-key`, `--kms-discovery`, `--kms-endpoint`):
//! keyrings of [`esdk::kms`]. A job whose only keys are KMS keys (or, on decrypt, whose KMS
//! keys are tried first) runs them through the async front end on a runtime of its own, so
//! a failure says which key, region, KMS error code and EDK; with raw or PKCS#11 keys on
//! encrypt, or with `--caching`, they sit in the core multi-keyring as a blocking keyring,
//! whose failures the core reports without the KMS detail.

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

/// The KMS keyrings of a command line, as they are built (none without the `kms` feature).
#[cfg(not(feature = "kms"))]
#[derive(Default)]
pub(crate) struct KmsKeys;

#[cfg(not(feature = "kms"))]
impl KmsKeys {
    /// One keyring for all `--kms-key` keys, at `position` among the command line's
    /// keyrings (the generator at 0).
    pub(crate) fn keys_keyring<'a>(
        &mut self,
        _ids: &[&str],
        _position: usize,
        _opts: &KmsOptions<'_>,
    ) -> Result<Box<dyn Keyring + 'a>, CliError> {
        Err(CliError::usage(NOT_BUILT))
    }

    /// An `--kms-rsa-key` keyring, at `position`.
    pub(crate) fn rsa_keyring<'a>(
        &mut self,
        _arn: &str,
        _padding: esdk::raw::rsa::RsaPadding,
        _public: Option<esdk::raw::rsa::RsaPublicKey>,
        _mode: Mode,
        _position: usize,
        _opts: &KmsOptions<'_>,
    ) -> Result<Box<dyn Keyring + 'a>, CliError> {
        Err(CliError::usage(NOT_BUILT))
    }

    /// A `--branch-key-id` keyring, at `position`.
    pub(crate) fn hierarchy_keyring<'a>(
        &mut self,
        _spec: &crate::cli::branch_key::HierarchySpec,
        _position: usize,
        _opts: &KmsOptions<'_>,
    ) -> Result<Box<dyn Keyring + 'a>, CliError> {
        Err(CliError::usage(NOT_BUILT))
    }

    /// The `--kms-discovery` keyring (decrypt only), at `position`.
    pub(crate) fn discovery_keyring<'a>(
        &mut self,
        _mode: Mode,
        _position: usize,
        _opts: &KmsOptions<'_>,
    ) -> Result<Box<dyn Keyring + 'a>, CliError> {
        Err(CliError::usage(NOT_BUILT))
    }

    /// Whether the keyring at `position` is a KMS keyring.
    pub(crate) fn holds(&self, _position: usize) -> bool {
        false
    }

    /// The front end for the KMS keyrings, if there are any.
    pub(crate) fn front(self) -> Option<Front> {
        None
    }
}

/// The KMS keyrings of a command line behind the async front end (none without the `kms`
/// feature).
#[cfg(not(feature = "kms"))]
pub(crate) enum Front {}

#[cfg(not(feature = "kms"))]
impl Front {
    /// The data key of the message whose header is `header`, as a keyring that supplies it.
    ///
    /// # Errors
    /// None: there is no value of this type.
    pub(crate) fn decrypt_key(
        &self,
        _cfg: &esdk::Config,
        _reproduced: &[(&str, &str)],
        _header: &[u8],
    ) -> Result<Box<dyn Keyring>, esdk::Error> {
        match *self {}
    }
}

#[cfg(feature = "kms")]
pub(crate) use with_kms::{Front, KmsKeys};

#[cfg(feature = "kms")]
mod with_kms {
    use std::collections::HashMap;
    use std::sync::Arc;

    use async_trait::async_trait;
    use esdk::core::materials::{DataKey, Edk};
    use esdk::kms::asynch::{self, PreparedEncryption};
    use esdk::kms::{
        self, AsyncKeyring, AsyncMultiKeyring, AwsKmsDiscoveryKeyring, AwsKmsRsaKeyring,
        BlockingKeyring, ClientSupplier, DecryptRequest, DefaultClientSupplier, DiscoveryFilter,
        EncryptOutcome, EncryptRequest, KmsArn, KmsRsaAlgorithm, KmsRuntime,
    };
    use esdk::raw::rsa::{RsaPadding, RsaPublicKey};
    use esdk::{Config, EncryptOptions, Keyring};

    use super::{KmsOptions, Mode};
    use crate::cli::error::CliError;

    fn supplier(opts: &KmsOptions<'_>) -> DefaultClientSupplier {
        let s = DefaultClientSupplier::from_env();
        match opts.endpoint {
            Some(url) => s.with_endpoint_url(url),
            None => s,
        }
    }

    /// The KMS keyrings of a command line, as they are built: each is also a blocking core
    /// keyring for the core multi-keyring (with raw keys on encrypt, with `--caching`).
    #[derive(Default)]
    pub(crate) struct KmsKeys {
        rt: Option<Arc<KmsRuntime>>,
        keyrings: Vec<Arc<dyn AsyncKeyring>>,
        positions: Vec<usize>,
    }

    impl KmsKeys {
        fn add<'a>(
            &mut self,
            keyring: Arc<dyn AsyncKeyring>,
            position: usize,
        ) -> Result<Box<dyn Keyring + 'a>, CliError> {
            let rt = match &self.rt {
                Some(rt) => Arc::clone(rt),
                None => {
                    let rt = Arc::new(
                        KmsRuntime::new().map_err(|e| CliError::usage(format!("AWS KMS: {e}")))?,
                    );
                    self.rt = Some(Arc::clone(&rt));
                    rt
                }
            };
            self.keyrings.push(Arc::clone(&keyring));
            self.positions.push(position);
            Ok(Box::new(BlockingKeyring::with_runtime(keyring, rt)))
        }

        /// One MRK-aware multi-keyring for every `--kms-key` (strict: each decrypts only
        /// with its own key, or that multi-Region key's replica in the ARN's region), at
        /// `position` among the command line's keyrings (the generator at 0).
        pub(crate) fn keys_keyring<'a>(
            &mut self,
            ids: &[&str],
            position: usize,
            opts: &KmsOptions<'_>,
        ) -> Result<Box<dyn Keyring + 'a>, CliError> {
            let supplier = supplier(opts);
            let (g, children) = match ids.split_first() {
                Some((first, rest)) if position == 0 => (Some(*first), rest),
                _ => (None, ids),
            };
            let multi = kms::mrk_multi_keyring(g, children, &supplier, &[])
                .map_err(|e| CliError::usage(format!("--kms-key: {e}")))?;
            self.add(Arc::new(multi), position)
        }

        /// `--kms-rsa-key ARN`: the AWS KMS RSA keyring, at `position`. Encrypting needs only
        /// the public key (no client, no credentials); decrypting a client of the ARN's
        /// region (or the default region for a bare key id).
        pub(crate) fn rsa_keyring<'a>(
            &mut self,
            arn: &str,
            padding: RsaPadding,
            public: Option<RsaPublicKey>,
            mode: Mode,
            position: usize,
            opts: &KmsOptions<'_>,
        ) -> Result<Box<dyn Keyring + 'a>, CliError> {
            let algorithm = KmsRsaAlgorithm::from_padding(padding).ok_or_else(|| {
                CliError::usage(format!(
                    "--rsa-padding {padding} for --kms-rsa-key {arn}: AWS KMS RSA keys take \
                     oaep-sha256 (RSAES_OAEP_SHA_256) or oaep-sha1 (RSAES_OAEP_SHA_1)"
                ))
            })?;
            let client = match mode {
                Mode::Encrypt => None,
                Mode::Decrypt => {
                    let region = KmsArn::parse(arn).ok().map(|a| a.region().to_owned());
                    Some(
                        supplier(opts)
                            .client(region.as_deref())
                            .map_err(|e| CliError::usage(format!("--kms-rsa-key {arn}: {e}")))?,
                    )
                }
            };
            let keyring = AwsKmsRsaKeyring::new(arn, algorithm, public, client)
                .map_err(|e| CliError::usage(format!("--kms-rsa-key: {e}")))?;
            self.add(Arc::new(keyring), position)
        }

        /// `--branch-key-id ID`: the hierarchical keyring on its key store, at `position`.
        pub(crate) fn hierarchy_keyring<'a>(
            &mut self,
            spec: &crate::cli::branch_key::HierarchySpec,
            position: usize,
            opts: &KmsOptions<'_>,
        ) -> Result<Box<dyn Keyring + 'a>, CliError> {
            let store = crate::cli::branch_key::open_store(&spec.store, opts.endpoint)?;
            let ttl = std::time::Duration::from_secs(crate::cli::branch_key::TTL_SECONDS);
            let keyring =
                kms::AwsKmsHierarchicalKeyring::new(Arc::new(store), &spec.branch_key_id, ttl)
                    .map_err(|e| CliError::usage(format!("--branch-key-id: {e}")))?;
            self.add(Arc::new(keyring), position)
        }

        /// `--kms-discovery`: every `aws-kms` EDK, with a client of its ARN's region.
        pub(crate) fn discovery_keyring<'a>(
            &mut self,
            mode: Mode,
            position: usize,
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
                let accounts: Vec<&str> =
                    opts.discovery_accounts.iter().map(String::as_str).collect();
                Some(
                    DiscoveryFilter::new(opts.discovery_partition.unwrap_or("aws"), &accounts)
                        .map_err(|e| CliError::usage(format!("--discovery-account: {e}")))?,
                )
            };
            let keyring = AnyRegionDiscovery {
                supplier: supplier(opts),
                filter,
            };
            self.add(Arc::new(keyring), position)
        }

        /// Whether the keyring at `position` is a KMS keyring.
        pub(crate) fn holds(&self, position: usize) -> bool {
            self.positions.contains(&position)
        }

        /// The front end for the KMS keyrings, if there are any.
        pub(crate) fn front(mut self) -> Option<Front> {
            let rt = self.rt?;
            let keyring: Box<dyn AsyncKeyring> = if self.keyrings.len() == 1 {
                Box::new(self.keyrings.pop()?)
            } else {
                // The first generates the data key on encrypt (--kms-key and --kms-rsa-key
                // together); on decrypt they are tried in order either way.
                let mut all = self
                    .keyrings
                    .into_iter()
                    .map(|k| Box::new(k) as Box<dyn AsyncKeyring>);
                let generator = all.next();
                Box::new(AsyncMultiKeyring::new(generator, all.collect()).ok()?)
            };
            Some(Front { rt, keyring })
        }
    }

    /// The KMS keyrings of a command line behind the async front end, run on a runtime of
    /// their own: failures keep the KMS detail (key, region, error code, every EDK tried).
    pub(crate) struct Front {
        rt: Arc<KmsRuntime>,
        keyring: Box<dyn AsyncKeyring>,
    }

    impl Front {
        /// The decryptor of the message that starts with `head`, its header authenticated
        /// with the data key KMS decrypted (a failure keeps the KMS detail).
        ///
        /// # Errors
        /// As [`asynch::prepare_decrypt`].
        pub(crate) fn prepare_decrypt<'a>(
            &self,
            cfg: &'a Config,
            reproduced: &'a [(&'a str, &'a str)],
            head: &[u8],
        ) -> Result<asynch::PreparedDecryption<'a>, esdk::Error> {
            self.rt.block_on(asynch::prepare_decrypt(
                cfg,
                &*self.keyring,
                reproduced,
                head,
            ))
        }

        /// The materials of one message.
        ///
        /// # Errors
        /// As [`asynch::prepare_encrypt`].
        pub(crate) fn prepare_encrypt(
            &self,
            cfg: &Config,
            opts: &EncryptOptions,
            encryption_context: &[(&str, &str)],
        ) -> Result<PreparedEncryption, esdk::Error> {
            self.rt.block_on(asynch::prepare_encrypt(
                cfg,
                &*self.keyring,
                opts,
                encryption_context,
            ))
        }
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
