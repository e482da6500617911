//! Encryption: the incremental [`Encryptor`], the one-shot [`encrypt`] and exact sizing
//! (spec `client-apis/encrypt.md`).

use zeroize::{Zeroize, Zeroizing};

use crate::body::{self, BodyKind};
use crate::config::{Config, EncryptOptions};
use crate::encryption_context::{self, ContextView, PUBLIC_KEY_CONTEXT_KEY, RawPair};
use crate::error::{ApiMisuse, CryptoError, Error, KeyringError, Malformed, PolicyViolation};
use crate::frames::{Absorbed, FrameCipher, FrameSlot, KeyBytes, SealedFrame};
use crate::header;
use crate::kdf::{self, KdfVariant};
use crate::keyring::CryptoMaterialsManager;
use crate::materials::{EdkWriter, EncryptionMaterials, RandomPool};
use crate::provider::{AadFeed, AeadKey, CryptoProvider};
use crate::signature::{Signer, SigningKey};
use crate::suite::{AlgorithmSuite, SignatureAlg};

/// The CMM's (the keyrings') part of the header, in a frame of its own, never inlined:
/// the keyrings' temporaries (key agreement, key wrapping) are not added to the engine's
/// frame that goes on to derive the message key (firmware stacks).
#[inline(never)]
fn run_cmm<M: CryptoMaterialsManager + ?Sized>(
    cmm: &M,
    m: &mut EncryptionMaterials<'_>,
) -> Result<(), Error> {
    cmm.get_encryption_materials(m)
}

/// Moves `len` bytes of `buf` at `src` left to `dst` (`dst <= src`: the stored context is
/// never longer than the full one the EDKs were written after) in pieces that do not
/// overlap, so with `memcpy` alone: `copy_within` links `memmove`, 1.5 KB of flash on a
/// Cortex-M, for this one short move of the EDKs.
fn move_left(buf: &mut [u8], src: usize, dst: usize, len: usize) -> Result<(), Error> {
    let gap = src.checked_sub(dst).ok_or(ApiMisuse::WrongState)?;
    if gap == 0 {
        return Ok(());
    }
    let mut done = 0;
    while done < len {
        let n = gap.min(len - done);
        let (to, from) = buf.split_at_mut(src + done);
        to[dst + done..dst + done + n].copy_from_slice(&from[..n]);
        done += n;
    }
    Ok(())
}

/// Serialized length of the stored context: the full one without the required keys.
fn stored_len<'x>(
    full: impl Iterator<Item = RawPair<'x>>,
    required: &[&str],
) -> Result<usize, Error> {
    encryption_context::serialized_len(full.filter(|(k, _)| !is_required(required, k)))
        .map_err(encryption_context::context_err)
}

struct Body<P: CryptoProvider> {
    cipher: FrameCipher<P::Aead>,
    /// The message key, for more ciphers ([`Encryptor::frame_cipher`]).
    key: KeyBytes,
    /// The sequence number of the next slot.
    next_seq: u32,
    /// The final frame's slot was issued.
    final_issued: bool,
    /// The frames given back for the message hash.
    absorbed: Absorbed,
    signer: Option<Signer<P>>,
    /// Plaintext bytes in the slots issued so far, checked against a declared plaintext
    /// length.
    sealed: u64,
}

enum State<P: CryptoProvider> {
    Start,
    Body(Body<P>),
    Done,
    Failed(Error),
}

/// Incremental encryption into caller buffers, one frame at a time, with no heap.
///
/// The header is written in three steps, which a front end may drive one by one (an async
/// keyring, a cache) or all at once with a synchronous CMM
/// ([`write_header`](Self::write_header)):
/// 1. [`request`](Self::request): the encryption context is checked and sorted; the
///    [`EncryptionRequest`] says what a CMM needs to know (suite, context, required keys,
///    declared plaintext length, EDK limit);
/// 2. [`materials`](Self::materials): the signing key is fixed (supplied, or generated
///    through the provider), its public key joins the encryption context, and the
///    [`EncryptionMaterials`] wait in a caller work buffer for the data key and the EDKs;
/// 3. [`write_header_with`](Self::write_header_with): the header is written from the
///    filled materials. `BufferTooSmall` here had no effect: call it again with a larger
///    `out` and the same materials; no keyring runs twice.
///
/// Then [`seal_frame`](Self::seal_frame) with exactly `frame_length` bytes any number of
/// times, and [`finish`](Self::finish) once with the last `0..=frame_length` bytes (the final
/// frame and, for signing suites, the footer). An output buffer that is too small gives
/// [`Error::BufferTooSmall`] with the size needed and the call had no effect; after any
/// other error the encryptor is poisoned and returns that error again.
pub struct Encryptor<'a, P: CryptoProvider> {
    provider: &'a P,
    cfg: &'a Config,
    suite: AlgorithmSuite,
    frame_len: u32,
    plaintext_len: Option<u64>,
    state: State<P>,
}

impl<P: CryptoProvider> core::fmt::Debug for Encryptor<'_, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match &self.state {
            State::Start => "start",
            State::Body(_) => "body",
            State::Done => "done",
            State::Failed(_) => "failed",
        };
        f.debug_struct("Encryptor")
            .field("suite", &self.suite)
            .field("frame_length", &self.frame_len)
            .field("plaintext_length", &self.plaintext_len)
            .field("state", &state)
            .finish()
    }
}

fn suite_for(cfg: &Config, opts: &EncryptOptions) -> Result<AlgorithmSuite, Error> {
    let suite = opts.suite.unwrap_or(cfg.commitment_policy.default_suite());
    cfg.commitment_policy.check_encrypt(suite)?;
    if opts.frame_length == 0 {
        return Err(PolicyViolation::FrameLength.into());
    }
    Ok(suite)
}

fn is_required(required: &[&str], key: &[u8]) -> bool {
    required.iter().any(|r| r.as_bytes() == key)
}

/// What a CMM needs to know before any key exists: step 1 of writing a header
/// ([`Encryptor::request`]). The encryption context is the caller's, checked and sorted;
/// the signing suites' public key is not in it yet.
#[derive(Debug, Clone, Copy)]
pub struct EncryptionRequest<'r> {
    suite: AlgorithmSuite,
    context: &'r [(&'r str, &'r str)],
    required_keys: &'r [&'r str],
    plaintext_len: Option<u64>,
    max_edks: Option<u16>,
}

