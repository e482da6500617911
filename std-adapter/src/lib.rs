//! # esdk
//!
//! The Rust AWS Encryption SDK for std users: `Vec`-returning encrypt and decrypt over the
//! `no_std` core ([`esdk_core`], re-exported as [`core`]), with the operating system's
//! random number generator.
//!
//! ```
//! use esdk::{Config, EncryptOptions, raw::RawAesKeyring};
//! let key = [7u8; 32]; // load a real key
//! let keyring = RawAesKeyring::new("my-namespace", "my-key", &key)?;
//! let cfg = Config::new();
//! let msg = esdk::encrypt(&cfg, &keyring, &EncryptOptions::new(), &[("purpose", "demo")], b"hello")?;
//! let out = esdk::decrypt(&cfg, &keyring, &[], &msg)?;
//! assert_eq!(out.plaintext, b"hello");
//! // Signing suites (the default 0x0578) also store their public key under aws-crypto-public-key.
//! assert!(out.encryption_context.contains(&("purpose".to_string(), "demo".to_string())));
//! # Ok::<(), esdk::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use esdk_core as core;
pub use esdk_core::{
    AlgorithmSuite, CommitmentPolicy, Config, CryptoMaterialsManager, EncryptOptions, Keyring,
    MultiKeyring, RequiredEncryptionContextCmm,
};
pub use esdk_raw as raw;

pub mod caching;
mod error;
pub use error::Error;
mod header;
pub mod hierarchy;
#[cfg(feature = "kms")]
pub mod kms;
mod parallel;
mod random_access;
/// Messages (and known-length inputs) under this many bytes are processed on the calling
/// thread whatever [`Config::threads`] says: a thread costs more than they do.
pub use parallel::oneshot::PARALLEL_MIN;
pub use random_access::{RangeOptions, RangeReader, decrypt_range};
pub mod stream;
#[cfg(feature = "tokio")]
pub mod tokio_io;
pub use stream::{
    DEFAULT_SIGNED_BUFFER_LIMIT, DecryptingReader, DecryptingWriter, EncryptingWriter, Plaintext,
    decrypt_stream, encrypt_file, encrypt_stream,
};

use esdk_core::error::CryptoError;
use esdk_core::provider::RandomSource;
use esdk_core::rustcrypto::RustCrypto;

/// The operating system's CSPRNG (`getrandom`). Stateless, `Send + Sync`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRng;

impl RandomSource for OsRng {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::fill(out).map_err(|_| CryptoError::Rng)
    }
}

/// The provider the std adapter uses: aws-lc-rs (AES-GCM about 2.5x the pure-Rust speed here,
/// constant-time, FIPS-capable), the same provider the official Rust and C ESDKs build on.
pub type DefaultProvider = esdk_aws_lc::AwsLc;

/// The default provider.
pub const DEFAULT_PROVIDER: DefaultProvider = esdk_aws_lc::DEFAULT_PROVIDER;

/// The pure-Rust provider with the OS RNG: the `no_std` core's default, also usable here
/// (the conformance tests run both).
pub type RustCryptoProvider = RustCrypto<OsRng>;

/// The pure-Rust provider instance.
pub const RUSTCRYPTO_PROVIDER: RustCryptoProvider = RustCrypto::new(OsRng);

/// Encrypts `plaintext` and returns the message.
///
/// Messages of a few hundred KiB and more are sealed on [`Config::threads`] threads (0, the
/// default: the available parallelism; 1: the calling thread alone); the message is the same
/// for any count. For the signed suites the message hash runs on the calling thread while
/// the others seal.
///
/// # Errors
/// As [`esdk_core::encrypt()`].
pub fn encrypt<M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    // The length is known: CMMs see it (a cache counts bytes), and the encryptor holds to it.
    let opts = EncryptOptions {
        plaintext_len: Some(plaintext.len() as u64),
        ..*opts
    };
    let mut enc = esdk_core::Encryptor::new(cfg, &DEFAULT_PROVIDER, &opts)?;
    let mut out = Vec::new();
    header::write_header(&mut enc, cmm, encryption_context, &mut out)?;
    let threads = parallel::oneshot::threads_for(cfg, plaintext.len());
    seal_into(&mut enc, opts.frame_length, plaintext, out, threads)
}

