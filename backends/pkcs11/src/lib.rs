//! # esdk-pkcs11
//!
//! Keyrings for the Rust AWS Encryption SDK whose wrapping key lives on a PKCS#11 token
//! (an HSM, SoftHSM2, Kryoptic, a smart card) and never leaves it. Built on the
//! [`cryptoki`] crate.
//!
//! - [`Pkcs11AesKeyring`]: AES-GCM wrapping inside the token (`CKM_AES_GCM`, 12-byte IV from
//!   the token's RNG or the caller's provider, 128-bit tag, AAD = the serialized encryption
//!   context). Its EDKs are byte-for-byte those of the raw AES keyring, so a message
//!   wrapped on the token opens with `esdk_raw::RawAesKeyring` or an official SDK's raw AES
//!   keyring holding the same key, and the other way round.
//! - [`Pkcs11RsaKeyring`]: RSA-OAEP (SHA-256 by default; SHA-1, SHA-384, SHA-512
//!   selectable, MGF1 with the same hash) with the key pair on the token; EDKs
//!   byte-compatible with the raw RSA keyring.
//! - [`Pkcs11EcdhKeyring`]: ECDH (`CKM_ECDH1_DERIVE`) with the P-256/P-384/P-521 private
//!   key on the token and the raw ECDH keyring's KDF and wrap; EDKs byte-compatible with the
//!   raw ECDH keyring (a device encrypts with the no_std raw keyring to the token key's
//!   public key; the server opens the message on the HSM).
//! - [`Token`]: loads a module once per process ([`load_module`]: PKCS#11 allows one
//!   `C_Initialize` per process), finds the token **by label** (some modules renumber slots),
//!   logs in with a PIN from configuration (never logged, zeroized on drop) and keeps a pool
//!   of sessions, which makes the keyrings `Send + Sync`: a cryptoki `Session` is `Send` but
//!   not `Sync`, so each call borrows a session of its own.
//!
//! A keyring operation that finds its session, the login or the token lost
//! (`CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`, `CKR_USER_NOT_LOGGED_IN`,
//! `CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, a slot whose token is gone or relabelled,
//! or any session-level failure of a session that is no longer logged in: after
//! `C_CloseAllSessions`, `C_Logout`, an HSM restart, a token pulled out and put back or
//! initialized anew) recovers once: it drops the pooled sessions, finds the token again
//! **by label** (in another slot if need be), opens a session, logs in with the PIN, looks
//! its key up again by label or id, and runs once more. A failed recovery is
//! [`Pkcs11Error::RecoveryFailed`], which says what was tried and why it failed (e.g.
//! [`Pkcs11Error::TokenRemoved`] when no token has the label any more,
//! [`Pkcs11Error::PinIncorrect`] when the PIN was changed meanwhile); a second failure of
//! the operation itself is returned as it is. Never a loop.
//!
//! Configuration problems come back from the constructors as a specific [`Pkcs11Error`]
//! (missing module, unknown token, wrong PIN, missing key, a key without `CKA_ENCRYPT` /
//! `CKA_DECRYPT`, an unsupported mechanism, a removed token) with the PKCS#11 return
//! value. Inside [`Keyring`](esdk_core::Keyring) calls, whose error type is the core's
//! allocation-free [`esdk_core::Error`], failures become
//! `Error::Keyring(KeyringError::Pkcs11(`[`Pkcs11Failure`]`))`, which keeps the operation, the
//! attribute or mechanism and the return value (see [`Pkcs11Error::to_core_error`]), and, per EDK on decrypt, an
//! [`AttemptFailure`](esdk_core::error::AttemptFailure) (`UnwrapFailed` for a bad
//! ciphertext whatever return value the token uses, `Backend` for a token failure).
//!
//! ## Getting started (HSM server)
//! ```no_run
//! use esdk_pkcs11::{KeySelector, Pkcs11AesKeyring, Token, TokenConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let token = Token::open(
//!     TokenConfig::new("/usr/lib/softhsm/libsofthsm2.so", "my-token")
//!         .with_pin(std::env::var("HSM_PIN")?),
//! )?;
//! let keyring = Pkcs11AesKeyring::new(&token, KeySelector::label("wrapping-key"), "my-ns", "key-1")?;
//! // Share `keyring` (e.g. in an Arc) between threads, and use it like any keyring:
//! let cfg = esdk_core::Config::new();
//! # let _ = (cfg, keyring);
//! # Ok(())
//! # }
//! ```
//! With the `esdk` crate: `esdk::encrypt(&cfg, &keyring, &opts, &ec, plaintext)` and
//! `esdk::decrypt(&cfg, &keyring, &[], &message)`. The `hsm_wrap` example is a complete
//! program.
//!
//! ## Token requirements
//! - AES keyring: a `CKK_AES` secret key of 16, 24 or 32 bytes with `CKA_ENCRYPT` and
//!   `CKA_DECRYPT`, and `CKM_AES_GCM`. The data key is a byte string in memory, not a
//!   token object, so the keyring uses `C_Encrypt`/`C_Decrypt` rather than
//!   `C_WrapKey`/`C_UnwrapKey` (SoftHSM2's GCM has no wrap capability anyway).
//! - RSA keyring: a `CKK_RSA` public key with `CKA_ENCRYPT` (to encrypt) and/or private key
//!   with `CKA_DECRYPT` (to decrypt) under the same label or id, and `CKM_RSA_PKCS_OAEP`
//!   with the chosen hash. SoftHSM2 2.6.1 does OAEP with SHA-1 only; the constructor
//!   reports [`Pkcs11Error::MechanismNotSupported`] for the others there.
//!
//! ## Testing
//! The tests run against a real token and **fail** (never skip) when none is configured.
//! `scripts/pkcs11-test.sh` installs and initializes SoftHSM2 in a private directory, runs
//! them, then runs the SHA-2 OAEP tests against Kryoptic. The module is chosen with
//! `TEST_PKCS11_MODULE` (as cryptoki's own CI does).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod aes;
mod ecdh;
mod error;
mod rsa;
mod token;

