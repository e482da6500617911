//! The AWS KMS RSA keyring (spec `framework/aws-kms/aws-kms-rsa-keyring.md` of the
//! aws-encryption-sdk-specification, as the Material Providers Library implements it in
//! `AwsKmsRsaKeyring.dfy`).
//!
//! See [`AwsKmsRsaKeyring`].

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::types::EncryptionAlgorithmSpec;
use esdk_core::AlgorithmSuite;
use esdk_core::error::CryptoError;
use esdk_core::materials::DataKey;
use esdk_raw::rsa::{RsaEncryptor, RsaPadding, RsaPublicKey};
use sha2::{Digest, Sha384};
use zeroize::Zeroizing;

use super::arn::{KeyIdentifier, mrk_match_for_decrypt};
use super::error::Failure;
use super::keyring::{EdkDecrypt, Kms, decrypt_loop, parse_identifier, strict_plan};
use super::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest, OwnedEdk};
use crate::Error;

/// The key provider id of the EDKs the AWS KMS RSA keyring writes.
pub const RSA_PROVIDER_ID: &str = "aws-kms-rsa";

/// The length of the encryption context digest (SHA-384) at the front of the RSA plaintext.
pub const EC_DIGEST_LEN: usize = 48;

/// The keyring's name in descriptions and errors.
const NAME: &str = "AWS KMS RSA keyring";

/// The KMS encryption algorithm of an AWS KMS RSA keyring: the RSA padding used locally on
/// encrypt and sent to KMS `Decrypt` (spec "Supported Padding Schemes"). It must be one the
/// KMS key supports, and the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KmsRsaAlgorithm {
    /// `RSAES_OAEP_SHA_1`: OAEP with SHA-1 and MGF1 with SHA-1.
    RsaesOaepSha1,
    /// `RSAES_OAEP_SHA_256`: OAEP with SHA-256 and MGF1 with SHA-256.
    RsaesOaepSha256,
}

impl KmsRsaAlgorithm {
    /// Both algorithms.
    pub const ALL: [Self; 2] = [Self::RsaesOaepSha1, Self::RsaesOaepSha256];

    /// The KMS name, `RSAES_OAEP_SHA_1` or `RSAES_OAEP_SHA_256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        }
    }

    /// The algorithm with this KMS name (exact spelling), if any.
    pub fn from_kms_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The RSA padding it means.
    pub fn padding(self) -> RsaPadding {
        match self {
            Self::RsaesOaepSha1 => RsaPadding::OaepSha1,
            Self::RsaesOaepSha256 => RsaPadding::OaepSha256,
        }
    }

    /// The algorithm for an RSA padding, if KMS has one (OAEP with SHA-1 or SHA-256).
    pub fn from_padding(padding: RsaPadding) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.padding() == padding)
    }

    fn spec(self) -> EncryptionAlgorithmSpec {
        match self {
            Self::RsaesOaepSha1 => EncryptionAlgorithmSpec::RsaesOaepSha1,
            Self::RsaesOaepSha256 => EncryptionAlgorithmSpec::RsaesOaepSha256,
        }
    }
}

impl std::fmt::Display for KmsRsaAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SHA-384 digest of the canonical serialization of `ec` (sorted by key; empty for no
/// pairs), as the spec's "Encryption Context Digest".
fn ec_digest(ec: &[(&str, &str)]) -> [u8; EC_DIGEST_LEN] {
    let mut h = Sha384::new();
    esdk_core::encryption_context::feed(
        ec.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        &mut |b: &[u8]| h.update(b),
    );
    h.finalize().into()
}

/// A fresh data key of the suite's length from the operating system's CSPRNG.
pub(super) fn random_data_key(suite: AlgorithmSuite) -> Result<DataKey, Error> {
    let mut key = Zeroizing::new(vec![0u8; suite.key_len()]);
    getrandom::fill(&mut key).map_err(|_| Error::Core(CryptoError::Rng.into()))?;
    Ok(DataKey::from_slice(&key)?)
}

/// KMS `Decrypt` of an RSA EDK with the configured algorithm and the digest check.
struct RsaDecrypt<'a> {
    kms: &'a Kms,
    algorithm: KmsRsaAlgorithm,
}

#[async_trait]
impl EdkDecrypt for RsaDecrypt<'_> {
    const PROVIDER_ID: &'static str = RSA_PROVIDER_ID;

    async fn decrypt_edk(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        req: &DecryptRequest<'_>,
    ) -> Result<DataKey, Failure> {
        // The digest of this message's full context (stored + reproduced pairs).
        let digest = ec_digest(req.encryption_context);
        let plaintext = self
            .kms
            .decrypt_call(key_id, ciphertext, None, Some(self.algorithm.spec()))
            .await?;
        let bytes = Zeroizing::new(
            plaintext
                .ok_or(Failure::MissingField("Plaintext"))?
                .into_inner(),
        );
        let expected = EC_DIGEST_LEN + req.suite.key_len();
        if bytes.len() != expected {
            return Err(Failure::PlaintextLength {
                expected,
                returned: bytes.len(),
            });
        }
        let (got_digest, key) = bytes.split_at(EC_DIGEST_LEN);
        if got_digest != digest {
            return Err(Failure::EncryptionContextDigest);
        }
        DataKey::from_slice(key).map_err(|_| Failure::PlaintextLength {
            expected,
            returned: bytes.len(),
        })
    }
}

