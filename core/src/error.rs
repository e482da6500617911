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
    /// Random access ([`crate::random_access`]): a frame number that is not in the message.
    FrameOutOfRange {
        /// The sequence number asked for.
        sequence: u32,
        /// The message's frames (the final frame's sequence number).
        frames: u32,
    },
    /// Random access ([`crate::random_access`]): a plaintext range that is reversed or ends
    /// past the plaintext.
    RangeOutOfBounds {
        /// The range's start.
        start: u64,
        /// The range's end (exclusive).
        end: u64,
        /// The message's plaintext length.
        plaintext_len: u64,
    },
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
    /// Random access: the message length (the value) does not fit the header's frame
    /// layout, or disagrees with the content length the final frame declares: the message
    /// is truncated or extended.
    MessageLength(u64),
    /// Random access: where the message length puts the final frame, there is no final-frame
    /// marker: the message is truncated or extended by whole frames.
    FinalFrameMarker {
        /// The sequence number the final frame would have.
        sequence: u32,
    },
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
    /// Random access to a non-framed message: its body is one AES-GCM unit, so no part of
    /// it can be verified without all of it.
    RandomAccessNonFramed,
    /// Random access to a signed message without the explicit opt-in into unverified output
    /// ([`RandomAccessOptions::unverified_signed`](crate::random_access::RandomAccessOptions::unverified_signed)):
    /// the signature covers the whole message.
    RandomAccessSigned,
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
    /// The keyring cannot decrypt (an encrypt-only keyring: a raw RSA or PKCS#11 RSA keyring
    /// without a private key, or the ECDH `EphemeralPrivateKeyToStaticPublicKey` schema).
    DecryptNotSupported,
    /// A key given to the keyring cannot be loaded or used.
    Key(KeyError),
    /// The ECDH key agreement or the key derivation from its shared secret failed.
    KeyAgreement,
    /// Encrypting the data key under the wrapping key failed (the raw RSA keyring's RSA
    /// encryption).
    WrapFailed,
    /// A PKCS#11 keyring (crate `esdk-pkcs11`) failed.
    Pkcs11(Pkcs11Failure),
}

/// The kind of key a [`KeyError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// An RSA key (raw RSA keyring).
    Rsa,
    /// An elliptic-curve key on P-256, P-384 or P-521 (raw ECDH keyring).
    Ec,
}

/// What is wrong with a key given to a keyring (the raw RSA and raw ECDH keyrings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a valid PEM document (RFC 7468).
    Pem,
    /// A PEM document whose label is not a public key form the keyring accepts.
    PublicKeyPemLabel(KeyAlgorithm),
    /// A PEM document whose label is not a private key form the keyring accepts.
    PrivateKeyPemLabel(KeyAlgorithm),
    /// A private key was given where a public key is required (the public key is never
    /// derived from it).
    PrivateKeyGivenAsPublic,
    /// An encrypted PKCS#8 private key (`ENCRYPTED PRIVATE KEY`): decrypt it first.
    EncryptedPrivateKey,
    /// The DER is not a public key of this algorithm in a supported form (for EC: on a
    /// supported curve).
    PublicKeyDer(KeyAlgorithm),
    /// The DER is not a valid private key of this algorithm in a supported form (for EC:
    /// on a supported curve).
    PrivateKeyDer(KeyAlgorithm),
    /// The bytes are not a SEC1 point on the curve, or are the point at infinity.
    InvalidPoint,
    /// A key is on another curve than the keyring's.
    WrongCurve,
    /// The RSA modulus is shorter than the smallest supported size.
    ModulusTooSmall {
        /// The smallest supported modulus, in bits.
        min_bits: u16,
    },
    /// The RSA modulus is longer than the largest supported size.
    ModulusTooLarge {
        /// The largest supported modulus, in bits.
        max_bits: u16,
    },
    /// The RSA modulus is too short for the padding to carry the data key.
    ModulusTooSmallForPadding,
    /// The public key is not the private key's public half.
    KeyPairMismatch,
    /// The keyring was given neither a public nor a private key.
    NoKey,
}

