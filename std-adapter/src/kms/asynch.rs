//! The async front end: the core's [`Encryptor`] and [`Decryptor`] driven step by step, with
//! the async keyring awaited at the materials step. Nothing here blocks; it runs on the
//! caller's runtime.
//!
//! The core checks everything (suite and commitment policy, frame length, encryption
//! context, header limits, unsigned-only mode) before the materials step, so an error it
//! raises comes before any KMS call. The core's materials borrow a work buffer and are not
//! `Send`: what the keyring needs is copied out of them (suite, full context, EDKs) and
//! they are dropped before the keyring is awaited; the futures of this
//! module are `Send`.
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

use esdk_core::header::{self, ParseLimits, Parsed};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edk, EncryptionMaterials};
use esdk_core::{
    AlgorithmSuite, Config, CryptoMaterialsManager, Decryptor, EncryptOptions, Encryptor,
    SigningKey, Status,
};
use zeroize::Zeroize;

use super::error::Error;
use super::{AsyncKeyring, DecryptRequest, EncryptRequest, OwnedEdk};
use crate::stream::{DecryptingReader, EncryptingWriter};
use crate::{DEFAULT_PROVIDER, DefaultProvider};

/// What an async keyring needs on encrypt, copied out of the core's
/// [`EncryptionMaterials`] (which borrow a work buffer and are not `Send`).
#[derive(Debug, Clone)]
pub(crate) struct EncryptNeeds {
    suite: AlgorithmSuite,
    /// The full encryption context (with `aws-crypto-public-key` for signing suites).
    context: Vec<(String, String)>,
}

impl EncryptNeeds {
    pub(crate) fn of(m: &EncryptionMaterials<'_>) -> Self {
        Self {
            suite: m.suite(),
            context: owned_pairs(m.encryption_context().iter()),
        }
    }
}

fn owned_pairs<'x>(pairs: impl Iterator<Item = (&'x str, &'x str)>) -> Vec<(String, String)> {
    pairs.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn borrowed_pairs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The data key and EDKs an async keyring produced for one message.
pub(crate) struct Wrapped {
    pub(crate) data_key: Option<DataKey>,
    pub(crate) edks: Vec<OwnedEdk>,
}

/// Awaits `keyring` for a new data key and its EDKs. Owns what it needs, so the future can
/// be stored (the tokio writer boxes it).
pub(crate) async fn wrap_key(
    keyring: &(dyn AsyncKeyring + '_),
    needs: EncryptNeeds,
) -> Result<Wrapped, Error> {
    let context = borrowed_pairs(&needs.context);
    let outcome = keyring
        .on_encrypt(&EncryptRequest {
            suite: needs.suite,
            encryption_context: &context,
            data_key: None,
        })
        .await?;
    Ok(Wrapped {
        data_key: outcome.data_key,
        edks: outcome.edks,
    })
}

/// Serialized length of `edks` in a header.
pub(crate) fn edks_len(edks: &[OwnedEdk]) -> usize {
    edks.iter()
        .map(|e| 6 + e.provider_id.len() + e.provider_info.len() + e.ciphertext.len())
        .sum()
}

/// Puts what the keyring produced into the materials. A missing data key or EDK is left
/// for the core to report when it writes the header.
pub(crate) fn fill(m: &mut EncryptionMaterials<'_>, wrapped: &Wrapped) -> Result<(), Error> {
    if let Some(k) = &wrapped.data_key {
        m.set_data_key(k.clone())?;
    }
    for e in &wrapped.edks {
        m.push_edk(&e.provider_id, &[&e.provider_info], &[&e.ciphertext])?;
    }
    Ok(())
}

/// Step 1 and the context of step 2 of the core's header: checks the options and the
/// encryption context (the core's checks, before any keyring call), fixes the signing key,
/// and returns what the keyring needs. The materials are dropped here.
fn encrypt_needs(
    cfg: &Config,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
) -> Result<(EncryptNeeds, Option<SigningKey>), Error> {
    let enc = Encryptor::new(cfg, &DEFAULT_PROVIDER, opts)?;
    let mut pairs = encryption_context.to_vec();
    let request = enc.request(&mut pairs, &[])?;
    let signing = request
        .suite()
        .signature()
        .map(|alg| SigningKey::generate(&DEFAULT_PROVIDER, alg))
        .transpose()?;
    let mut work = vec![0u8; request.work_len(0)];
    let m = enc.materials(&request, signing.clone(), &mut work)?;
    Ok((EncryptNeeds::of(&m), signing))
}

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
    /// The caller's pairs.
    context: Vec<(String, String)>,
    needs: EncryptNeeds,
    signing: Option<SigningKey>,
    wrapped: Wrapped,
    used: AtomicBool,
}