/// Seals the whole body of `plaintext` after the header in `out` (whose length is the
/// header's) on `threads` threads (resolved: [`parallel::oneshot::threads_for`]); returns the
/// message.
pub(crate) fn seal_into<P: esdk_core::CryptoProvider>(
    enc: &mut esdk_core::Encryptor<'_, P>,
    frame_length: u32,
    plaintext: &[u8],
    mut out: Vec<u8>,
    threads: usize,
) -> Result<Vec<u8>, Error>
where
    P::Aead: Send,
{
    let at = out.len();
    let body = body_len(enc, frame_length, plaintext.len())?;
    if threads > 1 {
        // A zeroed allocation rather than a resize: a large one comes from the OS already
        // zero, so no thread writes it twice, and its pages are first touched by the
        // threads that seal into them.
        let mut message = vec![0u8; at + body];
        message[..at].copy_from_slice(&out);
        out = message;
    } else {
        out.resize(at + body, 0);
    }
    let n = parallel::oneshot::seal_body(enc, plaintext, &mut out[at..], threads)?;
    out.truncate(at + n);
    Ok(out)
}

/// [`encrypt`] into a buffer the caller keeps: the message replaces the content of `out`, in
/// its memory when it is large enough (only bytes beyond its current length are zeroed
/// first). A server that encrypts many large messages through one buffer skips the
/// allocation, zero-fill and page faults of a fresh `Vec` each time, which at tens of MiB
/// cost more than the AES-GCM itself. On error `out` is emptied.
///
/// # Errors
/// As [`encrypt`].
pub fn encrypt_into<M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let opts = EncryptOptions {
        plaintext_len: Some(plaintext.len() as u64),
        ..*opts
    };
    let mut enc = esdk_core::Encryptor::new(cfg, &DEFAULT_PROVIDER, &opts)?;
    let mut header = Vec::new();
    let mut seal = || -> Result<usize, Error> {
        header::write_header(&mut enc, cmm, encryption_context, &mut header)?;
        let at = header.len();
        let body = body_len(&enc, opts.frame_length, plaintext.len())?;
        out.resize(at + body, 0);
        out[..at].copy_from_slice(&header);
        let threads = parallel::oneshot::threads_for(cfg, plaintext.len());
        let n = parallel::oneshot::seal_body(&mut enc, plaintext, &mut out[at..], threads)?;
        Ok(at + n)
    };
    let r = seal();
    match r {
        Ok(n) => {
            out.truncate(n);
            Ok(())
        }
        Err(e) => {
            out.clear();
            Err(e)
        }
    }
}

/// The body length of a message of `plaintext_len` bytes (frames and footer).
fn body_len<P: esdk_core::CryptoProvider>(
    enc: &esdk_core::Encryptor<'_, P>,
    frame_length: u32,
    plaintext_len: usize,
) -> Result<usize, Error> {
    Ok(
        esdk_core::ciphertext_len(enc.suite(), frame_length, 0, plaintext_len as u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(esdk_core::Error::Malformed {
                offset: 0,
                kind: esdk_core::error::Malformed::TooManyFrames,
            })?,
    )
}

/// What [`decrypt_into`] tells besides the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// The algorithm suite.
    pub suite: AlgorithmSuite,
    /// The encryption context stored in the message.
    pub encryption_context: Vec<(String, String)>,
}

/// [`decrypt`] into a buffer the caller keeps: the plaintext replaces the content of `out`,
/// in its memory when it is large enough (see [`encrypt_into`]). Nothing is released unless
/// every check passed; on error `out` is wiped and emptied.
///
/// # Errors
/// As [`decrypt`].
pub fn decrypt_into<M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    ciphertext: &[u8],
    out: &mut Vec<u8>,
) -> Result<MessageInfo, Error> {
    out.resize(output_len(ciphertext, reproduced_context), 0);
    let r = parallel::oneshot::decrypt_all(
        esdk_core::Decryptor::new(cfg, &DEFAULT_PROVIDER, reproduced_context),
        cmm,
        ciphertext,
        out,
        parallel::oneshot::threads_for(cfg, ciphertext.len()),
    )
    .map(|d| (d.plaintext_len, decrypted_parts(&d.header)));
    match r {
        Ok((n, (suite, encryption_context))) => {
            out.truncate(n);
            Ok(MessageInfo {
                suite,
                encryption_context,
            })
        }
        Err(e) => {
            zeroize::Zeroize::zeroize(out);
            Err(e.into())
        }
    }
}

