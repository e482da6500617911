//! The keyring and CMM traits, the multi-keyring and the required-encryption-context CMM
//! (spec `framework/keyring-interface.md`, `cmm-interface.md`, `default-cmm.md`,
//! `multi-keyring.md`, `required-encryption-context-cmm.md`).

use crate::encrypt::EncryptionRequest;
use crate::error::{ApiMisuse, Error, KeyringError, PolicyViolation};
use crate::materials::{DecryptionMaterials, Edks, EncryptionMaterials};
use crate::signature::SigningKey;
use crate::suite::AlgorithmSuite;

/// A keyring: generates and wraps data keys on encrypt, unwraps one on decrypt.
///
/// Object safe, sync, and open for implementation (HSMs, custom key stores). Keyrings hold
/// their own key material and crypto handles.
pub trait Keyring {
    /// Generates a data key if the materials hold none, then wraps it and pushes an EDK.
    ///
    /// # Errors
    /// Any failure; the encryption fails with it.
    fn on_encrypt(&self, materials: &mut EncryptionMaterials<'_>) -> Result<(), Error>;

    /// Tries the EDKs that belong to this keyring and sets the data key on the first success.
    ///
    /// Returns:
    /// - `Ok(())` with the data key set: decrypted;
    /// - `Err(..)` otherwise, typically [`DecryptionMaterials::no_data_key_error`], after
    ///   recording one [`DecryptionMaterials::record_failure`] per EDK it rejected.
    ///
    /// # Errors
    /// When no EDK could be decrypted.
    fn on_decrypt(
        &self,
        materials: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), Error>;

    /// How many EDKs this keyring adds on encrypt and their serialized length (with the
    /// three u16 length prefixes each), when known in advance. Lets
    /// [`encrypted_len`](crate::encrypted_len) give the exact message size.
    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        let _ = suite;
        None
    }
}

impl<K: Keyring + ?Sized> Keyring for &K {
    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        (**self).encrypted_data_keys_len(suite)
    }
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        (**self).on_encrypt(m)
    }
    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        (**self).on_decrypt(m, edks)
    }
}

/// A cryptographic materials manager. Every [`Keyring`] is one (the default CMM behaviour:
/// the message engine generates the signing key, checks the materials and the encryption
/// context rules); wrap it in [`RequiredEncryptionContextCmm`] for required keys.
pub trait CryptoMaterialsManager {
    /// Encryption-context keys that are authenticated but not stored in the header. On
    /// encrypt they must be in the context; on decrypt in the reproduced context.
    fn required_encryption_context_keys(&self) -> &[&str] {
        &[]
    }

    /// Called for signing suites before the encryption context is final: the signing key
    /// the message must use, or `None` (the default) for a fresh one from the provider. A
    /// CMM that reuses materials returns the key they were made with, since its public key is
    /// part of the context the data key is bound to; it sees the same request again, with
    /// the key's public half in the context, in
    /// [`get_encryption_materials`](Self::get_encryption_materials).
    ///
    /// # Errors
    /// Any failure; the encryption fails with it.
    fn encryption_signing_key(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Result<Option<SigningKey>, Error> {
        let _ = request;
        Ok(None)
    }

    /// Fills the encryption materials (data key and EDKs).
    ///
    /// # Errors
    /// Any keyring failure.
    fn get_encryption_materials(
        &self,
        materials: &mut EncryptionMaterials<'_>,
    ) -> Result<(), Error>;

    /// As [`Keyring::encrypted_data_keys_len`].
    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        let _ = suite;
        None
    }

    /// Fills the decryption materials (the data key).
    ///
    /// # Errors
    /// Any keyring failure.
    fn decrypt_materials(
        &self,
        materials: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), Error>;
}

impl<K: Keyring + ?Sized> CryptoMaterialsManager for K {
    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        Keyring::encrypted_data_keys_len(self, suite)
    }
    fn get_encryption_materials(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        self.on_encrypt(m)
    }
    fn decrypt_materials(
        &self,
        m: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), Error> {
        if m.data_key().is_some() {
            return Err(KeyringError::DataKeyAlreadyPresent.into());
        }
        self.on_decrypt(m, edks)
    }
}

