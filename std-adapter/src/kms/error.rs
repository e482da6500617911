//! The detail of KMS failures (carried by [`crate::Error`]): which key, which region, which KMS error code, and for
//! decryption one record per encrypted data key tried (reference/user-asks.md #6).

use std::fmt;
use std::sync::Arc;

use esdk_core::error::AttemptFailure;

use super::arn::ArnError;
pub(crate) use crate::Error;

/// A KMS operation the keyrings call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsOperation {
    /// `GenerateDataKey`.
    GenerateDataKey,
    /// `Encrypt`.
    Encrypt,
    /// `Decrypt`.
    Decrypt,
    /// `GetPublicKey` (the AWS KMS ECDH keyring's key pair).
    GetPublicKey,
    /// `DeriveSharedSecret` (the AWS KMS ECDH keyring).
    DeriveSharedSecret,
    /// `GenerateDataKeyWithoutPlaintext` (the branch key store creating a branch key).
    GenerateDataKeyWithoutPlaintext,
    /// `ReEncrypt` (the branch key store making a version active).
    ReEncrypt,
}

impl fmt::Display for KmsOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KmsOperation::GenerateDataKey => "GenerateDataKey",
            KmsOperation::Encrypt => "Encrypt",
            KmsOperation::Decrypt => "Decrypt",
            KmsOperation::GetPublicKey => "GetPublicKey",
            KmsOperation::DeriveSharedSecret => "DeriveSharedSecret",
            KmsOperation::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            KmsOperation::ReEncrypt => "ReEncrypt",
        })
    }
}

/// The kind of a failed KMS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KmsErrorKind {
    /// KMS answered with an error (see [`KmsError::code`]): access denied, wrong key,
    /// disabled key, invalid ciphertext or encryption context, ...
    Service,
    /// KMS throttled the request (`ThrottlingException`) and the retries ran out.
    Throttled,
    /// The call timed out.
    Timeout,
    /// The endpoint could not be reached (connection refused, DNS, TLS) after the retries.
    Unavailable,
    /// The response could not be understood.
    Response,
    /// The request could not be built or sent (configuration).
    Request,
    /// No credentials: none in the chain (environment, profile, SSO, web identity, ECS,
    /// IMDS), or the provider that should give them failed (an expired SSO session, a
    /// failing `credential_process`).
    Credentials,
}

/// A failed KMS call, with the key, the region and the service error code.
#[derive(Clone)]
pub struct KmsError {
    /// The operation.
    pub operation: KmsOperation,
    /// The `KeyId` of the request.
    pub key_id: String,
    /// The client's region, when known.
    pub region: Option<String>,
    /// What kind of failure.
    pub kind: KmsErrorKind,
    /// The KMS error code (`AccessDeniedException`, `DisabledException`,
    /// `InvalidCiphertextException`, `IncorrectKeyException`, `NotFoundException`,
    /// `ThrottlingException`, ...), when KMS answered.
    pub code: Option<String>,
    /// The error message, when there is one.
    pub message: Option<String>,
    pub(crate) source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Debug for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsError")
            .field("operation", &self.operation)
            .field("key_id", &self.key_id)
            .field("region", &self.region)
            .field("kind", &self.kind)
            .field("code", &self.code)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KMS {} with key {}", self.operation, self.key_id)?;
        if let Some(r) = &self.region {
            write!(f, " in {r}")?;
        }
        f.write_str(" failed: ")?;
        fmt_call_failure(
            f,
            self.kind,
            self.code.as_deref(),
            self.message.as_deref(),
            self.source.as_deref(),
        )
    }
}

