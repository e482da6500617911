//! The signing-key hand-off of the old async KMS front end (`kms/asynch.rs`), moved here
//! unchanged from the caching module: [`HandoffGuard`], [`PrefetchProvider`],
//! [`ReplayCmm`], [`Materials`], [`SigningKey`], [`full_context`] and [`encrypt_vec`].
//!
//! It only serves that front end, which hands prefetched materials to the header through a
//! thread-local and a provider that forwards everything to aws-lc. The caching CMM uses
//! none of it (it answers the engine's materials step instead). This file is deleted when
//! the rewrite of `asynch.rs` over the engine's three header steps lands.

use std::cell::RefCell;
use std::marker::PhantomData;

use esdk_core::encryption_context;
use esdk_core::error::{CryptoError, KeyringError};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::{CryptoProvider, RandomSource};
use esdk_core::suite::{HashAlg, SignatureAlg};
use esdk_core::{AlgorithmSuite, Config, CryptoMaterialsManager, EncryptOptions, Error};
use zeroize::Zeroizing;

use super::OwnedEdk;
use crate::{DEFAULT_PROVIDER, DefaultProvider};

/// A message signing key pair (private scalar zeroized on drop).
#[derive(Clone)]
pub(crate) struct SigningKey {
    alg: SignatureAlg,
    private: Zeroizing<[u8; 48]>,
    public: [u8; 49],
}

impl SigningKey {
    /// A fresh key pair from the default provider.
    pub(crate) fn generate(alg: SignatureAlg) -> Result<Self, Error> {
        let mut private = Zeroizing::new([0u8; 48]);
        let mut public = [0u8; 49];
        DEFAULT_PROVIDER.generate_signing_key(
            alg,
            &mut private[..alg.scalar_len()],
            &mut public[..alg.public_key_len()],
        )?;
        Ok(Self {
            alg,
            private,
            public,
        })
    }

    /// The base64 text the core stores under `aws-crypto-public-key`.
    pub(crate) fn public_b64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.public[..self.alg.public_key_len()])
    }
}

#[derive(Default)]
struct Handoff {
    preset: Option<SigningKey>,
}

thread_local! {
    static HANDOFF: RefCell<Handoff> = RefCell::new(Handoff::default());
}

/// Arms the hand-off on this thread until dropped, then restores what was armed before (so
/// guards nest). Not `Send`: it must be dropped on the thread that wrote the header.
pub(crate) struct HandoffGuard {
    previous: Option<Handoff>,
    _not_send: PhantomData<*const ()>,
}

impl HandoffGuard {
    fn arm(state: Handoff) -> Self {
        let previous = HANDOFF.with(|h| std::mem::replace(&mut *h.borrow_mut(), state));
        Self {
            previous: Some(previous),
            _not_send: PhantomData,
        }
    }

    /// The next headers written on this thread use `key` as their signing key.
    pub(crate) fn preset(key: Option<SigningKey>) -> Self {
        Self::arm(Handoff { preset: key })
    }
}

impl Drop for HandoffGuard {
    fn drop(&mut self) {
        let previous = self.previous.take().unwrap_or_default();
        HANDOFF.with(|h| *h.borrow_mut() = previous);
    }
}

/// The default provider ([`DEFAULT_PROVIDER`]), except that a message's signing key pair can
/// be handed to it ahead of the header, on the same thread, by the async KMS front end.
/// With nothing handed over it behaves exactly like the default provider.
///
/// It exists because the core generates the signing key inside
/// [`Encryptor::write_header`](esdk_core::Encryptor::write_header), after which the
/// encryption context the keyrings saw can no longer change.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefetchProvider;

/// The [`PrefetchProvider`] instance.
pub const PREFETCH_PROVIDER: PrefetchProvider = PrefetchProvider;

impl RandomSource for PrefetchProvider {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        DEFAULT_PROVIDER.fill_random(out)
    }
}

impl CryptoProvider for PrefetchProvider {
    type Aead = <DefaultProvider as CryptoProvider>::Aead;
    type Hasher = <DefaultProvider as CryptoProvider>::Hasher;

    fn aead_key(&self, key: &[u8]) -> Result<Self::Aead, CryptoError> {
        DEFAULT_PROVIDER.aead_key(key)
    }

    fn hkdf(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
        info: &[&[u8]],
        okm: &mut [u8],
    ) -> Result<(), CryptoError> {
        DEFAULT_PROVIDER.hkdf(hash, salt, ikm, info, okm)
    }