pub use aes::{Pkcs11AesKeyring, TokenIv};
pub use ecdh::{Pkcs11EcdhKeyring, ec_params};
pub use error::{NameField, Pkcs11Error};
/// The parts of a [`Pkcs11Error`] that the core's [`Pkcs11Failure`] shares with it.
pub use esdk_core::error::{
    Pkcs11Attribute, Pkcs11Failure, Pkcs11KeyType, Pkcs11Mechanism, Pkcs11ObjectClass,
    Pkcs11Operation,
};
/// The raw ECDH keyring's curve and public key types, which [`Pkcs11EcdhKeyring`] takes.
pub use esdk_raw::ecdh::{EcdhCurve, EcdhPublicKey};
pub use rsa::{OaepHash, Pkcs11RsaKeyring};
pub use token::{KeySelector, Token, TokenConfig, load_module};

/// The `cryptoki` crate this one is built on, for [`Token::with_session`] and
/// [`Token::context`].
pub use cryptoki;

/// Where a keyring takes random bytes from (IVs, generated data keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Randomness {
    /// The token's RNG (`C_GenerateRandom`).
    Token,
    /// The crypto provider the message is encrypted with (the caller's RNG): the
    /// materials' `fill_random` / `generate_data_key`.
    Provider,
}

/// Checks a namespace and key name as the raw keyrings do; `info_extra` is what the
/// provider info adds to the name.
fn check_names(namespace: &str, name: &str, info_extra: usize) -> Result<(), Pkcs11Error> {
    if namespace.starts_with("aws-kms") {
        return Err(Pkcs11Error::ReservedNamespace {
            namespace: namespace.to_owned(),
        });
    }
    if namespace.len() > 0xFFFF {
        return Err(Pkcs11Error::NameTooLong {
            field: NameField::Namespace,
            len: namespace.len(),
        });
    }
    let info_len = name.len().saturating_add(info_extra);
    if info_len > 0xFFFF {
        return Err(Pkcs11Error::NameTooLong {
            field: NameField::Name,
            len: info_len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_the_raw_keyrings() {
        assert!(check_names("ns", "name", 20).is_ok());
        assert!(matches!(
            check_names("aws-kms-x", "n", 0),
            Err(Pkcs11Error::ReservedNamespace { namespace }) if namespace == "aws-kms-x"
        ));
        let long = "x".repeat(0xFFFF - 19);
        assert!(matches!(
            check_names("ns", &long, 20),
            Err(Pkcs11Error::NameTooLong {
                field: NameField::Name,
                len: 0x1_0000
            })
        ));
        assert!(check_names("ns", &long, 0).is_ok());
        assert!(matches!(
            check_names(&"n".repeat(0x1_0000), "name", 0),
            Err(Pkcs11Error::NameTooLong {
                field: NameField::Namespace,
                len: 0x1_0000
            })
        ));
    }
}