/// A generator keyring plus children over borrowed keyrings; needs no heap.
///
/// Encrypt: the generator makes and wraps the data key, then every child wraps it too; any
/// failure fails the whole. Decrypt: the generator, then each child, until one succeeds;
/// the attempt record names each child by its index (generator = 0, children from 1).
#[derive(Clone, Copy)]
pub struct MultiKeyring<'a> {
    generator: Option<&'a dyn Keyring>,
    children: &'a [&'a dyn Keyring],
}

impl<'a> MultiKeyring<'a> {
    /// A multi-keyring with a generator and children.
    pub const fn new(generator: &'a dyn Keyring, children: &'a [&'a dyn Keyring]) -> Self {
        Self {
            generator: Some(generator),
            children,
        }
    }

    /// A multi-keyring without generator: it can only wrap an existing data key on encrypt,
    /// and decrypts with any child.
    pub const fn children_only(children: &'a [&'a dyn Keyring]) -> Self {
        Self {
            generator: None,
            children,
        }
    }
}

impl core::fmt::Debug for MultiKeyring<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MultiKeyring")
            .field("generator", &self.generator.is_some())
            .field("children", &self.children.len())
            .finish()
    }
}

impl Keyring for MultiKeyring<'_> {
    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        let mut total = (0u16, 0usize);
        for k in self
            .generator
            .into_iter()
            .chain(self.children.iter().copied())
        {
            let (n, len) = k.encrypted_data_keys_len(suite)?;
            total = (total.0.checked_add(n)?, total.1.checked_add(len)?);
        }
        Some(total)
    }

    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        match self.generator {
            Some(g) => {
                g.on_encrypt(m)?;
                if m.data_key().is_none() {
                    return Err(KeyringError::NoDataKeyGenerated.into());
                }
            }
            None if m.data_key().is_none() => return Err(KeyringError::NoDataKeyGenerated.into()),
            None => {}
        }
        for child in self.children {
            child.on_encrypt(m)?;
        }
        Ok(())
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        if m.data_key().is_some() {
            return Err(KeyringError::DataKeyAlreadyPresent.into());
        }
        let base = m.keyring_index();
        let offset = u8::from(self.generator.is_none());
        let all = self
            .generator
            .into_iter()
            .chain(self.children.iter().copied());
        for (i, k) in all.enumerate() {
            m.set_keyring_index(base.saturating_add(offset).saturating_add(i as u8));
            // A child's error is recorded in the attempts; go on with the next child.
            if k.on_decrypt(m, edks).is_ok() && m.data_key().is_some() {
                m.set_keyring_index(base);
                return Ok(());
            }
        }
        m.set_keyring_index(base);
        Err(m.no_data_key_error())
    }
}

/// A CMM that makes some encryption-context keys required: on encrypt they must be present
/// and are authenticated but not stored; on decrypt they must be in the reproduced context.
#[derive(Clone, Copy)]
pub struct RequiredEncryptionContextCmm<'a, C: ?Sized> {
    inner: &'a C,
    keys: &'a [&'a str],
}

impl<'a, C: CryptoMaterialsManager + ?Sized> RequiredEncryptionContextCmm<'a, C> {
    /// Wraps `inner` (a keyring or CMM) and requires `keys`.
    pub const fn new(inner: &'a C, keys: &'a [&'a str]) -> Self {
        Self { inner, keys }
    }
}

impl<C: ?Sized> core::fmt::Debug for RequiredEncryptionContextCmm<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RequiredEncryptionContextCmm")
            .field("keys", &self.keys)
            .finish()
    }
}

impl<C: CryptoMaterialsManager + ?Sized> CryptoMaterialsManager
    for RequiredEncryptionContextCmm<'_, C>
{
    fn required_encryption_context_keys(&self) -> &[&str] {
        self.keys
    }

    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        self.inner.encrypted_data_keys_len(suite)
    }

    fn encryption_signing_key(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Result<Option<SigningKey>, Error> {
        self.inner.encryption_signing_key(request)
    }

    fn get_encryption_materials(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        for k in self.keys {
            if m.encryption_context().get(k).is_none() {
                return Err(ApiMisuse::RequiredKeyNotInContext.into());
            }
        }
        self.inner.get_encryption_materials(m)
    }

    fn decrypt_materials(
        &self,
        m: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), Error> {
        for k in self.keys {
            if !m
                .reproduced_encryption_context()
                .iter()
                .any(|(rk, _)| rk == k)
            {
                return Err(PolicyViolation::MissingRequiredEncryptionContextKey.into());
            }
        }
        self.inner.decrypt_materials(m, edks)
    }
}
