//! The AWS KMS ECDH keyring (spec `framework/aws-kms/aws-kms-ecdh-keyring.md` and the KMS
//! schemas of `framework/key-agreement-schemas.md` in the aws-encryption-sdk-specification,
//! as the Material Providers Library implements them in `AwsKmsEcdhKeyring.dfy` and
//! `CreateAwsKmsEcdhKeyring`).
//!
//! See [`AwsKmsEcdhKeyring`].

use std::fmt;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType};
use esdk_core::error::CryptoError;
use esdk_core::materials::DataKey;
use esdk_raw::ecdh::{
    CompressedPoint, EcdhCurve, EcdhPublicKey, KMS_PROVIDER_ID, PROVIDER_ID as RAW_PROVIDER_ID,
    SharedSecretWrap, SpkiDer, ciphertext_len, is_static_pair, parse_provider_info, provider_info,
};
use zeroize::Zeroizing;

use super::arn::KeyIdentifier;
use super::client::client_region;
use super::error::{Attempt, Failure, KmsOperation, from_sdk};
use super::keyring::{Kms, parse_identifier};
use super::rsa::random_data_key;
use super::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest, OwnedEdk};
use crate::Error;

/// The key provider id of the EDKs the AWS KMS ECDH keyring writes (it also decrypts the
/// raw ECDH keyring's `raw-ecdh` EDKs: the formats are the same).
pub const ECDH_PROVIDER_ID: &str = KMS_PROVIDER_ID;

/// The keyring's name in descriptions and errors.
const NAME: &str = "AWS KMS ECDH keyring";

/// Why the AWS KMS ECDH keyring cannot use a key ([`Error::EcdhKey`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EcdhKeyProblem {
    /// The identifier is not a key ARN. KMS names the key by its ARN in its answers, and
    /// the MPL checks them against the configured identifier, so the keyring needs the ARN.
    NotKeyArn,
    /// KMS `GetPublicKey` says the key's usage is not `KEY_AGREEMENT` (an
    /// `ENCRYPT_DECRYPT` or `SIGN_VERIFY` key cannot derive shared secrets).
    KeyUsage {
        /// The usage KMS reported, if any.
        usage: Option<String>,
    },
    /// The KMS key's spec is not the keyring's curve (or not an ECC NIST curve at all).
    KeySpec {
        /// The keyring's curve (`None` when it was to be taken from the key).
        expected: Option<EcdhCurve>,
        /// The key spec KMS reported, if any.
        spec: Option<String>,
    },
    /// A public key is on another curve than the keyring's.
    Curve {
        /// The keyring's curve.
        expected: EcdhCurve,
        /// The key's curve.
        found: EcdhCurve,
    },
    /// KMS `GetPublicKey` answered for another key than the one asked.
    ResponseKeyId {
        /// The `KeyId` KMS returned.
        returned: Option<String>,
    },
    /// KMS `GetPublicKey` returned no public key, or one that is not a DER
    /// SubjectPublicKeyInfo of a P-256, P-384 or P-521 key.
    PublicKey,
}

impl fmt::Display for EcdhKeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotKeyArn => f.write_str(
                "not a key ARN: the keyring needs arn:<partition>:kms:<region>:<account>:key/<id>",
            ),
            Self::KeyUsage { usage } => write!(
                f,
                "the KMS key's usage is {}, not KEY_AGREEMENT: create the key with \
                 KeyUsage=KEY_AGREEMENT and an ECC_NIST_* key spec",
                usage.as_deref().unwrap_or("<not reported>")
            ),
            Self::KeySpec {
                expected: Some(c),
                spec,
            } => write!(
                f,
                "the KMS key spec is {}, the keyring's curve is {c} ({})",
                spec.as_deref().unwrap_or("<not reported>"),
                key_spec(*c).as_str()
            ),
            Self::KeySpec {
                expected: None,
                spec,
            } => write!(
                f,
                "the KMS key spec is {}, not ECC_NIST_P256, ECC_NIST_P384 or ECC_NIST_P521",
                spec.as_deref().unwrap_or("<not reported>")
            ),
            Self::Curve { expected, found } => {
                write!(f, "a {found} public key, the keyring's curve is {expected}")
            }
            Self::ResponseKeyId { returned } => write!(
                f,
                "KMS GetPublicKey answered for key {}",
                returned.as_deref().unwrap_or("<none>")
            ),
            Self::PublicKey => f.write_str(
                "KMS GetPublicKey returned no EC public key (DER SubjectPublicKeyInfo on \
                 P-256, P-384 or P-521)",
            ),
        }
    }
}