impl<'r> EncryptionRequest<'r> {
    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The caller's encryption context, sorted by key, keys unique and not reserved.
    pub fn encryption_context(&self) -> &'r [(&'r str, &'r str)] {
        self.context
    }

    /// Keys of the context that are authenticated but not stored in the header.
    pub fn required_encryption_context_keys(&self) -> &'r [&'r str] {
        self.required_keys
    }

    /// The plaintext length declared in [`EncryptOptions::plaintext_len`], if any; the
    /// encryptor refuses more plaintext than declared.
    pub fn plaintext_length(&self) -> Option<u64> {
        self.plaintext_len
    }

    /// The configured maximum number of EDKs.
    pub fn max_encrypted_data_keys(&self) -> Option<u16> {
        self.max_edks
    }

    /// The work buffer [`Encryptor::materials`] needs for EDKs of `edks_len` serialized
    /// bytes: the full encryption context (with the signing suites' public key), 2, and
    /// the EDKs. Saturates on overflow.
    pub fn work_len(&self, edks_len: usize) -> usize {
        let pairs = self
            .context
            .iter()
            .fold(0usize, |n, (k, v)| n.saturating_add(4 + k.len() + v.len()));
        let public = self.suite.signature().map_or(0, |alg| {
            4 + PUBLIC_KEY_CONTEXT_KEY.len() + alg.public_key_b64_len()
        });
        let body = pairs.saturating_add(public);
        let context = if body == 0 { 0 } else { body + 2 };
        context.saturating_add(2).saturating_add(edks_len)
    }
}

/// Where the EDKs are and what the keyrings produced, once the materials are filled.
struct Filled<'m> {
    data_key: &'m [u8],
    edk_count: u16,
    edks_len: usize,
    /// The message id, drawn with the keyrings' random bytes (empty until then).
    message_id: &'m [u8],
}

/// A header written up to its tail: where the tail goes; then, derived
/// ([`Encryptor::derive_tail`]), the message key's bytes and where the tag goes. The caller
/// then installs the body cipher and writes the tag ([`Encryptor::complete_header`]), so
/// that the keyrings, the key derivation and the key schedule each run in a frame of their
/// own, called one after the other from the header step's frame rather than nested
/// (firmware stacks). The caller owns it and the steps fill it (a returned value would be
/// copied between the frames). The message id and the signing key stay with the caller.
#[derive(Default)]
struct Pending {
    key: KeyBytes,
    /// Where the header's tail (the frame length and, for committing suites, the
    /// commitment) starts.
    tail_at: usize,
    /// The end of the header body (what the tag authenticates, before the extras).
    body_end: usize,
    /// The end of the header, tag included.
    end: usize,
}

/// What the CMM produced, copied out of the materials (which are gone, their stack
/// scrubbed): the data key, the message id drawn with the keyrings' random bytes, where the
/// EDKs are in the output, and the signing key. The caller owns it and the CMM step fills it.
#[derive(Default)]
struct Drawn {
    data_key: Zeroizing<[u8; 32]>,
    key_len: u8,
    message_id: [u8; 32],
    mid_len: u8,
    edk_count: u16,
    edks_len: usize,
    /// Where the EDKs start in the output (after the full context the materials wrote).
    edks_at: usize,
    signing_key: Option<SigningKey>,
}

impl<'a, P: CryptoProvider> Encryptor<'a, P> {
    /// A new encryptor for one message.
    ///
    /// # Errors
    /// [`PolicyViolation::SuiteNotAllowed`] when the commitment policy forbids the suite;
    /// [`PolicyViolation::FrameLength`] for frame length 0.
    pub fn new(cfg: &'a Config, provider: &'a P, opts: &EncryptOptions) -> Result<Self, Error> {
        let suite = suite_for(cfg, opts)?;
        if !P::SIGNS && suite.signature().is_some() {
            return Err(CryptoError::Unsupported.into());
        }
        Ok(Self {
            provider,
            cfg,
            suite,
            frame_len: opts.frame_length,
            plaintext_len: opts.plaintext_len,
            state: State::Start,
        })
    }

    /// The suite's signature algorithm, `None` when the provider never signs
    /// ([`CryptoProvider::SIGNS`]; [`new`](Self::new) refused the signed suites): a constant
    /// then, so that the signing code compiles out.
    fn signature(&self) -> Option<SignatureAlg> {
        Self::signing(self.suite.signature())
    }

    /// `o` where the provider signs, else `None` (a constant: what uses it compiles out).
    fn signing<T>(o: Option<T>) -> Option<T> {
        if P::SIGNS { o } else { None }
    }

    /// The algorithm suite of the message.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The frame length.
    pub fn frame_length(&self) -> u32 {
        self.frame_len
    }

    fn check_running(&self) -> Result<(), Error> {
        match &self.state {
            State::Failed(e) => Err(*e),
            State::Start => Ok(()),
            _ => Err(ApiMisuse::WrongState.into()),
        }
    }

