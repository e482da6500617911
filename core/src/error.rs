//! The one error type of the core, and its categories.
//!
//! Every variant is `Copy` and carries the position of the failure (byte offset, frame
//! number, EDK index) where one exists, so that a caller is never left with "unable to
//! decrypt". Nothing here allocates.

use core::fmt;

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The output buffer is too small. Nothing was written and the state is unchanged:
    /// retry with a buffer of at least `required` bytes.
    BufferTooSmall {
        /// The smallest size that would have worked.
        required: usize,
    },
    /// The message ended before it was complete.
    Truncated {
        /// Byte offset in the message where more input was expected.
        offset: usize,
    },
    /// Bytes follow the end of the message.
    TrailingBytes {
        /// Byte offset of the first extra byte.
        offset: usize,
    },
    /// The input is not a well-formed ESDK message.
    Malformed {
        /// Byte offset in the message of the field that failed.
        offset: usize,
        /// Which check failed.
        kind: Malformed,
    },
    /// The input looks base64-encoded (it starts with `AY`, `AgR` or `AgV`): decode it first.
    Base64Encoded,
    /// The algorithm suite id is not one of the 11 ESDK suites.
    UnsupportedSuite(u16),
    /// A cryptographic check failed: the message was tampered with, or the wrong key was used.
    Authentication(AuthFailure),
    /// The configuration forbids what the message or the call asks for.
    Policy(PolicyViolation),
    /// A keyring or CMM failed.
    Keyring(KeyringError),
    /// The crypto provider failed.
    Crypto(CryptoError),
    /// The API was used against its contract.
    ApiMisuse(ApiMisuse),
}

/// Which structural check of the message format failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Malformed {
    /// Unknown message format version byte.
    Version(u8),
    /// The v1 message type is not `0x80`.
    MessageType(u8),
    /// The suite's message format version does not match the header version.
    SuiteVersionMismatch {
        /// The suite id in the header.
        suite: u16,
        /// The header version byte.
        version: u8,
    },
    /// The encryption context section is malformed.
    EncryptionContext(ContextError),
    /// The header declares zero encrypted data keys.
    NoEncryptedDataKeys,
    /// An encrypted data key's provider id is not UTF-8.
    EdkProviderId {
        /// Index of the EDK in the header.
        index: u16,
    },
    /// Unknown content type byte (1 = non-framed, 2 = framed).
    ContentType(u8),
    /// The v1 reserved field is not four zero bytes.
    Reserved,
    /// The v1 IV length field is not 12.
    IvLength(u8),
    /// A framed message declares frame length 0, or a non-framed one a non-zero length.
    FrameLength(u32),
    /// The v2 header's algorithm-suite data has the wrong length for the suite.
    SuiteData,
    /// A frame's sequence number is not the expected one.
    FrameSequence {
        /// The sequence number that should come next.
        expected: u32,
        /// The one found.
        found: u32,
    },
    /// A frame's stored IV is not the IV derived from its sequence number.
    FrameIv {
        /// Sequence number of the frame.
        sequence: u32,
    },
    /// The final frame's content length exceeds the frame length.
    FinalFrameLength {
        /// Sequence number of the final frame.
        sequence: u32,
        /// The declared content length.
        length: u32,
    },
    /// More than 2^32 - 1 frames.
    TooManyFrames,
    /// The non-framed body's length exceeds 2^36 - 32 bytes.
    NonFramedLength(u64),
    /// The footer's signature length is zero or larger than any valid signature.
    SignatureLength(u16),
    /// A signed suite's message has no footer, or an unsigned one has bytes after the body.
    Footer,
    /// A length field, with the bytes around it, does not fit in this target's address
    /// space (`usize`): a frame or body of about 4 GiB on a 32-bit target.
    LengthOverflow {
        /// Which field.
        field: &'static str,
        /// Its value.
        length: u64,
    },
}

/// What is wrong with an encryption context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ContextError {
    /// The section's declared length does not match its content.
    Length,
    /// A key or value is not valid UTF-8.
    Utf8 {
        /// Index of the pair.
        pair: u16,
    },
    /// The same key appears twice.
    DuplicateKey {
        /// Index of the second occurrence.
        pair: u16,
    },
    /// A non-empty context section declares zero pairs in the non-legacy form.
    ZeroCount,
    /// The serialized context would exceed 65 535 bytes.
    TooLarge,
}

