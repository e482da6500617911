//! Runs one decrypt test vector against this implementation.

use esdk_core::error::Error;
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::{
    CommitmentPolicy, Config, CryptoMaterialsManager, Keyring, MultiKeyring,
    RequiredEncryptionContextCmm,
};
use esdk_raw::RawAesKeyring;

use crate::manifest::{DecryptMethod, DecryptTest, KeyDescription};
pub use crate::modes::Provider;
use crate::modes::{Mode, Outcome, decrypt_with};

/// Options for [`decrypt_case`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Accept messages written by ESDK-.NET 4.0.0 (the "NetV4_0_0" retry policy).
    pub net_v4_0_0_retry: bool,
    /// Print extra detail.
    pub verbose: bool,
    /// The crypto provider to decrypt with.
    pub provider: Provider,
}

/// Why a case produced no plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseError {
    /// The case cannot run here (e.g. it needs AWS KMS); the reason.
    Skipped(String),
    /// The harness could not set the case up (a keyring could not be built, a description is
    /// not supported): a failure of the run, never an expected failure of a negative vector.
    Harness(String),
    /// Decryption failed with this error.
    Decrypt(Error),
}

impl core::fmt::Display for CaseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CaseError::Skipped(why) => write!(f, "skipped: {why}"),
            CaseError::Harness(why) => write!(f, "harness error: {why}"),
            CaseError::Decrypt(e) => write!(f, "decrypt failed: {e} ({e:?})"),
        }
    }
}

/// A keyring built from a manifest key description.
// Test-only; one per test case, so the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum TestKeyring<'a> {
    /// Raw AES.
    Aes(RawAesKeyring<'a>),
    /// Raw RSA.
    Rsa(esdk_raw::rsa::RawRsaKeyring),
    /// Raw ECDH.
    Ecdh(esdk_raw::ecdh::RawEcdhKeyring),
    /// Multi-keyring.
    Multi(Option<Box<TestKeyring<'a>>>, Vec<TestKeyring<'a>>),
    /// The hierarchical keyring over a static branch key.
    Hierarchy(esdk::hierarchy::StaticBranchKeyKeyring),
    /// The given plaintext data key, whatever the EDKs ([`KeyDescription::StaticDataKey`]).
    StaticDataKey(&'a [u8]),
}

impl Keyring for TestKeyring<'_> {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        match self {
            TestKeyring::Aes(k) => k.on_encrypt(m),
            TestKeyring::Rsa(k) => k.on_encrypt(m),
            TestKeyring::Ecdh(k) => k.on_encrypt(m),
            TestKeyring::Hierarchy(k) => k.on_encrypt(m),
            TestKeyring::StaticDataKey(key) => {
                m.set_data_key(DataKey::from_slice(key)?)?;
                m.push_edk("static-data-key", &[], &[b"k"])
            }
            TestKeyring::Multi(g, c) => {
                let children: Vec<&dyn Keyring> = c.iter().map(|k| k as &dyn Keyring).collect();
                match g {
                    Some(g) => MultiKeyring::new(g.as_ref(), &children).on_encrypt(m),
                    None => MultiKeyring::children_only(&children).on_encrypt(m),
                }
            }
        }
    }
    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        match self {
            TestKeyring::Aes(k) => k.on_decrypt(m, edks),
            TestKeyring::Rsa(k) => k.on_decrypt(m, edks),
            TestKeyring::Ecdh(k) => k.on_decrypt(m, edks),
            TestKeyring::Hierarchy(k) => k.on_decrypt(m, edks),
            TestKeyring::StaticDataKey(key) => m.set_data_key(DataKey::from_slice(key)?),
            TestKeyring::Multi(g, c) => {
                let children: Vec<&dyn Keyring> = c.iter().map(|k| k as &dyn Keyring).collect();
                match g {
                    Some(g) => MultiKeyring::new(g.as_ref(), &children).on_decrypt(m, edks),
                    None => MultiKeyring::children_only(&children).on_decrypt(m, edks),
                }
            }
        }
    }
}

