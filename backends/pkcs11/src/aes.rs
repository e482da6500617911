//! The AES-GCM keyring: the wrapping key is a token object; wrapping and unwrapping run
//! inside the token.

use std::fmt;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::{GcmMessageParams, GcmParams, GeneratorFunction};
use cryptoki::mechanism::{Mechanism, MechanismType, MessageParam};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use esdk_core::error::{
    AttemptFailure, Error, Pkcs11Attribute, Pkcs11KeyType, Pkcs11Mechanism, Pkcs11ObjectClass,
    Pkcs11Operation,
};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edk, Edks, EncryptionMaterials};
use esdk_core::{AlgorithmSuite, Keyring};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Pkcs11Error, is_infrastructure, record_token_failure, rv_of};
use crate::token::{KeyClass, KeyHandle, KeySelector, Lease, Token, bool_attrs, is_stale_handle};
use crate::{Randomness, check_names};

use esdk_raw::aes_info::{self, TAG_BITS};

/// An AES-GCM keyring whose wrapping key is an AES secret key object on a PKCS#11 token.
///
/// The data key is encrypted and decrypted inside the token with `CKM_AES_GCM` (12-byte
/// IV, 128-bit tag, AAD = the serialized encryption context) through `C_Encrypt` /
/// `C_Decrypt`; the wrapping key never leaves the token. The EDK is byte-for-byte the raw
/// AES keyring's (spec `framework/raw-aes-keyring.md`): provider id = the namespace,
/// provider info = key name ‖ tag length in bits (u32) ‖ IV length (u32) ‖ IV, ciphertext =
/// encrypted data key ‖ tag. A message it wraps therefore opens with
/// `esdk_raw::RawAesKeyring` (or an official SDK's raw AES keyring) holding the same key,
/// and the other way round.
///
/// The key object must be a `CKK_AES` secret key of 16, 24 or 32 bytes with `CKA_ENCRYPT`
/// and `CKA_DECRYPT` set (the data key is a byte string in memory, not a token object, so
/// `C_WrapKey` does not apply).
///
/// `Send + Sync`: share one keyring between threads; each call takes a session from the
/// [`Token`]'s pool.
pub struct Pkcs11AesKeyring {
    token: Token,
    key: KeyHandle,
    namespace: String,
    name: String,
    iv_source: Randomness,
    token_iv: Option<TokenIv>,
    data_key_source: Randomness,
}

/// How a [`Pkcs11AesKeyring`] asks the token to choose the AES-GCM IV of each wrap itself
/// ([`Pkcs11AesKeyring::with_token_generated_iv`]), for HSMs that refuse IVs chosen by the
/// caller (AWS CloudHSM in FIPS mode). Either way the keyring reads the 12-byte IV back and
/// writes it into the EDK's provider info as usual, and refuses (with
/// [`Pkcs11Error::IvNotGenerated`]) a token that leaves the IV buffer zeroed, so an EDK never
/// carries an IV other than the one the data key was encrypted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenIv {
    /// `C_EncryptInit` + `C_Encrypt` with `CKM_AES_GCM` and a `CK_GCM_PARAMS` whose IV
    /// buffer is 12 zero bytes (`ulIvLen` 12, `ulIvBits` 96); the token writes the IV it
    /// used into that buffer. This is how AWS CloudHSM generates GCM IVs.
    GcmParams,
    /// PKCS#11 3.0 message-based encryption: `C_MessageEncryptInit` and `C_EncryptMessage`
    /// with `CK_GCM_MESSAGE_PARAMS` (`ivGenerator` = `CKG_GENERATE_RANDOM`, no fixed IV
    /// bits, 128-bit tag); the token returns the IV and the tag in the parameters.
    MessageRandom,
}

impl fmt::Display for TokenIv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenIv::GcmParams => "C_Encrypt with a zeroed CK_GCM_PARAMS IV for the token to fill",
            TokenIv::MessageRandom => {
                "C_EncryptMessage with CK_GCM_MESSAGE_PARAMS and CKG_GENERATE_RANDOM"
            }
        })
    }
}