/// Which cryptographic check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AuthFailure {
    /// The header authentication tag did not verify.
    HeaderTag,
    /// A frame's tag did not verify.
    FrameTag {
        /// Sequence number of the frame.
        sequence: u32,
    },
    /// The non-framed body's tag did not verify.
    NonFramedTag,
    /// The footer's ECDSA signature did not verify.
    Signature,
    /// The key commitment in the header does not match the data key.
    Commitment,
}

/// A configured limit or policy that refused the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PolicyViolation {
    /// The commitment policy does not allow this suite (for this direction).
    SuiteNotAllowed {
        /// The suite id.
        suite: u16,
    },
    /// The message has more EDKs than the configured maximum.
    TooManyEncryptedDataKeys {
        /// The configured maximum.
        max: u16,
    },
    /// An encryption-context key starts with the reserved prefix `aws-crypto-`.
    ReservedEncryptionContextKey,
    /// The message is signed but the decryptor is in unsigned-only mode.
    SignedMessageRejected,
    /// The header is larger than the configured maximum.
    HeaderTooLarge {
        /// The configured maximum, in bytes.
        max: usize,
    },
    /// The body (frame length or non-framed length) exceeds the configured maximum.
    BodyTooLarge {
        /// The configured maximum, in bytes.
        max: u64,
    },
    /// A signed suite's context lacks `aws-crypto-public-key`.
    MissingPublicKey,
    /// An unsigned suite's context carries `aws-crypto-public-key`.
    UnexpectedPublicKey,
    /// A reproduced encryption-context pair disagrees with the one stored in the message.
    EncryptionContextMismatch,
    /// A required encryption-context key is absent.
    MissingRequiredEncryptionContextKey,
    /// The plaintext exceeds the declared plaintext length bound.
    PlaintextLengthBound,
    /// The frame length is 0 or otherwise not allowed for encryption.
    FrameLength,
    /// A streaming decryptor that holds a signed message's plaintext until the signature
    /// verifies would have to hold more than this many bytes.
    SignedBufferLimit {
        /// The configured limit, in bytes.
        limit: u64,
    },
}

/// Why a keyring or CMM failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum KeyringError {
    /// No keyring could decrypt any EDK. The record says which EDK each keyring tried
    /// and why it failed.
    NoDataKeyDecrypted(Attempts),
    /// On encrypt, no keyring produced a data key.
    NoDataKeyGenerated,
    /// On encrypt, the materials hold no EDK after the keyrings ran.
    NoEncryptedDataKey,
    /// A keyring produced a data key of the wrong length for the suite.
    DataKeyLength,
    /// `on_decrypt` was called on materials that already hold a data key.
    DataKeyAlreadyPresent,
    /// The keyring cannot encrypt (for example a decrypt-only keyring).
    EncryptNotSupported,
    /// The keyring's key material or configuration is invalid.
    InvalidConfiguration,
    /// A key name or provider id is too long for the EDK fields.
    FieldTooLong,
    /// The keyring cannot tell the size of its EDKs before it runs (so the message size
    /// cannot be computed in advance).
    EdkLengthUnknown,
    /// A keyring-specific failure, identified by a static description.
    Other(&'static str),
}

/// Why one keyring could not decrypt one EDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AttemptFailure {
    /// The EDK's provider id is not the keyring's.
    ProviderIdMismatch,
    /// The provider info does not name the keyring's key.
    KeyNameMismatch,
    /// The provider info does not have the keyring's layout (tag or IV length, format).
    ProviderInfoFormat,
    /// Unwrapping failed: wrong key, tampered EDK, or a different encryption context.
    UnwrapFailed,
    /// The unwrapped key has the wrong length for the suite.
    DataKeyLength,
    /// The keyring's backend (HSM, KMS) reported an error.
    Backend,
}

