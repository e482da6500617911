//! Every configuration and runtime failure gives its specific error: missing module, a file
//! that is not a module, unknown token, wrong or missing PIN, missing key, wrong key type,
//! ambiguous key, keys without CKA_ENCRYPT / CKA_DECRYPT (a removed token: `removal.rs`). And the
//! PIN never shows in `Debug` or error output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use esdk_core::EncryptOptions;
use esdk_core::error::{Error, KeyringError};
use esdk_pkcs11::{
    KeySelector, OaepHash, Pkcs11AesKeyring, Pkcs11Error, Pkcs11RsaKeyring, Token, TokenConfig,
};
use esdk_pkcs11::{Pkcs11Attribute, Pkcs11Failure, Pkcs11ObjectClass};

/// Every test of this file holds it: they run one at a time. SoftHSM2 (2.6.1) keeps each
/// token object in a file of the token's directory, and while one thread of the process
/// created or destroyed objects there, other threads' `C_CreateObject` or key lookups failed
/// now and then with `CKR_GENERAL_ERROR` (about one run in three on a loaded machine; never
/// with one test at a time). The keyrings only read objects; these tests write them.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A token object created for one test and destroyed afterwards.
struct TempObject {
    handle: ObjectHandle,
    label: String,
}

impl Drop for TempObject {
    fn drop(&mut self) {
        let _ = token().with_rw_session(|s| s.destroy_object(self.handle));
    }
}

fn unique_label(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a token secret key with `attrs` added to class, label, token and private.
fn create_secret(what: &str, attrs: Vec<Attribute>) -> TempObject {
    let label = unique_label(what);
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(label.clone().into_bytes()),
    ];
    template.extend(attrs);
    let handle = token()
        .with_rw_session(|s| s.create_object(&template))
        .unwrap()
        .expect("C_CreateObject");
    TempObject { handle, label }
}

/// Copies the object of `class` selected by `label` with a new label and `attrs` changed.
fn copy_key(class: ObjectClass, label: &str, what: &str, attrs: Vec<Attribute>) -> TempObject {
    let new_label = unique_label(what);
    let handle = token()
        .with_rw_session(|s| {
            let found = s
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
                .expect("C_FindObjects");
            let mut template = vec![Attribute::Label(new_label.clone().into_bytes())];
            template.extend(attrs);
            s.copy_object(found[0], &template)
        })
        .unwrap()
        .expect("C_CopyObject");
    TempObject {
        handle,
        label: new_label,
    }
}

fn aes_attrs(encrypt: bool, decrypt: bool) -> Vec<Attribute> {
    vec![
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(vec![0x42; 32]),
        Attribute::Encrypt(encrypt),
        Attribute::Decrypt(decrypt),
    ]
}

#[test]
fn missing_module() {
    let _serial = serial();
    let e = Token::open(TokenConfig::new("/nonexistent/libno-such-pkcs11.so", "x")).unwrap_err();
    assert!(matches!(e, Pkcs11Error::ModuleNotFound { .. }), "{e:?}");
    assert!(
        e.to_string().contains("/nonexistent/libno-such-pkcs11.so"),
        "{e}"
    );
}

#[test]
fn a_file_that_is_not_a_module() {
    let _serial = serial();
    let path = std::env::temp_dir().join(format!("esdk-not-a-module-{}.so", std::process::id()));
    std::fs::write(&path, b"not an ELF shared object").unwrap();
    let e = Token::open(TokenConfig::new(&path, "x")).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert!(matches!(e, Pkcs11Error::ModuleLoad { .. }), "{e:?}");
}

#[test]
fn unknown_token_label_lists_the_available_ones() {
    let _serial = serial();
    let e = Token::open(TokenConfig::new(module(), "no-such-token").with_pin("1234")).unwrap_err();
    match &e {
        Pkcs11Error::TokenNotFound { label, available } => {
            assert_eq!(label, "no-such-token");
            assert!(
                available.contains(&env("ESDK_TEST_PKCS11_TOKEN")),
                "{available:?}"
            );
        }
        other => panic!("expected TokenNotFound, got {other:?}"),
    }
}

#[test]
fn wrong_pin_then_right_pin() {
    let _serial = serial();
    let label = env("ESDK_TEST_PKCS11_PIN_TOKEN");
    let wrong = "98765-wrong-pin";
    let cfg = TokenConfig::new(module(), &label).with_pin(wrong);
    let e = Token::open(cfg).unwrap_err();
    match &e {
        Pkcs11Error::PinIncorrect { label: l, rv } => {
            assert_eq!(l, &label);
            assert_eq!(*rv, RvError::PinIncorrect);
        }
        other => panic!("expected PinIncorrect, got {other:?}"),
    }
    assert_eq!(e.rv(), Some(RvError::PinIncorrect));
    assert!(
        !format!("{e} {e:?}").contains(wrong),
        "the PIN leaked into the error"
    );
    assert_eq!(
        e.to_core_error(),
        Error::Keyring(KeyringError::Pkcs11(Pkcs11Failure::PinIncorrect {
            rv: 0xA0
        }))
    );
    let t = Token::open(TokenConfig::new(module(), &label).with_pin(env("ESDK_TEST_PKCS11_PIN")))
        .expect("the right PIN still works");
    let mut r = [0u8; 16];
    t.generate_random(&mut r).unwrap();
}

