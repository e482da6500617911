//! Real-token behaviour when sessions or the login are lost under a running keyring: after
//! `C_CloseAllSessions` (every pooled session and the login session die) and after
//! `C_Logout`, the next operation reopens a session, logs in once and succeeds; when the
//! login cannot be restored (the PIN was changed meanwhile), the operation fails at once
//! with the specific PIN error, after one retry.
//!
//! Its own test binary with a single test: closing all sessions or logging out acts on the
//! whole process's sessions on the token, which would break tests running beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use esdk_core::EncryptOptions;
use esdk_core::error::{Error, KeyringError};
use esdk_pkcs11::cryptoki::types::AuthPin;
use esdk_pkcs11::{
    EcdhCurve, KeySelector, Pkcs11AesKeyring, Pkcs11EcdhKeyring, Pkcs11Failure, Token, TokenConfig,
};
use esdk_raw::ecdh::RawEcdhKeyring;

/// Calls the module's `C_CloseAllSessions` on `slot`, as another part of the process (or
/// an HSM restart) would. cryptoki does not wrap it, so the function list is taken from the
/// module itself (the same library, already loaded: the same sessions).
#[allow(unsafe_code)]
fn close_all_sessions(slot: u64) {
    use cryptoki_sys::{CK_FUNCTION_LIST_PTR, CK_RV, CK_SLOT_ID};
    // SAFETY: the module is a PKCS#11 library that this process has loaded and initialized
    // already (dlopen returns the same instance); C_GetFunctionList fills a pointer to its
    // static function table, and C_CloseAllSessions takes a slot id. The library is leaked
    // so that the table stays valid.
    unsafe {
        let lib = libloading::Library::new(module()).unwrap();
        let get: libloading::Symbol<unsafe extern "C" fn(*mut CK_FUNCTION_LIST_PTR) -> CK_RV> =
            lib.get(b"C_GetFunctionList").unwrap();
        let mut list: CK_FUNCTION_LIST_PTR = std::ptr::null_mut();
        assert_eq!(get(&mut list), 0, "C_GetFunctionList");
        let close = (*list).C_CloseAllSessions.expect("C_CloseAllSessions");
        assert_eq!(close(slot as CK_SLOT_ID), 0, "C_CloseAllSessions");
        std::mem::forget(lib);
    }
}

/// Generates an EC P-256 key pair able to derive on `token`.
fn ecdh_key(token: &Token, label: &str) -> KeySelector {
    generate_ec_key(token, EcdhCurve::P256, label, true)
}

#[test]
fn lost_sessions_and_logins_are_restored_once() {
    let cfg = esdk_core::Config::new();
    let opts = EncryptOptions::new();
    let t = Token::open(config()).unwrap();
    let aes = Pkcs11AesKeyring::new(&t, aes_selector(), NS, AES_NAME).unwrap();
    let ecdh =
        Pkcs11EcdhKeyring::public_key_discovery(&t, ecdh_key(&t, "session-loss-ecdh")).unwrap();
    let device = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
        EcdhCurve::P256,
        ecdh.public_key(),
    )
    .unwrap();
    let aes_msg = esdk::encrypt(&cfg, &aes, &opts, &[], b"aes").unwrap();
    let ecdh_msg = esdk::encrypt(&cfg, &device, &opts, &[], b"ecdh").unwrap();
    let check = |what: &str| {
        assert_eq!(
            esdk::decrypt(&cfg, &aes, &[], &aes_msg)
                .unwrap_or_else(|e| panic!("AES after {what}: {e:?}"))
                .plaintext,
            b"aes",
            "AES after {what}"
        );
        assert_eq!(
            esdk::decrypt(&cfg, &ecdh, &[], &ecdh_msg)
                .unwrap()
                .plaintext,
            b"ecdh",
            "ECDH after {what}"
        );
        let m = esdk::encrypt(&cfg, &aes, &opts, &[], b"again").unwrap();
        assert_eq!(
            esdk::decrypt(&cfg, &aes, &[], &m).unwrap().plaintext,
            b"again"
        );
    };
    check("opening");
    assert!(t.open_sessions() >= 1);

    // Every session of the process on the token dies, the login with them.
    close_all_sessions(t.slot_id());
    check("C_CloseAllSessions");
    close_all_sessions(t.slot_id());
    check("a second C_CloseAllSessions");

    // The application is logged out (through a pooled session: the login is the
    // application's, not the session's).
    t.with_session(|s| s.logout()).unwrap().unwrap();
    check("C_Logout");

    // A login that cannot be restored: the PIN changed under the keyring. The operation
    // retries once and fails with the specific error (no loop).
    let label = env("ESDK_TEST_PKCS11_PIN_TOKEN");
    let pin = env("ESDK_TEST_PKCS11_PIN");
    let new_pin = format!("{pin}-changed");
    let p = Token::open(TokenConfig::new(module(), &label).with_pin(&pin)).unwrap();
    let kr = Pkcs11EcdhKeyring::public_key_discovery(&p, ecdh_key(&p, "pin-change-ecdh")).unwrap();
    let dev = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
        EcdhCurve::P256,
        kr.public_key(),
    )
    .unwrap();
    let msg = esdk::encrypt(&cfg, &dev, &opts, &[], b"pin").unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &kr, &[], &msg).unwrap().plaintext,
        b"pin"
    );
    let (old, new) = (
        AuthPin::new(pin.clone().into()),
        AuthPin::new(new_pin.clone().into()),
    );
    p.with_rw_session(|s| s.set_pin(&old, &new))
        .unwrap()
        .unwrap();
    p.with_session(|s| s.logout()).unwrap().unwrap();
    let e = esdk::decrypt(&cfg, &kr, &[], &msg).unwrap_err();
    assert!(
        e.core().is_some_and(|c| matches!(
            c,
            Error::Keyring(KeyringError::Pkcs11(Pkcs11Failure::PinIncorrect { .. }))
        )),
        "{e:?}"
    );
    assert!(e.to_string().contains("PIN"), "{e}");
    // The PIN back as it was, for the other tests.
    drop((kr, p));
    let restore = Token::open(TokenConfig::new(module(), &label).with_pin(&new_pin)).unwrap();
    restore
        .with_rw_session(|s| s.set_pin(&new, &old))
        .unwrap()
        .unwrap();
}