/// Writes what went wrong with an AWS call (KMS or DynamoDB): its kind, then the service's
/// code and message, or else the source chain.
pub(crate) fn fmt_call_failure(
    f: &mut fmt::Formatter<'_>,
    kind: KmsErrorKind,
    code: Option<&str>,
    message: Option<&str>,
    source: Option<&(dyn std::error::Error + Send + Sync + 'static)>,
) -> fmt::Result {
    match kind {
        KmsErrorKind::Service => {}
        KmsErrorKind::Throttled => f.write_str("throttled (retries exhausted): ")?,
        KmsErrorKind::Timeout => f.write_str("timed out: ")?,
        KmsErrorKind::Unavailable => f.write_str("endpoint unreachable: ")?,
        KmsErrorKind::Response => f.write_str("unreadable response: ")?,
        KmsErrorKind::Request => f.write_str("request not sent: ")?,
        KmsErrorKind::Credentials => f.write_str("no AWS credentials: ")?,
    }
    match (code, message) {
        (Some(c), Some(m)) => write!(f, "{c}: {m}"),
        (Some(c), None) => f.write_str(c),
        (None, Some(m)) => f.write_str(m),
        (None, None) => match source {
            Some(s) => write!(f, "{}", DisplayChain(s)),
            None => f.write_str("no detail"),
        },
    }
}

/// Displays an error and its sources, separated by ": ".
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for KmsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Why one keyring did not decrypt one encrypted data key, or why a KMS response was refused.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Failure {
    /// The EDK is not from this kind of keyring (its provider id is shown): not `aws-kms`
    /// for the KMS keyrings, not `aws-kms-rsa` for the AWS KMS RSA keyring.
    ProviderId(String),
    /// An `aws-kms` EDK whose provider info is not a valid key ARN; the keyring fails.
    ProviderInfo(ArnError),
    /// The keyring is configured with an alias or a bare key id, which can never match an
    /// EDK: KMS records the key ARN in each message, so decryption needs the key ARN.
    ConfiguredKeyNotArn {
        /// The configured identifier.
        configured: String,
    },
    /// The EDK was made with another key than the configured one.
    KeyMismatch {
        /// The configured key.
        configured: String,
    },
    /// The discovery filter's partition differs from the EDK key's.
    PartitionFilter {
        /// The filter's partition.
        allowed: String,
    },
    /// The EDK key's account is not in the discovery filter.
    AccountFilter {
        /// The filter's accounts.
        allowed: Vec<String>,
    },
    /// A single-Region key of another region than the discovery keyring's client.
    RegionMismatch {
        /// The keyring's region.
        client_region: String,
    },
    /// The KMS call failed.
    Kms(KmsError),
    /// KMS answered for another key than the one asked.
    ResponseKeyId {
        /// The key that was asked for.
        expected: String,
        /// The `KeyId` KMS returned.
        returned: Option<String>,
    },
    /// KMS returned a key of the wrong length for the algorithm suite.
    PlaintextLength {
        /// The suite's data key length.
        expected: usize,
        /// The length returned.
        returned: usize,
    },
    /// The AWS KMS RSA keyring's EDK decrypted, but the encryption context digest inside it
    /// is not the digest of this message's encryption context: the message was made with
    /// another encryption context (or a reproduced context differs).
    EncryptionContextDigest,
    /// A required response field is missing.
    MissingField(&'static str),
    /// An ECDH EDK (`aws-kms-ecdh` or `raw-ecdh`) whose provider info is not a serialized
    /// pair of public keys on the keyring's curve (another curve, or malformed).
    EcdhProviderInfo {
        /// The keyring's curve.
        curve: esdk_raw::ecdh::EcdhCurve,
    },
    /// An ECDH EDK made for other public keys than the AWS KMS ECDH keyring's (another
    /// recipient, or for a static keyring another sender); no KMS call was made.
    EcdhPublicKeys,
    /// KMS `DeriveSharedSecret` answered with a shared secret of the wrong length.
    SharedSecretLength {
        /// The curve's length.
        expected: usize,
        /// The length returned.
        returned: usize,
    },
    /// An ECDH EDK could not be unwrapped with the derived key: `UnwrapFailed` when the
    /// commitment key or tag does not match (another encryption context, or another key
    /// pair), `DataKeyLength` when its ciphertext is not the length for the suite.
    EcdhUnwrap(AttemptFailure),
    /// A child keyring failed with another error.
    Keyring(Arc<Error>),
    /// The hierarchical keyring could not get the branch key version its EDK names from the
    /// branch key store (not found, KMS or DynamoDB failure, ...).
    BranchKeyStore(Arc<super::BranchKeyStoreError>),
    /// A hierarchical keyring EDK whose ciphertext has the wrong length for the suite
    /// (salt, IV, branch key version, wrapped key and tag).
    CiphertextLength {
        /// The length the suite needs.
        expected: usize,
        /// The EDK's length.
        found: usize,
    },
    /// A hierarchical keyring EDK did not authenticate under the branch key version it
    /// names: the message's encryption context is not the one it was encrypted with, or the
    /// EDK was altered.
    BranchKeyUnwrap {
        /// The branch key version.
        version: String,
    },
}

impl Failure {
    /// The reason recorded in the core's bounded attempt list.
    pub fn core_reason(&self) -> AttemptFailure {
        match self {
            Failure::ProviderId(_) => AttemptFailure::ProviderIdMismatch,
            Failure::ProviderInfo(_) => AttemptFailure::ProviderInfoFormat,
            Failure::ConfiguredKeyNotArn { .. }
            | Failure::KeyMismatch { .. }
            | Failure::PartitionFilter { .. }
            | Failure::AccountFilter { .. }
            | Failure::RegionMismatch { .. } => AttemptFailure::KeyNameMismatch,
            Failure::PlaintextLength { .. } => AttemptFailure::DataKeyLength,
            Failure::EcdhProviderInfo { .. } => AttemptFailure::ProviderInfoFormat,
            Failure::EcdhPublicKeys => AttemptFailure::KeyNameMismatch,
            Failure::EcdhUnwrap(reason) => *reason,
            Failure::SharedSecretLength { .. } => AttemptFailure::Backend,
            Failure::EncryptionContextDigest | Failure::BranchKeyUnwrap { .. } => {
                AttemptFailure::UnwrapFailed
            }
            Failure::CiphertextLength { .. } => AttemptFailure::ProviderInfoFormat,
            Failure::BranchKeyStore(_) => AttemptFailure::Backend,
            Failure::Kms(_)
            | Failure::ResponseKeyId { .. }
            | Failure::MissingField(_)
            | Failure::Keyring(_) => AttemptFailure::Backend,
        }
    }

    /// Whether this was a real attempt (a KMS call or a refused response) rather than an
    /// EDK the keyring does not handle.
    pub fn is_call(&self) -> bool {
        matches!(
            self,
            Failure::Kms(_)
                | Failure::ResponseKeyId { .. }
                | Failure::PlaintextLength { .. }
                | Failure::EncryptionContextDigest
                | Failure::MissingField(_)
                | Failure::SharedSecretLength { .. }
                | Failure::EcdhUnwrap(_)
                | Failure::BranchKeyStore(_)
                | Failure::BranchKeyUnwrap { .. }
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::ProviderId(p) => {
                write!(f, "not an EDK this keyring handles (provider id {p:?})")
            }
            Failure::ProviderInfo(e) => write!(f, "malformed key ARN in the EDK: {e}"),
            Failure::ConfiguredKeyNotArn { configured } => write!(
                f,
                "the keyring is configured with {configured:?}, which is not a key ARN: \
                 aliases and bare key ids work for encryption only; decrypt with the key \
                 ARN (arn:<partition>:kms:<region>:<account>:key/<id>) or a discovery keyring"
            ),
            Failure::KeyMismatch { configured } => {
                write!(
                    f,
                    "wrapped under another key than the configured {configured}"
                )
            }
            Failure::PartitionFilter { allowed } => {
                write!(
                    f,
                    "rejected by the discovery filter (partition is not {allowed:?})"
                )
            }
            Failure::AccountFilter { allowed } => write!(
                f,
                "rejected by the discovery filter (account not in {})",
                allowed.join(", ")
            ),
            Failure::RegionMismatch { client_region } => write!(
                f,
                "a single-Region key outside the keyring's region {client_region}"
            ),
            Failure::Kms(e) => e.fmt(f),
            Failure::ResponseKeyId { expected, returned } => write!(
                f,
                "KMS answered for key {} instead of {expected}",
                returned.as_deref().unwrap_or("<none>")
            ),
            Failure::PlaintextLength { expected, returned } => write!(
                f,
                "KMS returned a {returned}-byte data key, the suite needs {expected}"
            ),
            Failure::EncryptionContextDigest => f.write_str(
                "KMS decrypted the EDK, but the encryption context digest inside it does not \
                 match this message's encryption context (encrypted with another context)",
            ),
            Failure::MissingField(name) => write!(f, "the KMS response has no {name}"),
            Failure::EcdhProviderInfo { curve } => write!(
                f,
                "the provider info is not a pair of {curve} public keys (another curve, or \
                 malformed)"
            ),
            Failure::EcdhPublicKeys => f.write_str(
                "made for other public keys than the keyring's (another recipient or sender)",
            ),
            Failure::SharedSecretLength { expected, returned } => write!(
                f,
                "KMS returned a {returned}-byte shared secret, the curve needs {expected}"
            ),
            Failure::EcdhUnwrap(AttemptFailure::DataKeyLength) => {
                f.write_str("the EDK ciphertext is not the length for the suite's data key")
            }
            Failure::EcdhUnwrap(_) => f.write_str(
                "KMS derived the shared secret, but the commitment key or tag does not match: \
                 the message was made with another encryption context or for another key pair",
            ),
            Failure::Keyring(e) => e.fmt(f),
            Failure::BranchKeyStore(e) => e.fmt(f),
            Failure::CiphertextLength { expected, found } => write!(
                f,
                "the EDK ciphertext is {found} bytes, the suite needs {expected} (salt 16, IV 12, \
                 branch key version 16, data key, tag 16)"
            ),
            Failure::BranchKeyUnwrap { version } => write!(
                f,
                "the data key did not authenticate under branch key version {version}: the \
                 message's encryption context is not the one it was encrypted with, or the EDK \
                 was altered"
            ),
        }
    }
}

/// One failed decryption attempt: which keyring, which EDK, why.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The keyring, e.g. `AWS KMS keyring arn:aws:kms:...` or `AWS KMS discovery keyring
    /// (us-west-2)`.
    pub keyring: String,
    /// Index of the EDK in the message header, when the failure concerns one EDK.
    pub edk: Option<u16>,
    /// The EDK's key (its provider info), when it is text.
    pub edk_key: Option<String>,
    /// Why it failed.
    pub failure: Failure,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.edk, &self.edk_key) {
            (Some(i), Some(k)) => write!(f, "EDK #{i} ({k}), {}: ", self.keyring)?,
            (Some(i), None) => write!(f, "EDK #{i}, {}: ", self.keyring)?,
            _ => write!(f, "{}: ", self.keyring)?,
        }
        self.failure.fmt(f)
    }
}

