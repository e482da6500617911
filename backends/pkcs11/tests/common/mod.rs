//! Shared test setup: the token described by the environment that `scripts/pkcs11-softhsm.sh`
//! (or `scripts/pkcs11-kryoptic.sh`) prints. A missing variable fails the test with a message
//! saying how to set it up; nothing is skipped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use esdk_pkcs11::{KeySelector, OaepHash, Pkcs11AesKeyring, Pkcs11RsaKeyring, Token, TokenConfig};

/// The namespace and key name the tests write EDKs under.
pub const NS: &str = "esdk-pkcs11-test";
/// AES key name.
pub const AES_NAME: &str = "aes-key-1";
/// RSA key name.
pub const RSA_NAME: &str = "rsa-key-1";

/// A required environment variable, or a panic that explains the setup.
pub fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests need a PKCS#11 token. Run scripts/pkcs11-test.sh, or \
             `eval \"$(scripts/pkcs11-softhsm.sh)\"` before `cargo test --workspace --test 'token_*'` \
             (TEST_PKCS11_MODULE selects another module)"
        ),
    }
}

/// The module path.
pub fn module() -> String {
    env("TEST_PKCS11_MODULE")
}

/// The configuration of the main test token.
pub fn config() -> TokenConfig {
    TokenConfig::new(module(), env("ESDK_TEST_PKCS11_TOKEN")).with_pin(env("ESDK_TEST_PKCS11_PIN"))
}

/// The main test token, opened once per test binary.
pub fn token() -> &'static Token {
    static TOKEN: OnceLock<Token> = OnceLock::new();
    TOKEN.get_or_init(|| Token::open(config()).expect("opening the test token"))
}

/// The AES-256 test key's value (imported into the token by the setup script).
pub fn aes_key() -> Vec<u8> {
    hex(&env("ESDK_TEST_PKCS11_AES_KEY"))
}

/// The AES key selector.
pub fn aes_selector() -> KeySelector {
    KeySelector::label(env("ESDK_TEST_PKCS11_AES_LABEL"))
}

/// The AES keyring on the test token.
pub fn aes_keyring() -> Pkcs11AesKeyring {
    Pkcs11AesKeyring::new(token(), aes_selector(), NS, AES_NAME).expect("AES keyring")
}

/// The RSA key selector.
pub fn rsa_selector() -> KeySelector {
    KeySelector::label(env("ESDK_TEST_PKCS11_RSA_LABEL"))
}

/// The RSA private key PEM imported into the token.
pub fn rsa_pem() -> String {
    let path = env("ESDK_TEST_PKCS11_RSA_PEM");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The OAEP hashes the token under test supports (the setup script says which).
pub fn supported_hashes() -> Vec<OaepHash> {
    env("ESDK_TEST_PKCS11_OAEP_HASHES")
        .split(',')
        .map(|h| match h.trim() {
            "sha1" => OaepHash::Sha1,
            "sha256" => OaepHash::Sha256,
            "sha384" => OaepHash::Sha384,
            "sha512" => OaepHash::Sha512,
            other => panic!("unknown hash {other:?} in ESDK_TEST_PKCS11_OAEP_HASHES"),
        })
        .collect()
}

/// The RSA keyring on the test token with `hash`.
pub fn rsa_keyring(hash: OaepHash) -> Pkcs11RsaKeyring {
    Pkcs11RsaKeyring::new(token(), rsa_selector(), NS, RSA_NAME, hash).expect("RSA keyring")
}

/// Decodes hex.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A test plaintext of `n` bytes.
pub fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// One EDK of a message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEdk {
    /// Provider id.
    pub provider_id: String,
    /// Provider info.
    pub provider_info: Vec<u8>,
    /// Ciphertext.
    pub ciphertext: Vec<u8>,
}

/// The EDKs in a message's header.
pub fn edks_of(message: &[u8]) -> Vec<OwnedEdk> {
    match esdk_core::header::parse(message, esdk_core::header::ParseLimits::default()).unwrap() {
        esdk_core::header::Parsed::Complete(h) => h
            .edks
            .iter()
            .map(|(_, e)| OwnedEdk {
                provider_id: e.provider_id.to_owned(),
                provider_info: e.provider_info.to_vec(),
                ciphertext: e.ciphertext.to_vec(),
            })
            .collect(),
        esdk_core::header::Parsed::Need(n) => panic!("truncated header, need {n}"),
    }
}

/// The message with the first occurrence of `needle` altered in its last byte.
pub fn tamper(message: &[u8], needle: &[u8]) -> Vec<u8> {
    let at = message
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in message");
    let mut m = message.to_vec();
    m[at + needle.len() - 1] ^= 0x01;
    m
}

/// The RSA public key PEM (SubjectPublicKeyInfo) of the token's key pair.
pub fn rsa_public_pem() -> String {
    let path = env("ESDK_TEST_PKCS11_RSA_PUB_PEM");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The raw RSA padding matching `hash`.
pub fn raw_padding(hash: OaepHash) -> esdk_raw::rsa::RsaPadding {
    use esdk_raw::rsa::RsaPadding;
    match hash {
        OaepHash::Sha1 => RsaPadding::OaepSha1,
        OaepHash::Sha256 => RsaPadding::OaepSha256,
        OaepHash::Sha384 => RsaPadding::OaepSha384,
        OaepHash::Sha512 => RsaPadding::OaepSha512,
        _ => unreachable!("new OAEP hash"),
    }
}

/// The raw RSA keyring holding the same key pair as the token.
pub fn raw_rsa_keyring(hash: OaepHash) -> esdk_raw::rsa::RawRsaKeyring {
    use esdk_raw::rsa::{RawRsaKeyring, RsaPrivateKey, RsaPublicKey};
    RawRsaKeyring::new(
        NS,
        RSA_NAME,
        raw_padding(hash),
        Some(RsaPublicKey::from_pem(rsa_public_pem()).unwrap()),
        Some(RsaPrivateKey::from_pem(rsa_pem()).unwrap()),
    )
    .unwrap()
}

/// Generates an EC key pair on `curve` on `token` (`CKM_EC_KEY_PAIR_GEN`, token objects
/// labelled `label`; the private key sensitive, with `CKA_DERIVE` = `derive`) and returns
/// its selector. Serialized within the process.
pub fn generate_ec_key(
    token: &Token,
    curve: esdk_pkcs11::EcdhCurve,
    label: &str,
    derive: bool,
) -> KeySelector {
    use esdk_pkcs11::cryptoki::mechanism::Mechanism;
    use esdk_pkcs11::cryptoki::object::Attribute;
    let label_attr = || Attribute::Label(label.as_bytes().to_vec());
    // One at a time: SoftHSM2 answers CKR_GENERAL_ERROR now and then when threads of one
    // process create token objects at once (its file object store).
    static GENERATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = GENERATING.lock().unwrap_or_else(|e| e.into_inner());
    token
        .with_rw_session(|s| {
            s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::EcParams(esdk_pkcs11::ec_params(curve).to_vec()),
                    label_attr(),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Derive(derive),
                    label_attr(),
                ],
            )
        })
        .expect("a session to generate the EC key pair")
        .expect("C_GenerateKeyPair (CKM_EC_KEY_PAIR_GEN)");
    KeySelector::label(label)
}
