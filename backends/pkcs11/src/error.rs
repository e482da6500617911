//! The crate's rich error type, and its mapping onto the core's `Copy` errors.

use std::fmt;
use std::path::PathBuf;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use esdk_core::error::{CryptoError, KeyringError};

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
        class: &'static str,
    },
    /// More than one object of the expected class matches the key selector.
    KeyAmbiguous {
        /// The selector.
        key: KeySelector,
        /// The object class looked for.
        class: &'static str,
        /// How many matched.
        count: usize,
    },
    /// The key is not of the expected type (`CKK_AES`, `CKK_RSA`) or size.
    KeyType {
        /// The selector.
        key: KeySelector,
        /// What the keyring needs, e.g. `CKK_AES of 16, 24 or 32 bytes`.
        expected: &'static str,
    },
    /// The key's attributes forbid what the keyring needs: `CKA_ENCRYPT` or `CKA_DECRYPT`
    /// false (or absent), or a `CKA_ALLOWED_MECHANISMS` without the mechanism.
    KeyUsage {
        /// The selector.
        key: KeySelector,
        /// The attribute, e.g. `CKA_ENCRYPT`.
        attribute: &'static str,
    },
    /// The token does not offer the mechanism (or these parameters of it).
    MechanismNotSupported {
        /// The mechanism and parameters, e.g. `CKM_RSA_PKCS_OAEP with SHA-256`.
        mechanism: &'static str,
        /// The return value, when a call revealed it.
        rv: Option<RvError>,
    },
    /// The keyring's configuration is invalid (namespace, name).
    InvalidConfiguration(&'static str),
    /// A wrapped key did not decrypt: wrong key, tampered data or another encryption
    /// context. Tokens report this with various return values (SoftHSM2:
    /// `CKR_GENERAL_ERROR`; others `CKR_ENCRYPTED_DATA_INVALID`), all mapped here.
    UnwrapFailed {
        /// The return value, if the token gave one.
        rv: Option<RvError>,
    },
    /// Any other PKCS#11 failure.
    Cryptoki {
        /// What the crate was doing, e.g. `C_Encrypt (AES-GCM wrap)`.
        operation: &'static str,
        /// The PKCS#11 error.
        source: CkError,
    },
}

