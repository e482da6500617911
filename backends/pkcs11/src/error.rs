//! The crate's rich error type, and its mapping onto the core's `Copy` errors.

use std::fmt;
use std::path::PathBuf;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use esdk_core::error::{
    CryptoError, KeyringError, Pkcs11Attribute, Pkcs11Failure, Pkcs11KeyType, Pkcs11Mechanism,
    Pkcs11ObjectClass, Pkcs11Operation,
};

use crate::KeySelector;

/// Everything that can go wrong talking to a PKCS#11 token.
///
/// Constructors ([`Token::open`](crate::Token::open), the keyrings' `new`) return it, so a
/// configuration problem (missing module, wrong PIN, missing key, key attributes) is named
/// precisely. Inside [`Keyring`](esdk_core::Keyring) calls, which must return the core's
/// allocation-free error, it becomes [`Pkcs11Error::to_core_error`]. No variant ever holds
/// the PIN or key material.
#[derive(Debug)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The PKCS#11 module file does not exist.
    ModuleNotFound {
        /// The configured module path.
        path: PathBuf,
    },
    /// The module exists but could not be loaded (not a shared library, missing symbols).
    ModuleLoad {
        /// The configured module path.
        path: PathBuf,
        /// What the loader said.
        source: CkError,
    },
    /// `C_Initialize` failed.
    Initialize {
        /// The configured module path.
        path: PathBuf,
        /// The PKCS#11 error.
        source: CkError,
    },
    /// No slot holds an initialized token with this label.
    TokenNotFound {
        /// The label looked for.
        label: String,
        /// Labels of the tokens the module does offer.
        available: Vec<String>,
    },
    /// The token was removed (or its slot vanished) after it was opened.
    TokenRemoved {
        /// The token's label.
        label: String,
        /// The return value that revealed it.
        rv: RvError,
    },
    /// The token requires a login and no PIN was configured.
    PinRequired {
        /// The token's label.
        label: String,
    },
    /// `C_Login` rejected the PIN (`CKR_PIN_INCORRECT`, `CKR_PIN_INVALID`, `CKR_PIN_LEN_RANGE`).
    PinIncorrect {
        /// The token's label.
        label: String,
        /// The return value.
        rv: RvError,
    },
    /// The user PIN is locked or expired.
    PinLocked {
        /// The token's label.
        label: String,
        /// The return value (`CKR_PIN_LOCKED`, `CKR_PIN_EXPIRED`).
        rv: RvError,
    },
    /// No object of the expected class matches the key selector.
    KeyNotFound {
        /// The selector.
        key: KeySelector,
        /// The object class looked for, e.g. `CKO_SECRET_KEY`.
        class: Pkcs11ObjectClass,
    },
    /// More than one object of the expected class matches the key selector.
    KeyAmbiguous {
        /// The selector.
        key: KeySelector,
        /// The object class looked for.
        class: Pkcs11ObjectClass,
        /// How many matched.
        count: usize,
    },
    /// The key is not of the expected type (`CKK_AES`, `CKK_RSA`) or size.
    KeyType {
        /// The selector.
        key: KeySelector,
        /// What the keyring needs, e.g. a `CKK_AES` key of 16, 24 or 32 bytes.
        expected: Pkcs11KeyType,
    },
    /// The key's attributes forbid what the keyring needs: `CKA_ENCRYPT` or `CKA_DECRYPT`
    /// false (or absent), or a `CKA_ALLOWED_MECHANISMS` without the mechanism.
    KeyUsage {
        /// The selector.
        key: KeySelector,
        /// The attribute, e.g. `CKA_ENCRYPT`.
        attribute: Pkcs11Attribute,
    },
    /// The token does not offer the mechanism (or these parameters of it).
    MechanismNotSupported {
        /// The mechanism and parameters, e.g. `CKM_RSA_PKCS_OAEP` with SHA-256.
        mechanism: Pkcs11Mechanism,
        /// The return value, when a call revealed it.
        rv: Option<RvError>,
    },
    /// The key namespace starts with `aws-kms`, which is reserved for AWS KMS keyrings.
    ReservedNamespace {
        /// The namespace given.
        namespace: String,
    },
    /// The key namespace, or the key name with what the keyring adds to it in the provider
    /// info, does not fit the EDK's 16-bit length fields.
    NameTooLong {
        /// Which: the namespace (provider id) or the name (provider info).
        field: NameField,
        /// Its length in bytes (with what the keyring adds, for the name).
        len: usize,
    },
    /// A wrapped key did not decrypt: wrong key, tampered data or another encryption
    /// context. Tokens report this with various return values (SoftHSM2:
    /// `CKR_GENERAL_ERROR`; others `CKR_ENCRYPTED_DATA_INVALID`), all mapped here.
    UnwrapFailed {
        /// The return value, if the token gave one.
        rv: Option<RvError>,
    },
    /// The token returned output of another length than the operation produces.
    OutputLength {
        /// The operation.
        operation: Pkcs11Operation,
        /// The length expected, in bytes.
        expected: usize,
        /// The length returned.
        actual: usize,
    },
    /// An ECDH public key is on another curve than the token's ECDH private key.
    EcdhCurve {
        /// The token key's selector.
        key: KeySelector,
        /// The curve of the token's key.
        token: esdk_raw::ecdh::EcdhCurve,
        /// The curve of the public key given.
        public: esdk_raw::ecdh::EcdhCurve,
    },
    /// The AES keyring asked the token to generate the GCM IV
    /// ([`Pkcs11AesKeyring::with_token_generated_iv`](crate::Pkcs11AesKeyring::with_token_generated_iv))
    /// and the token encrypted but left the IV buffer zeroed: it ignored the request. No EDK
    /// is written with that output.
    IvNotGenerated {
        /// How the IV was requested.
        mode: crate::TokenIv,
    },
    /// A keyring operation found its session, its login or its token lost, and the one
    /// recovery tried (drop the pooled sessions, find the token again by label, open a
    /// session, log in once) failed; the operation was not run again.
    RecoveryFailed {
        /// The token's label.
        label: String,
        /// The return value that revealed the loss, if the token gave one.
        lost: Option<RvError>,
        /// Why the recovery failed, e.g. [`Pkcs11Error::TokenRemoved`] when no token has
        /// the label any more, or [`Pkcs11Error::PinIncorrect`] when the PIN was changed.
        cause: Box<Pkcs11Error>,
    },
    /// Any other PKCS#11 failure.
    Cryptoki {
        /// What the crate was doing, e.g. `C_Encrypt` with `CKM_AES_GCM`.
        operation: Pkcs11Operation,
        /// The PKCS#11 error.
        source: CkError,
    },
}