/// The KMS key spec of a curve.
fn key_spec(curve: EcdhCurve) -> KeySpec {
    match curve {
        EcdhCurve::P256 => KeySpec::EccNistP256,
        EcdhCurve::P384 => KeySpec::EccNistP384,
        EcdhCurve::P521 => KeySpec::EccNistP521,
    }
}

/// The curve of a KMS key spec, if it is an ECC NIST one.
fn curve_of(spec: &KeySpec) -> Option<EcdhCurve> {
    [EcdhCurve::P256, EcdhCurve::P384, EcdhCurve::P521]
        .into_iter()
        .find(|c| key_spec(*c) == *spec)
}

fn ecdh_key(key: &str, problem: EcdhKeyProblem) -> Error {
    Error::EcdhKey {
        key: key.to_owned(),
        problem,
    }
}

/// Checks that `key` is on `curve`.
fn check_curve(what: &str, curve: EcdhCurve, key: &EcdhPublicKey) -> Result<(), Error> {
    if key.curve() == curve {
        Ok(())
    } else {
        Err(ecdh_key(
            what,
            EcdhKeyProblem::Curve {
                expected: curve,
                found: key.curve(),
            },
        ))
    }
}

/// The key ARN `key_arn`, checked (an alias or bare key id is refused).
fn require_key_arn(key_arn: &str) -> Result<KeyIdentifier, Error> {
    let parsed = parse_identifier(key_arn)?;
    if parsed.is_key_arn() {
        Ok(parsed)
    } else {
        Err(ecdh_key(key_arn, EcdhKeyProblem::NotKeyArn))
    }
}

/// Fetches the public key of the KMS ECDH key `key_arn` with KMS `GetPublicKey`, and checks
/// the answer as the MPL does (spec `framework/key-agreement-schemas.md`, both KMS schemas):
/// the response names `key_arn`, the key usage is `KEY_AGREEMENT`, and the key spec is
/// `curve`'s (`ECC_NIST_P256` / `P384` / `P521`); with `curve` `None`, any of the three,
/// whose curve the returned key is on. Use it once to give a sender (a device with
/// the raw ECDH keyring, or [`AwsKmsEcdhKeyring::kms_private_key_to_static_public_key`]) the
/// recipient's public key.
///
/// # Errors
/// [`Error::Kms`] when the call fails (e.g. `UnsupportedOperationException` for a symmetric
/// key, `NotFoundException`); [`Error::EcdhKey`] when the key is not a key ARN or the
/// answer does not pass the checks ([`EcdhKeyProblem`]).
pub async fn get_ecdh_public_key(
    client: &Client,
    key_arn: &str,
    curve: Option<EcdhCurve>,
) -> Result<EcdhPublicKey, Error> {
    require_key_arn(key_arn)?;
    let region = client_region(client);
    let resp = client
        .get_public_key()
        .key_id(key_arn)
        .send()
        .await
        .map_err(|e| {
            Error::from(from_sdk(
                KmsOperation::GetPublicKey,
                key_arn,
                region.as_deref(),
                e,
            ))
        })?;
    if resp.key_id() != Some(key_arn) {
        return Err(ecdh_key(
            key_arn,
            EcdhKeyProblem::ResponseKeyId {
                returned: resp.key_id().map(str::to_owned),
            },
        ));
    }
    if resp.key_usage() != Some(&KeyUsageType::KeyAgreement) {
        return Err(ecdh_key(
            key_arn,
            EcdhKeyProblem::KeyUsage {
                usage: resp.key_usage().map(|u| u.as_str().to_owned()),
            },
        ));
    }
    let spec_curve = resp.key_spec().and_then(curve_of);
    let key_curve = match (spec_curve, curve) {
        (Some(found), None) => found,
        (Some(found), Some(want)) if found == want => found,
        _ => {
            return Err(ecdh_key(
                key_arn,
                EcdhKeyProblem::KeySpec {
                    expected: curve,
                    spec: resp.key_spec().map(|s| s.as_str().to_owned()),
                },
            ));
        }
    };
    let public = resp
        .public_key()
        .and_then(|der| EcdhPublicKey::from_spki_der(der.as_ref()).ok())
        .ok_or_else(|| ecdh_key(key_arn, EcdhKeyProblem::PublicKey))?;
    check_curve(key_arn, key_curve, &public)?;
    Ok(public)
}

