//! The blocking front end: [`encrypt`], [`decrypt`], [`encrypt_stream`] and
//! [`decrypt_stream`] run the [async front end](super::asynch) to completion on a
//! [`KmsRuntime`] the caller owns, and return its detailed [`Error`] (key ARN, region, KMS
//! error code, one record per EDK tried).
//!
//! Calling a tokio runtime's `block_on` on a thread that is already inside a runtime panics
//! ("Cannot start a runtime from within a runtime"). [`KmsRuntime::block_on`] checks for
//! that and, in that case, drives the future on a scoped helper thread instead, so the
//! blocking API works from plain threads, from `spawn_blocking`, and from inside async
//! tasks alike. Inside an async task it still blocks that task's worker thread for the
//! length of the KMS call: async code should use [`asynch`].
//!
//! [`BlockingKeyring`] is for the one place where a KMS keyring must be a sync core
//! [`Keyring`]: inside a core [`MultiKeyring`](esdk_core::MultiKeyring) or a sync CMM such as
//! the [caching CMM](crate::caching::CachingCmm). The core's errors are `Copy` and
//! allocation-free, so there a KMS failure is reported as what it is in the core's terms
//! (a generator that produced no data key, an EDK whose unwrap failed in its backend, an
//! invalid configuration) and the KMS detail is not available: use the functions here when
//! you need it.

use std::future::Future;
use std::io::{Read, Write};
use std::sync::Arc;

use esdk_core::error::{AttemptFailure, KeyringError};
use esdk_core::materials::{DecryptionMaterials, Edk, Edks, EncryptionMaterials};
use esdk_core::{Config, EncryptOptions, Keyring};

use super::{AsyncKeyring, DecryptRequest, EncryptRequest, asynch};
use crate::{Decrypted, Error};

/// A tokio runtime for blocking KMS calls (multi-threaded, two workers).
pub struct KmsRuntime {
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for KmsRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsRuntime").finish_non_exhaustive()
    }
}

impl KmsRuntime {
    /// A new runtime.
    ///
    /// # Errors
    /// [`Error::Io`] when the runtime's threads cannot be started.
    pub fn new() -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("esdk-kms")
            .enable_all()
            .build()
            .map_err(Error::Io)?;
        Ok(Self { rt: Some(rt) })
    }

    /// Runs `fut` to completion and returns its output. Never panics because the calling
    /// thread is inside another tokio runtime: then `fut` runs on a scoped helper thread.
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        // Invariant: `rt` is `Some` from `new` until `drop`, and this borrows `self`.
        #[allow(clippy::expect_used)]
        let rt = self
            .rt
            .as_ref()
            .expect("the runtime is only taken out in Drop");
        if tokio::runtime::Handle::try_current().is_err() {
            return rt.block_on(fut);
        }
        std::thread::scope(|s| match s.spawn(|| rt.block_on(fut)).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }
}

impl Drop for KmsRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside an async context panics; shutting it down in the
        // background never does.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// [`asynch::encrypt`] run to completion on `rt`.
///
/// # Errors
/// As [`asynch::encrypt`]: the detailed KMS errors, policy and core errors.
pub fn encrypt(
    rt: &KmsRuntime,
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    rt.block_on(asynch::encrypt(
        cfg,
        keyring,
        opts,
        encryption_context,
        plaintext,
    ))
}

/// [`asynch::decrypt`] run to completion on `rt`.
///
/// # Errors
/// As [`asynch::decrypt`]: [`Error::NoDataKeyDecrypted`] with every attempt, core errors.
pub fn decrypt(
    rt: &KmsRuntime,
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    reproduced_context: &[(&str, &str)],
    ciphertext: &[u8],
) -> Result<Decrypted, Error> {
    rt.block_on(asynch::decrypt(
        cfg,
        keyring,
        reproduced_context,
        ciphertext,
    ))
}

/// Encrypts what `reader` yields into `writer` in memory bounded by the frame length: the
/// materials come from [`asynch::prepare_encrypt`] run on `rt`; returns the bytes written.
///
/// # Errors
/// As [`asynch::prepare_encrypt`]; I/O errors of `reader` and `writer` ([`Error::Io`]);
/// core errors.
pub fn encrypt_stream<R: Read, W: Write>(
    rt: &KmsRuntime,
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    mut reader: R,
    writer: W,
) -> Result<u64, Error> {
    let prepared = rt.block_on(asynch::prepare_encrypt(
        cfg,
        keyring,
        opts,
        encryption_context,
    ))?;
    let mut w = prepared.encrypting_writer(writer)?;
    std::io::copy(&mut reader, &mut w)?;
    w.try_finish()?;
    Ok(w.bytes_written())
}