/// One failed attempt: keyring `keyring` (its index in a multi-keyring, 0 otherwise) on
/// EDK number `edk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Attempt {
    /// Index of the keyring in a multi-keyring (generator = 0), or 0.
    pub keyring: u8,
    /// Index of the EDK in the header.
    pub edk: u16,
    /// Why it failed.
    pub reason: AttemptFailure,
}

/// A bounded record of failed decrypt attempts. It keeps the first [`Attempts::CAPACITY`]
/// and counts the rest.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Attempts {
    entries: [Option<Attempt>; Attempts::CAPACITY],
    total: u32,
}

impl Attempts {
    /// How many attempts are kept in detail.
    pub const CAPACITY: usize = 8;

    /// An empty record.
    pub const fn new() -> Self {
        Self {
            entries: [None; Self::CAPACITY],
            total: 0,
        }
    }

    /// Records one attempt.
    pub fn push(&mut self, attempt: Attempt) {
        if let Some(slot) = self.entries.iter_mut().find(|e| e.is_none()) {
            *slot = Some(attempt);
        }
        self.total = self.total.saturating_add(1);
    }

    /// The attempts kept in detail, in the order they were made.
    pub fn iter(&self) -> impl Iterator<Item = &Attempt> {
        self.entries.iter().flatten()
    }

    /// The number of attempts made, including those not kept in detail.
    pub fn total(&self) -> u32 {
        self.total
    }
}