/// The keyring's key agreement schema and its public keys.
enum Scheme {
    /// `KmsPrivateKeyToStaticPublicKey`: the KMS key is the sender's.
    Static {
        sender: CompressedPoint,
        recipient: CompressedPoint,
        /// The recipient's public key as sent to `DeriveSharedSecret` (boxed: the
        /// variants' sizes stay close).
        recipient_der: Box<SpkiDer>,
    },
    /// `KmsPublicKeyDiscovery`: the KMS key is the recipient's.
    Discovery { recipient: CompressedPoint },
}

/// The AWS KMS ECDH keyring: wraps data keys under a key derived from an ECDH shared secret
/// that KMS computes with `DeriveSharedSecret`, so the KMS private key never leaves KMS
/// (spec `framework/aws-kms/aws-kms-ecdh-keyring.md`). Its EDKs are the raw ECDH keyring's
/// (provider id `aws-kms-ecdh`; provider info = version ‖ recipient ‖ sender compressed
/// public keys; ciphertext = salt ‖ commitment key ‖ wrapped key ‖ tag; the same KDF and
/// wrap, [`SharedSecretWrap`]), so either keyring decrypts the other's messages when it holds
/// the right key.
///
/// Two key agreement schemas (spec `framework/key-agreement-schemas.md`):
/// - **`KmsPrivateKeyToStaticPublicKey`** ([`Self::kms_private_key_to_static_public_key`]):
///   the sender's private key is a KMS `KEY_AGREEMENT` key, the recipient's public key is
///   given. Encrypt: `DeriveSharedSecret(sender key, recipient public key)`. Decrypt: the
///   EDKs whose two public keys are this pair (either way round) are tried, with the same
///   call, so sender and recipient can both read the messages.
/// - **`KmsPublicKeyDiscovery`** ([`Self::kms_public_key_discovery`]): the recipient's
///   private key is a KMS key; decrypt-only ([`Error::EncryptNotSupported`]). Every EDK
///   addressed to the key's public key is tried, with `DeriveSharedSecret(recipient key,
///   the sender's public key from the EDK)`, whoever the sender: a device that encrypted with
///   the no_std raw ECDH keyring (`EphemeralPrivateKeyToStaticPublicKey`, to the public key
///   from [`get_ecdh_public_key`]) is read by a server whose key stays in KMS.
///
/// The curve is given, and every key must be on it ([`EcdhKeyProblem`]). The encryption
/// context is bound through the KDF: a message decrypted with another context fails with
/// [`Failure::EcdhUnwrap`]. Any algorithm suite, signing ones included.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_kms::Client) -> Result<(), esdk::Error> {
/// use esdk::kms::{AwsKmsEcdhKeyring, get_ecdh_public_key};
/// use esdk::raw::ecdh::EcdhCurve;
/// let server = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// // Once: the public key a device encrypts to (EphemeralPrivateKeyToStaticPublicKey).
/// let public = get_ecdh_public_key(&client, server, Some(EcdhCurve::P256)).await?;
/// // On the server: decrypts what any sender wrapped for that key.
/// let keyring =
///     AwsKmsEcdhKeyring::kms_public_key_discovery(server, EcdhCurve::P256, client).await?;
/// # let _ = (public, keyring); Ok(()) }
/// ```
pub struct AwsKmsEcdhKeyring {
    key_id: String,
    curve: EcdhCurve,
    scheme: Scheme,
    kms: Kms,
}

impl fmt::Debug for AwsKmsEcdhKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AwsKmsEcdhKeyring");
        d.field("schema", &self.schema())
            .field("key_id", &self.key_id)
            .field("curve", &self.curve)
            .field("region", &self.kms.region);
        match &self.scheme {
            Scheme::Static {
                sender, recipient, ..
            } => d.field("sender", sender).field("recipient", recipient),
            Scheme::Discovery { recipient } => d.field("recipient", recipient),
        };
        d.finish()
    }
}

