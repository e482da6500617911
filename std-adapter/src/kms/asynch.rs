//! The async front end: await the KMS keyring first, then run the sync core with the result.
//! Nothing here blocks; it runs on the caller's runtime.
//!
//! ```no_run
//! # async fn demo(keyring: &esdk::kms::AsyncMultiKeyring) -> Result<(), esdk::kms::Error> {
//! use esdk::kms::asynch;
//! let cfg = esdk::Config::new();
//! let opts = esdk::EncryptOptions::new();
//! let msg = asynch::encrypt(&cfg, keyring, &opts, &[("purpose", "demo")], b"hello").await?;
//! let out = asynch::decrypt(&cfg, keyring, &[], &msg).await?;
//! assert_eq!(out.plaintext, b"hello");
//!
//! // Streaming: prepare (awaits KMS), then write through a std `Write` in bounded memory.
//! let prepared = asynch::prepare_encrypt(&cfg, keyring, &opts, &[]).await?;
//! let mut w = prepared.encrypting_writer(Vec::new())?;
//! std::io::Write::write_all(&mut w, b"large data ...")?;
//! let message = w.finish()?;
//! # let _ = message; Ok(()) }
//! ```

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use esdk_core::ec;
use esdk_core::error::{KeyringError, PolicyViolation};
use esdk_core::header::{self, Header, ParseLimits, Parsed};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edk, Edks, EncryptionMaterials};
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, Keyring};

use super::error::Error;
use super::{AsyncKeyring, DecryptRequest, EncryptRequest, OwnedEdk};
use crate::caching::{
    HandoffGuard, Materials, PREFETCH_PROVIDER, PrefetchProvider, ReplayCmm, SigningKey,
    encrypt_vec, full_context,
};
use crate::stream::EncryptingWriter;

/// Encrypts `plaintext`: awaits `keyring` for the data key, then writes the message.
///
/// # Errors
/// Policy errors before any KMS call; the keyring's errors; core errors.
pub async fn encrypt(
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    prepare_encrypt(cfg, keyring, opts, encryption_context)
        .await?
        .encrypt(plaintext)
}

/// Materials for one message, obtained from an async keyring before any byte is written:
/// the data key, its EDKs, and the signing key whose public half is in the encryption
/// context KMS bound the data key to.
pub struct PreparedEncryption {
    cfg: Config,
    opts: EncryptOptions,
    context: Vec<(String, String)>,
    materials: Materials,
    used: AtomicBool,
}

impl std::fmt::Debug for PreparedEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedEncryption")
            .field("suite", &self.materials.suite)
            .field("encryption_context", &self.materials.full_ec)
            .field("edks", &self.materials.edks.len())
            .finish()
    }
}

/// Generates the signing key (for signing suites), computes the full encryption context
/// and awaits `keyring` with it.
///
/// # Errors
/// Policy and encryption-context errors before any KMS call; the keyring's errors;
/// [`KeyringError::NoDataKeyGenerated`] / [`KeyringError::NoEncryptedDataKey`] when the
/// keyring returned no data key or no EDK.
pub async fn prepare_encrypt(
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
) -> Result<PreparedEncryption, Error> {
    let suite = opts.suite.unwrap_or(cfg.commitment_policy.default_suite());
    cfg.commitment_policy.check_encrypt(suite)?;
    if opts.frame_length == 0 {
        return Err(Error::Core(PolicyViolation::FrameLength.into()));
    }
    let mut pairs: Vec<(&str, &str)> = encryption_context.to_vec();
    ec::sort_and_check(&mut pairs)?;
    let signing = suite.signature().map(SigningKey::generate).transpose()?;
    let full = full_context(&pairs, signing.as_ref());
    let full_ref: Vec<(&str, &str)> = full.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let outcome = keyring
        .on_encrypt(&EncryptRequest {
            suite,
            encryption_context: &full_ref,
            data_key: None,
        })
        .await?;
    let data_key = outcome
        .data_key
        .ok_or(Error::Core(KeyringError::NoDataKeyGenerated.into()))?;
    if outcome.edks.is_empty() {
        return Err(Error::Core(KeyringError::NoEncryptedDataKey.into()));
    }
    Ok(PreparedEncryption {
        cfg: *cfg,
        opts: opts.with_suite(suite),
        context: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        materials: Materials {
            suite,
            data_key,
            edks: outcome.edks,
            signing,
            full_ec: full,
        },
        used: AtomicBool::new(false),
    })
}

