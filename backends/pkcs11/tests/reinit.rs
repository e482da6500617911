//! A token initialized anew under a running keyring (as an HSM administrator would, or a
//! token pulled out and put back): the keyring looks its key up again (same slot) or finds
//! the token again by label (another slot), reopens a session, logs in once and goes on. A
//! token that is gone gives a specific error that says what was tried, at once (no hang),
//! and a token that comes back later, in another slot, is used again.
//!
//! SoftHSM2 only (`ESDK_TEST_PKCS11_REINIT_CMD`, from `scripts/pkcs11-softhsm.sh`, acts on a
//! token of its own, `reinit-test`); Kryoptic's tokens cannot be initialized anew from
//! outside the process. Its own test binary: the token's objects vanish and come back under
//! it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use esdk_core::EncryptOptions;
use esdk_core::error::{Error, KeyringError};
use esdk_pkcs11::{Pkcs11AesKeyring, Pkcs11Error, Pkcs11Failure, Token, TokenConfig};

/// Runs the token's re-initialization script with `mode` (`in-place` or `delete`).
fn reinit(mode: &str) {
    let cmd = env("ESDK_TEST_PKCS11_REINIT_CMD");
    let status = std::process::Command::new(&cmd)
        .arg(mode)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "`{cmd} {mode}` failed");
}

#[test]
fn reinitialized_token_is_found_again() {
    let label = env("ESDK_TEST_PKCS11_REINIT_TOKEN");
    let t = Token::open(TokenConfig::new(module(), &label).with_pin(env("ESDK_TEST_PKCS11_PIN")))
        .unwrap();
    let kr = Pkcs11AesKeyring::new(&t, aes_selector(), NS, AES_NAME).unwrap();
    let cfg = esdk_core::Config::new();
    let opts = EncryptOptions::new();
    let before = esdk::encrypt(&cfg, &kr, &opts, &[], b"before").unwrap();
    let works = |what: &str| {
        let out = esdk::decrypt(&cfg, &kr, &[], &before)
            .unwrap_or_else(|e| panic!("decrypting after {what}: {e:?}"));
        assert_eq!(out.plaintext, b"before", "after {what}");
        let m = esdk::encrypt(&cfg, &kr, &opts, &[], what.as_bytes())
            .unwrap_or_else(|e| panic!("encrypting after {what}: {e:?}"));
        assert_eq!(
            esdk::decrypt(&cfg, &kr, &[], &m).unwrap().plaintext,
            what.as_bytes()
        );
    };
    works("opening");
    let (slot, generation) = (t.slot_id(), t.generation());

    // C_InitToken on the same slot (another process): every object is destroyed, the key
    // is imported again with the same label and value.
    reinit("in-place");
    works("re-initialization in place");
    assert_eq!(
        t.slot_id(),
        slot,
        "SoftHSM2 keeps the slot of a token initialized in place"
    );

    // Deleted (by another process): gone for good. A specific error at once, saying what
    // was tried.
    reinit("delete");
    let start = Instant::now();
    let e = esdk::decrypt(&cfg, &kr, &[], &before).unwrap_err();
    assert!(
        e.core().is_some_and(|c| matches!(
            c,
            Error::Keyring(KeyringError::Pkcs11(Pkcs11Failure::TokenRemoved { .. }))
        )),
        "{e:?}"
    );
    let e = kr.encrypt_data_key(&[1; 12], b"", &[0; 32]).unwrap_err();
    assert!(e.is_token_removed(), "{e:?}");
    assert!(matches!(e, Pkcs11Error::RecoveryFailed { .. }), "{e:?}");
    let text = e.to_string();
    for part in [
        label.as_str(),
        "find the token again by label",
        "log in",
        "removed",
    ] {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "failing took {:?}",
        start.elapsed()
    );

    // The token comes back in another slot: initialized in the module's free slot (through
    // this process: SoftHSM2 2.6.1 lists only the tokens it found at C_Initialize, so one
    // created by another process now would stay invisible here), with the key imported
    // again. The same keyring finds it by label and goes on.
    let free = recreate_in_free_slot(&t, &label);
    assert_ne!(free, slot);
    works("the token came back in another slot");
    assert_eq!(
        t.slot_id(),
        free,
        "the keyring follows the token to its new slot"
    );
    assert!(t.generation() > generation, "a recovery took place");
}

/// Initializes the module's free slot as a token labelled `label` (SO PIN and user PIN of
/// the setup script) and imports the test AES key into it; returns the slot id.
fn recreate_in_free_slot(t: &Token, label: &str) -> u64 {
    use esdk_pkcs11::cryptoki::object::{Attribute, KeyType, ObjectClass};
    use esdk_pkcs11::cryptoki::session::UserType;
    use esdk_pkcs11::cryptoki::types::AuthPin;
    let ctx = t.context();
    let free = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|i| !i.token_initialized()))
        .expect("SoftHSM2 offers a free slot");
    let so = AuthPin::new(env("ESDK_TEST_PKCS11_SO_PIN").into());
    let pin = AuthPin::new(env("ESDK_TEST_PKCS11_PIN").into());
    ctx.init_token(free, &so, label).unwrap();
    let s = ctx.open_rw_session(free).unwrap();
    s.login(UserType::So, Some(&so)).unwrap();
    s.init_pin(&pin).unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin)).unwrap();
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(env("ESDK_TEST_PKCS11_AES_LABEL").into_bytes()),
        Attribute::Id(vec![1]),
        Attribute::Value(aes_key()),
    ])
    .unwrap();
    s.logout().unwrap();
    drop(s);
    free.id()
}