impl AwsKmsEcdhKeyring {
    /// `KmsPrivateKeyToStaticPublicKey`, with the sender's public key fetched from KMS
    /// (`GetPublicKey` on `sender_key_arn`, checked as [`get_ecdh_public_key`] does).
    ///
    /// # Errors
    /// As [`Self::kms_private_key_to_static_public_key_with`] and [`get_ecdh_public_key`].
    pub async fn kms_private_key_to_static_public_key(
        sender_key_arn: &str,
        curve: EcdhCurve,
        recipient_public: EcdhPublicKey,
        client: Client,
    ) -> Result<Self, Error> {
        require_key_arn(sender_key_arn)?;
        let sender = get_ecdh_public_key(&client, sender_key_arn, Some(curve)).await?;
        Self::kms_private_key_to_static_public_key_with(
            sender_key_arn,
            curve,
            sender,
            recipient_public,
            client,
        )
    }

    /// `KmsPrivateKeyToStaticPublicKey` with the sender's public key given (no KMS call
    /// here). It must be the KMS key's: with another one the EDKs name a sender public key
    /// that does not match the shared secret, and no recipient can read them.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] / [`Error::EcdhKey`] (`NotKeyArn`) unless `sender_key_arn` is
    /// a key ARN; [`Error::RegionMismatch`] when it is of another region than `client`'s;
    /// [`Error::EcdhKey`] (`Curve`) when a public key is not on `curve`.
    pub fn kms_private_key_to_static_public_key_with(
        sender_key_arn: &str,
        curve: EcdhCurve,
        sender_public: EcdhPublicKey,
        recipient_public: EcdhPublicKey,
        client: Client,
    ) -> Result<Self, Error> {
        check_curve("the sender public key", curve, &sender_public)?;
        let scheme = Scheme::Static {
            sender: sender_public.to_compressed(),
            recipient: recipient_public.to_compressed(),
            recipient_der: Box::new(recipient_public.to_spki_der()),
        };
        Self::build(sender_key_arn, curve, &recipient_public, scheme, client)
    }

    /// The keyring for `key_arn`, after the checks every schema makes.
    fn build(
        key_arn: &str,
        curve: EcdhCurve,
        recipient_public: &EcdhPublicKey,
        scheme: Scheme,
        client: Client,
    ) -> Result<Self, Error> {
        let parsed = require_key_arn(key_arn)?;
        check_curve("the recipient public key", curve, recipient_public)?;
        let kms = Kms::new(client);
        kms.check_region(&parsed)?;
        Ok(Self {
            key_id: key_arn.to_owned(),
            curve,
            scheme,
            kms,
        })
    }

    /// `KmsPublicKeyDiscovery` for the recipient's KMS key, whose public key is fetched
    /// from KMS (`GetPublicKey`, checked as [`get_ecdh_public_key`] does). Decrypt-only.
    ///
    /// # Errors
    /// As [`Self::kms_public_key_discovery_with`] and [`get_ecdh_public_key`].
    pub async fn kms_public_key_discovery(
        recipient_key_arn: &str,
        curve: EcdhCurve,
        client: Client,
    ) -> Result<Self, Error> {
        require_key_arn(recipient_key_arn)?;
        let public = get_ecdh_public_key(&client, recipient_key_arn, Some(curve)).await?;
        Self::kms_public_key_discovery_with(recipient_key_arn, curve, public, client)
    }

    /// `KmsPublicKeyDiscovery` with the recipient's public key given (no KMS call here).
    ///
    /// # Errors
    /// As [`Self::kms_private_key_to_static_public_key_with`].
    pub fn kms_public_key_discovery_with(
        recipient_key_arn: &str,
        curve: EcdhCurve,
        recipient_public: EcdhPublicKey,
        client: Client,
    ) -> Result<Self, Error> {
        let scheme = Scheme::Discovery {
            recipient: recipient_public.to_compressed(),
        };
        Self::build(recipient_key_arn, curve, &recipient_public, scheme, client)
    }

    /// Sends these grant tokens with every `DeriveSharedSecret` call.
    pub fn with_grant_tokens(mut self, tokens: &[String]) -> Self {
        self.kms.grant_tokens = tokens.to_vec();
        self
    }

    /// The KMS key ARN: the sender's (`KmsPrivateKeyToStaticPublicKey`) or the
    /// recipient's (`KmsPublicKeyDiscovery`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The curve.
    pub fn curve(&self) -> EcdhCurve {
        self.curve
    }

