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
    /// `--profile`: the AWS profile of the credential chain (else `AWS_PROFILE`, else
    /// `default`).
    pub profile: Option<&'a str>,
    /// `--region`: the default region (else the AWS chain's).
    pub region: Option<&'a str>,
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

    /// A `--kms-ecdh-key` keyring, at `position`.
    pub(crate) fn ecdh_keyring<'a>(
        &mut self,
        _arn: &str,
        _peer: Option<&super::keys::EcdhPeer>,
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
    use esdk::kms::{AwsKmsEcdhKeyring, get_ecdh_public_key};
    use esdk::raw::ecdh::EcdhPublicKey;
    use esdk::raw::rsa::{RsaPadding, RsaPublicKey};
    use esdk::{Config, EncryptOptions, Keyring};

    use super::{KmsOptions, Mode};
    use crate::cli::error::{CliError, esdk_message, quote};
    use crate::cli::keys::{EcdhPeer, read_key_file};

    /// The public key in a `--recipient-public-key` file: PEM or DER SubjectPublicKeyInfo.
    fn recipient_file(path: &str) -> Result<EcdhPublicKey, String> {
        let p = std::path::Path::new(path);
        let bytes = read_key_file(p).map_err(|e| e.message)?;
        let parsed = if bytes.windows(10).any(|w| w == b"-----BEGIN") {
            EcdhPublicKey::from_spki_pem(&bytes[..])
        } else {
            EcdhPublicKey::from_spki_der(&bytes)
        };
        parsed.map_err(|e| {
            format!(
                "--recipient-public-key {}: {} (a P-256, P-384 or P-521 public key as PEM or \
                 DER SubjectPublicKeyInfo, or a KMS key ARN)",
                quote(p),
                esdk_message(&e)
            )
        })
    }

    /// Where a `--recipient-public-key` comes from.
    enum RecipientKey<C> {
        /// A file, already read.
        File(EcdhPublicKey),
        /// A KMS key ARN, with a client `C` of its region.
        Kms(C),
    }

    /// The KMS keyrings of a command line, as they are built: each is also a blocking core
    /// keyring for the core multi-keyring (with raw keys on encrypt, with `--caching`).
    #[derive(Default)]
    pub(crate) struct KmsKeys {
        rt: Option<Arc<KmsRuntime>>,
        /// One client supplier (one connection pool, credentials resolved once) for every
        /// KMS key of the command line.
        supplier: Option<Arc<DefaultClientSupplier>>,
        keyrings: Vec<Arc<dyn AsyncKeyring>>,
        positions: Vec<usize>,
    }

    impl KmsKeys {
        fn runtime(&mut self) -> Result<Arc<KmsRuntime>, CliError> {
            if let Some(rt) = &self.rt {
                return Ok(Arc::clone(rt));
            }
            let rt =
                Arc::new(KmsRuntime::new().map_err(|e| CliError::usage(format!("AWS KMS: {e}")))?);
            self.rt = Some(Arc::clone(&rt));
            Ok(rt)
        }

        /// The client supplier of the standard AWS chain (`--profile`, environment, shared
        /// files, SSO, ...), `--kms-endpoint` over any endpoint it names. Loaded once, on
        /// the first key that needs a client.
        fn supplier(
            &mut self,
            opts: &KmsOptions<'_>,
        ) -> Result<Arc<DefaultClientSupplier>, CliError> {
            if let Some(s) = &self.supplier {
                return Ok(Arc::clone(s));
            }
            let rt = self.runtime()?;
            let s = rt
                .block_on(DefaultClientSupplier::from_aws_chain(opts.profile))
                .map_err(|e| CliError::usage(format!("--profile: {e}")))?;
            let s = match opts.region {
                Some(r) => s.with_default_region(r),
                None => s,
            };
            let s = Arc::new(match opts.endpoint {
                Some(url) => s.with_endpoint_url(url),
                None => s,
            });
            self.supplier = Some(Arc::clone(&s));
            Ok(s)
        }

        fn add<'a>(
            &mut self,
            keyring: Arc<dyn AsyncKeyring>,
            position: usize,
        ) -> Result<Box<dyn Keyring + 'a>, CliError> {
            let rt = self.runtime()?;
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
            let supplier = self.supplier(opts)?;
            let (g, children) = match ids.split_first() {
                Some((first, rest)) if position == 0 => (Some(*first), rest),
                _ => (None, ids),
            };
            let multi = kms::mrk_multi_keyring(g, children, &*supplier, &[])
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
                        self.supplier(opts)?
                            .client(region.as_deref())
                            .map_err(|e| CliError::usage(format!("--kms-rsa-key {arn}: {e}")))?,
                    )
                }
            };
            let keyring = AwsKmsRsaKeyring::new(arn, algorithm, public, client)
                .map_err(|e| CliError::usage(format!("--kms-rsa-key: {e}")))?;
            self.add(Arc::new(keyring), position)
        }

        /// `--kms-ecdh-key ARN`: the AWS KMS ECDH keyring, at `position`, on the KMS key's
        /// curve (GetPublicKey): with `--recipient-public-key`, KmsPrivateKeyToStaticPublicKey
        /// (the recipient's key from a file, or from KMS for an ARN); with
        /// `--kms-ecdh-discovery`, KmsPublicKeyDiscovery (decrypt only).
        pub(crate) fn ecdh_keyring<'a>(
            &mut self,
            arn: &str,
            peer: Option<&EcdhPeer>,
            mode: Mode,
            position: usize,
            opts: &KmsOptions<'_>,
        ) -> Result<Box<dyn Keyring + 'a>, CliError> {
            let fail =
                |e: &dyn std::fmt::Display| CliError::usage(format!("--kms-ecdh-key {arn}: {e}"));
            let supplier = self.supplier(opts)?;
            let client_for = |key: &str| {
                let region = KmsArn::parse(key).map_err(|e| fail(&format!("{key}: {e}")))?;
                supplier.client(Some(region.region())).map_err(|e| fail(&e))
            };
            let client = client_for(arn)?;
            let rt = self.runtime()?;
            let keyring = match (peer, mode) {
                (None, _) => {
                    return Err(fail(
                        &"needs --recipient-public-key or --kms-ecdh-discovery",
                    ));
                }
                (Some(EcdhPeer::Discovery), Mode::Encrypt) => {
                    return Err(fail(
                        &"--kms-ecdh-discovery decrypts only: encrypt with \
                          --recipient-public-key after a sender's --kms-ecdh-key",
                    ));
                }
                (Some(EcdhPeer::Discovery), Mode::Decrypt) => rt.block_on(async {
                    let public = get_ecdh_public_key(&client, arn, None).await?;
                    AwsKmsEcdhKeyring::kms_public_key_discovery_with(
                        arn,
                        public.curve(),
                        public,
                        client,
                    )
                }),
                (Some(EcdhPeer::Recipient(recipient)), _) => {
                    // The recipient's public key: from KMS for a key ARN, else a file.
                    let source = if recipient.starts_with("arn:") {
                        RecipientKey::Kms(client_for(recipient)?)
                    } else {
                        RecipientKey::File(recipient_file(recipient).map_err(|e| fail(&e))?)
                    };
                    rt.block_on(async {
                        let sender = get_ecdh_public_key(&client, arn, None).await?;
                        let curve = sender.curve();
                        let public = match source {
                            RecipientKey::File(k) => k,
                            RecipientKey::Kms(c) => {
                                get_ecdh_public_key(&c, recipient, Some(curve)).await?
                            }
                        };
                        AwsKmsEcdhKeyring::kms_private_key_to_static_public_key_with(
                            arn, curve, sender, public, client,
                        )
                    })
                }
            }
            .map_err(|e| fail(&e))?;
            self.add(Arc::new(keyring), position)
        }

        /// `--branch-key-id ID`: the hierarchical keyring on its key store, at `position`.
        pub(crate) fn hierarchy_keyring<'a>(
            &mut self,
            spec: &crate::cli::branch_key::HierarchySpec,
            position: usize,
            opts: &KmsOptions<'_>,
        ) -> Result<Box<dyn Keyring + 'a>, CliError> {
            let supplier = self.supplier(opts)?;
            let store = crate::cli::branch_key::open_store(&spec.store, &supplier)?;
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
                supplier: self.supplier(opts)?,
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
        supplier: Arc<DefaultClientSupplier>,
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