/// The AWS KMS RSA keyring: encrypts locally with a KMS RSA key's public key, decrypts with
/// KMS `Decrypt` (spec `framework/aws-kms/aws-kms-rsa-keyring.md`).
///
/// - **Encrypt** is local: no KMS call. The data key is wrapped with the KMS key's RSA
///   public key (given by the caller as PEM or DER, e.g. from KMS `GetPublicKey` once), with
///   RSA-OAEP SHA-1 or SHA-256 (MGF1 with the same hash). The RSA plaintext is the SHA-384
///   digest of the message's serialized encryption context (48 bytes) followed by the data
///   key: RSA has no associated data, so the digest is what binds the context to the EDK.
///   EDK: provider id `aws-kms-rsa`, provider info the configured key identifier.
/// - **Decrypt** calls KMS `Decrypt` with the configured key, the EDK ciphertext, the
///   configured `EncryptionAlgorithm` (`RSAES_OAEP_SHA_1` / `RSAES_OAEP_SHA_256`) and no
///   encryption context; it then checks the response's `KeyId`, the length (48 + the suite's
///   key length) and that the digest prefix equals the digest of this message's context.
///   Only `aws-kms-rsa` EDKs whose provider info is a key ARN that matches the configured key
///   (multi-Region keys: any replica, spec "AWS KMS MRK Match for Decrypt") are tried.
/// - **No signing suites**: encrypt and decrypt both refuse a suite with an ECDSA signature
///   ([`Error::SigningSuiteNotSupported`]): the wrapping key is public, so anyone can make a
///   message for it and a signature would prove nothing (spec "Security Considerations").
///   Use 0x0478 (or 0x0178 where key commitment is not required).
///
/// ```no_run
/// # async fn demo(client: aws_sdk_kms::Client, pem: &str) -> Result<(), esdk::Error> {
/// use esdk::kms::{AwsKmsRsaKeyring, KmsRsaAlgorithm};
/// use esdk::raw::rsa::RsaPublicKey;
/// let arn = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// let public = RsaPublicKey::from_pem(pem)?;
/// let keyring =
///     AwsKmsRsaKeyring::new(arn, KmsRsaAlgorithm::RsaesOaepSha256, Some(public), Some(client))?;
/// # let _ = keyring; Ok(()) }
/// ```
///
/// With no public key it is decrypt-only ([`Error::EncryptNotSupported`]); with no client it
/// is encrypt-only ([`Error::DecryptNotSupported`]): a sender holding only the public key
/// needs no AWS credentials at all.
pub struct AwsKmsRsaKeyring {
    key_id: String,
    parsed: KeyIdentifier,
    algorithm: KmsRsaAlgorithm,
    encryptor: Option<RsaEncryptor>,
    kms: Option<Kms>,
}

impl std::fmt::Debug for AwsKmsRsaKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsRsaKeyring")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field(
                "public_key_bits",
                &self.encryptor.as_ref().map(RsaEncryptor::modulus_bits),
            )
            .field("region", &self.kms.as_ref().map(|k| &k.region))
            .finish()
    }
}

impl AwsKmsRsaKeyring {
    /// A keyring for the KMS RSA key `key_id` (a key ARN, or a key id; not an alias) with
    /// `algorithm`, encrypting with `public_key` and decrypting through `client`. Decryption
    /// needs `key_id` to be the key ARN, as recorded in each EDK.
    ///
    /// The public key is not checked against KMS here (spec: no synchronous check); a wrong
    /// one makes messages that the KMS key cannot decrypt.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] for an invalid identifier; [`Error::AliasNotAllowed`] for an
    /// alias name or alias ARN; [`Error::RegionMismatch`] when `key_id` is an ARN of another
    /// region than `client`'s; [`Error::Core`] if the public key cannot be used for the
    /// padding. Keys under 2048 bits are refused when loaded ([`RsaPublicKey`]).
    pub fn new(
        key_id: &str,
        algorithm: KmsRsaAlgorithm,
        public_key: Option<RsaPublicKey>,
        client: Option<Client>,
    ) -> Result<Self, Error> {
        let parsed = parse_identifier(key_id)?;
        let is_alias = match &parsed {
            KeyIdentifier::Alias(_) => true,
            KeyIdentifier::Arn(a) => a.resource_type() == super::ResourceType::Alias,
            KeyIdentifier::KeyId(_) => false,
        };
        if is_alias {
            return Err(Error::AliasNotAllowed {
                keyring: NAME,
                key_id: key_id.to_owned(),
            });
        }
        let kms = client.map(Kms::new);
        if let Some(k) = &kms {
            k.check_region(&parsed)?;
        }
        let encryptor = public_key
            .map(|p| RsaEncryptor::new(p, algorithm.padding()))
            .transpose()?;
        Ok(Self {
            key_id: key_id.to_owned(),
            parsed,
            algorithm,
            encryptor,
            kms,
        })
    }