impl Pkcs11Error {
    pub(crate) fn cryptoki(operation: Pkcs11Operation, source: CkError) -> Self {
        Pkcs11Error::Cryptoki { operation, source }
    }

    /// The PKCS#11 return value behind the error, if there is one.
    pub fn rv(&self) -> Option<RvError> {
        match self {
            Pkcs11Error::ModuleLoad { source, .. }
            | Pkcs11Error::Initialize { source, .. }
            | Pkcs11Error::Cryptoki { source, .. } => rv_of(source),
            Pkcs11Error::TokenRemoved { rv, .. }
            | Pkcs11Error::PinIncorrect { rv, .. }
            | Pkcs11Error::PinLocked { rv, .. } => Some(*rv),
            Pkcs11Error::MechanismNotSupported { rv, .. } | Pkcs11Error::UnwrapFailed { rv } => *rv,
            Pkcs11Error::RecoveryFailed { cause, .. } => cause.rv(),
            _ => None,
        }
    }

    /// The core error a [`Keyring`](esdk_core::Keyring) call returns for this failure:
    /// the matching [`Pkcs11Failure`] (the core's errors are `Copy` and allocation-free, so
    /// labels, paths and key selectors are left out; the return value is kept), the raw
    /// keyrings' [`KeyringError::InvalidConfiguration`] / [`KeyringError::FieldTooLong`]
    /// for the names, or [`CryptoError::Rng`] for a random-generation failure.
    pub fn to_core_error(&self) -> esdk_core::Error {
        let rv = |rv: Option<RvError>| rv.map(ck_rv);
        let failure = match self {
            Pkcs11Error::ModuleNotFound { .. } => Pkcs11Failure::ModuleNotFound,
            Pkcs11Error::ModuleLoad { .. } => Pkcs11Failure::ModuleLoad,
            Pkcs11Error::Initialize { source, .. } => Pkcs11Failure::Initialize {
                rv: rv(rv_of(source)),
            },
            Pkcs11Error::TokenNotFound { .. } => Pkcs11Failure::TokenNotFound,
            Pkcs11Error::TokenRemoved { rv, .. } => Pkcs11Failure::TokenRemoved { rv: ck_rv(*rv) },
            Pkcs11Error::PinRequired { .. } => Pkcs11Failure::PinRequired,
            Pkcs11Error::PinIncorrect { rv, .. } => Pkcs11Failure::PinIncorrect { rv: ck_rv(*rv) },
            Pkcs11Error::PinLocked { rv, .. } => Pkcs11Failure::PinLocked { rv: ck_rv(*rv) },
            Pkcs11Error::KeyNotFound { class, .. } => Pkcs11Failure::KeyNotFound { class: *class },
            Pkcs11Error::KeyAmbiguous { class, count, .. } => Pkcs11Failure::KeyAmbiguous {
                class: *class,
                count: *count,
            },
            Pkcs11Error::KeyType { expected, .. } => Pkcs11Failure::KeyType {
                expected: *expected,
            },
            Pkcs11Error::KeyUsage { attribute, .. } => Pkcs11Failure::KeyUsage {
                attribute: *attribute,
            },
            Pkcs11Error::MechanismNotSupported { mechanism, rv: r } => {
                Pkcs11Failure::MechanismNotSupported {
                    mechanism: *mechanism,
                    rv: rv(*r),
                }
            }
            Pkcs11Error::ReservedNamespace { .. } => {
                return KeyringError::InvalidConfiguration.into();
            }
            Pkcs11Error::NameTooLong { .. } => return KeyringError::FieldTooLong.into(),
            Pkcs11Error::UnwrapFailed { rv: r } => Pkcs11Failure::UnwrapFailed { rv: rv(*r) },
            Pkcs11Error::OutputLength { operation, .. } => Pkcs11Failure::OutputLength {
                operation: *operation,
            },
            Pkcs11Error::EcdhCurve { .. } => {
                return KeyringError::Key(esdk_core::error::KeyError::WrongCurve).into();
            }
            Pkcs11Error::RecoveryFailed { cause, .. } => return cause.to_core_error(),
            Pkcs11Error::IvNotGenerated { .. } => Pkcs11Failure::MechanismNotSupported {
                mechanism: Pkcs11Mechanism::AesGcm,
                rv: None,
            },
            Pkcs11Error::Cryptoki {
                operation: Pkcs11Operation::GenerateRandom,
                ..
            } => return CryptoError::Rng.into(),
            Pkcs11Error::Cryptoki { operation, source } => {
                let operation = *operation;
                match rv_of(source) {
                    Some(RvError::UserNotLoggedIn) => Pkcs11Failure::NotLoggedIn { operation },
                    Some(RvError::KeyFunctionNotPermitted) => {
                        Pkcs11Failure::KeyFunctionNotPermitted { operation }
                    }
                    Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid) => {
                        Pkcs11Failure::KeyHandleInvalid { operation }
                    }
                    r => Pkcs11Failure::Call {
                        operation,
                        rv: rv(r),
                    },
                }
            }
        };
        failure.into()
    }

    /// Whether the failure means the token (or the device) is gone.
    pub fn is_token_removed(&self) -> bool {
        match self {
            Pkcs11Error::TokenRemoved { .. } => true,
            Pkcs11Error::RecoveryFailed { cause, .. } => cause.is_token_removed(),
            _ => false,
        }
    }
}