impl std::fmt::Debug for PreparedEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedEncryption")
            .field("suite", &self.needs.suite)
            .field("encryption_context", &self.needs.context)
            .field("edks", &self.wrapped.edks.len())
            .finish()
    }
}

/// Checks the options and the encryption context (through the core, before any KMS call),
/// generates the signing key (for signing suites), and awaits `keyring` with the full
/// encryption context.
///
/// # Errors
/// Policy and encryption-context errors before any KMS call; the keyring's errors. A keyring
/// that returned no data key or no EDK fails when the header is written
/// ([`KeyringError::NoDataKeyGenerated`](esdk_core::error::KeyringError) /
/// `NoEncryptedDataKey`).
pub async fn prepare_encrypt(
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
) -> Result<PreparedEncryption, Error> {
    let (needs, signing) = encrypt_needs(cfg, opts, encryption_context)?;
    let wrapped = wrap_key(keyring, needs.clone()).await?;
    Ok(PreparedEncryption {
        cfg: *cfg,
        opts: *opts,
        context: owned_pairs(encryption_context.iter().copied()),
        needs,
        signing,
        wrapped,
        used: AtomicBool::new(false),
    })
}

impl PreparedEncryption {
    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.needs.suite
    }

    /// The full encryption context the data key is bound to (with `aws-crypto-public-key`
    /// for signing suites).
    pub fn encryption_context(&self) -> &[(String, String)] {
        &self.needs.context
    }

    /// The EDKs the header will carry.
    pub fn edks(&self) -> &[OwnedEdk] {
        &self.wrapped.edks
    }

    fn take(&self) -> Result<(), Error> {
        if self.used.swap(true, Ordering::SeqCst) {
            return Err(Error::MaterialsAlreadyUsed);
        }
        Ok(())
    }

    /// Writes the whole message into a `Vec`.
    ///
    /// # Errors
    /// Core errors; [`Error::MaterialsAlreadyUsed`] when the materials were already used.
    pub fn encrypt(self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.take()?;
        let mut out = Vec::new();
        let mut enc = header_for(&self.cfg, &self, &mut out)?;
        let threads = crate::parallel::oneshot::threads_for(&self.cfg, plaintext.len());
        crate::seal_into(&mut enc, self.opts.frame_length, plaintext, out, threads)
    }

    /// A streaming encryptor writing the message to `inner` in memory bounded by the frame
    /// length. The header is written now; call `finish` at the end.
    ///
    /// # Errors
    /// I/O errors of `inner`; core errors; [`Error::MaterialsAlreadyUsed`] when the materials
    /// were already used.
    pub fn encrypting_writer<W: std::io::Write>(
        &self,
        inner: W,
    ) -> Result<EncryptingWriter<'_, W, DefaultProvider>, Error> {
        self.take()?;
        let mut out = Vec::new();
        let enc = header_for(&self.cfg, self, &mut out)?;
        Ok(EncryptingWriter::with_header(
            enc,
            self.opts.frame_length,
            out,
            inner,
        )?)
    }
}

/// A new encryptor for `prepared`'s message with its header written to `out`: the
/// materials are rebuilt with the same signing key (so the same full context KMS saw) and
/// filled with the keyring's data key and EDKs.
fn header_for<'a>(
    cfg: &'a Config,
    prepared: &PreparedEncryption,
    out: &mut Vec<u8>,
) -> Result<Encryptor<'a, DefaultProvider>, Error> {
    let mut enc = Encryptor::new(cfg, &DEFAULT_PROVIDER, &prepared.opts)?;
    let mut pairs = borrowed_pairs(&prepared.context);
    let request = enc.request(&mut pairs, &[])?;
    let mut work = vec![0u8; request.work_len(edks_len(&prepared.wrapped.edks))];
    // The header holds at most what the work buffer holds (context, count, EDKs).
    out.resize(header::header_len(request.suite(), 0, 0) + work.len(), 0);
    let mut m = enc.materials(&request, prepared.signing.clone(), &mut work)?;
    fill(&mut m, &prepared.wrapped)?;
    let n = enc.write_header_with(&m, out)?;
    out.truncate(n);
    Ok(enc)
}