/// Decrypts the message `reader` yields into `writer`: reads the header
/// ([`asynch::read_header`]), gets the data key from [`asynch::prepare_decrypt`] run on
/// `rt`, then streams as [`crate::decrypt_stream`]; returns the plaintext length.
///
/// # Errors
/// As [`asynch::prepare_decrypt`]; I/O errors of `reader` and `writer` ([`Error::Io`]);
/// core errors.
pub fn decrypt_stream<R: Read, W: Write>(
    rt: &KmsRuntime,
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    reproduced_context: &[(&str, &str)],
    mut reader: R,
    mut writer: W,
) -> Result<u64, Error> {
    let header = asynch::read_header(cfg, &mut reader)?;
    let prepared = rt.block_on(asynch::prepare_decrypt(
        cfg,
        keyring,
        reproduced_context,
        &header,
    ))?;
    let mut plain = prepared.decrypting_reader(reader);
    let n = std::io::copy(&mut plain, &mut writer)?;
    writer.flush()?;
    Ok(n)
}

/// An [`AsyncKeyring`] as a sync core [`Keyring`], for a core multi-keyring or a sync CMM:
/// each call blocks the calling thread on the keyring's [`KmsRuntime`] until KMS answered.
///
/// Failures come back as core errors (see the [module documentation](self)): on encrypt
/// `NoDataKeyGenerated` (as generator) or `NoEncryptedDataKey` for a failed or refused KMS
/// call, `InvalidConfiguration` or `EncryptNotSupported`; on decrypt one
/// [`AttemptFailure`] per EDK tried
/// ([`Failure::core_reason`](super::Failure::core_reason): `Backend` for a failed KMS call)
/// in the core's attempt record.
pub struct BlockingKeyring<K> {
    keyring: K,
    rt: Arc<KmsRuntime>,
}

impl<K: AsyncKeyring> std::fmt::Debug for BlockingKeyring<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingKeyring")
            .field("keyring", &self.keyring.description())
            .finish()
    }
}

impl<K: AsyncKeyring> BlockingKeyring<K> {
    /// Wraps `keyring` with a runtime of its own.
    ///
    /// # Errors
    /// As [`KmsRuntime::new`].
    pub fn new(keyring: K) -> Result<Self, Error> {
        Ok(Self::with_runtime(keyring, Arc::new(KmsRuntime::new()?)))
    }

    /// Wraps `keyring` with a shared runtime.
    pub fn with_runtime(keyring: K, rt: Arc<KmsRuntime>) -> Self {
        Self { keyring, rt }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<KmsRuntime> {
        &self.rt
    }

    /// The async keyring.
    pub fn inner(&self) -> &K {
        &self.keyring
    }
}

impl<K: AsyncKeyring> Keyring for BlockingKeyring<K> {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), esdk_core::Error> {
        let ec: Vec<(&str, &str)> = m.encryption_context().iter().collect();
        let data_key = m.data_key().cloned();
        let req = EncryptRequest {
            suite: m.suite(),
            encryption_context: &ec,
            data_key: data_key.as_ref(),
        };
        let generating = data_key.is_none();
        let out = self
            .rt
            .block_on(self.keyring.on_encrypt(&req))
            .map_err(|e| encrypt_failure(&e, generating))?;
        if let Some(k) = out.data_key
            && m.data_key().is_none()
        {
            m.set_data_key(k)?;
        }
        for e in &out.edks {
            m.push_edk(&e.provider_id, &[&e.provider_info], &[&e.ciphertext])?;
        }
        Ok(())
    }

    fn on_decrypt(
        &self,
        m: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), esdk_core::Error> {
        let ec: Vec<(&str, &str)> = m.encryption_context().iter().collect();
        let list: Vec<(u16, Edk<'_>)> = edks.iter().collect();
        let req = DecryptRequest {
            suite: m.suite(),
            encryption_context: &ec,
            edks: &list,
        };
        match self.rt.block_on(self.keyring.on_decrypt(&req)) {
            Ok(k) => m.set_data_key(k),
            Err(Error::NoDataKeyDecrypted { attempts }) => {
                for a in &attempts {
                    if let Some(i) = a.edk {
                        m.record_failure(i, a.failure.core_reason());
                    }
                }
                Err(m.no_data_key_error())
            }
            Err(Error::Core(e)) => Err(e),
            Err(e) if e.is_configuration() => Err(KeyringError::InvalidConfiguration.into()),
            // Any other failure (a client that could not be built, I/O) concerns the KMS
            // EDKs as a whole (`aws-kms`, `aws-kms-rsa`, ...): each is a backend failure.
            Err(_) => {
                for (i, e) in &list {
                    if e.provider_id.starts_with(super::PROVIDER_ID) {
                        m.record_failure(*i, AttemptFailure::Backend);
                    }
                }
                Err(m.no_data_key_error())
            }
        }
    }
}

/// The core error for a failed encrypt of a KMS keyring run as a core keyring: what it is
/// in the core's terms, the KMS detail dropped.
fn encrypt_failure(e: &Error, generating: bool) -> esdk_core::Error {
    match e {
        Error::Core(e) => *e,
        Error::EncryptNotSupported { .. } => KeyringError::EncryptNotSupported.into(),
        e if e.is_configuration() => KeyringError::InvalidConfiguration.into(),
        // A failed or refused call: as generator it produced no data key, as a child no EDK.
        _ if generating => KeyringError::NoDataKeyGenerated.into(),
        _ => KeyringError::NoEncryptedDataKey.into(),
    }
}
