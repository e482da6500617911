//! A token removed while a keyring uses it: every call says the token was removed (naming it),
//! and opening it again finds no token.
//!
//! Its own test binary, so that nothing runs beside it: removing a SoftHSM2 token
//! (`softhsm2-util --delete-token`) while another thread of the same process creates token
//! objects made that `C_CreateObject` fail now and then with `CKR_GENERAL_ERROR` (seen in CI
//! under load, when this test shared a binary with the other error tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use esdk_core::EncryptOptions;
use esdk_core::error::{Error, KeyringError};
use esdk_pkcs11::{Pkcs11AesKeyring, Pkcs11Error, Pkcs11Failure, Token, TokenConfig};

#[test]
fn removed_token() {
    let label = env("ESDK_TEST_PKCS11_REMOVE_TOKEN");
    let remove = env("ESDK_TEST_PKCS11_REMOVE_CMD");
    let t = Token::open(TokenConfig::new(module(), &label).with_pin(env("ESDK_TEST_PKCS11_PIN")))
        .unwrap();
    let kr = Pkcs11AesKeyring::new(&t, aes_selector(), NS, AES_NAME).unwrap();
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &kr, &EncryptOptions::new(), &[], b"before").unwrap();
    assert!(t.is_present());

    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&remove)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "`{remove}` failed");

    assert!(!t.is_present());
    let removed = |e: Error| {
        matches!(
            e,
            Error::Keyring(KeyringError::Pkcs11(Pkcs11Failure::TokenRemoved { .. }))
        )
    };
    let e = esdk::encrypt(&cfg, &kr, &EncryptOptions::new(), &[], b"after").unwrap_err();
    assert!(e.core().is_some_and(removed), "{e:?}");
    let e = esdk::decrypt(&cfg, &kr, &[], &msg).unwrap_err();
    assert!(e.core().is_some_and(removed), "{e:?}");
    let e = kr.encrypt_data_key(&[0; 12], b"", &[0; 32]).unwrap_err();
    assert!(e.is_token_removed(), "{e:?}");
    assert!(e.to_string().contains(&label), "{e}");
    let e = Token::open(TokenConfig::new(module(), &label).with_pin("1234")).unwrap_err();
    assert!(matches!(e, Pkcs11Error::TokenNotFound { .. }), "{e:?}");
}