/// Records a token failure `e` while trying EDK `i` (as [`AttemptFailure::Backend`]) and
/// keeps it as the error to return if no EDK opens; true when the token is gone and the
/// remaining EDKs are not worth trying.
pub(crate) fn record_token_failure(
    m: &mut esdk_core::materials::DecryptionMaterials<'_>,
    i: u16,
    e: &Pkcs11Error,
    backend_error: &mut Option<esdk_core::Error>,
) -> bool {
    m.record_failure(i, esdk_core::error::AttemptFailure::Backend);
    *backend_error = Some(e.to_core_error());
    e.is_token_removed()
}

/// Which name of a keyring is too long ([`Pkcs11Error::NameTooLong`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameField {
    /// The key namespace (the EDK provider id).
    Namespace,
    /// The key name (in the EDK provider info).
    Name,
}

impl fmt::Display for NameField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameField::Namespace => "key namespace (EDK provider id)",
            NameField::Name => "key name (EDK provider info)",
        })
    }
}

/// The numeric PKCS#11 return value (`CK_RV`) of `rv`: the inverse of `cryptoki`'s own
/// mapping (a unit test checks every entry against it), since `cryptoki` offers no
/// conversion this way.
pub(crate) fn ck_rv(rv: RvError) -> u64 {
    let code: std::ffi::c_ulong = match rv {
        RvError::Cancel => 0x1,                         // CKR_CANCEL
        RvError::HostMemory => 0x2,                     // CKR_HOST_MEMORY
        RvError::SlotIdInvalid => 0x3,                  // CKR_SLOT_ID_INVALID
        RvError::GeneralError => 0x5,                   // CKR_GENERAL_ERROR
        RvError::FunctionFailed => 0x6,                 // CKR_FUNCTION_FAILED
        RvError::ArgumentsBad => 0x7,                   // CKR_ARGUMENTS_BAD
        RvError::NoEvent => 0x8,                        // CKR_NO_EVENT
        RvError::NeedToCreateThreads => 0x9,            // CKR_NEED_TO_CREATE_THREADS
        RvError::CantLock => 0xA,                       // CKR_CANT_LOCK
        RvError::AttributeReadOnly => 0x10,             // CKR_ATTRIBUTE_READ_ONLY
        RvError::AttributeSensitive => 0x11,            // CKR_ATTRIBUTE_SENSITIVE
        RvError::AttributeTypeInvalid => 0x12,          // CKR_ATTRIBUTE_TYPE_INVALID
        RvError::AttributeValueInvalid => 0x13,         // CKR_ATTRIBUTE_VALUE_INVALID
        RvError::ActionProhibited => 0x1B,              // CKR_ACTION_PROHIBITED
        RvError::DataInvalid => 0x20,                   // CKR_DATA_INVALID
        RvError::DataLenRange => 0x21,                  // CKR_DATA_LEN_RANGE
        RvError::DeviceError => 0x30,                   // CKR_DEVICE_ERROR
        RvError::DeviceMemory => 0x31,                  // CKR_DEVICE_MEMORY
        RvError::DeviceRemoved => 0x32,                 // CKR_DEVICE_REMOVED
        RvError::EncryptedDataInvalid => 0x40,          // CKR_ENCRYPTED_DATA_INVALID
        RvError::EncryptedDataLenRange => 0x41,         // CKR_ENCRYPTED_DATA_LEN_RANGE
        RvError::FunctionCanceled => 0x50,              // CKR_FUNCTION_CANCELED
        RvError::FunctionNotParallel => 0x51,           // CKR_FUNCTION_NOT_PARALLEL
        RvError::FunctionNotSupported => 0x54,          // CKR_FUNCTION_NOT_SUPPORTED
        RvError::CurveNotSupported => 0x140,            // CKR_CURVE_NOT_SUPPORTED
        RvError::KeyHandleInvalid => 0x60,              // CKR_KEY_HANDLE_INVALID
        RvError::KeySizeRange => 0x62,                  // CKR_KEY_SIZE_RANGE
        RvError::KeyTypeInconsistent => 0x63,           // CKR_KEY_TYPE_INCONSISTENT
        RvError::KeyNotNeeded => 0x64,                  // CKR_KEY_NOT_NEEDED
        RvError::KeyChanged => 0x65,                    // CKR_KEY_CHANGED
        RvError::KeyNeeded => 0x66,                     // CKR_KEY_NEEDED
        RvError::KeyIndigestible => 0x67,               // CKR_KEY_INDIGESTIBLE
        RvError::KeyFunctionNotPermitted => 0x68,       // CKR_KEY_FUNCTION_NOT_PERMITTED
        RvError::KeyNotWrappable => 0x69,               // CKR_KEY_NOT_WRAPPABLE
        RvError::KeyUnextractable => 0x6A,              // CKR_KEY_UNEXTRACTABLE
        RvError::MechanismInvalid => 0x70,              // CKR_MECHANISM_INVALID
        RvError::MechanismParamInvalid => 0x71,         // CKR_MECHANISM_PARAM_INVALID
        RvError::ObjectHandleInvalid => 0x82,           // CKR_OBJECT_HANDLE_INVALID
        RvError::OperationActive => 0x90,               // CKR_OPERATION_ACTIVE
        RvError::OperationNotInitialized => 0x91,       // CKR_OPERATION_NOT_INITIALIZED
        RvError::PinIncorrect => 0xA0,                  // CKR_PIN_INCORRECT
        RvError::PinInvalid => 0xA1,                    // CKR_PIN_INVALID
        RvError::PinLenRange => 0xA2,                   // CKR_PIN_LEN_RANGE
        RvError::PinExpired => 0xA3,                    // CKR_PIN_EXPIRED
        RvError::PinLocked => 0xA4,                     // CKR_PIN_LOCKED
        RvError::SessionClosed => 0xB0,                 // CKR_SESSION_CLOSED
        RvError::SessionCount => 0xB1,                  // CKR_SESSION_COUNT
        RvError::SessionHandleInvalid => 0xB3,          // CKR_SESSION_HANDLE_INVALID
        RvError::SessionParallelNotSupported => 0xB4,   // CKR_SESSION_PARALLEL_NOT_SUPPORTED
        RvError::SessionReadOnly => 0xB5,               // CKR_SESSION_READ_ONLY
        RvError::SessionExists => 0xB6,                 // CKR_SESSION_EXISTS
        RvError::SessionReadOnlyExists => 0xB7,         // CKR_SESSION_READ_ONLY_EXISTS
        RvError::SessionReadWriteSoExists => 0xB8,      // CKR_SESSION_READ_WRITE_SO_EXISTS
        RvError::SignatureInvalid => 0xC0,              // CKR_SIGNATURE_INVALID
        RvError::SignatureLenRange => 0xC1,             // CKR_SIGNATURE_LEN_RANGE
        RvError::TemplateIncomplete => 0xD0,            // CKR_TEMPLATE_INCOMPLETE
        RvError::TemplateInconsistent => 0xD1,          // CKR_TEMPLATE_INCONSISTENT
        RvError::TokenNotPresent => 0xE0,               // CKR_TOKEN_NOT_PRESENT
        RvError::TokenNotRecognized => 0xE1,            // CKR_TOKEN_NOT_RECOGNIZED
        RvError::TokenWriteProtected => 0xE2,           // CKR_TOKEN_WRITE_PROTECTED
        RvError::UnwrappingKeyHandleInvalid => 0xF0,    // CKR_UNWRAPPING_KEY_HANDLE_INVALID
        RvError::UnwrappingKeySizeRange => 0xF1,        // CKR_UNWRAPPING_KEY_SIZE_RANGE
        RvError::UserAlreadyLoggedIn => 0x100,          // CKR_USER_ALREADY_LOGGED_IN
        RvError::UserNotLoggedIn => 0x101,              // CKR_USER_NOT_LOGGED_IN
        RvError::UserPinNotInitialized => 0x102,        // CKR_USER_PIN_NOT_INITIALIZED
        RvError::UserTypeInvalid => 0x103,              // CKR_USER_TYPE_INVALID
        RvError::UserAnotherAlreadyLoggedIn => 0x104,   // CKR_USER_ANOTHER_ALREADY_LOGGED_IN
        RvError::UserTooManyTypes => 0x105,             // CKR_USER_TOO_MANY_TYPES
        RvError::WrappedKeyInvalid => 0x110,            // CKR_WRAPPED_KEY_INVALID
        RvError::WrappedKeyLenRange => 0x112,           // CKR_WRAPPED_KEY_LEN_RANGE
        RvError::WrappingKeyHandleInvalid => 0x113,     // CKR_WRAPPING_KEY_HANDLE_INVALID
        RvError::WrappingKeySizeRange => 0x114,         // CKR_WRAPPING_KEY_SIZE_RANGE
        RvError::WrappingKeyTypeInconsistent => 0x115,  // CKR_WRAPPING_KEY_TYPE_INCONSISTENT
        RvError::RandomSeedNotSupported => 0x120,       // CKR_RANDOM_SEED_NOT_SUPPORTED
        RvError::RandomNoRng => 0x121,                  // CKR_RANDOM_NO_RNG
        RvError::DomainParamsInvalid => 0x130,          // CKR_DOMAIN_PARAMS_INVALID
        RvError::BufferTooSmall => 0x150,               // CKR_BUFFER_TOO_SMALL
        RvError::SavedStateInvalid => 0x160,            // CKR_SAVED_STATE_INVALID
        RvError::InformationSensitive => 0x170,         // CKR_INFORMATION_SENSITIVE
        RvError::StateUnsaveable => 0x180,              // CKR_STATE_UNSAVEABLE
        RvError::CryptokiNotInitialized => 0x190,       // CKR_CRYPTOKI_NOT_INITIALIZED
        RvError::CryptokiAlreadyInitialized => 0x191,   // CKR_CRYPTOKI_ALREADY_INITIALIZED
        RvError::MutexBad => 0x1A0,                     // CKR_MUTEX_BAD
        RvError::MutexNotLocked => 0x1A1,               // CKR_MUTEX_NOT_LOCKED
        RvError::NewPinMode => 0x1B0,                   // CKR_NEW_PIN_MODE
        RvError::NextOtp => 0x1B1,                      // CKR_NEXT_OTP
        RvError::ExceededMaxIterations => 0x1B5,        // CKR_EXCEEDED_MAX_ITERATIONS
        RvError::FipsSelfTestFailed => 0x1B6,           // CKR_FIPS_SELF_TEST_FAILED
        RvError::LibraryLoadFailed => 0x1B7,            // CKR_LIBRARY_LOAD_FAILED
        RvError::PinTooWeak => 0x1B8,                   // CKR_PIN_TOO_WEAK
        RvError::PublicKeyInvalid => 0x1B9,             // CKR_PUBLIC_KEY_INVALID
        RvError::FunctionRejected => 0x200,             // CKR_FUNCTION_REJECTED
        RvError::UnwrappingKeyTypeInconsistent => 0xF2, // CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT
        RvError::VendorDefined(code) | RvError::UnknownErrorCode(code) => code,
    };
    // `c_ulong` is `u64` here but `u32` on Windows and 32-bit targets.
    #[allow(clippy::useless_conversion)]
    u64::from(code)
}

