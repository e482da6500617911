//! The blocking front end: [`BlockingKeyring`] turns any [`AsyncKeyring`] into a sync core
//! [`Keyring`] driven by a runtime it owns.
//!
//! Calling a tokio runtime's `block_on` on a thread that is already inside a runtime panics
//! ("Cannot start a runtime from within a runtime"). [`KmsRuntime::block_on`] checks for
//! that and, in that case, drives the future on a scoped helper thread instead, so the
//! blocking API works from plain threads, from `spawn_blocking`, and from inside async
//! tasks alike. Inside an async task it still blocks that task's worker thread for the
//! length of the KMS call: async code should use [`asynch`](super::asynch).
//!
//! The core's errors are `Copy` and allocation-free, so a KMS failure reaches it as
//! `KeyringError::Other("AWS KMS ... failed")` and, on decrypt, one `AttemptFailure` per
//! EDK. The full detail (key ARN, region, KMS error code, message) is kept per thread:
//! [`explain`] turns a core error into the detailed [`Error`], and the functions here do it
//! for you.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::sync::Arc;

use esdk_core::materials::{DecryptionMaterials, Edk, Edks, EncryptionMaterials};
use esdk_core::{Config, CryptoMaterialsManager, EncryptOptions, Keyring};

use super::error::Error;
use super::{AsyncKeyring, DecryptRequest, EncryptRequest};

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

thread_local! {
    static LAST_ERROR: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Keeps the detail of a KMS failure for [`explain`]. Decrypt attempts of several keyrings
/// (a core `MultiKeyring` of blocking keyrings) accumulate.
fn note(e: Error) {
    LAST_ERROR.with(|slot| {
        let mut slot = slot.borrow_mut();
        match (slot.as_mut(), e) {
            (
                Some(Error::NoDataKeyDecrypted { attempts }),
                Error::NoDataKeyDecrypted { attempts: more },
            ) => attempts.extend(more),
            (_, e) => *slot = Some(e),
        }
    });
}

/// Takes the detail of the last KMS failure on this thread, if any.
pub fn take_last_error() -> Option<Error> {
    LAST_ERROR.with(|slot| slot.borrow_mut().take())
}

/// Turns a core error from a call that used blocking KMS keyrings on this thread into the
/// detailed error (key, region, KMS code, every EDK tried); other errors come back as
/// [`Error::Core`]. Clears the kept detail.
pub fn explain(e: esdk_core::Error) -> Error {
    let detail = take_last_error();
    match (e, detail) {
        (esdk_core::Error::Keyring(_), Some(d)) => d,
        (e, _) => Error::Core(e),
    }
}

/// An [`AsyncKeyring`] as a sync core [`Keyring`]: each call runs the KMS work on the
/// keyring's [`KmsRuntime`] and waits for it.
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

    /// The async keyring.
    pub fn inner(&self) -> &K {
        &self.keyring
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<KmsRuntime> {
        &self.rt
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
        match self.rt.block_on(self.keyring.on_encrypt(&req)) {
            Ok(out) => {
                if let Some(k) = out.data_key {
                    if m.data_key().is_none() {
                        m.set_data_key(k)?;
                    }
                }
                for e in &out.edks {
                    m.push_edk(&e.provider_id, &[&e.provider_info], &[&e.ciphertext])?;
                }
                Ok(())
            }
            Err(e) => {
                let core = e.to_core();
                note(e);
                Err(core)
            }
        }
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
                note(Error::NoDataKeyDecrypted { attempts });
                Err(m.no_data_key_error())
            }
            Err(e) => {
                let core = e.to_core();
                note(e);
                Err(core)
            }
        }
    }
}

/// [`crate::encrypt`] with the KMS detail on failure.
///
/// # Errors
/// As [`crate::encrypt`], explained by [`explain`].
pub fn encrypt<M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    take_last_error();
    crate::encrypt(cfg, cmm, opts, encryption_context, plaintext).map_err(explain)
}

/// [`crate::decrypt`] with the KMS detail on failure.
///
/// # Errors
/// As [`crate::decrypt`], explained by [`explain`].
pub fn decrypt<M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    ciphertext: &[u8],
) -> Result<crate::Decrypted, Error> {
    take_last_error();
    crate::decrypt(cfg, cmm, reproduced_context, ciphertext).map_err(explain)
}

fn explain_io(e: std::io::Error) -> Error {
    match crate::stream::esdk_error(&e) {
        Some(core) => explain(core),
        None => Error::Io(e),
    }
}

/// [`crate::encrypt_stream`] with the KMS detail on failure; returns the bytes written.
///
/// # Errors
/// As [`crate::encrypt_stream`], explained by [`explain`].
pub fn encrypt_stream<M: CryptoMaterialsManager + ?Sized, R: Read, W: Write>(
    cfg: &Config,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    reader: R,
    writer: W,
) -> Result<u64, Error> {
    take_last_error();
    crate::encrypt_stream(cfg, cmm, opts, encryption_context, reader, writer).map_err(explain_io)
}

/// [`crate::decrypt_stream`] with the KMS detail on failure; returns the plaintext bytes.
///
/// # Errors
/// As [`crate::decrypt_stream`], explained by [`explain`].
pub fn decrypt_stream<M: CryptoMaterialsManager + ?Sized, R: Read, W: Write>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    reader: R,
    writer: W,
) -> Result<u64, Error> {
    take_last_error();
    crate::decrypt_stream(cfg, cmm, reproduced_context, reader, writer).map_err(explain_io)
}