    fn poison<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r
            && !matches!(e, Error::BufferTooSmall { .. })
        {
            self.state = State::Failed(*e);
        }
        r
    }

    /// Step 1: checks the encryption context (keys unique, none reserved, every required key
    /// present), sorts it in place, and returns what a CMM needs to know.
    ///
    /// # Errors
    /// [`ApiMisuse::DuplicateEncryptionContextKey`],
    /// [`PolicyViolation::ReservedEncryptionContextKey`],
    /// [`ApiMisuse::RequiredKeyNotInContext`]; the error the encryptor is poisoned with.
    pub fn request<'r, 'k: 'r, 'v: 'r>(
        &self,
        encryption_context: &'r mut [(&'k str, &'v str)],
        required_keys: &'r [&'r str],
    ) -> Result<EncryptionRequest<'r>, Error> {
        self.check_running()?;
        encryption_context::sort_and_check(encryption_context)?;
        let context: &'r [(&'k str, &'v str)] = encryption_context;
        for k in required_keys {
            if !context.iter().any(|(ek, _)| ek == k) {
                return Err(ApiMisuse::RequiredKeyNotInContext.into());
            }
        }
        Ok(EncryptionRequest {
            suite: self.suite,
            context,
            required_keys,
            plaintext_len: self.plaintext_len,
            max_edks: self.cfg.max_encrypted_data_keys,
        })
    }

    /// The signing key of a message of this suite: `supplied` (a cached one) or a fresh one
    /// from the provider; `None` for unsigned suites.
    fn signing_key(&self, supplied: Option<SigningKey>) -> Result<Option<SigningKey>, Error> {
        match (self.signature(), supplied) {
            (None, None) => Ok(None),
            (Some(alg), Some(k)) if k.algorithm() == alg => Ok(Some(k)),
            (Some(alg), None) => Ok(Some(SigningKey::generate(self.provider, alg)?)),
            _ => Err(ApiMisuse::SigningKeyMismatch.into()),
        }
    }

    /// Step 2: fixes the signing key (`signing_key`, or a fresh one from the provider when
    /// `None`; unsigned suites take none), writes the full encryption context (with the
    /// public key) at the start of `work`, and returns the materials a CMM fills: the data
    /// key and the EDKs, which it writes into the rest of `work`.
    ///
    /// `work` must hold the full context, 2 bytes, and the EDKs; when the keyrings can tell
    /// their EDK sizes ([`CryptoMaterialsManager::encrypted_data_keys_len`]) that is exact,
    /// otherwise a keyring that runs out of room fails with `BufferTooSmall`.
    ///
    /// # Errors
    /// [`ApiMisuse::SigningKeyMismatch`] for a key of another algorithm (or any key for an
    /// unsigned suite); [`Error::BufferTooSmall`] when `work` cannot hold the context;
    /// provider failures.
    pub fn materials<'w>(
        &self,
        request: &EncryptionRequest<'w>,
        signing_key: Option<SigningKey>,
        work: &'w mut [u8],
    ) -> Result<EncryptionMaterials<'w>, Error>
    where
        'a: 'w,
    {
        self.check_running()?;
        let mut key = self.signing_key(signing_key)?;
        self.materials_in(request, &mut key, work, 0, 0)
    }

    /// [`materials`](Self::materials) in a region that starts at byte `base` of the output
    /// and must leave `reserve` bytes free at its end (for `BufferTooSmall` reports), with
    /// the signing key taken from `signing_key` (a caller's slot: no copy of it passed
    /// through the caller's frame). Never inlined: its temporaries (the public key's text,
    /// the context's iterators) are gone when the keyrings run under the caller's frame
    /// (firmware stacks).
    #[inline(never)]
    fn materials_in<'w>(
        &self,
        request: &EncryptionRequest<'w>,
        signing_key: &mut Option<SigningKey>,
        work: &'w mut [u8],
        base: usize,
        reserve: usize,
    ) -> Result<EncryptionMaterials<'w>, Error>
    where
        'a: 'w,
    {
        let signing_key = Self::signing(signing_key.take());
        let text = signing_key.as_ref().map(SigningKey::public_key_text);
        let pk_pair: Option<RawPair<'_>> = text
            .as_ref()
            .map(|t| (PUBLIC_KEY_CONTEXT_KEY.as_bytes(), t.as_str().as_bytes()));
        let full = encryption_context::Merge::new(
            encryption_context::raw_pairs(request.context),
            pk_pair.into_iter(),
        );
        let full_len = encryption_context::serialized_len(full.clone())
            .map_err(encryption_context::context_err)?;
        let need = full_len + 2 + reserve;
        if work.len() < need {
            return Err(Error::BufferTooSmall {
                required: base + need,
            });
        }
        let (ec_bytes, rest) = work.split_at_mut(full_len);
        let count = full.clone().count() as u16;
        encryption_context::write(full, ec_bytes)?;
        let ec_bytes: &'w [u8] = ec_bytes;
        // Written here from `&str` pairs that `request` checked and sorted (the public key,
        // merged in order, is a reserved key no caller can use): a view of them needs no
        // second parse (and an encrypt-only image no UTF-8 validation).
        let ec = ContextView::from_checked(ec_bytes, (count, true));
        let avail = rest.len() - reserve;
        let edks = EdkWriter::new(&mut rest[2..avail], base + full_len + 2);
        Ok(EncryptionMaterials {
            suite: request.suite,
            ec,
            data_key: None,
            edks,
            rng: self.provider,
            pool: RandomPool::new(),
            required_keys: request.required_keys,
            signing_key,
            plaintext_len: request.plaintext_len,
            max_edks: request.max_edks,
        })
    }

    /// Checks what the CMM produced: a data key of the suite's length, at least one EDK and
    /// no more than the configured maximum.
    fn check_filled<'m>(&self, m: &'m EncryptionMaterials<'_>) -> Result<Filled<'m>, Error> {
        let data_key = m
            .data_key
            .as_ref()
            .ok_or(KeyringError::NoDataKeyGenerated)?;
        if data_key.as_bytes().len() != self.suite.key_len() {
            return Err(KeyringError::DataKeyLength.into());
        }
        let edk_count = m.edks.count();
        if edk_count == 0 {
            return Err(KeyringError::NoEncryptedDataKey.into());
        }
        if let Some(max) = self.cfg.max_encrypted_data_keys
            && edk_count > max
        {
            return Err(PolicyViolation::TooManyEncryptedDataKeys { max }.into());
        }
        if m.signing_key.is_some() != self.suite.signature().is_some() {
            return Err(ApiMisuse::SigningKeyMismatch.into());
        }
        Ok(Filled {
            data_key: data_key.as_bytes(),
            edk_count,
            edks_len: m.edks.len(),
            message_id: &[],
        })
    }

    /// Step 3: writes the header from filled materials into `out`; returns its length.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] (no effect: retry with a larger `out` and the same
    /// materials); [`KeyringError`]s for materials without a data key or EDK; policy
    /// violations; provider failures.
    pub fn write_header_with(
        &mut self,
        materials: &EncryptionMaterials<'_>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.check_running()?;
        let r = self.header_from(materials, out);
        crate::materials::scrub_stack();
        self.enter_body(r)
    }

    fn header_from(&mut self, m: &EncryptionMaterials<'_>, out: &mut [u8]) -> Result<usize, Error> {
        let f = self.check_filled(m)?;
        let full = || m.ec.iter_raw();
        let stored_len = stored_len(full(), m.required_keys)?;
        let ec_at = header::prefix_len(self.suite) + 2;
        let edk_at = ec_at + stored_len + 2;
        let total = header::header_len(self.suite, stored_len, f.edks_len);
        if out.len() < total {
            return Err(Error::BufferTooSmall { required: total });
        }
        out[edk_at..edk_at + f.edks_len].copy_from_slice(m.edks.as_bytes());
        let mut message_id = [0u8; 32];
        let mid = &mut message_id[..self.suite.message_id_len()];
        m.fill_random(mid)?;
        let f = Filled {
            message_id: mid,
            ..f
        };
        let required = m.required_keys;
        let mut pending = Pending::default();
        self.finish_header(out, edk_at, &f, full, required, &mut pending)?;
        self.derive_tail(f.data_key, mid, out, &mut pending)?;
        crate::materials::scrub_stack();
        let mut signing_key = Self::signing(m.signing_key.clone());
        self.complete_header(&mut pending, mid, &mut signing_key, out, |sink| {
            encryption_context::feed(full().filter(|(k, _)| is_required(required, k)), sink);
        })
    }

    /// The header step's result: its length, the body state already in place (see
    /// [`finish_header`](Self::finish_header)); an error poisons the encryptor.
    fn enter_body(&mut self, r: Result<usize, Error>) -> Result<usize, Error> {
        match r {
            Ok(n) => Ok(n),
            Err(e) => self.poison(Err(e)),
        }
    }

    /// All three steps with a synchronous CMM, building the header in `out` itself (no
    /// other buffer): returns its length.
    ///
    /// `encryption_context` is sorted in place. Keys must be unique and must not start with
    /// `aws-crypto-`. Size `out` with [`encrypted_len`] (or at least the header): when it is
    /// too small for the EDKs the keyrings ran for nothing, and a retry runs them again —
    /// front ends that cannot size `out` in advance use the three steps with a work buffer.
    ///
    /// # Errors
    /// Encryption-context and policy violations, keyring failures, or
    /// [`Error::BufferTooSmall`].
    // Never inlined: what the header steps hand each other stays out of the caller's frame.
    #[inline(never)]
    pub fn write_header<M: CryptoMaterialsManager + ?Sized>(
        &mut self,
        cmm: &M,
        encryption_context: &mut [(&str, &str)],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        // Frames side by side, none under another: the signing key, the CMM and its
        // keyrings, the header with the key derivation, the body cipher with the tag
        // (firmware stacks).
        let required = cmm.required_encryption_context_keys();
        // Filled in place by the steps below, not returned from them: each return would be
        // a copy of about 0.2 KB in this frame.
        let mut drawn = Drawn::default();
        let mut pending = Pending::default();
        let r = self
            .request(encryption_context, required)
            .and_then(|request| {
                self.header_signing_key(cmm, &request, &mut drawn.signing_key)?;
                self.header_with_cmm(cmm, &request, out, &mut drawn)
            })
            .and_then(|()| {
                let context = &*encryption_context;
                let r = self
                    .header_from_drawn(&drawn, context, required, out, &mut pending)
                    .and_then(|()| {
                        let data_key = &drawn.data_key[..usize::from(drawn.key_len)];
                        let message_id = &drawn.message_id[..usize::from(drawn.mid_len)];
                        self.derive_tail(data_key, message_id, out, &mut pending)
                    });
                // The data key is wiped now, not when `drawn` is dropped.
                drawn.data_key.zeroize();
                r?;
                // The HKDF's temporaries hold the message key on the stack below: wiped
                // before the body state is built there (its padding would carry them into
                // the encryptor's memory, where no drop wipes them).
                crate::materials::scrub_stack();
                let message_id = &drawn.message_id[..usize::from(drawn.mid_len)];
                let signing_key = &mut drawn.signing_key;
                let r = self.complete_header(&mut pending, message_id, signing_key, out, |sink| {
                    let pairs = encryption_context::raw_pairs(context);
                    encryption_context::feed(pairs.filter(|(k, _)| is_required(required, k)), sink);
                });
                pending.key.wipe();
                // The message key was moved between the header's frames (a move does not
                // wipe its source): wiped before later steps build values over those bytes
                // (a state written later would copy them into the encryptor's memory).
                crate::materials::scrub_stack();
                r
            });
        self.enter_body(r)
    }

    /// Never inlined, as the steps it calls: the materials, the keyrings' frames and the
    /// header's key schedule then do not pile up in the caller's frame (firmware stacks).
    #[inline(never)]
    fn header_with_cmm<M: CryptoMaterialsManager + ?Sized>(
        &mut self,
        cmm: &M,
        request: &EncryptionRequest<'_>,
        out: &mut [u8],
        drawn: &mut Drawn,
    ) -> Result<(), Error> {
        // The materials go where the header puts them: the full context at the context's
        // place, the EDKs after it; the header then shrinks the context to the stored
        // pairs in place. Nothing runs before `out` holds the header without EDKs.
        let ec_at = header::prefix_len(self.suite) + 2;
        let tail = header::tail_len(self.suite);
        if out.len() < ec_at {
            return Err(Error::BufferTooSmall {
                required: header::header_len(self.suite, 0, 0),
            });
        }
        let (_, work) = out.split_at_mut(ec_at);
        // Dropped where they are at the end of this block (a `drop` call would move them
        // into a copy first).
        {
            // The materials stay where `materials_in` returned them, borrowed: a `?` would
            // copy them (about 0.3 KB) into this frame, under which the keyrings run.
            let signing_key = &mut drawn.signing_key;
            let mut materials = self.materials_in(request, signing_key, work, ec_at, tail);
            let m = match &mut materials {
                Ok(m) => m,
                Err(e) => return Err(*e),
            };
            match run_cmm(cmm, m) {
                Err(Error::BufferTooSmall { required: r }) => {
                    return Err(Error::BufferTooSmall { required: r + tail });
                }
                r => r?,
            }
            let full_len = m.ec.as_bytes().len();
            let f = self.check_filled(m)?;
            let (edk_count, edks_len) = (f.edk_count, f.edks_len);
            // From the random bytes the keyrings drew theirs from (one call of the
            // generator).
            let mid_len = self.suite.message_id_len();
            m.fill_random(&mut drawn.message_id[..mid_len])?;
            drawn.mid_len = mid_len as u8;
            // Copied, not moved out: a move leaves the bytes behind in `m`'s memory, where
            // no drop wipes them (and stale stack bytes can end up inside the encryptor's
            // unused enum space). `m` still owns the originals and wipes them when dropped.
            let key_len = f.data_key.len();
            drawn.data_key[..key_len].copy_from_slice(f.data_key);
            drawn.key_len = key_len as u8;
            drawn.edk_count = edk_count;
            drawn.edks_len = edks_len;
            drawn.edks_at = ec_at + full_len + 2;
            if P::SIGNS {
                drawn.signing_key = m.signing_key.clone();
            }
        }
        crate::materials::scrub_stack();
        Ok(())
    }

    /// The signing key of the message, into `slot`: the CMM's (a cache's) or a fresh one
    /// (signed suites). Never inlined: a key generation's scalar multiplication runs beside
    /// the keyrings, not under the materials' frame.
    #[inline(never)]
    fn header_signing_key<M: CryptoMaterialsManager + ?Sized>(
        &self,
        cmm: &M,
        request: &EncryptionRequest<'_>,
        slot: &mut Option<SigningKey>,
    ) -> Result<(), Error> {
        let supplied = match self.signature() {
            Some(_) => cmm.encryption_signing_key(request)?,
            None => None,
        };
        *slot = self.signing_key(supplied)?;
        Ok(())
    }

    /// The header around what the CMM drew (see [`finish_header`](Self::finish_header)),
    /// `context` being the sorted encryption context, up to its tail. Never inlined: the
    /// CMM's frame is gone when this one runs, and this one when the key derivation does.
    #[inline(never)]
    fn header_from_drawn(
        &mut self,
        d: &Drawn,
        context: &[(&str, &str)],
        required: &[&str],
        out: &mut [u8],
        p: &mut Pending,
    ) -> Result<(), Error> {
        let text = Self::signing(d.signing_key.as_ref()).map(SigningKey::public_key_text);
        let pk_pair: Option<RawPair<'_>> = text
            .as_ref()
            .map(|t| (PUBLIC_KEY_CONTEXT_KEY.as_bytes(), t.as_str().as_bytes()));
        let full = || {
            encryption_context::Merge::new(
                encryption_context::raw_pairs(context),
                pk_pair.into_iter(),
            )
        };
        let filled = Filled {
            data_key: &d.data_key[..usize::from(d.key_len)],
            edk_count: d.edk_count,
            edks_len: d.edks_len,
            message_id: &d.message_id[..usize::from(d.mid_len)],
        };
        self.finish_header(out, d.edks_at, &filled, full, required, p)
    }

    /// Writes the header around EDKs that are in `out` at `edks_at`: the prefix with a fresh
    /// message id, the stored context (the full one minus the required keys) at its place,
    /// the EDKs moved right after it; sets `p.tail_at`. The tail is left to
    /// [`derive_tail`](Self::derive_tail), the tag to
    /// [`complete_header`](Self::complete_header). `out` holds the whole header (the
    /// callers checked: the full context is at least as long as the stored one).
    #[inline(never)]
    fn finish_header<'x, I>(
        &mut self,
        out: &mut [u8],
        edks_at: usize,
        f: &Filled<'_>,
        full: impl Fn() -> I,
        required: &[&str],
        p: &mut Pending,
    ) -> Result<(), Error>
    where
        I: Iterator<Item = RawPair<'x>> + Clone,
    {
        let suite = self.suite;
        let stored = || full().filter(|(k, _)| !is_required(required, k));
        let stored_len = encryption_context::serialized_len(stored())
            .map_err(encryption_context::context_err)?;
        let message_id = f.message_id;
        let ec_at = header::write_prefix(suite, message_id, out) + 2;
        out[ec_at - 2..ec_at].copy_from_slice(&(stored_len as u16).to_be_bytes());
        encryption_context::write(stored(), &mut out[ec_at..])?;
        let edk_at = ec_at + stored_len + 2;
        move_left(out, edks_at, edk_at, f.edks_len)?;
        out[edk_at - 2..edk_at].copy_from_slice(&f.edk_count.to_be_bytes());
        p.tail_at = edk_at + f.edks_len;
        Ok(())
    }

    /// Derives the message key from `data_key` into `p.key` and writes the header's tail at
    /// `p.tail_at` (with the commitment of committing suites); sets where the tag goes.
    /// Never inlined: the key derivation's frames (HMAC states, the hash's schedule) run
    /// under this small frame, called from the header step's frame beside the keyrings' and
    /// the key schedule's rather than under the header writer's (firmware stacks).
    #[inline(never)]
    fn derive_tail(
        &self,
        data_key: &[u8],
        message_id: &[u8],
        out: &mut [u8],
        p: &mut Pending,
    ) -> Result<(), Error> {
        let suite = self.suite;
        let mut commit = Zeroizing::new([0u8; 32]);
        p.key = kdf::derive_key(
            self.provider,
            suite,
            data_key,
            message_id,
            KdfVariant::Standard,
            &mut commit,
        )?;
        let tail_at = p.tail_at;
        let tail = out.get_mut(tail_at..).ok_or(ApiMisuse::WrongState)?;
        let (body_end, tag_at) = header::write_tail(suite, self.frame_len, &commit, tail);
        p.body_end = tail_at + body_end;
        p.end = tail_at + tag_at + 16;
        Ok(())
    }

    /// The header's last steps: the body cipher installed into the encryptor's state, the
    /// header tag (over the header body and what `extras` feeds, the required context
    /// pairs) written, the message signature started over the header. Returns the header's
    /// length; on error the state is back at the start.
    fn complete_header(
        &mut self,
        p: &mut Pending,
        message_id: &[u8],
        signing_key: &mut Option<SigningKey>,
        out: &mut [u8],
        extras: impl Fn(&mut dyn FnMut(&[u8])),
    ) -> Result<usize, Error> {
        self.install_body(&p.key, message_id)?;
        let mut extras = extras;
        let r = self.sign_header(&mut out[..p.end], p.body_end, &mut extras, signing_key);
        if r.is_err() {
            self.state = State::Start;
        }
        r.map(|()| p.end)
    }

    /// Builds the body cipher of `key` into the encryptor's state, in a frame of its own
    /// (never inlined), beside the key derivation's and the keyrings' frames rather than on
    /// top of them (firmware stacks). The provider's key lands in this frame only (the
    /// provider's result, matched in place) and [`put_body`](Self::put_body) moves it into
    /// the state from there: no second copy of the key schedule in a frame the key
    /// schedule's computation runs under.
    #[inline(never)]
    fn install_body(&mut self, key: &KeyBytes, message_id: &[u8]) -> Result<(), Error> {
        match self.provider.aead_key(key.as_bytes()) {
            Ok(aead) => {
                self.put_body(aead, key, message_id);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The body state around `aead`, the cipher of `key`. Never inlined: the temporaries of
    /// the state's construction sit beside the key schedule's frames, not above them.
    #[inline(never)]
    fn put_body(&mut self, aead: P::Aead, key: &KeyBytes, message_id: &[u8]) {
        let key = key.clone();
        self.state = State::Body(Body {
            cipher: FrameCipher::new(aead, message_id),
            key,
            next_seq: 1,
            final_issued: false,
            absorbed: Absorbed::new(),
            signer: None,
            sealed: 0,
        });
    }

    /// With the body state installed: writes the header tag (over `header[..body_end]` and
    /// what `extras` feeds) into the last 16 bytes of `header`, and starts the message
    /// signature over the header with `signing_key` (taken).
    #[inline(never)]
    fn sign_header(
        &mut self,
        header: &mut [u8],
        body_end: usize,
        extras: &mut AadFeed<'_>,
        signing_key: &mut Option<SigningKey>,
    ) -> Result<(), Error> {
        let provider = self.provider;
        let b = self.body()?;
        let tag_at = header.len() - 16;
        let tag = {
            let header_body = &header[..body_end];
            b.cipher.key().gmac(&[0u8; 12], &mut |sink| {
                sink(header_body);
                extras(sink);
            })?
        };
        header[tag_at..].copy_from_slice(&tag);
        if let Some(key) = Self::signing(signing_key.take()) {
            let mut signer = Signer::new(provider, key)?;
            signer.update(header);
            b.signer = Some(signer);
        }
        Ok(())
    }

    fn body(&mut self) -> Result<&mut Body<P>, Error> {
        match &mut self.state {
            State::Body(b) => Ok(b),
            State::Failed(e) => Err(*e),
            _ => Err(ApiMisuse::WrongState.into()),
        }
    }

    /// Counts `n` more plaintext bytes against the declared plaintext length: more than
    /// declared poisons the encryptor (a cache's byte limits rely on the declaration).
    fn account(&mut self, n: usize) -> Result<(), Error> {
        let declared = self.plaintext_len;
        let b = self.body()?;
        let total = b.sealed.saturating_add(n as u64);
        if declared.is_some_and(|d| total > d) {
            return self.poison(Err(PolicyViolation::PlaintextLengthBound.into()));
        }
        b.sealed = total;
        Ok(())
    }

    fn body_ref(&self) -> Result<&Body<P>, Error> {
        match &self.state {
            State::Body(b) => Ok(b),
            State::Failed(e) => Err(*e),
            _ => Err(ApiMisuse::WrongState.into()),
        }
    }

    /// Issues the slot of the next frame: a regular frame of exactly `frame_length` content
    /// bytes, or (`last`) the final frame of `0..=frame_length` bytes. A [`FrameCipher`]
    /// seals the slot (this encryptor's, through the `seal_*` methods, or one from
    /// [`frame_cipher`](Self::frame_cipher) on another thread), and the sealed frame comes
    /// back, in order, to [`absorb_frame`](Self::absorb_frame); after the final frame,
    /// [`write_footer`](Self::write_footer) closes the message.
    ///
    /// # Errors
    /// [`ApiMisuse::FrameSize`]; [`ApiMisuse::WrongState`] after the final slot;
    /// [`Malformed::TooManyFrames`] and [`PolicyViolation::PlaintextLengthBound`] (these
    /// poison the encryptor).
    pub fn next_frame(&mut self, content_len: usize, last: bool) -> Result<FrameSlot, Error> {
        let frame_len = self.frame_len as usize;
        let b = self.body()?;
        if b.final_issued {
            return Err(ApiMisuse::WrongState.into());
        }
        if content_len > frame_len || (!last && content_len != frame_len) {
            return Err(ApiMisuse::FrameSize.into());
        }
        if !last && b.next_seq == u32::MAX {
            let e = Error::Malformed {
                offset: 0,
                kind: Malformed::TooManyFrames,
            };
            return self.poison(Err(e));
        }
        self.account(content_len)?;
        let b = self.body()?;
        let slot = FrameSlot {
            kind: if last {
                BodyKind::Final
            } else {
                BodyKind::Regular
            },
            seq: b.next_seq,
            len: content_len,
            footer: 0,
            offset: 0,
        };
        if last {
            b.final_issued = true;
        } else {
            b.next_seq += 1;
        }
        Ok(slot)
    }

    /// A new [`FrameCipher`] of this message's key, for a worker thread: each worker may
    /// hold its own, and seal any issued slot with it.
    ///
    /// # Errors
    /// [`ApiMisuse::WrongState`] before the header or after the footer; provider failures.
    pub fn frame_cipher(&self) -> Result<FrameCipher<P::Aead>, Error> {
        let b = self.body_ref()?;
        b.key.cipher(self.provider, b.cipher.message_id())
    }

    /// Gives a sealed frame back to the engine, in order: the signed suites hash it into
    /// the message signature. Every issued slot's frame must come back exactly once, in
    /// sequence order, before [`write_footer`](Self::write_footer).
    ///
    /// # Errors
    /// [`ApiMisuse::FrameOrder`] for a frame out of order or of another length than its
    /// slot's (nothing is absorbed).
    pub fn absorb_frame(&mut self, slot: &FrameSlot, frame: &[u8]) -> Result<(), Error> {
        self.absorb_frame_parts(slot, &[frame])
    }

    /// [`absorb_frame`](Self::absorb_frame) for a frame in pieces (the header, content and
    /// tag of [`seal_detached`](Self::seal_detached)), in order.
    ///
    /// # Errors
    /// As [`absorb_frame`](Self::absorb_frame).
    pub fn absorb_frame_parts(&mut self, slot: &FrameSlot, parts: &[&[u8]]) -> Result<(), Error> {
        let b = self.body()?;
        let len = parts.iter().map(|p| p.len()).sum();
        b.absorbed.take(slot, len)?;
        if let Some(s) = Self::signing(b.signer.as_mut()) {
            for p in parts {
                s.update(p);
            }
        }
        Ok(())
    }

    /// Bytes of the footer: the signature of the signed suites (length field included), 0
    /// for the others.
    pub fn footer_len(&self) -> usize {
        body::footer_len(self.signature())
    }

    /// Closes the message once the final frame was absorbed: writes the footer (signed
    /// suites; [`footer_len`](Self::footer_len) bytes) and returns its length, 0 for the
    /// unsigned suites.
    ///
    /// # Errors
    /// [`ApiMisuse::WrongState`] before the final frame was absorbed;
    /// [`Error::BufferTooSmall`] (no effect); signing failures (these poison).
    // Never inlined: the signature's state (hash, key, digest) stays out of the caller's
    // frame, which for the unsigned suites never needs it.
    #[inline(never)]
    pub fn write_footer(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let need = self.footer_len();
        let provider = self.provider;
        let b = self.body()?;
        if !b.absorbed.done {
            return Err(ApiMisuse::WrongState.into());
        }
        if out.len() < need {
            return Err(Error::BufferTooSmall { required: need });
        }
        // The signer stays in the state (no copy of it in this frame, under which the
        // signature's computation runs); the hash is finished in a frame of its own first.
        // Dropping the state wipes the key.
        let n = match Self::signing(b.signer.as_mut()) {
            Some(s) => {
                let mut digest = Zeroizing::new([0u8; 64]);
                let r = s
                    .finish_hash(&mut digest)
                    .and_then(|dl| s.sign(provider, &digest[..dl], out));
                match r {
                    Ok(n) => n,
                    Err(e) => return self.poison(Err(e)),
                }
            }
            None => 0,
        };
        self.state = State::Done;
        Ok(n)
    }

    /// Seals `plaintext` for `slot` into `out` with this encryptor's cipher and absorbs the
    /// frame; returns its length.
    fn seal_slot(
        &mut self,
        slot: &FrameSlot,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let r = self.body()?.cipher.seal_to(slot, plaintext, out);
        let n = self.poison(r)?;
        self.absorb_frame(slot, &out[..n])?;
        Ok(n)
    }

    /// Seals the next frame in place and absorbs it: `frame` is laid out as the frame
    /// (a regular one: `frame_length + 32` bytes; the final one (`last`):
    /// `24 + content + 16`), with the plaintext at the content's place
    /// ([`FrameSlot::content_range`]); the header and tag are written around it. Returns the
    /// frame's slot. After the final frame, [`write_footer`](Self::write_footer).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `frame` cannot even hold the frame overhead; as
    /// [`next_frame`](Self::next_frame).
    pub fn seal_in_place(&mut self, frame: &mut [u8], last: bool) -> Result<FrameSlot, Error> {
        let overhead = if last {
            body::FINAL_FRAME_OVERHEAD
        } else {
            body::REGULAR_FRAME_OVERHEAD
        };
        let content = frame
            .len()
            .checked_sub(overhead)
            .ok_or(Error::BufferTooSmall { required: overhead })?;
        let slot = self.next_frame(content, last)?;
        let r = self.body()?.cipher.seal_in_place(&slot, frame);
        self.poison(r)?;
        self.absorb_frame(&slot, frame)?;
        Ok(slot)
    }

    /// Seals the next frame's content in place, with the frame header and tag detached
    /// (the `AeadInPlace` shape): `content` is a regular frame's `frame_length` bytes, or
    /// (`last`) the final frame's `0..=frame_length`. Send [`SealedFrame::prefix`], the
    /// content and [`SealedFrame::tag`], in this order; the frame is already absorbed.
    /// After the final frame, [`write_footer`](Self::write_footer).
    ///
    /// # Errors
    /// As [`next_frame`](Self::next_frame).
    pub fn seal_detached(&mut self, content: &mut [u8], last: bool) -> Result<SealedFrame, Error> {
        let slot = self.next_frame(content.len(), last)?;
        let r = self.body()?.cipher.seal_detached(&slot, content);
        let sealed = self.poison(r)?;
        self.absorb_frame_parts(&slot, &[sealed.prefix(), content, sealed.tag()])?;
        Ok(sealed)
    }

    /// Encrypts one regular frame of exactly `frame_length` bytes into `out`; returns the
    /// bytes written (`frame_length + 32`).
    ///
    /// # Errors
    /// [`ApiMisuse::FrameSize`], [`Error::BufferTooSmall`], [`Malformed::TooManyFrames`].
    pub fn seal_frame(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let frame_len = self.frame_len as usize;
        self.body()?;
        if plaintext.len() != frame_len {
            return Err(ApiMisuse::FrameSize.into());
        }
        let need = frame_len + body::REGULAR_FRAME_OVERHEAD;
        if out.len() < need {
            return Err(Error::BufferTooSmall { required: need });
        }
        let slot = self.next_frame(frame_len, false)?;
        self.seal_slot(&slot, plaintext, out)
    }

    /// Seals all of the (rest of the) plaintext after the header: the regular frames and the
    /// final frame (full when the length is a multiple of the frame length) with the footer;
    /// returns the bytes written. The body of the one-shot [`encrypt`].
    ///
    /// # Errors
    /// As [`seal_frame`](Self::seal_frame) and [`finish`](Self::finish).
    pub fn seal_body(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let f = self.frame_len as usize;
        let regular = plaintext.len().saturating_sub(1) / f;
        let mut at = 0;
        for chunk in plaintext[..regular * f].chunks_exact(f) {
            at += self.seal_frame(chunk, &mut out[at..])?;
        }
        Ok(at + self.finish(&plaintext[regular * f..], &mut out[at..])?)
    }

    /// Bytes [`finish`](Self::finish) writes for a last chunk of `last_len` bytes.
    pub fn finish_len(&self, last_len: usize) -> usize {
        last_len + body::FINAL_FRAME_OVERHEAD + self.footer_len()
    }

    /// Encrypts the final frame (`0..=frame_length` bytes) and writes the footer; returns the
    /// bytes written.
    ///
    /// # Errors
    /// [`ApiMisuse::FrameSize`], [`Error::BufferTooSmall`], crypto failures.
    pub fn finish(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let need = self.finish_len(plaintext.len());
        self.body()?;
        if plaintext.len() > self.frame_len as usize {
            return Err(ApiMisuse::FrameSize.into());
        }
        if out.len() < need {
            return Err(Error::BufferTooSmall { required: need });
        }
        let slot = self.next_frame(plaintext.len(), true)?;
        let n = self.seal_slot(&slot, plaintext, out)?;
        Ok(n + self.write_footer(&mut out[n..])?)
    }
}

/// The exact length of the message [`encrypt`] writes for a plaintext of `plaintext_len`
/// bytes, when the keyring can tell its EDK sizes in advance
/// ([`Keyring::encrypted_data_keys_len`](crate::Keyring::encrypted_data_keys_len)); a
/// `const`-friendly building block is [`ciphertext_len`].
///
/// # Errors
/// Policy violations as [`encrypt`]; [`KeyringError::EdkLengthUnknown`] when the keyring
/// cannot tell.
pub fn encrypted_len<M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    opts: &EncryptOptions,
    cmm: &M,
    encryption_context: &[(&str, &str)],
    plaintext_len: usize,
) -> Result<usize, Error> {
    let suite = suite_for(cfg, opts)?;
    let required = cmm.required_encryption_context_keys();
    let mut ec_len = 0usize;
    let mut any = false;
    for (k, v) in encryption_context {
        if !required.contains(k) {
            ec_len += 4 + k.len() + v.len();
            any = true;
        }
    }
    if let Some(sig) = suite.signature() {
        ec_len += 4 + PUBLIC_KEY_CONTEXT_KEY.len() + sig.public_key_b64_len();
        any = true;
    }
    if any {
        ec_len += 2;
    }
    if ec_len > 0xFFFF {
        return Err(encryption_context::context_err(
            crate::error::ContextError::TooLarge,
        ));
    }
    let (_, edks_len) = cmm
        .encrypted_data_keys_len(suite)
        .ok_or(KeyringError::EdkLengthUnknown)?;
    ciphertext_len(
        suite,
        opts.frame_length,
        header::header_len(suite, ec_len, edks_len),
        plaintext_len as u64,
    )
    .and_then(|n| usize::try_from(n).ok())
    .ok_or(Error::Malformed {
        offset: 0,
        kind: Malformed::TooManyFrames,
    })
}

/// Length of a message with a header of `header_len` bytes (see
/// [`header_len`](crate::header::header_len)), framed at `frame_len`, for `plaintext_len`
/// bytes of plaintext, footer included. `None` on overflow.
pub const fn ciphertext_len(
    suite: AlgorithmSuite,
    frame_len: u32,
    header_len: usize,
    plaintext_len: u64,
) -> Option<u64> {
    match body::framed_body_len(frame_len, plaintext_len) {
        Some(b) => b.checked_add((header_len + body::footer_len(suite.signature())) as u64),
        None => None,
    }
}

/// Encrypts `plaintext` into `out` in one call and returns the message length.
///
/// `encryption_context` is sorted in place. The message is framed at
/// `opts.frame_length`; the last frame is the final frame (full when the plaintext is an
/// exact multiple of the frame length).
///
/// # Errors
/// As [`Encryptor`]; [`Error::BufferTooSmall`] with the size needed when the keyring can
/// tell its EDK size (use [`encrypted_len`] to size `out`).
pub fn encrypt<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &mut [(&str, &str)],
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let r = encrypt_frames(cfg, provider, cmm, opts, encryption_context, plaintext, out);
    match r {
        Err(e @ Error::BufferTooSmall { .. }) => Err(
            match encrypted_len(cfg, opts, cmm, encryption_context, plaintext.len()) {
                Ok(required) => Error::BufferTooSmall { required },
                Err(_) => e,
            },
        ),
        r => r,
    }
}