impl PreparedEncryption {
    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.materials.suite
    }

    /// The full encryption context the data key is bound to (with `aws-crypto-public-key`
    /// for signing suites).
    pub fn encryption_context(&self) -> &[(String, String)] {
        &self.materials.full_ec
    }

    /// The EDKs the header will carry.
    pub fn edks(&self) -> &[OwnedEdk] {
        &self.materials.edks
    }

    fn take(&self) -> Result<(), Error> {
        if self.used.swap(true, Ordering::SeqCst) {
            return Err(Error::MaterialsAlreadyUsed);
        }
        Ok(())
    }

    fn pairs(&self) -> Vec<(&str, &str)> {
        self.context
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Writes the whole message into a `Vec`.
    ///
    /// # Errors
    /// Core errors; [`Error::MaterialsAlreadyUsed`] when the materials were already used.
    pub fn encrypt(self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.take()?;
        let _handoff = HandoffGuard::preset(self.materials.signing.clone());
        let replay = ReplayCmm {
            materials: &self.materials,
            required: &[],
        };
        Ok(encrypt_vec(
            &self.cfg,
            &PREFETCH_PROVIDER,
            &replay,
            &self.opts,
            &self.pairs(),
            plaintext,
        )?)
    }

    /// A streaming encryptor writing the message to `inner` in memory bounded by the frame
    /// length. The header is written now; call `finish` at the end.
    ///
    /// # Errors
    /// I/O errors of `inner`; [`Error::MaterialsAlreadyUsed`] when the materials were already used.
    pub fn encrypting_writer<W: std::io::Write>(
        &self,
        inner: W,
    ) -> Result<EncryptingWriter<'_, W, PrefetchProvider>, Error> {
        self.take()?;
        let _handoff = HandoffGuard::preset(self.materials.signing.clone());
        let replay = ReplayCmm {
            materials: &self.materials,
            required: &[],
        };
        Ok(EncryptingWriter::new(
            &self.cfg,
            &PREFETCH_PROVIDER,
            &replay,
            &self.opts,
            &self.pairs(),
            inner,
        )?)
    }
}

/// A decrypted message (as [`crate::decrypt`] returns).
pub type Decrypted = crate::Decrypted;

/// Decrypts a whole message: parses the header, awaits `keyring` for the data key, then
/// decrypts and verifies everything before returning any plaintext.
///
/// # Errors
/// [`Error::NoDataKeyDecrypted`] with every attempt; core errors (format, policy,
/// authentication).
pub async fn decrypt(
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    reproduced_context: &[(&str, &str)],
    ciphertext: &[u8],
) -> Result<Decrypted, Error> {
    let prepared = prepare_decrypt(cfg, keyring, reproduced_context, ciphertext).await?;
    crate::decrypt(cfg, &prepared, reproduced_context, ciphertext)
}

/// A data key obtained from an async keyring for one message. It is a core [`Keyring`] that
/// supplies that key, so any sync API (a `DecryptingReader`, a `Decryptor`) can finish the
/// job.
pub struct PreparedDecryption {
    data_key: DataKey,
    suite: AlgorithmSuite,
    header_len: usize,
}

impl std::fmt::Debug for PreparedDecryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedDecryption")
            .field("suite", &self.suite)
            .field("header_len", &self.header_len)
            .finish()
    }
}

impl PreparedDecryption {
    /// The message's suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The length of the message header.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
}

impl Keyring for PreparedDecryption {
    fn on_encrypt(&self, _m: &mut EncryptionMaterials<'_>) -> Result<(), esdk_core::Error> {
        Err(KeyringError::EncryptNotSupported.into())
    }

    fn on_decrypt(
        &self,
        m: &mut DecryptionMaterials<'_>,
        _edks: Edks<'_>,
    ) -> Result<(), esdk_core::Error> {
        m.set_data_key(self.data_key.clone())
    }
}