/// [`prepare_encrypt`] and the header: an encryptor of `cfg` ready for the body, and the
/// header it wrote (for the tokio writer).
#[cfg(feature = "tokio")]
pub(crate) async fn encryptor<'a>(
    cfg: &'a Config,
    keyring: &(dyn AsyncKeyring + '_),
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
) -> Result<(Encryptor<'a, DefaultProvider>, Vec<u8>), Error> {
    let prepared = prepare_encrypt(cfg, keyring, opts, encryption_context).await?;
    prepared.take()?;
    let mut out = Vec::new();
    let enc = header_for(cfg, &prepared, &mut out)?;
    Ok((enc, out))
}

/// A decrypted message (as [`crate::decrypt`] returns).
pub type Decrypted = crate::Decrypted;

/// What an async keyring needs on decrypt, copied out of the core's
/// [`DecryptionMaterials`] (which borrow the decryptor and are not `Send`).
#[derive(Debug, Clone)]
pub(crate) struct DecryptNeeds {
    pub(crate) suite: AlgorithmSuite,
    /// The full encryption context: stored plus reproduced-only pairs, sorted.
    context: Vec<(String, String)>,
    edks: Vec<(u16, OwnedEdk)>,
}

impl DecryptNeeds {
    fn of(m: &DecryptionMaterials<'_>) -> Self {
        Self {
            suite: m.suite(),
            context: owned_pairs(m.encryption_context().iter()),
            edks: m
                .encrypted_data_keys()
                .iter()
                .map(|(i, e)| {
                    let edk = OwnedEdk {
                        provider_id: e.provider_id.to_owned(),
                        provider_info: e.provider_info.to_vec(),
                        ciphertext: e.ciphertext.to_vec(),
                    };
                    (i, edk)
                })
                .collect(),
        }
    }
}