// Never inlined: the encryptor's state lives in this frame, not in the caller's.
#[inline(never)]
fn encrypt_frames<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &mut [(&str, &str)],
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let opts = EncryptOptions {
        plaintext_len: Some(plaintext.len() as u64),
        ..*opts
    };
    let mut enc = Encryptor::new(cfg, provider, &opts)?;
    let at = enc.write_header(cmm, encryption_context, out)?;
    Ok(at + enc.seal_body(plaintext, &mut out[at..])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `move_left` is `copy_within` for leftward moves: overlapping (gap shorter than the
    /// run), disjoint, zero gap, empty run; a rightward move is refused, not done wrong.
    #[test]
    fn move_left_is_copy_within_for_leftward_moves() {
        for len in [0usize, 1, 5, 16, 40] {
            for gap in [0usize, 1, 3, 7, 16, 50] {
                for dst in [0usize, 2] {
                    let src = dst + gap;
                    let mut want: [u8; 128] = core::array::from_fn(|i| i as u8);
                    let mut got = want;
                    want.copy_within(src..src + len, dst);
                    move_left(&mut got, src, dst, len).unwrap();
                    assert_eq!(got, want, "len {len} gap {gap} dst {dst}");
                }
            }
        }
        let mut buf = [0u8; 8];
        assert!(move_left(&mut buf, 1, 2, 3).is_err());
    }
}
