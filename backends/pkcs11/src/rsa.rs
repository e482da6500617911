//! The RSA-OAEP keyring: the private key stays on the token.

use std::fmt;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use esdk_core::error::{
    AttemptFailure, Error, KeyringError, Pkcs11Attribute, Pkcs11KeyType, Pkcs11Mechanism,
    Pkcs11ObjectClass, Pkcs11Operation,
};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edk, Edks, EncryptionMaterials};
use esdk_core::{AlgorithmSuite, Keyring};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Pkcs11Error, is_infrastructure, record_token_failure, rv_of};
use crate::token::{KeyClass, KeyHandle, KeySelector, Lease, Token, bool_attrs, is_stale_handle};
use crate::{Randomness, check_names};

/// The OAEP hash (and MGF1 hash: the ESDK uses the same for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OaepHash {
    /// OAEP with SHA-1 and MGF1-SHA-1 (the only OAEP SoftHSM2 2.6 offers).
    Sha1,
    /// OAEP with SHA-256 and MGF1-SHA-256 (the default).
    #[default]
    Sha256,
    /// OAEP with SHA-384 and MGF1-SHA-384.
    Sha384,
    /// OAEP with SHA-512 and MGF1-SHA-512.
    Sha512,
}

impl OaepHash {
    /// All four, in order.
    pub const ALL: [OaepHash; 4] = [
        OaepHash::Sha1,
        OaepHash::Sha256,
        OaepHash::Sha384,
        OaepHash::Sha512,
    ];

    fn mechanism(self) -> Mechanism<'static> {
        let (hash, mgf) = match self {
            OaepHash::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
            OaepHash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            OaepHash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
            OaepHash::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        };
        Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
    }

    /// The mechanism with its parameters, as errors name it.
    pub fn mechanism_id(self) -> Pkcs11Mechanism {
        match self {
            OaepHash::Sha1 => Pkcs11Mechanism::RsaOaepSha1,
            OaepHash::Sha256 => Pkcs11Mechanism::RsaOaepSha256,
            OaepHash::Sha384 => Pkcs11Mechanism::RsaOaepSha384,
            OaepHash::Sha512 => Pkcs11Mechanism::RsaOaepSha512,
        }
    }

    /// Smallest modulus (bytes) that can carry a 32-byte data key: 2·hLen + 2 + 32.
    fn min_modulus_len(self) -> usize {
        let h = match self {
            OaepHash::Sha1 => 20,
            OaepHash::Sha256 => 32,
            OaepHash::Sha384 => 48,
            OaepHash::Sha512 => 64,
        };
        2 * h + 2 + 32
    }
}

/// An RSA-OAEP keyring whose RSA key pair lives on a PKCS#11 token: data keys are
/// encrypted with the public key object (`C_Encrypt`, `CKM_RSA_PKCS_OAEP`) and decrypted
/// with the private key object (`C_Decrypt`), so the private key never leaves the token.
///
/// The EDKs are byte-compatible with the raw RSA keyring (spec
/// `framework/raw-rsa-keyring.md`): provider id = the namespace, provider info = the key
/// name, ciphertext = the OAEP ciphertext (MGF1 with the same hash, empty label). As raw
/// RSA, it does not bind the encryption context.
///
/// The public and private key objects are found with the same selector (label or id). A
/// keyring with only a public key can only encrypt; with only a private key, only decrypt.
/// The public key needs `CKA_ENCRYPT`, the private key `CKA_DECRYPT`.
///
/// `Send + Sync`: share one keyring between threads.
pub struct Pkcs11RsaKeyring {
    token: Token,
    public: Option<KeyHandle>,
    private: Option<KeyHandle>,
    selector: KeySelector,
    namespace: String,
    name: String,
    hash: OaepHash,
    modulus_len: Option<usize>,
    data_key_source: Randomness,
}

impl fmt::Debug for Pkcs11RsaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11RsaKeyring")
            .field("token", &self.token.label())
            .field("key", &self.selector)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("hash", &self.hash)
            .field("public_key", &self.public.is_some())
            .field("private_key", &self.private.is_some())
            .field("modulus_len", &self.modulus_len)
            .field("data_key_source", &self.data_key_source)
            .finish()
    }
}