/// A decrypted message.
#[derive(Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The algorithm suite.
    pub suite: AlgorithmSuite,
    /// The encryption context stored in the message.
    pub encryption_context: Vec<(String, String)>,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("suite", &self.suite)
            .field("encryption_context", &self.encryption_context)
            .finish()
    }
}

/// Decrypts a whole message. `reproduced_context` must match the stored pairs it names and
/// supplies those the message does not store.
///
/// Messages of a few hundred KiB and more are opened on [`Config::threads`] threads (see
/// [`encrypt`]); the result, and the error of a bad message, are the same for any count:
/// nothing is returned unless every check passed, the signature included.
///
/// # Errors
/// As [`esdk_core::decrypt()`].
pub fn decrypt<M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    ciphertext: &[u8],
) -> Result<Decrypted, Error> {
    let mut out = vec![0u8; output_len(ciphertext, reproduced_context)];
    let d = parallel::oneshot::decrypt_all(
        esdk_core::Decryptor::new(cfg, &DEFAULT_PROVIDER, reproduced_context),
        cmm,
        ciphertext,
        &mut out,
        parallel::oneshot::threads_for(cfg, ciphertext.len()),
    )?;
    out.truncate(d.plaintext_len);
    let (suite, encryption_context) = decrypted_parts(&d.header);
    Ok(Decrypted {
        plaintext: out,
        suite,
        encryption_context,
    })
}

/// The output buffer a one-shot decrypt needs: the plaintext is shorter than the message,
/// and the header step may first assemble the full encryption context there (the stored
/// pairs, part of the message, plus the reproduced ones the message does not store).
pub(crate) fn output_len(ciphertext: &[u8], reproduced_context: &[(&str, &str)]) -> usize {
    let reproduced: usize = reproduced_context
        .iter()
        .map(|(k, v)| 4 + k.len() + v.len())
        .sum();
    ciphertext.len() + 2 + reproduced
}

/// As [`decrypt`], but a failure lists every keyring attempt on every EDK.
///
/// # Errors
/// [`Error::NoKeyringDecrypted`] with the full attempt list when no keyring decrypted a
/// data key; otherwise as [`decrypt`].
pub fn decrypt_detailed<M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    ciphertext: &[u8],
) -> Result<Decrypted, Error> {
    let mut attempts = Vec::new();
    let mut record = |a: esdk_core::error::Attempt| attempts.push(a);
    let mut out = vec![0u8; output_len(ciphertext, reproduced_context)];
    let dec = esdk_core::Decryptor::new(cfg, &DEFAULT_PROVIDER, reproduced_context)
        .with_attempt_observer(&mut record);
    let threads = parallel::oneshot::threads_for(cfg, ciphertext.len());
    let r = parallel::oneshot::decrypt_all(dec, cmm, ciphertext, &mut out, threads)
        .map(|d| (d.plaintext_len, decrypted_parts(&d.header)));
    match r {
        Ok((n, (suite, encryption_context))) => {
            out.truncate(n);
            Ok(Decrypted {
                plaintext: out,
                suite,
                encryption_context,
            })
        }
        Err(esdk_core::Error::Keyring(esdk_core::error::KeyringError::NoDataKeyDecrypted(_))) => {
            Err(Error::NoKeyringDecrypted { attempts })
        }
        Err(e) => Err(Error::Core(e)),
    }
}

/// The suite and the stored encryption context of a header, owned.
fn decrypted_parts(h: &esdk_core::header::Header<'_>) -> (AlgorithmSuite, Vec<(String, String)>) {
    let ec = h
        .encryption_context
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (h.suite, ec)
}