/// Maps an AWS SDK error into a [`KmsError`].
/// Whether a credentials provider's failure is in `err`'s source chain.
fn from_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    let mut e = Some(err);
    while let Some(cur) = e {
        if cur.is::<CredentialsError>() {
            return true;
        }
        e = cur.source();
    }
    false
}

pub(crate) fn from_sdk<E>(
    operation: KmsOperation,
    key_id: &str,
    region: Option<&str>,
    err: aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> KmsError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_kms::error::ProvideErrorMetadata;
    let code = err.code().map(str::to_owned);
    let message = err.message().map(str::to_owned);
    let kind = sdk_error_kind(&err, code.as_deref());
    KmsError {
        operation,
        key_id: key_id.to_owned(),
        region: region.map(str::to_owned),
        kind,
        code,
        message,
        source: Some(Arc::new(err)),
    }
}

/// The kind of a failed AWS SDK call (KMS or DynamoDB: the same smithy error type).
pub(crate) fn sdk_error_kind<E>(
    err: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
    code: Option<&str>,
) -> KmsErrorKind {
    use aws_sdk_kms::error::SdkError;
    match err {
        SdkError::ServiceError(_) => match code {
            Some(
                "ThrottlingException"
                | "Throttling"
                | "ThrottledException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "LimitExceededException",
            ) => KmsErrorKind::Throttled,
            _ => KmsErrorKind::Service,
        },
        SdkError::DispatchFailure(d)
            if d.as_connector_error().is_some_and(|c| from_credentials(c)) =>
        {
            KmsErrorKind::Credentials
        }
        SdkError::TimeoutError(_) => KmsErrorKind::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => KmsErrorKind::Timeout,
        SdkError::DispatchFailure(d) if d.is_user() => KmsErrorKind::Request,
        SdkError::DispatchFailure(_) => KmsErrorKind::Unavailable,
        SdkError::ResponseError(_) => KmsErrorKind::Response,
        _ => KmsErrorKind::Request,
    }
}