    /// The schema's name: `KmsPrivateKeyToStaticPublicKey` or `KmsPublicKeyDiscovery`.
    pub fn schema(&self) -> &'static str {
        match self.scheme {
            Scheme::Static { .. } => "KmsPrivateKeyToStaticPublicKey",
            Scheme::Discovery { .. } => "KmsPublicKeyDiscovery",
        }
    }

    /// Whether it can encrypt (`KmsPrivateKeyToStaticPublicKey` only).
    pub fn can_encrypt(&self) -> bool {
        matches!(self.scheme, Scheme::Static { .. })
    }

    /// KMS `DeriveSharedSecret` with the keyring's key and `peer` (a DER SPKI); checks the
    /// response (the MPL's checks: the key ARN, the algorithm, and here also the length).
    async fn derive(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let key_id = self.key_id.as_str();
        let mut resp = self
            .kms
            .client
            .derive_shared_secret()
            .key_id(key_id)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(Blob::new(peer.to_vec()))
            .set_grant_tokens(self.kms.tokens())
            .send()
            .await
            .map_err(|e| {
                Failure::Kms(from_sdk(
                    KmsOperation::DeriveSharedSecret,
                    key_id,
                    self.kms.region.as_deref(),
                    e,
                ))
            })?;
        let secret = Zeroizing::new(
            resp.shared_secret
                .take()
                .ok_or(Failure::MissingField("SharedSecret"))?
                .into_inner(),
        );
        if resp.key_id() != Some(key_id) {
            return Err(Failure::ResponseKeyId {
                expected: key_id.to_owned(),
                returned: resp.key_id.take(),
            });
        }
        // The MPL requires the response to say ECDH as well.
        if resp.key_agreement_algorithm() != Some(&KeyAgreementAlgorithmSpec::Ecdh) {
            return Err(Failure::MissingField("KeyAgreementAlgorithm ECDH"));
        }
        let expected = self.curve.shared_secret_len();
        if secret.len() != expected {
            return Err(Failure::SharedSecretLength {
                expected,
                returned: secret.len(),
            });
        }
        Ok(secret)
    }

    /// Tries one EDK: filter, `DeriveSharedSecret`, unwrap.
    async fn try_edk(
        &self,
        provider_id: &str,
        info: &[u8],
        ciphertext: &[u8],
        req: &DecryptRequest<'_>,
        ec: &[u8],
    ) -> Result<DataKey, Failure> {
        if provider_id != KMS_PROVIDER_ID && provider_id != RAW_PROVIDER_ID {
            return Err(Failure::ProviderId(provider_id.to_owned()));
        }
        let bad_info = || Failure::EcdhProviderInfo { curve: self.curve };
        let (edk_recipient, edk_sender) =
            parse_provider_info(self.curve, info).ok_or_else(bad_info)?;
        // Both points must be on the curve (the MPL decompresses and validates them).
        let sender_key =
            EcdhPublicKey::from_sec1(self.curve, edk_sender).map_err(|_| bad_info())?;
        EcdhPublicKey::from_sec1(self.curve, edk_recipient).map_err(|_| bad_info())?;
        let peer = match &self.scheme {
            Scheme::Static {
                sender,
                recipient,
                recipient_der,
            } => {
                let (s, r) = (sender.as_bytes(), recipient.as_bytes());
                if !is_static_pair(s, r, edk_sender, edk_recipient) {
                    return Err(Failure::EcdhPublicKeys);
                }
                // Either way the agreement is between the KMS key and the configured
                // recipient public key.
                **recipient_der
            }
            Scheme::Discovery { recipient } => {
                if edk_recipient != recipient.as_bytes() {
                    return Err(Failure::EcdhPublicKeys);
                }
                sender_key.to_spki_der()
            }
        };
        let key_len = req.suite.key_len();
        if ciphertext.len() != ciphertext_len(key_len) {
            return Err(Failure::EcdhUnwrap(
                esdk_core::error::AttemptFailure::DataKeyLength,
            ));
        }
        let z = self.derive(peer.as_bytes()).await?;
        SharedSecretWrap {
            curve: self.curve,
            shared_secret: &z,
            sender: edk_sender,
            recipient: edk_recipient,
            serialized_ec: ec,
        }
        .unwrap(ciphertext, key_len)
        .map_err(Failure::EcdhUnwrap)
    }
}