fn limits(cfg: &Config) -> ParseLimits {
    ParseLimits {
        max_edks: cfg.max_encrypted_data_keys,
        max_header_len: cfg.max_header_len,
    }
}

/// The full encryption context the core gives keyrings on decrypt: the stored pairs plus the
/// reproduced ones the message does not store, sorted by key. Fails early on a reproduced
/// pair that contradicts a stored one.
fn decrypt_context<'a>(
    h: &Header<'a>,
    reproduced: &[(&'a str, &'a str)],
) -> Result<Vec<(&'a str, &'a str)>, Error> {
    let stored = h.encryption_context;
    let mut full: Vec<(&str, &str)> = stored.iter().collect();
    for (k, v) in reproduced {
        match stored.get(k) {
            Some(sv) if sv != *v => {
                return Err(Error::Core(
                    PolicyViolation::EncryptionContextMismatch.into(),
                ));
            }
            Some(_) => {}
            None => full.push((k, v)),
        }
    }
    full.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(full)
}

/// Parses the header at the start of `message` (a whole message, or at least its header),
/// checks the policy, and awaits `keyring` for the data key.
///
/// # Errors
/// Format and policy errors before any KMS call (`Truncated` when `message` ends inside
/// the header); the keyring's errors.
pub async fn prepare_decrypt(
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    reproduced_context: &[(&str, &str)],
    message: &[u8],
) -> Result<PreparedDecryption, Error> {
    let h = match header::parse(message, limits(cfg))? {
        Parsed::Complete(h) => h,
        Parsed::Need(_) => {
            return Err(Error::Core(esdk_core::Error::Truncated {
                offset: message.len(),
            }));
        }
    };
    cfg.commitment_policy.check_decrypt(h.suite)?;
    if cfg.unsigned_only && h.suite.signature().is_some() {
        return Err(Error::Core(PolicyViolation::SignedMessageRejected.into()));
    }
    let full = decrypt_context(&h, reproduced_context)?;
    let edks: Vec<(u16, Edk<'_>)> = h.edks.iter().collect();
    let data_key = keyring
        .on_decrypt(&DecryptRequest {
            suite: h.suite,
            encryption_context: &full,
            edks: &edks,
        })
        .await?;
    Ok(PreparedDecryption {
        data_key,
        suite: h.suite,
        header_len: h.bytes.len(),
    })
}

/// Reads exactly the header of a message from `reader` (nothing past it), for
/// [`prepare_decrypt`]; then decrypt with
/// `DecryptingReader::new(cfg, &DEFAULT_PROVIDER, &prepared, reproduced,
/// Cursor::new(header).chain(reader))`.
///
/// The header is parsed incrementally (linear time however it arrives) and read in pieces
/// that at most double what already arrived, so memory follows the bytes received, never a
/// length the header claims.
///
/// # Errors
/// I/O errors (`Interrupted` is retried; after any other error the bytes already taken
/// from `reader` are lost with the `Vec`: start over on the whole input); format errors;
/// `Truncated` when the input ends inside the header.
pub fn read_header<R: Read>(cfg: &Config, reader: &mut R) -> Result<Vec<u8>, Error> {
    /// The first piece, and the least one after it.
    const FIRST: usize = 4096;
    let mut buf: Vec<u8> = Vec::new();
    let mut have = 0usize;
    let mut progress = header::ParseProgress::default();
    loop {
        let need = match header::parse_from(&buf[..have], limits(cfg), &mut progress)? {
            Parsed::Complete(h) => {
                let n = h.bytes.len();
                buf.truncate(n);
                return Ok(buf);
            }
            Parsed::Need(n) => n,
        };
        // `need` ends a field of the header, so reading up to it never reads past it.
        while have < need {
            let room = (need - have).min(have.max(FIRST));
            buf.resize(have + room, 0);
            match reader.read(&mut buf[have..]) {
                Ok(0) => {
                    return Err(Error::Core(esdk_core::Error::Truncated { offset: have }));
                }
                Ok(n) => have += n.min(room),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }
}