pub(crate) fn rv_of(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Return values after which a session is not worth keeping.
pub(crate) fn is_session_fatal(e: &CkError) -> bool {
    matches!(
        rv_of(e),
        Some(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid
                | RvError::OperationActive
                | RvError::CryptokiNotInitialized
                | RvError::UserNotLoggedIn
        )
    )
}

/// Return values that mean the session or the login is gone while the token is not: the
/// operation is worth one retry on a fresh, logged-in session.
pub(crate) fn is_session_lost(e: &CkError) -> bool {
    matches!(
        rv_of(e),
        Some(RvError::SessionHandleInvalid | RvError::SessionClosed | RvError::UserNotLoggedIn)
    )
}

/// Return values that mean the token is gone.
pub(crate) fn is_removal(e: &CkError) -> bool {
    matches!(
        rv_of(e),
        Some(
            RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid
        )
    )
}

/// Whether a failure of a decryption is about the infrastructure (session, device, key
/// handle, mechanism) rather than the ciphertext. Everything `C_Decrypt` itself returns is
/// about the ciphertext except the session-level and removal codes: tokens report a bad
/// tag or padding with many codes (SoftHSM2 `CKR_GENERAL_ERROR`, Kryoptic
/// `CKR_ENCRYPTED_DATA_INVALID` for GCM and `CKR_DEVICE_ERROR` for OAEP). Callers also ask
/// the slot whether the token is still there before calling a failure an unwrap failure.
pub(crate) fn is_infrastructure(e: &CkError) -> bool {
    match e {
        CkError::Pkcs11(rv, Function::Decrypt) => {
            is_removal(e)
                || matches!(
                    rv,
                    RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::UserNotLoggedIn
                        | RvError::CryptokiNotInitialized
                        | RvError::OperationNotInitialized
                        | RvError::HostMemory
                        | RvError::DeviceMemory
                        | RvError::FunctionCanceled
                )
        }
        _ => true,
    }
}

impl fmt::Display for Pkcs11Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkcs11Error::ModuleNotFound { path } => {
                write!(f, "PKCS#11 module {} not found", path.display())
            }
            Pkcs11Error::ModuleLoad { path, source } => write!(
                f,
                "PKCS#11 module {} could not be loaded: {source}",
                path.display()
            ),
            Pkcs11Error::Initialize { path, source } => write!(
                f,
                "C_Initialize of PKCS#11 module {} failed: {source}",
                path.display()
            ),
            Pkcs11Error::TokenNotFound { label, available } => {
                write!(f, "no initialized PKCS#11 token labelled {label:?}")?;
                if available.is_empty() {
                    f.write_str(" (the module offers no initialized token)")
                } else {
                    write!(f, " (available: {available:?})")
                }
            }
            Pkcs11Error::TokenRemoved { label, rv } => {
                write!(
                    f,
                    "PKCS#11 token {label:?} was removed (return value {rv:?})"
                )
            }
            Pkcs11Error::PinRequired { label } => {
                write!(
                    f,
                    "PKCS#11 token {label:?} requires a login but no PIN is configured"
                )
            }
            Pkcs11Error::PinIncorrect { label, rv } => {
                write!(
                    f,
                    "login to PKCS#11 token {label:?} failed: incorrect PIN (return value {rv:?})"
                )
            }
            Pkcs11Error::PinLocked { label, rv } => write!(
                f,
                "login to PKCS#11 token {label:?} failed: PIN locked or expired (return value {rv:?})"
            ),
            Pkcs11Error::KeyNotFound { key, class } => {
                write!(f, "no {class} object with {key} on the PKCS#11 token")
            }
            Pkcs11Error::KeyAmbiguous { key, class, count } => write!(
                f,
                "{count} {class} objects match {key} on the PKCS#11 token; select by a unique label or id"
            ),
            Pkcs11Error::KeyType { key, expected } => {
                write!(f, "PKCS#11 key {key} is not a {expected}")
            }
            Pkcs11Error::KeyUsage { key, attribute } => write!(
                f,
                "PKCS#11 key {key} cannot be used by this keyring: its {attribute} does not allow it"
            ),
            Pkcs11Error::MechanismNotSupported { mechanism, rv } => {
                write!(f, "the PKCS#11 token does not support {mechanism}")?;
                match rv {
                    Some(rv) => write!(f, " (return value {rv:?})"),
                    None => Ok(()),
                }
            }
            Pkcs11Error::ReservedNamespace { namespace } => write!(
                f,
                "key namespace {namespace:?}: namespaces starting with \"aws-kms\" are reserved \
                 for AWS KMS keyrings"
            ),
            Pkcs11Error::NameTooLong { field, len } => write!(
                f,
                "the {field} takes {len} bytes, more than the EDK's 65 535-byte field"
            ),
            Pkcs11Error::UnwrapFailed { rv } => {
                f.write_str(
                    "unwrapping the data key failed (wrong key, tampering or another encryption context)",
                )?;
                match rv {
                    Some(rv) => write!(f, " (return value {rv:?})"),
                    None => Ok(()),
                }
            }
            Pkcs11Error::OutputLength {
                operation,
                expected,
                actual,
            } => write!(
                f,
                "PKCS#11 {operation} returned {actual} bytes where {expected} were expected"
            ),
            Pkcs11Error::EcdhCurve { key, token, public } => write!(
                f,
                "the ECDH key {key} on the token is on {token}, the public key given is on {public}"
            ),
            Pkcs11Error::IvNotGenerated { mode } => write!(
                f,
                "the PKCS#11 token did not generate the AES-GCM IV ({mode}): the IV came back \
                 zeroed, so the token ignores the request; no EDK was written"
            ),
            Pkcs11Error::RecoveryFailed { label, lost, cause } => {
                write!(
                    f,
                    "PKCS#11 token {label:?} lost its session, login or token"
                )?;
                if let Some(rv) = lost {
                    write!(f, " (return value {rv:?})")?;
                }
                write!(
                    f,
                    "; tried once to find the token again by label, open a session and log in, \
                     which failed: {cause}"
                )
            }
            Pkcs11Error::Cryptoki { operation, source } => {
                write!(f, "PKCS#11 {operation} failed: {source}")
            }
        }
    }
}