impl Pkcs11RsaKeyring {
    /// A keyring for the RSA key pair selected by `key` on `token`, with OAEP over `hash`,
    /// writing EDKs under `namespace` (provider id) and `name` (key name).
    ///
    /// The token is asked once, with the configured parameters, to encrypt (or, with only
    /// a private key, to start a decryption), so an OAEP hash the token does not do is
    /// reported here rather than on the first message.
    ///
    /// # Errors
    /// [`Pkcs11Error::KeyNotFound`] when neither a public nor a private key matches;
    /// [`Pkcs11Error::KeyAmbiguous`]; [`Pkcs11Error::KeyType`] for a non-RSA key or a
    /// modulus too small for OAEP with this hash; [`Pkcs11Error::KeyUsage`] when the public
    /// key lacks `CKA_ENCRYPT` or the private key `CKA_DECRYPT`;
    /// [`Pkcs11Error::MechanismNotSupported`] when the token rejects OAEP with this hash
    /// (SoftHSM2 2.6 does only SHA-1); [`Pkcs11Error::ReservedNamespace`],
    /// [`Pkcs11Error::NameTooLong`];
    /// [`Pkcs11Error::TokenRemoved`] and [`Pkcs11Error::Cryptoki`].
    pub fn new(
        token: &Token,
        key: KeySelector,
        namespace: impl Into<String>,
        name: impl Into<String>,
        hash: OaepHash,
    ) -> Result<Self, Pkcs11Error> {
        let namespace = namespace.into();
        let name = name.into();
        check_names(&namespace, &name, 0)?;
        if !token.has_mechanism(MechanismType::RSA_PKCS_OAEP) {
            return Err(Pkcs11Error::MechanismNotSupported {
                mechanism: Pkcs11Mechanism::RsaOaep,
                rv: None,
            });
        }
        let generation = token.generation();
        let (public, private, modulus_len) = token.lease(|s| {
            let session = s.session();
            let public = token.find_key(session, &key, KeyClass::Public)?;
            let private = token.find_key(session, &key, KeyClass::Private)?;
            if public.is_none() && private.is_none() {
                return Err(Pkcs11Error::KeyNotFound {
                    key: key.clone(),
                    class: Pkcs11ObjectClass::PublicOrPrivateKey,
                });
            }
            let mut modulus_len = None;
            for (h, attr, attribute) in [
                (public, AttributeType::Encrypt, Pkcs11Attribute::Encrypt),
                (private, AttributeType::Decrypt, Pkcs11Attribute::Decrypt),
            ] {
                let Some(h) = h else { continue };
                let (is_rsa, m) = rsa_info(token, session, h)?;
                if !is_rsa || m.is_some_and(|m| m < hash.min_modulus_len()) {
                    return Err(Pkcs11Error::KeyType {
                        key: key.clone(),
                        expected: Pkcs11KeyType::RsaOaep,
                    });
                }
                modulus_len = modulus_len.or(m);
                if !bool_attrs(token, session, h, &[attr])?
                    .first()
                    .copied()
                    .unwrap_or(false)
                {
                    return Err(Pkcs11Error::KeyUsage {
                        key: key.clone(),
                        attribute,
                    });
                }
            }
            probe(token, s, public, private, modulus_len, hash)?;
            Ok((public, private, modulus_len))
        })??;
        Ok(Self {
            token: token.clone(),
            public: public.map(|h| KeyHandle::new(key.clone(), KeyClass::Public, h, generation)),
            private: private.map(|h| KeyHandle::new(key.clone(), KeyClass::Private, h, generation)),
            selector: key,
            namespace,
            name,
            hash,
            modulus_len,
            data_key_source: Randomness::Provider,
        })
    }

    /// Where new data keys come from when this keyring generates one (default:
    /// [`Randomness::Provider`]).
    pub fn with_data_key_source(mut self, source: Randomness) -> Self {
        self.data_key_source = source;
        self
    }

    /// The key namespace (EDK provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OAEP hash.
    pub fn hash(&self) -> OaepHash {
        self.hash
    }

    /// Whether a public key was found (the keyring can encrypt).
    pub fn can_encrypt(&self) -> bool {
        self.public.is_some()
    }

    /// Whether a private key was found (the keyring can decrypt).
    pub fn can_decrypt(&self) -> bool {
        self.private.is_some()
    }

    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Encrypts `data_key` with the public key object (RSA-OAEP) and returns the
    /// ciphertext (the EDK ciphertext field).
    ///
    /// # Errors
    /// [`Pkcs11Error::KeyNotFound`] without a public key; [`Pkcs11Error::TokenRemoved`] or
    /// [`Pkcs11Error::Cryptoki`].
    pub fn encrypt_data_key(&self, data_key: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        self.token.lease_retry(|s| self.encrypt_with(s, data_key))?
    }