/// Why a PKCS#11 keyring (crate `esdk-pkcs11`) failed: the allocation-free form of its
/// `Pkcs11Error`. `rv` fields hold the PKCS#11 return value (`CK_RV`, e.g. `0xA0` for
/// `CKR_PIN_INCORRECT`) when the token gave one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Pkcs11Failure {
    /// The PKCS#11 module file does not exist.
    ModuleNotFound,
    /// The module file exists but is not a loadable PKCS#11 library.
    ModuleLoad,
    /// `C_Initialize` failed.
    Initialize {
        /// The return value, if the module gave one.
        rv: Option<u64>,
    },
    /// No slot holds an initialized token with the configured label.
    TokenNotFound,
    /// The token was removed (or its slot vanished).
    TokenRemoved {
        /// The return value that revealed it.
        rv: u64,
    },
    /// The token requires a login and no PIN is configured.
    PinRequired,
    /// `C_Login` rejected the PIN.
    PinIncorrect {
        /// `CKR_PIN_INCORRECT`, `CKR_PIN_INVALID` or `CKR_PIN_LEN_RANGE`.
        rv: u64,
    },
    /// The user PIN is locked or expired.
    PinLocked {
        /// `CKR_PIN_LOCKED` or `CKR_PIN_EXPIRED`.
        rv: u64,
    },
    /// No object of the class matches the key selector.
    KeyNotFound {
        /// The object class looked for.
        class: Pkcs11ObjectClass,
    },
    /// Several objects of the class match the key selector.
    KeyAmbiguous {
        /// The object class looked for.
        class: Pkcs11ObjectClass,
        /// How many matched.
        count: usize,
    },
    /// The key is not of the type (or size) the keyring needs.
    KeyType {
        /// What the keyring needs.
        expected: Pkcs11KeyType,
    },
    /// A key attribute forbids what the keyring needs.
    KeyUsage {
        /// The attribute.
        attribute: Pkcs11Attribute,
    },
    /// The token refused the key for the operation (`CKR_KEY_FUNCTION_NOT_PERMITTED`).
    KeyFunctionNotPermitted {
        /// The operation refused.
        operation: Pkcs11Operation,
    },
    /// The token does not offer the mechanism, or these parameters of it.
    MechanismNotSupported {
        /// The mechanism and parameters.
        mechanism: Pkcs11Mechanism,
        /// The return value, when a call revealed it.
        rv: Option<u64>,
    },
    /// A wrapped key did not decrypt: wrong key, tampered data or another encryption
    /// context.
    UnwrapFailed {
        /// The return value, if the token gave one.
        rv: Option<u64>,
    },
    /// The session is not logged in (`CKR_USER_NOT_LOGGED_IN`).
    NotLoggedIn {
        /// The operation refused.
        operation: Pkcs11Operation,
    },
    /// The wrapping key object is no longer on the token (`CKR_KEY_HANDLE_INVALID`,
    /// `CKR_OBJECT_HANDLE_INVALID`).
    KeyHandleInvalid {
        /// The operation that found out.
        operation: Pkcs11Operation,
    },
    /// The token returned output of another length than the operation produces.
    OutputLength {
        /// The operation.
        operation: Pkcs11Operation,
    },
    /// Any other failure of a PKCS#11 call.
    Call {
        /// The operation.
        operation: Pkcs11Operation,
        /// The return value, or `None` for a failure outside the token (the `cryptoki`
        /// crate refused the arguments).
        rv: Option<u64>,
    },
}

/// A PKCS#11 object class a keyring looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Pkcs11ObjectClass {
    /// `CKO_SECRET_KEY`.
    SecretKey,
    /// `CKO_PUBLIC_KEY`.
    PublicKey,
    /// `CKO_PRIVATE_KEY`.
    PrivateKey,
    /// `CKO_PUBLIC_KEY` or `CKO_PRIVATE_KEY` (the RSA keyring needs at least one).
    PublicOrPrivateKey,
}

/// A PKCS#11 key attribute that decides whether a keyring may use a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Pkcs11Attribute {
    /// `CKA_ENCRYPT`.
    Encrypt,
    /// `CKA_DECRYPT`.
    Decrypt,
    /// `CKA_ALLOWED_MECHANISMS`.
    AllowedMechanisms,
    /// `CKA_DERIVE` (an ECDH private key).
    Derive,
}

/// The key type a PKCS#11 keyring needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Pkcs11KeyType {
    /// A `CKK_AES` secret key of 16, 24 or 32 bytes.
    Aes,
    /// A `CKK_RSA` key whose modulus fits OAEP with the keyring's hash and a 32-byte data key.
    RsaOaep,
    /// A `CKK_EC` private key on P-256, P-384 or P-521, with its public key object.
    Ec,
}