/// Builds the keyring of a description (without its CMM layer).
///
/// # Errors
/// [`CaseError::Skipped`] for key types this build cannot use.
pub fn build_keyring(d: &KeyDescription) -> Result<TestKeyring<'_>, CaseError> {
    match d {
        KeyDescription::RawAes {
            provider_id,
            key_name,
            key,
        } => RawAesKeyring::new(provider_id, key_name, key)
            .map(TestKeyring::Aes)
            .map_err(|e| CaseError::Harness(format!("cannot build raw AES keyring: {e}"))),
        KeyDescription::RawRsa {
            provider_id,
            key_name,
            pem,
            padding,
            is_private,
        } => {
            use crate::manifest::RsaPadding as M;
            use esdk_raw::rsa::{RawRsaKeyring, RsaPadding, RsaPrivateKey, RsaPublicKey};
            let padding = match padding {
                M::Pkcs1 => RsaPadding::Pkcs1V15,
                M::OaepSha1 => RsaPadding::OaepSha1,
                M::OaepSha256 => RsaPadding::OaepSha256,
                M::OaepSha384 => RsaPadding::OaepSha384,
                M::OaepSha512 => RsaPadding::OaepSha512,
            };
            // The manifest carries one PEM: the private half when the keys manifest has it
            // (decrypt-only keyring), else the public half (encrypt-only keyring).
            let keyring = if *is_private {
                RsaPrivateKey::from_pem(pem)
                    .and_then(|k| RawRsaKeyring::decrypt_only(provider_id, key_name, padding, k))
            } else {
                RsaPublicKey::from_pem(pem)
                    .and_then(|k| RawRsaKeyring::encrypt_only(provider_id, key_name, padding, k))
            };
            keyring
                .map(TestKeyring::Rsa)
                .map_err(|e| CaseError::Harness(format!("cannot build raw RSA keyring: {e}")))
        }
        KeyDescription::RawEcdh {
            schema,
            curve,
            sender_private_pem,
            sender_public_der,
            recipient_private_pem,
            recipient_public_der,
            ..
        } => {
            use crate::manifest::{EcdhCurve as C, EcdhSchema as S};
            use esdk_raw::ecdh::{EcdhCurve, EcdhPrivateKey, EcdhPublicKey, RawEcdhKeyring};
            let fail = |what: &str| CaseError::Harness(format!("raw ECDH keyring: {what}"));
            let curve = match curve {
                C::P256 => EcdhCurve::P256,
                C::P384 => EcdhCurve::P384,
                C::P521 => EcdhCurve::P521,
            };
            let private = |pem: &Option<String>, who: &str| {
                let pem = pem
                    .as_deref()
                    .ok_or_else(|| fail(&format!("no {who} private key")))?;
                EcdhPrivateKey::from_pkcs8_pem(pem).map_err(|e| fail(&e.to_string()))
            };
            let public = |der: &Option<Vec<u8>>, who: &str| {
                let der = der
                    .as_deref()
                    .ok_or_else(|| fail(&format!("no {who} public key")))?;
                EcdhPublicKey::from_spki_der(der).map_err(|e| fail(&e.to_string()))
            };
            let keyring = match schema {
                S::Static => {
                    let sender = private(sender_private_pem, "sender")?;
                    if sender_public_der.is_some()
                        && public(sender_public_der, "sender")? != sender.public_key()
                    {
                        return Err(fail("the sender's public key is not its private key's"));
                    }
                    let recipient = public(recipient_public_der, "recipient")?;
                    RawEcdhKeyring::raw_private_key_to_static_public_key(curve, sender, recipient)
                }
                S::Discovery => {
                    let recipient = private(recipient_private_pem, "recipient")?;
                    RawEcdhKeyring::public_key_discovery(curve, recipient)
                }
                S::Ephemeral => {
                    let recipient = public(recipient_public_der, "recipient")?;
                    RawEcdhKeyring::ephemeral_private_key_to_static_public_key(curve, recipient)
                }
            };
            keyring
                .map(TestKeyring::Ecdh)
                .map_err(|e| fail(&e.to_string()))
        }
        KeyDescription::Kms { kind, .. } => Err(CaseError::Skipped(kms_skip_reason(kind))),
        KeyDescription::StaticDataKey { key } => Ok(TestKeyring::StaticDataKey(key)),
        KeyDescription::StaticBranchKey { id, version, key } => {
            esdk::hierarchy::StaticBranchKeyKeyring::new(id, *version, key)
                .map(TestKeyring::Hierarchy)
                .map_err(|e| CaseError::Harness(format!("static branch key {id}: {e}")))
        }
        KeyDescription::Multi {
            generator,
            children,
        } => {
            let g = generator
                .as_deref()
                .map(build_keyring)
                .transpose()?
                .map(Box::new);
            let c = children
                .iter()
                .map(build_keyring)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TestKeyring::Multi(g, c))
        }
        KeyDescription::RequiredEc { .. } => Err(CaseError::Harness(
            "a required-EC CMM nested inside a keyring is not supported".into(),
        )),
    }
}