#[test]
fn missing_pin() {
    let _serial = serial();
    let e = Token::open(TokenConfig::new(module(), env("ESDK_TEST_PKCS11_TOKEN"))).unwrap_err();
    assert!(matches!(e, Pkcs11Error::PinRequired { .. }), "{e:?}");
}

#[test]
fn missing_key() {
    let _serial = serial();
    let e = Pkcs11AesKeyring::new(token(), KeySelector::label("no-such-key"), NS, AES_NAME)
        .unwrap_err();
    match &e {
        Pkcs11Error::KeyNotFound { key, class } => {
            assert_eq!(key, &KeySelector::label("no-such-key"));
            assert_eq!(*class, Pkcs11ObjectClass::SecretKey);
        }
        other => panic!("expected KeyNotFound, got {other:?}"),
    }
    assert!(e.to_string().contains("no-such-key"), "{e}");
    let e = Pkcs11AesKeyring::new(token(), KeySelector::id(vec![0xEE, 0xEE]), NS, AES_NAME)
        .unwrap_err();
    assert!(matches!(e, Pkcs11Error::KeyNotFound { .. }), "{e:?}");
    // The RSA keyring looks for a public or private key: the AES key's label is neither.
    let e =
        Pkcs11RsaKeyring::new(token(), aes_selector(), NS, RSA_NAME, OaepHash::Sha1).unwrap_err();
    match &e {
        Pkcs11Error::KeyNotFound { class, .. } => {
            assert_eq!(*class, Pkcs11ObjectClass::PublicOrPrivateKey)
        }
        other => panic!("expected KeyNotFound, got {other:?}"),
    }
}

#[test]
fn aes_key_without_cka_encrypt_or_cka_decrypt() {
    let _serial = serial();
    let k = create_secret("no-encrypt", aes_attrs(false, true));
    let e = Pkcs11AesKeyring::new(token(), KeySelector::label(&k.label), NS, AES_NAME).unwrap_err();
    match &e {
        Pkcs11Error::KeyUsage { attribute, .. } => {
            assert_eq!(*attribute, Pkcs11Attribute::Encrypt)
        }
        other => panic!("expected KeyUsage, got {other:?}"),
    }
    let k = create_secret("no-decrypt", aes_attrs(true, false));
    let e = Pkcs11AesKeyring::new(token(), KeySelector::label(&k.label), NS, AES_NAME).unwrap_err();
    match &e {
        Pkcs11Error::KeyUsage { attribute, .. } => {
            assert_eq!(*attribute, Pkcs11Attribute::Decrypt)
        }
        other => panic!("expected KeyUsage, got {other:?}"),
    }
}

#[test]
fn aes_key_whose_allowed_mechanisms_exclude_gcm() {
    let _serial = serial();
    let mut attrs = aes_attrs(true, true);
    attrs.push(Attribute::AllowedMechanisms(vec![MechanismType::AES_CBC]));
    let k = create_secret("cbc-only", attrs);
    let e = Pkcs11AesKeyring::new(token(), KeySelector::label(&k.label), NS, AES_NAME).unwrap_err();
    match &e {
        Pkcs11Error::KeyUsage { attribute, .. } => {
            assert_eq!(*attribute, Pkcs11Attribute::AllowedMechanisms)
        }
        other => panic!("expected KeyUsage, got {other:?}"),
    }
}

#[test]
fn a_secret_key_that_is_not_aes() {
    let _serial = serial();
    let k = create_secret(
        "generic",
        vec![
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(vec![0x42; 32]),
        ],
    );
    let e = Pkcs11AesKeyring::new(token(), KeySelector::label(&k.label), NS, AES_NAME).unwrap_err();
    assert!(matches!(e, Pkcs11Error::KeyType { .. }), "{e:?}");
}

#[test]
fn two_keys_with_one_label() {
    let _serial = serial();
    let a = create_secret("dup", aes_attrs(true, true));
    let b = copy_key(ObjectClass::SECRET_KEY, &a.label, "unused", vec![]);
    // Give the copy the same label as the original.
    token()
        .with_rw_session(|s| {
            s.update_attributes(b.handle, &[Attribute::Label(a.label.clone().into_bytes())])
        })
        .unwrap()
        .unwrap();
    let e = Pkcs11AesKeyring::new(token(), KeySelector::label(&a.label), NS, AES_NAME).unwrap_err();
    match &e {
        Pkcs11Error::KeyAmbiguous { count, .. } => assert_eq!(*count, 2),
        other => panic!("expected KeyAmbiguous, got {other:?}"),
    }
    drop(b);
}