/// A PKCS#11 mechanism, with the parameters a keyring uses it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Pkcs11Mechanism {
    /// `CKM_AES_GCM`.
    AesGcm,
    /// `CKM_AES_GCM` with a 12-byte IV and a 128-bit tag.
    AesGcmIv12Tag128,
    /// `CKM_RSA_PKCS_OAEP`.
    RsaOaep,
    /// `CKM_RSA_PKCS_OAEP` with SHA-1 and MGF1-SHA-1.
    RsaOaepSha1,
    /// `CKM_RSA_PKCS_OAEP` with SHA-256 and MGF1-SHA-256.
    RsaOaepSha256,
    /// `CKM_RSA_PKCS_OAEP` with SHA-384 and MGF1-SHA-384.
    RsaOaepSha384,
    /// `CKM_RSA_PKCS_OAEP` with SHA-512 and MGF1-SHA-512.
    RsaOaepSha512,
    /// `CKM_ECDH1_DERIVE` (with `CKD_NULL`).
    Ecdh1Derive,
}

/// A PKCS#11 call made by a keyring or token, with what it was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Pkcs11Operation {
    /// `C_GetSlotList`.
    GetSlotList,
    /// `C_OpenSession`.
    OpenSession,
    /// `C_GetSessionInfo`.
    GetSessionInfo,
    /// `C_Login`.
    Login,
    /// `C_FindObjects`.
    FindObjects,
    /// `C_GetAttributeValue`.
    GetAttributeValue,
    /// `C_GenerateRandom`.
    GenerateRandom,
    /// Building the `CKM_AES_GCM` parameters.
    AesGcmParams,
    /// `C_Encrypt` with `CKM_AES_GCM` (wrapping a data key).
    AesGcmEncrypt,
    /// `C_Decrypt` with `CKM_AES_GCM` (unwrapping a data key).
    AesGcmDecrypt,
    /// The `C_Encrypt` with `CKM_AES_GCM` that checks a key at construction.
    AesGcmProbe,
    /// `C_Encrypt` with `CKM_RSA_PKCS_OAEP` (wrapping a data key).
    RsaOaepEncrypt,
    /// `C_Decrypt` with `CKM_RSA_PKCS_OAEP` (unwrapping a data key).
    RsaOaepDecrypt,
    /// The `C_Encrypt` with `CKM_RSA_PKCS_OAEP` that checks a key at construction.
    RsaOaepProbe,
    /// `C_DeriveKey` with `CKM_ECDH1_DERIVE`.
    EcdhDerive,
    /// `C_GetAttributeValue` of the derived ECDH shared secret's `CKA_VALUE`.
    EcdhReadSecret,
    /// `C_DestroyObject` of the derived ECDH shared secret.
    EcdhDestroySecret,
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
    /// A frame was given back to the engine ([`Encryptor::absorb_frame`](crate::Encryptor::absorb_frame),
    /// [`Decryptor::absorb_frame`](crate::Decryptor::absorb_frame)) out of order, or with a
    /// length other than its slot's: the message hash must see the frames in order.
    FrameOrder,
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        Error::Crypto(e)
    }
}
impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::Keyring(KeyringError::Key(e))
    }
}
impl From<Pkcs11Failure> for Error {
    fn from(e: Pkcs11Failure) -> Self {
        Error::Keyring(KeyringError::Pkcs11(e))
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
            Error::FrameOutOfRange { sequence, frames } => write!(
                f,
                "frame {sequence} is not in the message (frames 1 to {frames})"
            ),
            Error::RangeOutOfBounds {
                start,
                end,
                plaintext_len,
            } => write!(
                f,
                "plaintext range {start}..{end} is not within the message's {plaintext_len} bytes"
            ),
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
            Malformed::MessageLength(n) => write!(
                f,
                "a message of {n} bytes does not end with the final frame of this header's frame layout (truncated or extended)"
            ),
            Malformed::FinalFrameMarker { sequence } => write!(
                f,
                "no final frame where the message length puts frame {sequence} (truncated or extended by whole frames)"
            ),
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
            PolicyViolation::RandomAccessNonFramed => f.write_str(
                "a non-framed message has no random access: its body is one AES-GCM unit",
            ),
            PolicyViolation::RandomAccessSigned => f.write_str(
                "a range of a signed message cannot be verified (the signature covers the \
                 whole message): opt into unverified output explicitly, or decrypt it whole",
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
            KeyringError::DecryptNotSupported => {
                f.write_str("this keyring cannot decrypt (it is encrypt-only)")
            }
            KeyringError::Key(k) => write!(f, "unusable key: {k}"),
            KeyringError::KeyAgreement => {
                f.write_str("the ECDH key agreement or key derivation failed")
            }
            KeyringError::WrapFailed => {
                f.write_str("encrypting the data key under the wrapping key failed")
            }
            KeyringError::Pkcs11(p) => write!(f, "PKCS#11: {p}"),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::Rsa => "RSA",
            KeyAlgorithm::Ec => "EC",
        })
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Pem => f.write_str("not a valid PEM document (RFC 7468)"),
            KeyError::PublicKeyPemLabel(KeyAlgorithm::Rsa) => {
                f.write_str("expected a PEM \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"")
            }
            KeyError::PublicKeyPemLabel(KeyAlgorithm::Ec) => {
                f.write_str("expected a PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo)")
            }
            KeyError::PrivateKeyPemLabel(KeyAlgorithm::Rsa) => {
                f.write_str("expected a PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"")
            }
            KeyError::PrivateKeyPemLabel(KeyAlgorithm::Ec) => {
                f.write_str("expected a PEM \"PRIVATE KEY\" (PKCS#8), as the spec requires")
            }
            KeyError::PrivateKeyGivenAsPublic => {
                f.write_str("a private key was given where a public key is required")
            }
            KeyError::EncryptedPrivateKey => f.write_str(
                "encrypted private keys are not supported: decrypt the PKCS#8 document first",
            ),
            KeyError::PublicKeyDer(KeyAlgorithm::Rsa) => f.write_str(
                "not an RSA public key (DER SubjectPublicKeyInfo or PKCS#1 RSAPublicKey)",
            ),
            KeyError::PublicKeyDer(KeyAlgorithm::Ec) => {
                f.write_str("not a SubjectPublicKeyInfo public key on P-256, P-384 or P-521")
            }
            KeyError::PrivateKeyDer(KeyAlgorithm::Rsa) => f.write_str(
                "not a valid RSA private key (DER PKCS#8 PrivateKeyInfo or PKCS#1 RSAPrivateKey)",
            ),
            KeyError::PrivateKeyDer(KeyAlgorithm::Ec) => f.write_str(
                "not a PKCS#8 private key on P-256, P-384 or P-521 (or the key is invalid)",
            ),
            KeyError::InvalidPoint => {
                f.write_str("not a SEC1 point on the curve (or the point at infinity)")
            }
            KeyError::WrongCurve => f.write_str("the key is on another curve than the keyring's"),
            KeyError::ModulusTooSmall { min_bits } => {
                write!(f, "the RSA modulus is shorter than {min_bits} bits")
            }
            KeyError::ModulusTooLarge { max_bits } => {
                write!(f, "the RSA modulus is longer than {max_bits} bits")
            }
            KeyError::ModulusTooSmallForPadding => {
                f.write_str("the RSA modulus is too short for the padding to carry the data key")
            }
            KeyError::KeyPairMismatch => {
                f.write_str("the public key is not the private key's public half")
            }
            KeyError::NoKey => f.write_str("the keyring needs a public key, a private key or both"),
        }
    }
}