/// Why a vector whose keyring needs AWS is skipped: its kind. The KMS ECDH vectors' keys
/// are in a real AWS account (the local KMS server cannot hold them).
fn kms_skip_reason(kind: &str) -> String {
    match kind {
        "aws-kms-ecdh" => "KMS ECDH: needs the vector's AWS KMS key (real account)".into(),
        _ => format!("needs AWS KMS ({kind})"),
    }
}

/// The configuration the vectors run under: decrypt anything the spec allows.
pub fn config(test: &DecryptTest, opts: &Options) -> Config {
    let mut cfg =
        Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt);
    cfg.net_v4_0_0_retry = opts.net_v4_0_0_retry;
    cfg.unsigned_only = test.method == DecryptMethod::StreamingUnsignedOnly;
    cfg
}

/// Runs `f` with the test's CMM (keyring, or required-EC CMM over it) and reproduced context.
///
/// # Errors
/// [`CaseError`] from building the keyring, or whatever `f` returns.
pub fn with_cmm<T>(
    test: &DecryptTest,
    f: impl FnOnce(&dyn CryptoMaterialsManager, &[(&str, &str)]) -> Result<T, CaseError>,
) -> Result<T, CaseError> {
    if test.keyring.needs_kms() {
        // The first keyring that needs AWS names the reason (build_keyring's).
        return match build_keyring(&test.keyring) {
            Err(e @ CaseError::Skipped(_)) => Err(e),
            _ => Err(CaseError::Skipped("needs AWS KMS".into())),
        };
    }
    let reproduced: Vec<(&str, &str)> = test
        .reproduced_ec
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match &test.keyring {
        KeyDescription::RequiredEc {
            underlying,
            required_keys,
        } => {
            let kr = build_keyring(underlying)?;
            let keys: Vec<&str> = required_keys.iter().map(String::as_str).collect();
            let cmm = RequiredEncryptionContextCmm::new(&kr, &keys);
            f(&cmm, &reproduced)
        }
        d => {
            let kr = build_keyring(d)?;
            f(&kr, &reproduced)
        }
    }
}

/// Decrypts one test's ciphertext one-shot under `opts.provider`. Ok(plaintext) on success.
///
/// # Errors
/// [`CaseError::Skipped`] for tests needing KMS; [`CaseError::Harness`] when the keyring
/// cannot be built; [`CaseError::Decrypt`] with the error otherwise.
pub fn decrypt_case(test: &DecryptTest, opts: &Options) -> Result<Vec<u8>, CaseError> {
    decrypt_bytes(test, opts, &test.ciphertext)
}

/// Decrypts `ciphertext` one-shot with `test`'s keys, context and configuration, under
/// `opts.provider` (for a tampered vector's reconstructed original, say).
///
/// # Errors
/// As [`decrypt_case`].
pub fn decrypt_bytes(
    test: &DecryptTest,
    opts: &Options,
    ciphertext: &[u8],
) -> Result<Vec<u8>, CaseError> {
    let cfg = config(test, opts);
    with_cmm(test, |cmm, reproduced| {
        match decrypt_with(
            opts.provider,
            Mode::OneShot,
            &cfg,
            cmm,
            reproduced,
            ciphertext,
        ) {
            Outcome::Ok(pt) => Ok(pt),
            Outcome::Err { error, .. } => Err(CaseError::Decrypt(error)),
        }
    })
}