impl fmt::Debug for Pkcs11AesKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11AesKeyring")
            .field("token", &self.token.label())
            .field("key", &self.key.selector)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("iv_source", &self.iv_source)
            .field("token_iv", &self.token_iv)
            .field("data_key_source", &self.data_key_source)
            .finish()
    }
}

impl Pkcs11AesKeyring {
    /// A keyring for the AES key selected by `key` on `token`, writing EDKs under
    /// `namespace` (the provider id) and `name` (the key name). IVs come from the token's
    /// RNG, data keys from the message's crypto provider; see
    /// [`with_iv_source`](Self::with_iv_source) and
    /// [`with_data_key_source`](Self::with_data_key_source).
    ///
    /// # Errors
    /// [`Pkcs11Error::KeyNotFound`] / [`Pkcs11Error::KeyAmbiguous`] when the selector does
    /// not match exactly one secret key; [`Pkcs11Error::KeyType`] for a key that is not AES
    /// of 16, 24 or 32 bytes; [`Pkcs11Error::KeyUsage`] when `CKA_ENCRYPT` or `CKA_DECRYPT`
    /// is not set; [`Pkcs11Error::MechanismNotSupported`] when the token lacks
    /// `CKM_AES_GCM`; [`Pkcs11Error::ReservedNamespace`] for a namespace starting with
    /// `aws-kms` and [`Pkcs11Error::NameTooLong`] for names too long for the EDK fields; [`Pkcs11Error::TokenRemoved`] and
    /// [`Pkcs11Error::Cryptoki`] for token failures.
    pub fn new(
        token: &Token,
        key: KeySelector,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<Self, Pkcs11Error> {
        let namespace = namespace.into();
        let name = name.into();
        check_names(&namespace, &name, aes_info::INFO_SUFFIX_LEN)?;
        if !token.has_mechanism(MechanismType::AES_GCM) {
            return Err(Pkcs11Error::MechanismNotSupported {
                mechanism: Pkcs11Mechanism::AesGcm,
                rv: None,
            });
        }
        let generation = token.generation();
        let handle = token.lease(|s| {
            let session = s.session();
            match token.find_key(session, &key, KeyClass::Secret)? {
                Some(h) => {
                    check_aes_key(token, session, h, &key)?;
                    probe(token, s, h, &key)?;
                    Ok(h)
                }
                None => Err(Pkcs11Error::KeyNotFound {
                    key: key.clone(),
                    class: Pkcs11ObjectClass::SecretKey,
                }),
            }
        })??;
        Ok(Self {
            token: token.clone(),
            key: KeyHandle::new(key, KeyClass::Secret, handle, generation),
            namespace,
            name,
            iv_source: Randomness::Token,
            token_iv: None,
            data_key_source: Randomness::Provider,
        })
    }

    /// Where the 12-byte IVs come from (default: [`Randomness::Token`]).
    pub fn with_iv_source(mut self, source: Randomness) -> Self {
        self.iv_source = source;
        self
    }

    /// Has the token generate the IV of every wrap itself, in the way `mode` says, instead of
    /// passing it an IV from [`with_iv_source`](Self::with_iv_source). Needed for HSMs that
    /// refuse caller-chosen GCM IVs (AWS CloudHSM: [`TokenIv::GcmParams`]). The EDKs are
    /// unchanged (the IV read back goes into the provider info), and decryption passes the
    /// EDK's IV as always.
    ///
    /// Wraps once at once (32 zero bytes, empty AAD; the result is discarded) to check that
    /// the token does generate the IV.
    ///
    /// # Errors
    /// [`Pkcs11Error::IvNotGenerated`] when the token encrypts but leaves the IV zeroed
    /// (it ignored the request: SoftHSM2 2.6.1 and Kryoptic 1.5 do so with
    /// [`TokenIv::GcmParams`]); [`Pkcs11Error::MechanismNotSupported`] when the token refuses
    /// the request (e.g. a PKCS#11 2.40 module and [`TokenIv::MessageRandom`]);
    /// [`Pkcs11Error::TokenRemoved`] or [`Pkcs11Error::Cryptoki`] for other failures.
    pub fn with_token_generated_iv(mut self, mode: TokenIv) -> Result<Self, Pkcs11Error> {
        self.token_iv = Some(mode);
        self.token
            .lease_retry(|s| self.encrypt_token_iv(s, mode, b"", &[0u8; 32]))??;
        Ok(self)
    }

    /// The token-generated IV mode, if one is set.
    pub fn token_generated_iv(&self) -> Option<TokenIv> {
        self.token_iv
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

    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Encrypts `data_key` on the token with AES-GCM under the wrapping key, with `iv` and
    /// `aad`, and returns ciphertext ‖ 16-byte tag (the EDK ciphertext field). The
    /// [`Keyring`] implementation is built on this; call it directly for the rich error.
    ///
    /// # Errors
    /// [`Pkcs11Error::TokenRemoved`], [`Pkcs11Error::Cryptoki`] naming the call that
    /// failed, or [`Pkcs11Error::OutputLength`] when the token returns a ciphertext of the
    /// wrong length.
    pub fn encrypt_data_key(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        data_key: &[u8],
    ) -> Result<Vec<u8>, Pkcs11Error> {
        self.token
            .lease_retry(|s| self.encrypt_with(s, iv, aad, data_key))?
    }

    /// Decrypts an EDK ciphertext (encrypted key ‖ tag) on the token with `iv` and `aad`.
    ///
    /// # Errors
    /// [`Pkcs11Error::UnwrapFailed`] when the token rejects the ciphertext (whatever return
    /// value it uses for a tag mismatch); [`Pkcs11Error::TokenRemoved`] or
    /// [`Pkcs11Error::Cryptoki`] for failures of the token itself.
    pub fn decrypt_data_key(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<DataKey, Pkcs11Error> {
        self.token
            .lease_retry(|s| self.decrypt_with(s, iv, aad, ciphertext))?
    }

    fn gcm_encrypt(
        &self,
        session: &Session,
        key: ObjectHandle,
        iv: &[u8; 12],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CkError> {
        let mut iv = *iv;
        let params = GcmParams::new(&mut iv, aad, Ulong::new(TAG_BITS.into()))?;
        session.encrypt(&Mechanism::AesGcm(params), key, data)
    }

    fn gcm_decrypt(
        &self,
        session: &Session,
        key: ObjectHandle,
        iv: &[u8; 12],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CkError> {
        let mut iv = *iv;
        let params = GcmParams::new(&mut iv, aad, Ulong::new(TAG_BITS.into()))?;
        session
            .decrypt(&Mechanism::AesGcm(params), key, data)
            .map(Zeroizing::new)
    }

    fn encrypt_with(
        &self,
        s: &mut Lease<'_>,
        iv: &[u8; 12],
        aad: &[u8],
        data_key: &[u8],
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let session = s.session();
        let r = match self.gcm_encrypt(session, self.key.get(&self.token, s)?, iv, aad, data_key) {
            Err(e) if is_stale_handle(&e) && self.key.refresh(&self.token, s) => {
                self.gcm_encrypt(session, self.key.get(&self.token, s)?, iv, aad, data_key)
            }
            r => r,
        };
        let ct = r.map_err(|e| {
            s.note(&e);
            self.token.error(Pkcs11Operation::AesGcmEncrypt, e)
        })?;
        if ct.len() != data_key.len() + 16 {
            return Err(Pkcs11Error::OutputLength {
                operation: Pkcs11Operation::AesGcmEncrypt,
                expected: data_key.len() + 16,
                actual: ct.len(),
            });
        }
        Ok(ct)
    }

    /// Encrypts `data_key` with an IV the token generates (`mode`); returns the IV and
    /// ciphertext ‖ tag.
    fn encrypt_token_iv(
        &self,
        s: &mut Lease<'_>,
        mode: TokenIv,
        aad: &[u8],
        data_key: &[u8],
    ) -> Result<([u8; 12], Vec<u8>), Pkcs11Error> {
        let session = s.session();
        let run = |h: ObjectHandle| -> Result<([u8; 12], Vec<u8>), CkError> {
            let mut iv = [0u8; 12];
            match mode {
                TokenIv::GcmParams => {
                    let params = GcmParams::new(&mut iv, aad, Ulong::new(TAG_BITS.into()))?;
                    let ct = session.encrypt(&Mechanism::AesGcm(params), h, data_key)?;
                    Ok((iv, ct))
                }
                TokenIv::MessageRandom => {
                    let mut tag = [0u8; 16];
                    let params = GcmMessageParams::new(
                        &mut iv,
                        Ulong::new(0),
                        GeneratorFunction::GenerateRandom,
                        &mut tag,
                    )?;
                    session.message_encrypt_init(&Mechanism::AesGcmMessage(params), h)?;
                    let r = session.encrypt_message(
                        &MessageParam::AesGcmMessage(params),
                        aad,
                        data_key,
                    );
                    let fin = session.message_encrypt_final();
                    let mut ct = r?;
                    fin?;
                    ct.extend_from_slice(&tag);
                    Ok((iv, ct))
                }
            }
        };
        let r = match run(self.key.get(&self.token, s)?) {
            Err(e) if is_stale_handle(&e) && self.key.refresh(&self.token, s) => {
                run(self.key.get(&self.token, s)?)
            }
            r => r,
        };
        let (iv, ct) = r.map_err(|e| {
            s.note(&e);
            // A message operation may be left active: do not reuse the session.
            if mode == TokenIv::MessageRandom {
                s.discard();
            }
            match (rv_of(&e), &e) {
                (
                    Some(
                        rv @ (RvError::MechanismInvalid
                        | RvError::MechanismParamInvalid
                        | RvError::ArgumentsBad
                        | RvError::FunctionNotSupported),
                    ),
                    _,
                ) => Pkcs11Error::MechanismNotSupported {
                    mechanism: Pkcs11Mechanism::AesGcm,
                    rv: Some(rv),
                },
                // A PKCS#11 2.40 module has no C_MessageEncryptInit.
                (None, CkError::NotSupported | CkError::NullFunctionPointer) => {
                    Pkcs11Error::MechanismNotSupported {
                        mechanism: Pkcs11Mechanism::AesGcm,
                        rv: None,
                    }
                }
                _ => self.token.error(Pkcs11Operation::AesGcmEncrypt, e),
            }
        })?;
        if iv == [0u8; 12] {
            return Err(Pkcs11Error::IvNotGenerated { mode });
        }
        if ct.len() != data_key.len() + 16 {
            return Err(Pkcs11Error::OutputLength {
                operation: Pkcs11Operation::AesGcmEncrypt,
                expected: data_key.len() + 16,
                actual: ct.len(),
            });
        }
        Ok((iv, ct))
    }

    fn decrypt_with(
        &self,
        s: &mut Lease<'_>,
        iv: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<DataKey, Pkcs11Error> {
        let session = s.session();
        let r = match self.gcm_decrypt(session, self.key.get(&self.token, s)?, iv, aad, ciphertext)
        {
            Err(e) if is_stale_handle(&e) && self.key.refresh(&self.token, s) => {
                self.gcm_decrypt(session, self.key.get(&self.token, s)?, iv, aad, ciphertext)
            }
            r => r,
        };
        match r {
            Ok(pt) => DataKey::from_slice(&pt).map_err(|_| Pkcs11Error::UnwrapFailed { rv: None }),
            Err(e) if is_infrastructure(&e) || !self.token.is_present() => {
                s.note(&e);
                Err(self.token.error(Pkcs11Operation::AesGcmDecrypt, e))
            }
            Err(e) => {
                s.note(&e);
                Err(Pkcs11Error::UnwrapFailed { rv: rv_of(&e) })
            }
        }
    }
}

/// Encrypts 32 zero bytes once with the keyring's parameters, so that a token that refuses
/// them (mechanism, IV or tag length, `CKA_ALLOWED_MECHANISMS`) is reported at construction.
fn probe(
    token: &Token,
    s: &mut Lease<'_>,
    h: ObjectHandle,
    key: &KeySelector,
) -> Result<(), Pkcs11Error> {
    let mut iv = [0u8; 12];
    let params = GcmParams::new(&mut iv, b"", Ulong::new(TAG_BITS.into()))
        .map_err(|e| Pkcs11Error::cryptoki(Pkcs11Operation::AesGcmParams, e))?;
    match s
        .session()
        .encrypt(&Mechanism::AesGcm(params), h, &[0u8; 32])
    {
        Ok(_) => Ok(()),
        Err(e) => {
            s.note(&e);
            if gcm_disallowed(s.session(), h) {
                return Err(Pkcs11Error::KeyUsage {
                    key: key.clone(),
                    attribute: Pkcs11Attribute::AllowedMechanisms,
                });
            }
            Err(match rv_of(&e) {
                Some(
                    rv @ (RvError::MechanismInvalid
                    | RvError::MechanismParamInvalid
                    | RvError::ArgumentsBad),
                ) => Pkcs11Error::MechanismNotSupported {
                    mechanism: Pkcs11Mechanism::AesGcmIv12Tag128,
                    rv: Some(rv),
                },
                Some(RvError::KeyFunctionNotPermitted) => Pkcs11Error::KeyUsage {
                    key: key.clone(),
                    attribute: Pkcs11Attribute::Encrypt,
                },
                _ => token.error(Pkcs11Operation::AesGcmProbe, e),
            })
        }
    }
}

/// Whether the key's `CKA_ALLOWED_MECHANISMS` is set and leaves out `CKM_AES_GCM`.
fn gcm_disallowed(session: &Session, h: ObjectHandle) -> bool {
    match session.get_attributes(h, &[AttributeType::AllowedMechanisms]) {
        Ok(attrs) => attrs.iter().any(|a| match a {
            Attribute::AllowedMechanisms(list) => {
                !list.is_empty() && !list.contains(&MechanismType::AES_GCM)
            }
            _ => false,
        }),
        Err(_) => false,
    }
}

/// Checks the key type, length and usage attributes of an AES wrapping key.
fn check_aes_key(
    token: &Token,
    session: &Session,
    h: ObjectHandle,
    key: &KeySelector,
) -> Result<(), Pkcs11Error> {
    let attrs = session
        .get_attributes(h, &[AttributeType::KeyType, AttributeType::ValueLen])
        .map_err(|e| token.error(Pkcs11Operation::GetAttributeValue, e))?;
    let mut is_aes = false;
    let mut len_ok = true; // a token that hides CKA_VALUE_LEN is trusted on the length
    for a in &attrs {
        match a {
            Attribute::KeyType(t) => is_aes = *t == KeyType::AES,
            Attribute::ValueLen(n) => len_ok = matches!(**n, 16 | 24 | 32),
            _ => {}
        }
    }
    if !is_aes || !len_ok {
        return Err(Pkcs11Error::KeyType {
            key: key.clone(),
            expected: Pkcs11KeyType::Aes,
        });
    }
    let usage = bool_attrs(
        token,
        session,
        h,
        &[AttributeType::Encrypt, AttributeType::Decrypt],
    )?;
    for (ok, attribute) in usage
        .iter()
        .zip([Pkcs11Attribute::Encrypt, Pkcs11Attribute::Decrypt])
    {
        if !ok {
            return Err(Pkcs11Error::KeyUsage {
                key: key.clone(),
                attribute,
            });
        }
    }
    Ok(())
}

impl Pkcs11AesKeyring {
    /// Generates what is needed and wraps the data key on one leased session.
    fn wrap_for(
        &self,
        s: &mut Lease<'_>,
        m: &mut EncryptionMaterials<'_>,
    ) -> Result<([u8; 12], Vec<u8>), Error> {
        let fail = |s: &mut Lease<'_>, (what, e): (Pkcs11Operation, CkError)| {
            s.note(&e);
            self.token.error(what, e).to_core_error()
        };
        let mut iv = [0u8; 12];
        match self.iv_source {
            _ if self.token_iv.is_some() => {}
            Randomness::Token => s
                .session()
                .generate_random_slice(&mut iv)
                .map_err(|e| fail(s, (Pkcs11Operation::GenerateRandom, e)))?,
            Randomness::Provider => m.fill_random(&mut iv)?,
        }
        if m.data_key().is_none() && self.data_key_source == Randomness::Token {
            let mut k = Zeroizing::new([0u8; 32]);
            let n = m.suite().key_len();
            s.session()
                .generate_random_slice(&mut k[..n])
                .map_err(|e| fail(s, (Pkcs11Operation::GenerateRandom, e)))?;
            m.set_data_key(DataKey::from_slice(&k[..n])?)?;
        }
        let mut dk = [0u8; 32];
        let n = {
            let k = m.generate_data_key()?.as_bytes();
            dk[..k.len()].copy_from_slice(k);
            k.len()
        };
        let aad = m.serialized_encryption_context();
        let r = match self.token_iv {
            Some(mode) => self.encrypt_token_iv(s, mode, aad, &dk[..n]),
            None => self.encrypt_with(s, &iv, aad, &dk[..n]).map(|ct| (iv, ct)),
        };
        dk.zeroize();
        r.map_err(|e| e.to_core_error())
    }

    /// The IV of an EDK that this keyring may decrypt, or why it may not.
    fn parse_edk(
        &self,
        suite: AlgorithmSuite,
        edk: &Edk<'_>,
    ) -> Result<[u8; aes_info::IV_LEN], AttemptFailure> {
        if edk.provider_id != self.namespace {
            return Err(AttemptFailure::ProviderIdMismatch);
        }
        aes_info::parse(&self.name, suite, edk.provider_info, edk.ciphertext)
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
            let iv = match self.parse_edk(m.suite(), &edk) {
                Ok(iv) => iv,
                Err(reason) => {
                    m.record_failure(i, reason);
                    continue;
                }
            };
            match self.decrypt_with(s, &iv, m.serialized_encryption_context(), edk.ciphertext) {
                Ok(k) => return m.set_data_key(k),
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

impl Keyring for Pkcs11AesKeyring {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let (iv, ct) = self
            .token
            .lease_retry(|s| self.wrap_for(s, m))
            .map_err(|e| e.to_core_error())??;
        m.push_edk(
            &self.namespace,
            &aes_info::provider_info(&self.name, &iv),
            &[&ct],
        )
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        let suite = m.suite();
        if edks.iter().any(|(_, e)| self.parse_edk(suite, &e).is_ok()) {
            match self.token.lease_retry(|s| self.unwrap_any(s, m, edks)) {
                Ok(r) => return r,
                Err(e) => {
                    // No session: the token is unreachable.
                    for (i, edk) in edks.iter() {
                        let reason = self.parse_edk(suite, &edk).err();
                        m.record_failure(i, reason.unwrap_or(AttemptFailure::Backend));
                    }
                    return Err(e.to_core_error());
                }
            }
        }
        for (i, edk) in edks.iter() {
            if let Err(reason) = self.parse_edk(suite, &edk) {
                m.record_failure(i, reason);
            }
        }
        Err(m.no_data_key_error())
    }

    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        Some(aes_info::edk_len(&self.namespace, &self.name, suite))
    }
}