/// Writes ` (return value 0x…)` when there is one.
fn write_rv(f: &mut fmt::Formatter<'_>, rv: Option<u64>) -> fmt::Result {
    match rv {
        Some(rv) => write!(f, " (return value 0x{rv:08X})"),
        None => Ok(()),
    }
}

impl fmt::Display for Pkcs11Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Pkcs11Failure::ModuleNotFound => f.write_str("the module file does not exist"),
            Pkcs11Failure::ModuleLoad => {
                f.write_str("the module file is not a loadable PKCS#11 library")
            }
            Pkcs11Failure::Initialize { rv } => {
                f.write_str("C_Initialize failed")?;
                write_rv(f, rv)
            }
            Pkcs11Failure::TokenNotFound => {
                f.write_str("no initialized token has the configured label")
            }
            Pkcs11Failure::TokenRemoved { rv } => {
                f.write_str("the token was removed or is not present")?;
                write_rv(f, Some(rv))
            }
            Pkcs11Failure::PinRequired => {
                f.write_str("the token requires a login but no PIN is configured")
            }
            Pkcs11Failure::PinIncorrect { rv } => {
                f.write_str("login failed: incorrect PIN")?;
                write_rv(f, Some(rv))
            }
            Pkcs11Failure::PinLocked { rv } => {
                f.write_str("login failed: PIN locked or expired")?;
                write_rv(f, Some(rv))
            }
            Pkcs11Failure::KeyNotFound { class } => {
                write!(f, "no {class} object matches the key selector")
            }
            Pkcs11Failure::KeyAmbiguous { class, count } => write!(
                f,
                "{count} {class} objects match the key selector; select by a unique label or id"
            ),
            Pkcs11Failure::KeyType { expected } => write!(f, "the key is not a {expected}"),
            Pkcs11Failure::KeyUsage { attribute } => {
                write!(f, "the key's {attribute} does not allow this keyring's use")
            }
            Pkcs11Failure::KeyFunctionNotPermitted { operation } => write!(
                f,
                "{operation} refused: the key's attributes do not allow it \
                 (CKR_KEY_FUNCTION_NOT_PERMITTED)"
            ),
            Pkcs11Failure::MechanismNotSupported { mechanism, rv } => {
                write!(f, "the token does not support {mechanism}")?;
                write_rv(f, rv)
            }
            Pkcs11Failure::UnwrapFailed { rv } => {
                f.write_str(
                    "unwrapping the data key failed (wrong key, tampering or another \
                     encryption context)",
                )?;
                write_rv(f, rv)
            }
            Pkcs11Failure::NotLoggedIn { operation } => {
                write!(f, "{operation} refused: the session is not logged in")
            }
            Pkcs11Failure::KeyHandleInvalid { operation } => write!(
                f,
                "{operation} failed: the wrapping key is no longer on the token"
            ),
            Pkcs11Failure::OutputLength { operation } => {
                write!(f, "{operation} returned output of an unexpected length")
            }
            Pkcs11Failure::Call { operation, rv } => {
                write!(f, "{operation} failed")?;
                write_rv(f, rv)
            }
        }
    }
}