    /// Sends these grant tokens with every KMS call.
    pub fn with_grant_tokens(mut self, tokens: &[String]) -> Self {
        if let Some(k) = &mut self.kms {
            k.grant_tokens = tokens.to_vec();
        }
        self
    }

    /// The configured key identifier (the provider info of the EDKs it writes).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The KMS encryption algorithm.
    pub fn algorithm(&self) -> KmsRsaAlgorithm {
        self.algorithm
    }

    /// Whether it holds a public key and so can encrypt.
    pub fn can_encrypt(&self) -> bool {
        self.encryptor.is_some()
    }

    /// Whether it holds a KMS client and so can decrypt.
    pub fn can_decrypt(&self) -> bool {
        self.kms.is_some()
    }

    fn refuse_signing(&self, suite: AlgorithmSuite) -> Result<(), Error> {
        match suite.signature() {
            Some(_) => Err(Error::SigningSuiteNotSupported {
                keyring: self.description(),
                suite,
            }),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl AsyncKeyring for AwsKmsRsaKeyring {
    async fn on_encrypt(&self, req: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        let Some(encryptor) = &self.encryptor else {
            return Err(Error::EncryptNotSupported {
                keyring: self.description(),
            });
        };
        self.refuse_signing(req.suite)?;
        let mut generated = None;
        let key: &DataKey = match req.data_key {
            Some(k) => k,
            None => generated.insert(random_data_key(req.suite)?),
        };
        let mut message = Zeroizing::new(Vec::with_capacity(EC_DIGEST_LEN + key.as_bytes().len()));
        message.extend_from_slice(&ec_digest(req.encryption_context));
        message.extend_from_slice(key.as_bytes());
        let ciphertext = encryptor.encrypt_to_vec(&message)?;
        Ok(EncryptOutcome {
            data_key: generated,
            edks: vec![OwnedEdk {
                provider_id: RSA_PROVIDER_ID.to_owned(),
                provider_info: self.key_id.as_bytes().to_vec(),
                ciphertext,
            }],
        })
    }

    async fn on_decrypt(&self, req: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        let Some(kms) = &self.kms else {
            return Err(Error::DecryptNotSupported {
                keyring: self.description(),
            });
        };
        self.refuse_signing(req.suite)?;
        let configured = self.key_id.as_str();
        let is_arn = self.parsed.is_key_arn();
        let unwrap = RsaDecrypt {
            kms,
            algorithm: self.algorithm,
        };
        // Spec: the EDK's key must pass "AWS KMS MRK Match for Decrypt" with the configured
        // key; KMS Decrypt is then called with the configured key.
        decrypt_loop(&unwrap, &self.description(), req, |_, info| {
            strict_plan(configured, is_arn, mrk_match_for_decrypt(configured, info))
        })
        .await
    }

    fn description(&self) -> String {
        format!("{NAME} {} ({})", self.key_id, self.algorithm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_digest_is_sha384_of_the_canonical_context() {
        // No pairs: the digest of nothing (the MPL serializes an empty context to no bytes).
        assert_eq!(ec_digest(&[]).as_slice(), Sha384::digest(b"").as_slice());
        // Two pairs: count, then each key and value with a 2-byte big-endian length.
        let mut expected = vec![0, 2];
        for f in [&b"a"[..], b"1", b"bb", b"22"] {
            expected.extend_from_slice(&u16::try_from(f.len()).unwrap().to_be_bytes());
            expected.extend_from_slice(f);
        }
        assert_eq!(
            ec_digest(&[("a", "1"), ("bb", "22")]).as_slice(),
            Sha384::digest(&expected).as_slice()
        );
    }

    #[test]
    fn algorithm_names_and_paddings() {
        for a in KmsRsaAlgorithm::ALL {
            assert_eq!(KmsRsaAlgorithm::from_kms_name(a.as_str()), Some(a));
            assert_eq!(KmsRsaAlgorithm::from_padding(a.padding()), Some(a));
        }
        assert_eq!(KmsRsaAlgorithm::from_kms_name("RSAES_PKCS1_V1_5"), None);
        assert_eq!(KmsRsaAlgorithm::from_padding(RsaPadding::OaepSha384), None);
        assert_eq!(
            KmsRsaAlgorithm::RsaesOaepSha256.spec(),
            EncryptionAlgorithmSpec::RsaesOaepSha256
        );
    }
}