impl Default for Attempts {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A failure inside the crypto provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CryptoError {
    /// The random number generator failed.
    Rng,
    /// A key has the wrong length or is not a valid key.
    InvalidKey,
    /// A public key is not a valid compressed point for the suite's curve.
    InvalidPublicKey,
    /// The provider does not offer this algorithm.
    Unsupported,
    /// Signing failed.
    Sign,
    /// An AEAD operation failed (authentication failures are reported as
    /// [`Error::Authentication`] by the caller).
    Aead,
}

/// The API was used against its documented contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ApiMisuse {
    /// A call came in a state that does not accept it (for example after `finish`).
    WrongState,
    /// A regular frame was fed with a length other than the frame length.
    FrameSize,
    /// The encryption context has two pairs with the same key.
    DuplicateEncryptionContextKey,
    /// A required encryption-context key is not in the encryption context.
    RequiredKeyNotInContext,
    /// A signing key was supplied for another signature algorithm than the suite's, or for
    /// an unsigned suite; or signed-suite materials came without one.
    SigningKeyMismatch,
    /// The data key was supplied to a decryptor that is not waiting for one
    /// ([`Status::NeedDataKey`](crate::Status::NeedDataKey)).
    NotWaitingForDataKey,
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        Error::Crypto(e)
    }
}
impl From<KeyringError> for Error {
    fn from(e: KeyringError) -> Self {
        Error::Keyring(e)
    }
}
impl From<PolicyViolation> for Error {
    fn from(e: PolicyViolation) -> Self {
        Error::Policy(e)
    }
}
impl From<AuthFailure> for Error {
    fn from(e: AuthFailure) -> Self {
        Error::Authentication(e)
    }
}
impl From<ApiMisuse> for Error {
    fn from(e: ApiMisuse) -> Self {
        Error::ApiMisuse(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferTooSmall { required } => {
                write!(f, "output buffer too small: {required} bytes required")
            }
            Error::Truncated { offset } => write!(f, "message truncated at byte {offset}"),
            Error::TrailingBytes { offset } => {
                write!(
                    f,
                    "unexpected bytes after the end of the message at byte {offset}"
                )
            }
            Error::Malformed { offset, kind } => {
                write!(f, "malformed message at byte {offset}: {kind}")
            }
            Error::Base64Encoded => f.write_str(
                "input looks base64-encoded (starts with AY/AgR/AgV): decode it before decrypting",
            ),
            Error::UnsupportedSuite(id) => {
                write!(
                    f,
                    "algorithm suite 0x{id:04X} is not an ESDK algorithm suite"
                )
            }
            Error::Authentication(a) => write!(f, "authentication failed: {a}"),
            Error::Policy(p) => write!(f, "refused by policy: {p}"),
            Error::Keyring(k) => write!(f, "keyring failed: {k}"),
            Error::Crypto(c) => write!(f, "crypto provider failed: {c}"),
            Error::ApiMisuse(m) => write!(f, "API misuse: {m}"),
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Version(v) => write!(f, "unknown message format version 0x{v:02X}"),
            Malformed::MessageType(t) => write!(f, "message type 0x{t:02X} is not 0x80"),
            Malformed::SuiteVersionMismatch { suite, version } => write!(
                f,
                "suite 0x{suite:04X} does not belong to message format version {version}"
            ),
            Malformed::EncryptionContext(e) => write!(f, "encryption context: {e}"),
            Malformed::NoEncryptedDataKeys => f.write_str("no encrypted data keys"),
            Malformed::EdkProviderId { index } => {
                write!(f, "provider id of EDK #{index} is not UTF-8")
            }
            Malformed::ContentType(t) => write!(f, "unknown content type 0x{t:02X}"),
            Malformed::Reserved => f.write_str("reserved header field is not zero"),
            Malformed::IvLength(n) => write!(f, "IV length {n} is not 12"),
            Malformed::FrameLength(n) => {
                write!(f, "frame length {n} does not match the content type")
            }
            Malformed::SuiteData => f.write_str("algorithm suite data has the wrong length"),
            Malformed::FrameSequence { expected, found } => write!(
                f,
                "frame sequence number {found} where {expected} was expected"
            ),
            Malformed::FrameIv { sequence } => {
                write!(
                    f,
                    "frame {sequence} has an IV that does not match its sequence number"
                )
            }
            Malformed::FinalFrameLength { sequence, length } => write!(
                f,
                "final frame {sequence} declares {length} bytes, more than the frame length"
            ),
            Malformed::TooManyFrames => f.write_str("more than 2^32 - 1 frames"),
            Malformed::NonFramedLength(n) => {
                write!(f, "non-framed body length {n} exceeds 2^36 - 32")
            }
            Malformed::SignatureLength(n) => write!(f, "invalid signature length {n}"),
            Malformed::Footer => f.write_str("footer missing or not expected for this suite"),
            Malformed::LengthOverflow { field, length } => write!(
                f,
                "{field} {length} does not fit in this target's address space"
            ),
        }
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextError::Length => f.write_str("declared length does not match the content"),
            ContextError::Utf8 { pair } => write!(f, "pair #{pair} is not valid UTF-8"),
            ContextError::DuplicateKey { pair } => write!(f, "pair #{pair} repeats an earlier key"),
            ContextError::ZeroCount => f.write_str("non-empty section with a pair count of zero"),
            ContextError::TooLarge => f.write_str("serialized context exceeds 65 535 bytes"),
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::HeaderTag => f.write_str("header authentication tag mismatch"),
            AuthFailure::FrameTag { sequence } => write!(f, "tag mismatch in frame {sequence}"),
            AuthFailure::NonFramedTag => f.write_str("tag mismatch in the non-framed body"),
            AuthFailure::Signature => f.write_str("footer signature does not verify"),
            AuthFailure::Commitment => f.write_str("key commitment mismatch"),
        }
    }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyViolation::SuiteNotAllowed { suite } => write!(
                f,
                "the commitment policy does not allow algorithm suite 0x{suite:04X}"
            ),
            PolicyViolation::TooManyEncryptedDataKeys { max } => {
                write!(
                    f,
                    "more encrypted data keys than the configured maximum of {max}"
                )
            }
            PolicyViolation::ReservedEncryptionContextKey => {
                f.write_str("encryption-context keys must not start with \"aws-crypto-\"")
            }
            PolicyViolation::SignedMessageRejected => f.write_str(
                "the message is signed and the decryptor accepts unsigned messages only",
            ),
            PolicyViolation::HeaderTooLarge { max } => {
                write!(
                    f,
                    "header larger than the configured maximum of {max} bytes"
                )
            }
            PolicyViolation::BodyTooLarge { max } => {
                write!(f, "body larger than the configured maximum of {max} bytes")
            }
            PolicyViolation::MissingPublicKey => {
                f.write_str("signed suite without aws-crypto-public-key in the encryption context")
            }
            PolicyViolation::UnexpectedPublicKey => {
                f.write_str("unsigned suite with aws-crypto-public-key in the encryption context")
            }
            PolicyViolation::EncryptionContextMismatch => f.write_str(
                "the reproduced encryption context disagrees with the message's encryption context",
            ),
            PolicyViolation::MissingRequiredEncryptionContextKey => {
                f.write_str("a required encryption-context key is missing")
            }
            PolicyViolation::PlaintextLengthBound => {
                f.write_str("plaintext exceeds the declared length bound")
            }
            PolicyViolation::FrameLength => f.write_str("frame length must be at least 1"),
            PolicyViolation::SignedBufferLimit { limit } => write!(
                f,
                "the signed message's plaintext exceeds the {limit}-byte limit for holding it \
                 until the signature verifies: raise the limit (with_signed_buffer_limit), \
                 accept unverified plaintext (release_unverified_plaintext, CLI \
                 --stream-unverified), or refuse signed messages (Config::unsigned_only, CLI \
                 --decrypt-unsigned)"
            ),
        }
    }
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyringError::NoDataKeyDecrypted(a) => {
                let n = a.total();
                let s = if n == 1 { "" } else { "s" };
                write!(
                    f,
                    "no keyring decrypted any encrypted data key ({n} attempt{s}"
                )?;
                for at in a.iter() {
                    write!(
                        f,
                        "; keyring #{} on EDK #{}: {}",
                        at.keyring, at.edk, at.reason
                    )?;
                }
                if a.total() as usize > Attempts::CAPACITY {
                    f.write_str("; ...")?;
                }
                f.write_str(")")
            }
            KeyringError::NoDataKeyGenerated => f.write_str("no keyring generated a data key"),
            KeyringError::NoEncryptedDataKey => f.write_str("no encrypted data key was produced"),
            KeyringError::DataKeyLength => {
                f.write_str("data key has the wrong length for the suite")
            }
            KeyringError::DataKeyAlreadyPresent => {
                f.write_str("decryption materials already hold a data key")
            }
            KeyringError::EncryptNotSupported => f.write_str("this keyring cannot encrypt"),
            KeyringError::InvalidConfiguration => f.write_str("invalid keyring configuration"),
            KeyringError::FieldTooLong => f.write_str("a key name or provider id is too long"),
            KeyringError::EdkLengthUnknown => {
                f.write_str("the keyring cannot tell its EDK length in advance")
            }
            KeyringError::Other(s) => f.write_str(s),
        }
    }
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttemptFailure::ProviderIdMismatch => "provider id does not match",
            AttemptFailure::KeyNameMismatch => "key name does not match",
            AttemptFailure::ProviderInfoFormat => "provider info has another layout",
            AttemptFailure::UnwrapFailed => "unwrap failed (wrong key, tampering or other context)",
            AttemptFailure::DataKeyLength => "unwrapped key has the wrong length",
            AttemptFailure::Backend => "key backend error",
        })
    }
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoError::Rng => "random number generator failure",
            CryptoError::InvalidKey => "invalid key",
            CryptoError::InvalidPublicKey => "invalid public key",
            CryptoError::Unsupported => "algorithm not supported by this provider",
            CryptoError::Sign => "signing failed",
            CryptoError::Aead => "AEAD operation failed",
        })
    }
}

impl fmt::Display for ApiMisuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiMisuse::WrongState => "call not allowed in the current state",
            ApiMisuse::FrameSize => "a regular frame must be exactly the frame length",
            ApiMisuse::DuplicateEncryptionContextKey => "duplicate encryption-context key",
            ApiMisuse::RequiredKeyNotInContext => {
                "a required encryption-context key is not in the encryption context"
            }
            ApiMisuse::SigningKeyMismatch => {
                "the signing key does not fit the suite (another algorithm, or a key for an unsigned suite, or none for a signed one)"
            }
            ApiMisuse::NotWaitingForDataKey => {
                "a data key was supplied to a decryptor that is not waiting for one"
            }
        })
    }
}

impl core::error::Error for Error {}

/// Shorthand for results of the core.
pub type Result<T, E = Error> = core::result::Result<T, E>;