impl fmt::Display for Pkcs11ObjectClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pkcs11ObjectClass::SecretKey => "CKO_SECRET_KEY",
            Pkcs11ObjectClass::PublicKey => "CKO_PUBLIC_KEY",
            Pkcs11ObjectClass::PrivateKey => "CKO_PRIVATE_KEY",
            Pkcs11ObjectClass::PublicOrPrivateKey => "CKO_PUBLIC_KEY or CKO_PRIVATE_KEY",
        })
    }
}

impl fmt::Display for Pkcs11Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pkcs11Attribute::Encrypt => "CKA_ENCRYPT",
            Pkcs11Attribute::Decrypt => "CKA_DECRYPT",
            Pkcs11Attribute::AllowedMechanisms => "CKA_ALLOWED_MECHANISMS",
            Pkcs11Attribute::Derive => "CKA_DERIVE",
        })
    }
}

impl fmt::Display for Pkcs11KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pkcs11KeyType::Aes => "CKK_AES secret key of 16, 24 or 32 bytes",
            Pkcs11KeyType::RsaOaep => {
                "CKK_RSA key with a modulus large enough for OAEP and a 32-byte data key"
            }
            Pkcs11KeyType::Ec => {
                "CKK_EC private key on P-256, P-384 or P-521 with a public key object (CKA_EC_POINT)"
            }
        })
    }
}

impl fmt::Display for Pkcs11Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pkcs11Mechanism::AesGcm => "CKM_AES_GCM",
            Pkcs11Mechanism::AesGcmIv12Tag128 => "CKM_AES_GCM with a 12-byte IV and a 128-bit tag",
            Pkcs11Mechanism::RsaOaep => "CKM_RSA_PKCS_OAEP",
            Pkcs11Mechanism::RsaOaepSha1 => "CKM_RSA_PKCS_OAEP with SHA-1 / MGF1-SHA-1",
            Pkcs11Mechanism::RsaOaepSha256 => "CKM_RSA_PKCS_OAEP with SHA-256 / MGF1-SHA-256",
            Pkcs11Mechanism::RsaOaepSha384 => "CKM_RSA_PKCS_OAEP with SHA-384 / MGF1-SHA-384",
            Pkcs11Mechanism::RsaOaepSha512 => "CKM_RSA_PKCS_OAEP with SHA-512 / MGF1-SHA-512",
            Pkcs11Mechanism::Ecdh1Derive => "CKM_ECDH1_DERIVE",
        })
    }
}