/// The canonical serialization of `ec` (sorted by key; no bytes for no pairs).
fn serialize_ec(ec: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    esdk_core::encryption_context::feed(
        ec.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        &mut |b: &[u8]| out.extend_from_slice(b),
    );
    out
}

#[async_trait]
impl AsyncKeyring for AwsKmsEcdhKeyring {
    async fn on_encrypt(&self, req: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        let Scheme::Static {
            sender,
            recipient,
            recipient_der,
        } = &self.scheme
        else {
            return Err(Error::EncryptNotSupported {
                keyring: self.description(),
            });
        };
        let op = KmsOperation::DeriveSharedSecret;
        let z = self
            .derive(recipient_der.as_bytes())
            .await
            .map_err(|f| match f {
                Failure::Kms(e) => Error::from(e),
                other => Error::InvalidResponse {
                    operation: op,
                    key_id: self.key_id.clone(),
                    failure: Box::new(other),
                },
            })?;
        let mut generated = None;
        let key: &DataKey = match req.data_key {
            Some(k) => k,
            None => generated.insert(random_data_key(req.suite)?),
        };
        let mut salt = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut salt[..]).map_err(|_| Error::Core(CryptoError::Rng.into()))?;
        let ec = serialize_ec(req.encryption_context);
        let wrapped = SharedSecretWrap {
            curve: self.curve,
            shared_secret: &z,
            sender: sender.as_bytes(),
            recipient: recipient.as_bytes(),
            serialized_ec: &ec,
        }
        .wrap(&salt, key.as_bytes())?;
        let info = provider_info(self.curve, recipient, sender)?;
        Ok(EncryptOutcome {
            data_key: generated,
            edks: vec![OwnedEdk {
                provider_id: ECDH_PROVIDER_ID.to_owned(),
                provider_info: info.as_bytes().to_vec(),
                ciphertext: wrapped.as_bytes().to_vec(),
            }],
        })
    }

    async fn on_decrypt(&self, req: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        let ec = serialize_ec(req.encryption_context);
        let description = self.description();
        let mut attempts = Vec::new();
        for (i, e) in req.edks {
            match self
                .try_edk(e.provider_id, e.provider_info, e.ciphertext, req, &ec)
                .await
            {
                Ok(dk) => return Ok(dk),
                Err(failure) => attempts.push(Attempt {
                    keyring: description.clone(),
                    edk: Some(*i),
                    edk_key: None,
                    failure,
                }),
            }
        }
        Err(Error::NoDataKeyDecrypted { attempts })
    }

    fn description(&self) -> String {
        format!("{NAME} {} ({}, {})", self.key_id, self.schema(), self.curve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_specs_and_curves() {
        for c in [EcdhCurve::P256, EcdhCurve::P384, EcdhCurve::P521] {
            assert_eq!(curve_of(&key_spec(c)), Some(c));
        }
        assert_eq!(key_spec(EcdhCurve::P384).as_str(), "ECC_NIST_P384");
        assert_eq!(curve_of(&KeySpec::EccSecgP256K1), None);
        assert_eq!(curve_of(&KeySpec::Rsa2048), None);
    }

    #[test]
    fn problems_say_what_to_do() {
        let e = ecdh_key(
            "arn:aws:kms:us-west-2:111122223333:key/k",
            EcdhKeyProblem::KeyUsage {
                usage: Some("ENCRYPT_DECRYPT".into()),
            },
        );
        assert!(e.is_configuration());
        let s = e.to_string();
        assert!(s.contains("key/k") && s.contains("ENCRYPT_DECRYPT"), "{s}");
        assert!(s.contains("KEY_AGREEMENT"), "{s}");
        let s = EcdhKeyProblem::KeySpec {
            expected: Some(EcdhCurve::P384),
            spec: Some("ECC_NIST_P256".into()),
        }
        .to_string();
        assert!(s.contains("ECC_NIST_P256") && s.contains("P-384"), "{s}");
        assert!(s.contains("ECC_NIST_P384"), "{s}");
        assert!(
            require_key_arn("alias/x")
                .unwrap_err()
                .to_string()
                .contains("not a key ARN")
        );
    }

    #[test]
    fn serialized_context_is_canonical() {
        assert!(serialize_ec(&[]).is_empty());
        assert_eq!(serialize_ec(&[("a", "b")]), [0, 1, 0, 1, b'a', 0, 1, b'b']);
    }
}