impl Pkcs11Error {
    pub(crate) fn cryptoki(operation: &'static str, source: CkError) -> Self {
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
            _ => None,
        }
    }

    /// The core error a [`Keyring`](esdk_core::Keyring) call returns for this failure: a
    /// [`KeyringError::Other`] with a fixed description of the cause (the core's errors
    /// are `Copy` and allocation-free), or [`CryptoError::Rng`] for a random-generation
    /// failure.
    pub fn to_core_error(&self) -> esdk_core::Error {
        let s = match self {
            Pkcs11Error::ModuleNotFound { .. } => "PKCS#11 module not found",
            Pkcs11Error::ModuleLoad { .. } => "PKCS#11 module could not be loaded",
            Pkcs11Error::Initialize { .. } => "PKCS#11 C_Initialize failed",
            Pkcs11Error::TokenNotFound { .. } => "PKCS#11 token not found",
            Pkcs11Error::TokenRemoved { .. } => "PKCS#11 token removed or not present",
            Pkcs11Error::PinRequired { .. } => "PKCS#11 token requires a PIN",
            Pkcs11Error::PinIncorrect { .. } => "PKCS#11 login failed: incorrect PIN",
            Pkcs11Error::PinLocked { .. } => "PKCS#11 login failed: PIN locked or expired",
            Pkcs11Error::KeyNotFound { .. } => "PKCS#11 wrapping key not found on the token",
            Pkcs11Error::KeyAmbiguous { .. } => "PKCS#11 key selector matches several keys",
            Pkcs11Error::KeyType { .. } => "PKCS#11 key has the wrong type or size",
            Pkcs11Error::KeyUsage { .. } => {
                "PKCS#11 key attributes do not allow this use (CKA_ENCRYPT, CKA_DECRYPT, CKA_ALLOWED_MECHANISMS)"
            }
            Pkcs11Error::MechanismNotSupported { .. } => "PKCS#11 mechanism not supported",
            Pkcs11Error::InvalidConfiguration(s) => s,
            Pkcs11Error::UnwrapFailed { .. } => "PKCS#11 unwrap failed",
            Pkcs11Error::Cryptoki {
                operation: "C_GenerateRandom",
                ..
            } => return esdk_core::Error::Crypto(CryptoError::Rng),
            Pkcs11Error::Cryptoki { source, .. } => match rv_of(source) {
                Some(RvError::UserNotLoggedIn) => "PKCS#11 session is not logged in",
                Some(RvError::KeyFunctionNotPermitted) => {
                    "PKCS#11 key attributes do not allow this use (CKA_ENCRYPT, CKA_DECRYPT, CKA_ALLOWED_MECHANISMS)"
                }
                Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid) => {
                    "PKCS#11 wrapping key no longer on the token"
                }
                _ => "PKCS#11 operation failed",
            },
        };
        esdk_core::Error::Keyring(KeyringError::Other(s))
    }

    /// Whether the failure means the token (or the device) is gone.
    pub fn is_token_removed(&self) -> bool {
        matches!(self, Pkcs11Error::TokenRemoved { .. })
    }
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
            Pkcs11Error::InvalidConfiguration(s) => write!(f, "invalid keyring configuration: {s}"),
            Pkcs11Error::UnwrapFailed { rv } => {
                f.write_str(
                    "unwrapping the data key failed (wrong key, tampering or another encryption context)",
                )?;
                match rv {
                    Some(rv) => write!(f, " (return value {rv:?})"),
                    None => Ok(()),
                }
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
    fn core_errors_name_the_cause() {
        let other = |e: Pkcs11Error| match e.to_core_error() {
            esdk_core::Error::Keyring(KeyringError::Other(s)) => s,
            e => panic!("{e:?}"),
        };
        assert_eq!(
            other(Pkcs11Error::TokenRemoved {
                label: "t".into(),
                rv: RvError::DeviceRemoved
            }),
            "PKCS#11 token removed or not present"
        );
        assert_eq!(
            other(Pkcs11Error::KeyUsage {
                key: KeySelector::label("k"),
                attribute: "CKA_ENCRYPT"
            }),
            "PKCS#11 key attributes do not allow this use (CKA_ENCRYPT, CKA_DECRYPT, CKA_ALLOWED_MECHANISMS)"
        );
        assert_eq!(
            other(Pkcs11Error::cryptoki(
                "C_Encrypt",
                ck(RvError::KeyFunctionNotPermitted, Function::EncryptInit)
            )),
            "PKCS#11 key attributes do not allow this use (CKA_ENCRYPT, CKA_DECRYPT, CKA_ALLOWED_MECHANISMS)"
        );
        assert_eq!(
            Pkcs11Error::cryptoki(
                "C_GenerateRandom",
                ck(RvError::RandomNoRng, Function::GenerateRandom)
            )
            .to_core_error(),
            esdk_core::Error::Crypto(CryptoError::Rng)
        );
        let e = Pkcs11Error::PinIncorrect {
            label: "tok".into(),
            rv: RvError::PinIncorrect,
        };
        assert_eq!(e.rv(), Some(RvError::PinIncorrect));
        assert_eq!(
            e.to_string(),
            "login to PKCS#11 token \"tok\" failed: incorrect PIN (return value PinIncorrect)"
        );
    }

    #[test]
    fn display_names_the_key_and_what_is_missing() {
        let e = Pkcs11Error::KeyNotFound {
            key: KeySelector::id(vec![0x01, 0xAB]),
            class: "CKO_SECRET_KEY",
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