    fn hasher(&self, alg: SignatureAlg) -> Result<Self::Hasher, CryptoError> {
        DEFAULT_PROVIDER.hasher(alg)
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlg,
        private: &mut [u8],
        public: &mut [u8],
    ) -> Result<(), CryptoError> {
        HANDOFF.with(|h| {
            let h = h.borrow();
            let (sl, pl) = (alg.scalar_len(), alg.public_key_len());
            if let Some(k) = &h.preset {
                if k.alg != alg || private.len() != sl || public.len() != pl {
                    return Err(CryptoError::InvalidKey);
                }
                private.copy_from_slice(&k.private[..sl]);
                public.copy_from_slice(&k.public[..pl]);
                return Ok(());
            }
            DEFAULT_PROVIDER.generate_signing_key(alg, private, public)?;
            Ok(())
        })
    }

    fn sign_digest(
        &self,
        alg: SignatureAlg,
        private: &[u8],
        digest: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        DEFAULT_PROVIDER.sign_digest(alg, private, digest, out)
    }

    fn verify_digest(
        &self,
        alg: SignatureAlg,
        public: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError> {
        DEFAULT_PROVIDER.verify_digest(alg, public, digest, sig)
    }
}

/// Encryption materials obtained ahead of the header: the data key, the EDKs, the signing
/// key, and the full encryption context they are bound to.
pub(crate) struct Materials {
    pub(crate) suite: AlgorithmSuite,
    pub(crate) data_key: DataKey,
    pub(crate) edks: Vec<OwnedEdk>,
    pub(crate) signing: Option<SigningKey>,
    pub(crate) full_ec: Vec<(String, String)>,
}

/// A CMM that hands prefetched [`Materials`] to the header, after checking that the header's
/// suite and full encryption context are the ones the materials were made for.
pub(crate) struct ReplayCmm<'a> {
    pub(crate) materials: &'a Materials,
    pub(crate) required: &'a [&'a str],
}

impl CryptoMaterialsManager for ReplayCmm<'_> {
    fn required_encryption_context_keys(&self) -> &[&str] {
        self.required
    }

    fn get_encryption_materials(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let mat = self.materials;
        if m.suite() != mat.suite {
            return Err(KeyringError::Other(
                "prefetched materials are for another algorithm suite",
            )
            .into());
        }
        let same = m.encryption_context().len() == mat.full_ec.len()
            && m.encryption_context()
                .iter_sorted()
                .zip(mat.full_ec.iter())
                .all(|((k, v), (ek, ev))| k == ek.as_bytes() && v == ev.as_bytes());
        if !same {
            return Err(KeyringError::Other(
                "the header's encryption context differs from the one the data key is bound to",
            )
            .into());
        }
        m.set_data_key(mat.data_key.clone())?;
        for e in &mat.edks {
            m.push_edk(&e.provider_id, &[&e.provider_info], &[&e.ciphertext])?;
        }
        Ok(())
    }

    fn decrypt_materials(
        &self,
        _m: &mut DecryptionMaterials<'_>,
        _edks: Edks<'_>,
    ) -> Result<(), Error> {
        Err(KeyringError::Other("prefetched encryption materials cannot decrypt").into())
    }
}

/// The full encryption context the core builds for `pairs` (sorted, checked) and `signing`
/// (used by the async KMS front end).
pub(crate) fn full_context(
    pairs: &[(&str, &str)],
    signing: Option<&SigningKey>,
) -> Vec<(String, String)> {
    let mut full: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(s) = signing {
        full.push((
            encryption_context::PUBLIC_KEY_CONTEXT_KEY.to_owned(),
            s.public_b64(),
        ));
    }
    full.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    full
}

/// Encrypts a whole message into a `Vec` with `provider` and `cmm`, growing the buffer when
/// the core asks for more.
pub(crate) fn encrypt_vec<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    opts: &EncryptOptions,
    ec: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut ec: Vec<(&str, &str)> = ec.to_vec();
    let mut cap = plaintext.len() + plaintext.len() / 64 + 4096;
    loop {
        let mut out = vec![0u8; cap];
        match esdk_core::encrypt(cfg, provider, cmm, opts, &mut ec, plaintext, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(Error::BufferTooSmall { required }) if required > cap => cap = required,
            Err(Error::BufferTooSmall { .. }) => cap = cap.saturating_mul(2),
            Err(e) => return Err(e),
        }
    }
}