#[test]
fn rsa_keys_without_cka_encrypt_or_cka_decrypt() {
    let _serial = serial();
    let rsa_label = env("ESDK_TEST_PKCS11_RSA_LABEL");
    let public = copy_key(
        ObjectClass::PUBLIC_KEY,
        &rsa_label,
        "pub-no-encrypt",
        vec![Attribute::Encrypt(false)],
    );
    let e = Pkcs11RsaKeyring::new(
        token(),
        KeySelector::label(&public.label),
        NS,
        RSA_NAME,
        OaepHash::Sha1,
    )
    .unwrap_err();
    match &e {
        Pkcs11Error::KeyUsage { attribute, .. } => {
            assert_eq!(*attribute, Pkcs11Attribute::Encrypt)
        }
        other => panic!("expected KeyUsage, got {other:?}"),
    }
    let private = copy_key(
        ObjectClass::PRIVATE_KEY,
        &rsa_label,
        "priv-no-decrypt",
        vec![Attribute::Decrypt(false)],
    );
    let e = Pkcs11RsaKeyring::new(
        token(),
        KeySelector::label(&private.label),
        NS,
        RSA_NAME,
        OaepHash::Sha1,
    )
    .unwrap_err();
    match &e {
        Pkcs11Error::KeyUsage { attribute, .. } => {
            assert_eq!(*attribute, Pkcs11Attribute::Decrypt)
        }
        other => panic!("expected KeyUsage, got {other:?}"),
    }
}

#[test]
fn decrypt_only_and_encrypt_only_rsa_keyrings() {
    let _serial = serial();
    let hash = supported_hashes()[0];
    let rsa_label = env("ESDK_TEST_PKCS11_RSA_LABEL");
    let public = copy_key(ObjectClass::PUBLIC_KEY, &rsa_label, "pub-only", vec![]);
    let private = copy_key(ObjectClass::PRIVATE_KEY, &rsa_label, "priv-only", vec![]);
    let enc = Pkcs11RsaKeyring::new(
        token(),
        KeySelector::label(&public.label),
        NS,
        RSA_NAME,
        hash,
    )
    .unwrap();
    let dec = Pkcs11RsaKeyring::new(
        token(),
        KeySelector::label(&private.label),
        NS,
        RSA_NAME,
        hash,
    )
    .unwrap();
    assert!(enc.can_encrypt() && !enc.can_decrypt());
    // Unsupported OAEP hashes are found with a private key alone, too.
    for h in OaepHash::ALL {
        if supported_hashes().contains(&h) {
            continue;
        }
        let e = Pkcs11RsaKeyring::new(token(), KeySelector::label(&private.label), NS, RSA_NAME, h)
            .unwrap_err();
        assert!(
            matches!(e, Pkcs11Error::MechanismNotSupported { .. }),
            "{h:?}: {e:?}"
        );
    }
    assert!(!dec.can_encrypt() && dec.can_decrypt());
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &enc, &EncryptOptions::new(), &[], b"one way").unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &dec, &[], &msg).unwrap().plaintext,
        b"one way"
    );
    assert_eq!(
        esdk::encrypt(&cfg, &dec, &EncryptOptions::new(), &[], b"x").unwrap_err(),
        Error::Keyring(KeyringError::EncryptNotSupported)
    );
    assert_eq!(
        esdk::decrypt(&cfg, &enc, &[], &msg).unwrap_err(),
        Error::Keyring(KeyringError::DecryptNotSupported)
    );
}

#[test]
fn reserved_namespace() {
    let _serial = serial();
    let e = Pkcs11AesKeyring::new(token(), aes_selector(), "aws-kms", AES_NAME).unwrap_err();
    assert!(
        matches!(&e, Pkcs11Error::ReservedNamespace { namespace } if namespace == "aws-kms"),
        "{e:?}"
    );
    assert_eq!(
        e.to_core_error(),
        Error::Keyring(KeyringError::InvalidConfiguration)
    );
}

#[test]
fn pin_and_keys_never_in_debug_output() {
    let _serial = serial();
    let pin = "Pin-Never-Shown-4711";
    let cfg = TokenConfig::new(module(), env("ESDK_TEST_PKCS11_TOKEN")).with_pin(pin);
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains(pin), "{dbg}");
    assert!(dbg.contains("<redacted>"), "{dbg}");
    let t = Token::open(cfg).unwrap();
    let aes = Pkcs11AesKeyring::new(&t, aes_selector(), NS, AES_NAME).unwrap();
    let rsa =
        Pkcs11RsaKeyring::new(&t, rsa_selector(), NS, RSA_NAME, supported_hashes()[0]).unwrap();
    let key_hex = env("ESDK_TEST_PKCS11_AES_KEY");
    for s in [format!("{t:?}"), format!("{aes:?}"), format!("{rsa:?}")] {
        assert!(!s.contains(pin), "{s}");
        assert!(!s.contains(&key_hex), "{s}");
        assert!(!s.contains(&env("ESDK_TEST_PKCS11_PIN")), "{s}");
    }
    // A data key that went through the token is redacted too.
    let dk = aes
        .decrypt_data_key(
            &[0; 12],
            b"",
            &aes.encrypt_data_key(&[0; 12], b"", &[0xAB; 32]).unwrap(),
        )
        .unwrap();
    assert_eq!(format!("{dk:?}"), "DataKey(<32 bytes redacted>)");
}