impl fmt::Display for Pkcs11Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pkcs11Operation::GetSlotList => "C_GetSlotList",
            Pkcs11Operation::OpenSession => "C_OpenSession",
            Pkcs11Operation::GetSessionInfo => "C_GetSessionInfo",
            Pkcs11Operation::Login => "C_Login",
            Pkcs11Operation::FindObjects => "C_FindObjects",
            Pkcs11Operation::GetAttributeValue => "C_GetAttributeValue",
            Pkcs11Operation::GenerateRandom => "C_GenerateRandom",
            Pkcs11Operation::AesGcmParams => "building the CKM_AES_GCM parameters",
            Pkcs11Operation::AesGcmEncrypt => "C_Encrypt (CKM_AES_GCM)",
            Pkcs11Operation::AesGcmDecrypt => "C_Decrypt (CKM_AES_GCM)",
            Pkcs11Operation::AesGcmProbe => "C_Encrypt (CKM_AES_GCM probe)",
            Pkcs11Operation::RsaOaepEncrypt => "C_Encrypt (CKM_RSA_PKCS_OAEP)",
            Pkcs11Operation::RsaOaepDecrypt => "C_Decrypt (CKM_RSA_PKCS_OAEP)",
            Pkcs11Operation::RsaOaepProbe => "C_Encrypt (CKM_RSA_PKCS_OAEP probe)",
            Pkcs11Operation::EcdhDerive => "C_DeriveKey (CKM_ECDH1_DERIVE)",
            Pkcs11Operation::EcdhReadSecret => "C_GetAttributeValue (CKA_VALUE of the ECDH secret)",
            Pkcs11Operation::EcdhDestroySecret => "C_DestroyObject (the ECDH secret)",
        })
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
            ApiMisuse::FrameOrder => {
                "a frame was given back to the engine out of order or with another length than its slot's"
            }
        })
    }
}

impl core::error::Error for Error {}

/// Shorthand for results of the core.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use core::fmt::Write;

    use super::*;
    use crate::test_util::Buf;

    /// Renders `e` into `buf` and returns the text.
    fn text<'a>(e: &dyn fmt::Display, buf: &'a mut [u8]) -> &'a str {
        let mut b = Buf(buf, 0);
        write!(b, "{e}").unwrap();
        let n = b.1;
        core::str::from_utf8(&buf[..n]).unwrap()
    }

    #[test]
    fn keyring_failures_say_what_failed() {
        let cases: [(Error, &str); 5] = [
            (
                KeyError::ModulusTooSmall { min_bits: 2048 }.into(),
                "keyring failed: unusable key: the RSA modulus is shorter than 2048 bits",
            ),
            (
                KeyringError::DecryptNotSupported.into(),
                "keyring failed: this keyring cannot decrypt (it is encrypt-only)",
            ),
            (
                Pkcs11Failure::PinIncorrect { rv: 0xA0 }.into(),
                "keyring failed: PKCS#11: login failed: incorrect PIN (return value 0x000000A0)",
            ),
            (
                Pkcs11Failure::KeyUsage {
                    attribute: Pkcs11Attribute::AllowedMechanisms,
                }
                .into(),
                "keyring failed: PKCS#11: the key's CKA_ALLOWED_MECHANISMS does not allow this \
                 keyring's use",
            ),
            (
                Pkcs11Failure::Call {
                    operation: Pkcs11Operation::RsaOaepDecrypt,
                    rv: None,
                }
                .into(),
                "keyring failed: PKCS#11: C_Decrypt (CKM_RSA_PKCS_OAEP) failed",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(text(&e, &mut [0; 256]), want);
        }
    }

    #[test]
    fn every_key_error_has_its_own_message() {
        let per_algorithm = |a| {
            [
                KeyError::PublicKeyPemLabel(a),
                KeyError::PrivateKeyPemLabel(a),
                KeyError::PublicKeyDer(a),
                KeyError::PrivateKeyDer(a),
            ]
        };
        let others = [
            KeyError::Pem,
            KeyError::PrivateKeyGivenAsPublic,
            KeyError::EncryptedPrivateKey,
            KeyError::InvalidPoint,
            KeyError::WrongCurve,
            KeyError::ModulusTooSmall { min_bits: 2048 },
            KeyError::ModulusTooLarge { max_bits: 8192 },
            KeyError::ModulusTooSmallForPadding,
            KeyError::KeyPairMismatch,
            KeyError::NoKey,
        ];
        let all = others
            .into_iter()
            .chain(per_algorithm(KeyAlgorithm::Rsa))
            .chain(per_algorithm(KeyAlgorithm::Ec));
        let mut bufs = [[0u8; 128]; 18];
        let mut texts = [""; 18];
        let mut n = 0;
        for ((e, buf), t) in all.zip(bufs.iter_mut()).zip(texts.iter_mut()) {
            *t = text(&e, buf);
            assert!(!t.is_empty(), "{e:?}");
            n += 1;
        }
        assert_eq!(n, 18);
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