/// In state [`Status::NeedDataKey`]: the materials step of `dec` on `input` (the unconsumed
/// input that returned it), with `scratch` grown as the core asks; returns what the keyring
/// needs, the materials dropped.
pub(crate) fn decrypt_needs(
    dec: &mut Decryptor<'_, impl esdk_core::CryptoProvider>,
    input: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<DecryptNeeds, Error> {
    loop {
        let had = scratch.len();
        match dec.decryption_materials(input, scratch) {
            Ok(m) => return Ok(DecryptNeeds::of(&m)),
            Err(esdk_core::Error::BufferTooSmall { required }) if required > had => {
                scratch.resize(required, 0);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Awaits `keyring` for the data key. Owns what it needs, so the future can be stored (the
/// tokio reader boxes it).
pub(crate) async fn unwrap_key(
    keyring: &(dyn AsyncKeyring + '_),
    needs: DecryptNeeds,
) -> Result<DataKey, Error> {
    let context = borrowed_pairs(&needs.context);
    let edks: Vec<(u16, Edk<'_>)> = needs.edks.iter().map(|(i, e)| (*i, e.as_edk())).collect();
    keyring
        .on_decrypt(&DecryptRequest {
            suite: needs.suite,
            encryption_context: &context,
            edks: &edks,
        })
        .await
}

/// Runs `dec` on `message` up to [`Status::NeedDataKey`]: the header's format, limits and
/// policies are checked there, before any keyring call.
fn until_key(dec: &mut Decryptor<'_, DefaultProvider>, message: &[u8]) -> Result<(), Error> {
    match dec.process(message, &mut [])?.status {
        Status::NeedDataKey => Ok(()),
        Status::NeedInput { .. } => Err(esdk_core::Error::Truncated {
            offset: message.len(),
        }
        .into()),
        // The first step of a new decryptor ends at the header at the latest.
        _ => Err(esdk_core::Error::from(esdk_core::error::ApiMisuse::WrongState).into()),
    }
}

/// Decrypts a whole message: the core parses and checks the header, `keyring` is awaited for
/// the data key, then the core decrypts and verifies everything before any plaintext is
/// returned.
///
/// # Errors
/// [`Error::NoDataKeyDecrypted`] with every attempt; core errors (format, policy,
/// authentication; [`Truncated`](esdk_core::Error::Truncated) and
/// [`TrailingBytes`](esdk_core::Error::TrailingBytes)), those of the header before any KMS
/// call.
pub async fn decrypt(
    cfg: &Config,
    keyring: &(dyn AsyncKeyring + '_),
    reproduced_context: &[(&str, &str)],
    ciphertext: &[u8],
) -> Result<Decrypted, Error> {
    let mut dec = Decryptor::new(cfg, &DEFAULT_PROVIDER, reproduced_context);
    let mut out = vec![0u8; crate::output_len(ciphertext, reproduced_context)];
    until_key(&mut dec, ciphertext)?;
    let stored = owned_pairs(dec.header(ciphertext)?.encryption_context.iter());
    let needs = decrypt_needs(&mut dec, ciphertext, &mut out)?;
    let suite = needs.suite;
    let key = unwrap_key(keyring, needs).await?;
    dec.set_data_key(key)?;
    match finish_all(&mut dec, ciphertext, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Ok(Decrypted {
                plaintext: out,
                suite,
                encryption_context: stored,
            })
        }
        Err(e) => {
            out.zeroize();
            Err(e.into())
        }
    }
}

/// The rest of a one-shot decryption once `dec` has its data key: every step on
/// `ciphertext` into `out`; the plaintext length.
fn finish_all(
    dec: &mut Decryptor<'_, DefaultProvider>,
    ciphertext: &[u8],
    out: &mut [u8],
) -> Result<usize, esdk_core::Error> {
    let (mut pos, mut written) = (0usize, 0usize);
    loop {
        let p = dec.process(&ciphertext[pos..], &mut out[written..])?;
        pos += p.consumed;
        written += p.written;
        match p.status {
            Status::NeedInput { .. } => {
                return Err(esdk_core::Error::Truncated {
                    offset: ciphertext.len(),
                });
            }
            Status::Done if pos != ciphertext.len() => {
                return Err(esdk_core::Error::TrailingBytes { offset: pos });
            }
            Status::Done => return Ok(written),
            // Cannot come back once the key is set; never loop on it.
            Status::NeedDataKey => return Err(esdk_core::error::ApiMisuse::WrongState.into()),
            Status::Header | Status::Plaintext { .. } => {}
        }
    }
}

/// A decryptor that has the data key of one message from an async keyring, with the header
/// it was given: [`decrypting_reader`](Self::decrypting_reader) goes on with the rest of the
/// message. (Until this version it was a core `Keyring` handing out the data key; it is no
/// longer one.)
pub struct PreparedDecryption<'a> {
    dec: Decryptor<'a, DefaultProvider>,
    header: Vec<u8>,
    suite: AlgorithmSuite,
}

impl std::fmt::Debug for PreparedDecryption<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedDecryption")
            .field("suite", &self.suite)
            .field("header_len", &self.header.len())
            .finish()
    }
}

/// The reader [`PreparedDecryption::decrypting_reader`] returns: it needs no CMM.
pub type PreparedReader<'a, R> =
    DecryptingReader<'a, R, DefaultProvider, dyn CryptoMaterialsManager>;

impl<'a> PreparedDecryption<'a> {
    /// The message's suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The length of the message header.
    pub fn header_len(&self) -> usize {
        self.header.len()
    }

    /// A reader of the plaintext: the header this was prepared with, then `rest`, which must
    /// yield the message from the byte after its header (what [`read_header`] leaves in its
    /// reader). A signed message's plaintext is held until its signature verifies, as with
    /// [`DecryptingReader`].
    pub fn decrypting_reader<R: Read>(self, rest: R) -> PreparedReader<'a, R> {
        DecryptingReader::resume(self.dec, &self.header, rest)
    }
}

/// Lets the core parse and check the header at the start of `message` (a whole message, or
/// at least its header), awaits `keyring` for the data key, and returns the decryptor ready
/// for the body.
///
/// # Errors
/// Format and policy errors before any KMS call (`Truncated` when `message` ends inside
/// the header); the keyring's errors.
pub async fn prepare_decrypt<'a>(
    cfg: &'a Config,
    keyring: &(dyn AsyncKeyring + '_),
    reproduced_context: &'a [(&'a str, &'a str)],
    message: &[u8],
) -> Result<PreparedDecryption<'a>, Error> {
    let mut dec = Decryptor::new(cfg, &DEFAULT_PROVIDER, reproduced_context);
    until_key(&mut dec, message)?;
    let header = dec.header(message)?.bytes.to_vec();
    let needs = decrypt_needs(&mut dec, message, &mut Vec::new())?;
    let suite = needs.suite;
    let key = unwrap_key(keyring, needs).await?;
    dec.set_data_key(key)?;
    Ok(PreparedDecryption { dec, header, suite })
}

fn limits(cfg: &Config) -> ParseLimits {
    ParseLimits {
        max_edks: cfg.max_encrypted_data_keys,
        max_header_len: cfg.max_header_len,
    }
}

/// Reads exactly the header of a message from `reader` (nothing past it), for
/// [`prepare_decrypt`]; then decrypt with `prepared.decrypting_reader(reader)`.
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::io::{Cursor, Read, Write};

    use esdk_core::error::{ApiMisuse, PolicyViolation};
    use esdk_core::{CommitmentPolicy, Error as CoreError};

    use super::*;
    use crate::kms::test_keyring::{TestAsyncKeyring, ready};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// A configuration that lets `suite` encrypt.
    fn cfg_for(suite: AlgorithmSuite) -> Config {
        use CommitmentPolicy::{ForbidEncryptAllowDecrypt, RequireEncryptRequireDecrypt};
        let policies = [ForbidEncryptAllowDecrypt, RequireEncryptRequireDecrypt];
        Config::new().with_commitment_policy(policies[usize::from(suite.is_committing())])
    }

    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn the_futures_are_send() {
        let kr = TestAsyncKeyring::default();
        let cfg = Config::new();
        let opts = EncryptOptions::new();
        let f = encrypt(&cfg, &kr, &opts, &[], b"x");
        is_send(&f);
        let f = decrypt(&cfg, &kr, &[], b"x");
        is_send(&f);
        let f = prepare_decrypt(&cfg, &kr, &[], b"x");
        is_send(&f);
        assert_eq!(kr.calls(), 0);
    }

    #[test]
    fn round_trip_every_suite_one_shot_and_streaming() {
        let pt = data(10_000);
        for suite in AlgorithmSuite::ALL {
            let kr = TestAsyncKeyring::default();
            let cfg = cfg_for(suite);
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(1000);
            let ec = [("purpose", "test"), ("a", "b")];
            let msg = ready(encrypt(&cfg, &kr, &opts, &ec, &pt)).unwrap();
            let out = ready(decrypt(&cfg, &kr, &[("a", "b")], &msg)).unwrap();
            assert_eq!(out.plaintext, pt, "{suite:?}");
            assert_eq!(out.suite, suite);
            let stored: Vec<&str> = out
                .encryption_context
                .iter()
                .map(|(k, _)| k.as_str())
                .collect();
            let mut want = vec!["a", "purpose"];
            if suite.signature().is_some() {
                want.insert(1, "aws-crypto-public-key");
            }
            assert_eq!(stored, want, "{suite:?}");

            // Streaming: the prepared materials through a std writer, the header read
            // from a reader, the rest decrypted by the prepared reader.
            let prepared = ready(prepare_encrypt(&cfg, &kr, &opts, &ec)).unwrap();
            assert_eq!(prepared.suite(), suite);
            assert_eq!(prepared.edks().len(), 1);
            assert_eq!(
                prepared
                    .encryption_context()
                    .iter()
                    .any(|(k, _)| k == "aws-crypto-public-key"),
                suite.signature().is_some()
            );
            let mut w = prepared.encrypting_writer(Vec::new()).unwrap();
            for c in pt.chunks(777) {
                w.write_all(c).unwrap();
            }
            let streamed = w.finish().unwrap();
            assert!(matches!(
                prepared.encrypting_writer(Vec::new()),
                Err(Error::MaterialsAlreadyUsed)
            ));
            let mut src = Cursor::new(streamed);
            let header = read_header(&cfg, &mut src).unwrap();
            let pd = ready(prepare_decrypt(&cfg, &kr, &[], &header)).unwrap();
            assert_eq!(pd.header_len(), header.len());
            assert_eq!(pd.suite(), suite);
            let mut back = Vec::new();
            pd.decrypting_reader(src).read_to_end(&mut back).unwrap();
            assert_eq!(back, pt, "{suite:?}");
        }
    }

    #[test]
    fn encrypt_errors_of_the_core_come_before_any_keyring_call() {
        let kr = TestAsyncKeyring::default();
        let cfg = Config::new();
        type Case<'x> = (EncryptOptions, &'x [(&'x str, &'x str)], CoreError);
        let cases: [Case<'_>; 4] = [
            (
                EncryptOptions::new()
                    .with_suite(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384),
                &[],
                PolicyViolation::SuiteNotAllowed { suite: 0x0378 }.into(),
            ),
            (
                EncryptOptions::new().with_frame_length(0),
                &[],
                PolicyViolation::FrameLength.into(),
            ),
            (
                EncryptOptions::new(),
                &[("aws-crypto-x", "v")],
                PolicyViolation::ReservedEncryptionContextKey.into(),
            ),
            (
                EncryptOptions::new(),
                &[("k", "1"), ("k", "2")],
                ApiMisuse::DuplicateEncryptionContextKey.into(),
            ),
        ];
        for (opts, ec, want) in cases {
            match ready(encrypt(&cfg, &kr, &opts, ec, b"x")) {
                Err(Error::Core(e)) => assert_eq!(e, want),
                other => panic!("{want:?}: {other:?}"),
            }
            assert!(ready(prepare_encrypt(&cfg, &kr, &opts, ec)).is_err());
        }
        assert_eq!(kr.calls(), 0);
    }

    #[test]
    fn decrypt_errors_of_the_core_come_before_any_keyring_call() {
        let kr = TestAsyncKeyring::default();
        let legacy = AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384;
        let old = ready(encrypt(
            &cfg_for(legacy),
            &kr,
            &EncryptOptions::new().with_suite(legacy),
            &[("k", "v")],
            b"hello",
        ))
        .unwrap();
        let signed = ready(encrypt(
            &Config::new(),
            &kr,
            &EncryptOptions::new(),
            &[("k", "v")],
            b"hello",
        ))
        .unwrap();
        let before = kr.calls();
        let strict = Config::new();
        let mut unsigned_only = Config::new();
        unsigned_only.unsigned_only = true;
        type Case<'x> = (
            &'x Config,
            &'x [(&'x str, &'x str)],
            &'x [u8],
            fn(&CoreError) -> bool,
        );
        let cases: [Case<'_>; 5] = [
            // Non-committing suite under the default policy.
            (&strict, &[], &old, |e| {
                *e == CoreError::from(PolicyViolation::SuiteNotAllowed { suite: 0x0378 })
            }),
            (&unsigned_only, &[], &signed, |e| {
                *e == CoreError::from(PolicyViolation::SignedMessageRejected)
            }),
            // A reproduced pair that contradicts a stored one.
            (&strict, &[("k", "w")], &signed, |e| {
                *e == CoreError::from(PolicyViolation::EncryptionContextMismatch)
            }),
            (&strict, &[], &signed[..20], |e| {
                *e == CoreError::Truncated { offset: 20 }
            }),
            (&strict, &[], &[9u8; 40], |e| {
                matches!(e, CoreError::Malformed { offset: 0, .. })
            }),
        ];
        for (i, (cfg, reproduced, msg, want)) in cases.into_iter().enumerate() {
            match ready(decrypt(cfg, &kr, reproduced, msg)) {
                Err(Error::Core(e)) => assert!(want(&e), "case {i}: {e:?}"),
                other => panic!("case {i}: {other:?}"),
            }
            assert!(ready(prepare_decrypt(cfg, &kr, reproduced, msg)).is_err());
        }
        assert_eq!(kr.calls(), before);
    }

    #[test]
    fn decrypt_reports_truncation_and_trailing_bytes_after_the_key() {
        let kr = TestAsyncKeyring::default();
        let cfg = Config::new();
        let msg = ready(encrypt(
            &cfg,
            &kr,
            &EncryptOptions::new().with_frame_length(64),
            &[],
            &data(500),
        ))
        .unwrap();
        let cut = &msg[..msg.len() - 1];
        assert!(matches!(
            ready(decrypt(&cfg, &kr, &[], cut)),
            Err(Error::Core(CoreError::Truncated { .. }))
        ));
        let mut long = msg.clone();
        long.push(0);
        assert!(matches!(
            ready(decrypt(&cfg, &kr, &[], &long)),
            Err(Error::Core(CoreError::TrailingBytes { offset })) if offset == msg.len()
        ));
        // A keyring that cannot decrypt: its error, nothing else.
        let other = ready(encrypt(
            &cfg,
            &kr,
            &EncryptOptions::new(),
            &[("k", "v")],
            b"x",
        ))
        .unwrap();
        assert!(matches!(
            ready(decrypt(&cfg, &kr, &[("extra", "pair")], &other)),
            Err(Error::NoDataKeyDecrypted { .. })
        ));
    }
}