impl core::error::Error for Pkcs11Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Pkcs11Error::ModuleLoad { source, .. }
            | Pkcs11Error::Initialize { source, .. }
            | Pkcs11Error::Cryptoki { source, .. } => Some(source),
            Pkcs11Error::RecoveryFailed { cause, .. } => Some(&**cause),
            _ => None,
        }
    }
}

impl From<Pkcs11Error> for esdk_core::Error {
    fn from(e: Pkcs11Error) -> Self {
        e.to_core_error()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use cryptoki::error::Rv;

    fn ck(rv: RvError, f: Function) -> CkError {
        CkError::Pkcs11(rv, f)
    }

    #[test]
    fn decrypt_failures_are_about_the_ciphertext_unless_the_session_or_token_failed() {
        // Tag or padding failures, whatever the token calls them.
        for rv in [
            RvError::GeneralError,
            RvError::EncryptedDataInvalid,
            RvError::EncryptedDataLenRange,
            RvError::DeviceError,
            RvError::FunctionFailed,
        ] {
            assert!(!is_infrastructure(&ck(rv, Function::Decrypt)), "{rv:?}");
        }
        for rv in [
            RvError::SessionHandleInvalid,
            RvError::DeviceRemoved,
            RvError::TokenNotPresent,
            RvError::UserNotLoggedIn,
        ] {
            assert!(is_infrastructure(&ck(rv, Function::Decrypt)), "{rv:?}");
        }
        // Anything from C_DecryptInit is about the key or mechanism.
        assert!(is_infrastructure(&ck(
            RvError::ArgumentsBad,
            Function::DecryptInit
        )));
        assert!(is_infrastructure(&CkError::NotSupported));
        assert!(is_removal(&ck(RvError::DeviceRemoved, Function::Encrypt)));
        assert!(!is_removal(&ck(RvError::GeneralError, Function::Encrypt)));
        assert!(is_session_fatal(&ck(
            RvError::SessionClosed,
            Function::Encrypt
        )));
        assert!(!is_session_fatal(&ck(
            RvError::GeneralError,
            Function::Decrypt
        )));
    }

    #[test]
    fn failed_recoveries_say_what_was_tried_and_keep_the_cause() {
        let e = Pkcs11Error::RecoveryFailed {
            label: "hsm-1".into(),
            lost: Some(RvError::DeviceRemoved),
            cause: Box::new(Pkcs11Error::TokenRemoved {
                label: "hsm-1".into(),
                rv: RvError::TokenNotPresent,
            }),
        };
        assert!(e.is_token_removed());
        assert_eq!(e.rv(), Some(RvError::TokenNotPresent));
        assert!(matches!(
            e.to_core_error(),
            esdk_core::Error::Keyring(KeyringError::Pkcs11(Pkcs11Failure::TokenRemoved {
                rv: 0xE0
            }))
        ));
        let text = e.to_string();
        for part in [
            "\"hsm-1\"",
            "DeviceRemoved",
            "find the token again by label",
            "log in",
            "was removed",
        ] {
            assert!(text.contains(part), "{text:?} lacks {part:?}");
        }
        let pin = Pkcs11Error::RecoveryFailed {
            label: "hsm-1".into(),
            lost: None,
            cause: Box::new(Pkcs11Error::PinIncorrect {
                label: "hsm-1".into(),
                rv: RvError::PinIncorrect,
            }),
        };
        assert!(!pin.is_token_removed());
        assert!(matches!(
            pin.to_core_error(),
            esdk_core::Error::Keyring(KeyringError::Pkcs11(Pkcs11Failure::PinIncorrect { .. }))
        ));
        let iv = Pkcs11Error::IvNotGenerated {
            mode: crate::TokenIv::GcmParams,
        };
        assert!(iv.to_string().contains("did not generate the AES-GCM IV"));
        assert!(matches!(
            iv.to_core_error(),
            esdk_core::Error::Keyring(KeyringError::Pkcs11(Pkcs11Failure::MechanismNotSupported {
                mechanism: Pkcs11Mechanism::AesGcm,
                rv: None
            }))
        ));
    }

    #[test]
    fn core_errors_name_the_cause() {
        let core = |e: Pkcs11Error| match e.to_core_error() {
            esdk_core::Error::Keyring(KeyringError::Pkcs11(p)) => p,
            e => panic!("{e:?}"),
        };
        assert_eq!(
            core(Pkcs11Error::TokenRemoved {
                label: "t".into(),
                rv: RvError::DeviceRemoved
            }),
            Pkcs11Failure::TokenRemoved { rv: 0x32 }
        );
        assert_eq!(
            core(Pkcs11Error::KeyUsage {
                key: KeySelector::label("k"),
                attribute: Pkcs11Attribute::Encrypt,
            }),
            Pkcs11Failure::KeyUsage {
                attribute: Pkcs11Attribute::Encrypt
            }
        );
        assert_eq!(
            core(Pkcs11Error::cryptoki(
                Pkcs11Operation::AesGcmEncrypt,
                ck(RvError::KeyFunctionNotPermitted, Function::EncryptInit)
            )),
            Pkcs11Failure::KeyFunctionNotPermitted {
                operation: Pkcs11Operation::AesGcmEncrypt
            }
        );
        assert_eq!(
            core(Pkcs11Error::cryptoki(
                Pkcs11Operation::RsaOaepDecrypt,
                ck(RvError::ObjectHandleInvalid, Function::DecryptInit)
            )),
            Pkcs11Failure::KeyHandleInvalid {
                operation: Pkcs11Operation::RsaOaepDecrypt
            }
        );
        assert_eq!(
            core(Pkcs11Error::cryptoki(
                Pkcs11Operation::FindObjects,
                ck(RvError::GeneralError, Function::FindObjects)
            )),
            Pkcs11Failure::Call {
                operation: Pkcs11Operation::FindObjects,
                rv: Some(0x5)
            }
        );
        assert_eq!(
            core(Pkcs11Error::cryptoki(
                Pkcs11Operation::AesGcmParams,
                CkError::InvalidValue
            )),
            Pkcs11Failure::Call {
                operation: Pkcs11Operation::AesGcmParams,
                rv: None
            }
        );
        assert_eq!(
            Pkcs11Error::cryptoki(
                Pkcs11Operation::GenerateRandom,
                ck(RvError::RandomNoRng, Function::GenerateRandom)
            )
            .to_core_error(),
            esdk_core::Error::Crypto(CryptoError::Rng)
        );
        assert_eq!(
            Pkcs11Error::ReservedNamespace {
                namespace: "aws-kms-x".into()
            }
            .to_core_error(),
            esdk_core::Error::Keyring(KeyringError::InvalidConfiguration)
        );
        assert_eq!(
            Pkcs11Error::NameTooLong {
                field: NameField::Name,
                len: 70_000
            }
            .to_core_error(),
            esdk_core::Error::Keyring(KeyringError::FieldTooLong)
        );
        let e = Pkcs11Error::PinIncorrect {
            label: "tok".into(),
            rv: RvError::PinIncorrect,
        };
        assert_eq!(e.rv(), Some(RvError::PinIncorrect));
        assert_eq!(core(e), Pkcs11Failure::PinIncorrect { rv: 0xA0 });
    }

    #[test]
    fn return_values_are_the_numbers_cryptoki_maps_from() {
        // Every code below CKR_VENDOR_DEFINED that cryptoki names maps back to itself (the
        // defined codes go up to CKR_FUNCTION_REJECTED = 0x200).
        let mut named = 0;
        for code in 0u32..=0x200 {
            if let Rv::Error(e) = Rv::from(std::ffi::c_ulong::from(code))
                && !matches!(e, RvError::UnknownErrorCode(_))
            {
                assert_eq!(ck_rv(e), u64::from(code), "{e:?}");
                named += 1;
            }
        }
        assert_eq!(named, 93);
        assert_eq!(ck_rv(RvError::VendorDefined(0x8000_0001)), 0x8000_0001);
    }

    #[test]
    fn display_names_the_operation_and_the_return_value() {
        let e = Pkcs11Error::cryptoki(
            Pkcs11Operation::AesGcmDecrypt,
            ck(RvError::DeviceError, Function::Decrypt),
        );
        assert!(
            e.to_string()
                .starts_with("PKCS#11 C_Decrypt (CKM_AES_GCM) failed: ")
        );
        assert_eq!(
            e.to_core_error().to_string(),
            "keyring failed: PKCS#11: C_Decrypt (CKM_AES_GCM) failed (return value 0x00000030)"
        );
        assert_eq!(
            Pkcs11Error::NameTooLong {
                field: NameField::Namespace,
                len: 70_000
            }
            .to_string(),
            "the key namespace (EDK provider id) takes 70000 bytes, more than the EDK's \
             65 535-byte field"
        );
        assert_eq!(
            Pkcs11Error::PinIncorrect {
                label: "tok".into(),
                rv: RvError::PinIncorrect,
            }
            .to_string(),
            "login to PKCS#11 token \"tok\" failed: incorrect PIN (return value PinIncorrect)"
        );
    }

    #[test]
    fn display_names_the_key_and_what_is_missing() {
        let e = Pkcs11Error::KeyNotFound {
            key: KeySelector::id(vec![0x01, 0xAB]),
            class: Pkcs11ObjectClass::SecretKey,
        };
        assert_eq!(
            e.to_string(),
            "no CKO_SECRET_KEY object with id 0x01ab on the PKCS#11 token"
        );
        let e = Pkcs11Error::TokenNotFound {
            label: "x".into(),
            available: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "no initialized PKCS#11 token labelled \"x\" (available: [\"a\", \"b\"])"
        );
    }
}
