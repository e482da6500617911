//! Errors of the KMS keyrings: which key, which region, which KMS error code, and for
//! decryption one record per encrypted data key tried (reference/user-asks.md #6).

use std::fmt;
use std::sync::Arc;

use esdk_core::error::{AttemptFailure, KeyringError};

use super::arn::ArnError;

/// A KMS operation the keyrings call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsOperation {
    /// `GenerateDataKey`.
    GenerateDataKey,
    /// `Encrypt`.
    Encrypt,
    /// `Decrypt`.
    Decrypt,
}

impl fmt::Display for KmsOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KmsOperation::GenerateDataKey => "GenerateDataKey",
            KmsOperation::Encrypt => "Encrypt",
            KmsOperation::Decrypt => "Decrypt",
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
    /// The request could not be built or sent (credentials, configuration).
    Request,
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
        match self.kind {
            KmsErrorKind::Service => {}
            KmsErrorKind::Throttled => f.write_str("throttled (retries exhausted): ")?,
            KmsErrorKind::Timeout => f.write_str("timed out: ")?,
            KmsErrorKind::Unavailable => f.write_str("endpoint unreachable: ")?,
            KmsErrorKind::Response => f.write_str("unreadable response: ")?,
            KmsErrorKind::Request => f.write_str("request not sent: ")?,
        }
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => write!(f, "{c}: {m}"),
            (Some(c), None) => f.write_str(c),
            (None, Some(m)) => f.write_str(m),
            (None, None) => match &self.source {
                Some(s) => write!(f, "{}", DisplayChain(s.as_ref())),
                None => f.write_str("no detail"),
            },
        }
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
    /// The EDK is not from a KMS keyring (its provider id is shown).
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
    /// A required response field is missing.
    MissingField(&'static str),
    /// A child keyring failed with another error.
    Keyring(Arc<Error>),
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
                | Failure::MissingField(_)
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::ProviderId(p) => write!(f, "not a KMS EDK (provider id {p:?})"),
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
            Failure::MissingField(name) => write!(f, "the KMS response has no {name}"),
            Failure::Keyring(e) => e.fmt(f),
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

/// Errors of the KMS keyrings and of the async and blocking front ends.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The message engine failed (format, policy, authentication, ...).
    Core(esdk_core::Error),
    /// A key identifier is not a valid ARN, key id or alias.
    InvalidKeyId {
        /// The identifier given.
        key_id: String,
        /// What is wrong with it.
        reason: ArnError,
    },
    /// A key ARN names another region than the KMS client it is used with.
    RegionMismatch {
        /// The key.
        key_id: String,
        /// The client's region.
        client_region: String,
    },
    /// Two identifiers name the same multi-Region key (which region to call is ambiguous).
    DuplicateMultiRegionKeys(Vec<String>),
    /// A configuration error (an empty region list, no key at all, no region, ...).
    Config(&'static str),
    /// A decrypt-only (discovery) keyring was asked to encrypt.
    EncryptNotSupported {
        /// The keyring.
        keyring: String,
    },
    /// A KMS call on encryption failed.
    Kms(Box<KmsError>),
    /// A KMS response on encryption was refused (wrong key id or data key length).
    InvalidResponse {
        /// The operation.
        operation: KmsOperation,
        /// The key asked for.
        key_id: String,
        /// What was wrong.
        failure: Box<Failure>,
    },
    /// No keyring could decrypt any EDK; one record per keyring and EDK tried.
    NoDataKeyDecrypted {
        /// The attempts, in order.
        attempts: Vec<Attempt>,
    },
    /// An I/O error of a stream.
    Io(std::io::Error),
}

impl Error {
    /// A fixed description, for the core's allocation-free error
    /// (`KeyringError::Other`).
    pub fn static_description(&self) -> &'static str {
        match self {
            Error::Core(_) => "the message engine failed",
            Error::InvalidKeyId { .. } => "AWS KMS: invalid key identifier",
            Error::RegionMismatch { .. } => "AWS KMS: key ARN region differs from the client's",
            Error::DuplicateMultiRegionKeys(_) => "AWS KMS: duplicate multi-Region keys",
            Error::Config(_) => "AWS KMS: invalid keyring configuration",
            Error::EncryptNotSupported { .. } => "AWS KMS: a discovery keyring cannot encrypt",
            Error::Kms(e) => match e.operation {
                KmsOperation::GenerateDataKey => "AWS KMS GenerateDataKey failed",
                KmsOperation::Encrypt => "AWS KMS Encrypt failed",
                KmsOperation::Decrypt => "AWS KMS Decrypt failed",
            },
            Error::InvalidResponse { .. } => "AWS KMS: response refused",
            Error::NoDataKeyDecrypted { .. } => "AWS KMS: no data key decrypted",
            Error::Io(_) => "I/O error",
        }
    }

    /// The core error that stands for this one inside the message engine.
    pub fn to_core(&self) -> esdk_core::Error {
        match self {
            Error::Core(e) => *e,
            Error::EncryptNotSupported { .. } => KeyringError::EncryptNotSupported.into(),
            Error::InvalidKeyId { .. }
            | Error::RegionMismatch { .. }
            | Error::DuplicateMultiRegionKeys(_)
            | Error::Config(_) => KeyringError::InvalidConfiguration.into(),
            other => KeyringError::Other(other.static_description()).into(),
        }
    }

    /// The KMS error codes met, in order (for tests and logs).
    pub fn kms_codes(&self) -> Vec<String> {
        fn of(f: &Failure, out: &mut Vec<String>) {
            match f {
                Failure::Kms(e) => out.extend(e.code.clone()),
                Failure::Keyring(e) => out.extend(e.kms_codes()),
                _ => {}
            }
        }
        let mut out = Vec::new();
        match self {
            Error::Kms(e) => out.extend(e.code.clone()),
            Error::NoDataKeyDecrypted { attempts } => {
                for a in attempts {
                    of(&a.failure, &mut out);
                }
            }
            Error::InvalidResponse { failure, .. } => of(failure, &mut out),
            _ => {}
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Core(e) => e.fmt(f),
            Error::InvalidKeyId { key_id, reason } => {
                write!(f, "invalid AWS KMS key identifier {key_id:?}: {reason}")
            }
            Error::RegionMismatch {
                key_id,
                client_region,
            } => write!(
                f,
                "AWS KMS key {key_id} is not in the KMS client's region {client_region}: \
                 use a client for the key's region (a client supplier does this)"
            ),
            Error::DuplicateMultiRegionKeys(ids) => write!(
                f,
                "these identifiers name the same multi-Region key, so which region to call \
                 is ambiguous: {}",
                ids.join(", ")
            ),
            Error::Config(m) => f.write_str(m),
            Error::EncryptNotSupported { keyring } => write!(
                f,
                "{keyring} is decrypt-only: encrypt with a keyring configured with a key"
            ),
            Error::Kms(e) => e.fmt(f),
            Error::InvalidResponse {
                operation,
                key_id,
                failure,
            } => write!(f, "KMS {operation} with key {key_id}: {failure}"),
            Error::NoDataKeyDecrypted { attempts } => {
                write!(f, "no KMS keyring could decrypt a data key")?;
                if attempts.is_empty() {
                    return f.write_str(" (the message has no EDK these keyrings handle)");
                }
                f.write_str(":")?;
                for a in attempts {
                    write!(f, "\n  - {a}")?;
                }
                Ok(())
            }
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            Error::InvalidKeyId { reason, .. } => Some(reason),
            Error::Kms(e) => Some(e.as_ref()),
            Error::Io(e) => Some(e),
            Error::NoDataKeyDecrypted { attempts } => {
                attempts.iter().find_map(|a| match &a.failure {
                    Failure::Kms(e) => Some(e as &(dyn std::error::Error + 'static)),
                    _ => None,
                })
            }
            _ => None,
        }
    }
}

impl From<esdk_core::Error> for Error {
    fn from(e: esdk_core::Error) -> Self {
        Error::Core(e)
    }
}

impl From<KmsError> for Error {
    fn from(e: KmsError) -> Self {
        Error::Kms(Box::new(e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match crate::stream::esdk_error(&e) {
            Some(core) => Error::Core(core),
            None => Error::Io(e),
        }
    }
}

/// Maps an AWS SDK error into a [`KmsError`].
pub(crate) fn from_sdk<E>(
    operation: KmsOperation,
    key_id: &str,
    region: Option<&str>,
    err: aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> KmsError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
    let code = err.code().map(str::to_owned);
    let message = err.message().map(str::to_owned);
    let kind = match &err {
        SdkError::ServiceError(_) => match code.as_deref() {
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
        SdkError::TimeoutError(_) => KmsErrorKind::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => KmsErrorKind::Timeout,
        SdkError::DispatchFailure(d) if d.is_user() => KmsErrorKind::Request,
        SdkError::DispatchFailure(_) => KmsErrorKind::Unavailable,
        SdkError::ResponseError(_) => KmsErrorKind::Response,
        _ => KmsErrorKind::Request,
    };
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