    /// Decrypts an EDK ciphertext with the private key object.
    ///
    /// # Errors
    /// [`Pkcs11Error::UnwrapFailed`] when the token rejects the ciphertext;
    /// [`Pkcs11Error::KeyNotFound`] without a private key; [`Pkcs11Error::TokenRemoved`]
    /// or [`Pkcs11Error::Cryptoki`].
    pub fn decrypt_data_key(&self, ciphertext: &[u8]) -> Result<DataKey, Pkcs11Error> {
        self.token
            .lease_retry(|s| self.decrypt_with(s, ciphertext))?
    }

    fn missing(&self, class: KeyClass) -> Pkcs11Error {
        Pkcs11Error::KeyNotFound {
            key: self.selector.clone(),
            class: class.name(),
        }
    }

    fn encrypt_with(&self, s: &mut Lease<'_>, data_key: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let key = self
            .public
            .as_ref()
            .ok_or_else(|| self.missing(KeyClass::Public))?;
        let session = s.session();
        let mech = self.hash.mechanism();
        let r = match session.encrypt(&mech, key.get(&self.token, s)?, data_key) {
            Err(e) if is_stale_handle(&e) && key.refresh(&self.token, s) => {
                session.encrypt(&mech, key.get(&self.token, s)?, data_key)
            }
            r => r,
        };
        r.map_err(|e| {
            s.note(&e);
            self.token.error(Pkcs11Operation::RsaOaepEncrypt, e)
        })
    }

    fn decrypt_with(&self, s: &mut Lease<'_>, ciphertext: &[u8]) -> Result<DataKey, Pkcs11Error> {
        let key = self
            .private
            .as_ref()
            .ok_or_else(|| self.missing(KeyClass::Private))?;
        let session = s.session();
        let mech = self.hash.mechanism();
        let r = match session.decrypt(&mech, key.get(&self.token, s)?, ciphertext) {
            Err(e) if is_stale_handle(&e) && key.refresh(&self.token, s) => {
                session.decrypt(&mech, key.get(&self.token, s)?, ciphertext)
            }
            r => r,
        };
        match r.map(Zeroizing::new) {
            Ok(pt) => DataKey::from_slice(&pt).map_err(|_| Pkcs11Error::UnwrapFailed { rv: None }),
            Err(e) if is_infrastructure(&e) || !self.token.is_present() => {
                s.note(&e);
                Err(self.token.error(Pkcs11Operation::RsaOaepDecrypt, e))
            }
            Err(e) => {
                s.note(&e);
                Err(Pkcs11Error::UnwrapFailed { rv: rv_of(&e) })
            }
        }
    }
}

/// Key type and modulus length (bytes) of an RSA key object.
fn rsa_info(
    token: &Token,
    session: &Session,
    h: ObjectHandle,
) -> Result<(bool, Option<usize>), Pkcs11Error> {
    let attrs = session
        .get_attributes(h, &[AttributeType::KeyType, AttributeType::Modulus])
        .map_err(|e| token.error(Pkcs11Operation::GetAttributeValue, e))?;
    let mut is_rsa = false;
    let mut modulus = None;
    for a in &attrs {
        match a {
            Attribute::KeyType(t) => is_rsa = *t == KeyType::RSA,
            Attribute::Modulus(m) => {
                let skip = m.iter().take_while(|b| **b == 0).count();
                modulus = Some(m.len() - skip);
            }
            _ => {}
        }
    }
    Ok((is_rsa, modulus))
}

/// Whether a failure of an RSA-OAEP call means the token refuses these OAEP parameters.
fn is_unsupported_params(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::ArgumentsBad | RvError::MechanismParamInvalid | RvError::MechanismInvalid,
            Function::EncryptInit | Function::DecryptInit | Function::Encrypt
        )
    )
}

/// Asks the token to use the configured OAEP parameters once.
fn probe(
    token: &Token,
    s: &mut Lease<'_>,
    public: Option<ObjectHandle>,
    private: Option<ObjectHandle>,
    modulus_len: Option<usize>,
    hash: OaepHash,
) -> Result<(), Pkcs11Error> {
    let mech = hash.mechanism();
    let unsupported = |rv| Pkcs11Error::MechanismNotSupported {
        mechanism: hash.mechanism_id(),
        rv,
    };
    if let Some(h) = public {
        return match s.session().encrypt(&mech, h, &[0u8; 32]) {
            Ok(_) => Ok(()),
            Err(e) if is_unsupported_params(&e) => Err(unsupported(rv_of(&e))),
            Err(e) => {
                s.note(&e);
                Err(token.error(Pkcs11Operation::RsaOaepProbe, e))
            }
        };
    }
    if let Some(h) = private {
        // Decrypting a block of zeros fails in C_Decrypt (bad padding) when the
        // parameters are accepted, and in C_DecryptInit when they are not. The session
        // is closed afterwards in case a token leaves the operation active.
        let zeros = vec![0u8; modulus_len.unwrap_or(256)];
        let r = s.session().decrypt(&mech, h, &zeros);
        s.discard();
        if let Err(e) = r
            && is_unsupported_params(&e)
        {
            return Err(unsupported(rv_of(&e)));
        }
    }
    Ok(())
}

impl Pkcs11RsaKeyring {
    /// Generates the data key if needed and wraps it on one leased session.
    fn wrap_for(
        &self,
        s: &mut Lease<'_>,
        m: &mut EncryptionMaterials<'_>,
    ) -> Result<Vec<u8>, Error> {
        if m.data_key().is_none() && self.data_key_source == Randomness::Token {
            let mut k = Zeroizing::new([0u8; 32]);
            let n = m.suite().key_len();
            if let Err(e) = s.session().generate_random_slice(&mut k[..n]) {
                s.note(&e);
                return Err(self
                    .token
                    .error(Pkcs11Operation::GenerateRandom, e)
                    .to_core_error());
            }
            m.set_data_key(DataKey::from_slice(&k[..n])?)?;
        }
        let mut dk = [0u8; 32];
        let n = {
            let k = m.generate_data_key()?.as_bytes();
            dk[..k.len()].copy_from_slice(k);
            k.len()
        };
        let r = self.encrypt_with(s, &dk[..n]);
        dk.zeroize();
        r.map_err(|e| e.to_core_error())
    }

    /// Whether an EDK is this keyring's, or why not.
    fn check_edk(&self, edk: &Edk<'_>) -> Result<(), AttemptFailure> {
        if edk.provider_id != self.namespace {
            return Err(AttemptFailure::ProviderIdMismatch);
        }
        if edk.provider_info != self.name.as_bytes() {
            return Err(AttemptFailure::KeyNameMismatch);
        }
        Ok(())
    }

    /// Tries every EDK on one leased session.
    fn unwrap_any(
        &self,
        s: &mut Lease<'_>,
        m: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), Error> {
        let mut backend_error = None;
        for (i, edk) in edks.iter() {
            if let Err(reason) = self.check_edk(&edk) {
                m.record_failure(i, reason);
                continue;
            }
            match self.decrypt_with(s, edk.ciphertext) {
                Ok(k) if k.as_bytes().len() == m.suite().key_len() => return m.set_data_key(k),
                Ok(_) => m.record_failure(i, AttemptFailure::DataKeyLength),
                Err(Pkcs11Error::UnwrapFailed { .. }) => {
                    m.record_failure(i, AttemptFailure::UnwrapFailed);
                }
                Err(e) => {
                    if record_token_failure(m, i, &e, &mut backend_error) {
                        break;
                    }
                }
            }
        }
        Err(backend_error.unwrap_or_else(|| m.no_data_key_error()))
    }
}

impl Keyring for Pkcs11RsaKeyring {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        if self.public.is_none() {
            return Err(KeyringError::EncryptNotSupported.into());
        }
        let ct = self
            .token
            .lease_retry(|s| self.wrap_for(s, m))
            .map_err(|e| e.to_core_error())??;
        m.push_edk(&self.namespace, &[self.name.as_bytes()], &[&ct])
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        let mine = edks.iter().any(|(_, e)| self.check_edk(&e).is_ok());
        let failure = match (mine, self.private.is_some()) {
            (true, true) => match self.token.lease_retry(|s| self.unwrap_any(s, m, edks)) {
                Ok(r) => return r,
                Err(e) => Some(e.to_core_error()),
            },
            (true, false) => Some(KeyringError::DecryptNotSupported.into()),
            (false, _) => None,
        };
        for (i, edk) in edks.iter() {
            let reason = self.check_edk(&edk).err();
            m.record_failure(i, reason.unwrap_or(AttemptFailure::Backend));
        }
        Err(failure.unwrap_or_else(|| m.no_data_key_error()))
    }

    fn encrypted_data_keys_len(&self, _suite: AlgorithmSuite) -> Option<(u16, usize)> {
        let m = self.modulus_len?;
        self.public.as_ref()?;
        Some((1, 6 + self.namespace.len() + self.name.len() + m))
    }
}
