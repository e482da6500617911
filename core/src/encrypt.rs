//! Encryption: the incremental [`Encryptor`], the one-shot [`encrypt`] and exact sizing
//! (spec `client-apis/encrypt.md`).

use zeroize::{Zeroize, Zeroizing};

use crate::body::{self, BodyKind, KdfVariant};
use crate::config::{Config, EncryptOptions};
use crate::ec::{self, EcView, PUBLIC_KEY_EC_KEY, RawPair};
use crate::error::{ApiMisuse, Error, KeyringError, Malformed, PolicyViolation};
use crate::header;
use crate::keyring::CryptoMaterialsManager;
use crate::materials::{EdkWriter, EncryptionMaterials};
use crate::provider::{AeadKey, CryptoProvider, MessageHasher};
use crate::suite::{AlgorithmSuite, SignatureAlg};

struct Signer<P: CryptoProvider> {
    alg: SignatureAlg,
    hasher: P::Hasher,
    private: Zeroizing<[u8; 48]>,
}

struct Body<P: CryptoProvider> {
    key: P::Aead,
    message_id: [u8; 32],
    next_seq: u32,
    signer: Option<Signer<P>>,
}

enum State<P: CryptoProvider> {
    Start,
    Body(Body<P>),
    Done,
    Failed(Error),
}

/// Incremental encryption into caller buffers, one frame at a time, with no heap.
///
/// Contract:
/// - call [`write_header`](Self::write_header) once, then [`seal_frame`](Self::seal_frame)
///   with exactly `frame_length` bytes any number of times, then
///   [`finish`](Self::finish) once with the last `0..=frame_length` bytes (the final frame
///   and, for signing suites, the footer);
/// - an output buffer that is too small gives [`Error::BufferTooSmall`] with the size needed;
///   the call had no effect and can be repeated with a larger buffer;
/// - after any other error the encryptor is poisoned and returns that error again.
pub struct Encryptor<'a, P: CryptoProvider> {
    provider: &'a P,
    cfg: &'a Config,
    suite: AlgorithmSuite,
    frame_len: u32,
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

/// The base64 text of a compressed public key, in a fixed buffer.
struct PublicKeyText {
    buf: [u8; 68],
    len: usize,
}

impl PublicKeyText {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

fn b64_encode(input: &[u8], out: &mut [u8]) -> usize {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = 0;
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out[o + i] = if i <= chunk.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize]
            } else {
                b'='
            };
        }
        o += 4;
    }
    o
}

fn is_required(required: &[&str], key: &[u8]) -> bool {
    required.iter().any(|r| r.as_bytes() == key)
}

impl<'a, P: CryptoProvider> Encryptor<'a, P> {
    /// A new encryptor for one message.
    ///
    /// # Errors
    /// [`PolicyViolation::SuiteNotAllowed`] when the commitment policy forbids the suite;
    /// [`PolicyViolation::FrameLength`] for frame length 0.
    pub fn new(cfg: &'a Config, provider: &'a P, opts: &EncryptOptions) -> Result<Self, Error> {
        let suite = suite_for(cfg, opts)?;
        Ok(Self {
            provider,
            cfg,
            suite,
            frame_len: opts.frame_length,
            state: State::Start,
        })
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
            _ => Ok(()),
        }
    }

    fn poison<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r {
            if !matches!(e, Error::BufferTooSmall { .. }) {
                self.state = State::Failed(*e);
            }
        }
        r
    }

    /// Gets the materials from `cmm` and writes the header into `out`; returns its length.
    ///
    /// `encryption_context` is sorted in place. Keys must be unique and must not start with
    /// `aws-crypto-`.
    ///
    /// # Errors
    /// Encryption-context and policy violations, keyring failures, or
    /// [`Error::BufferTooSmall`].
    pub fn write_header<M: CryptoMaterialsManager + ?Sized>(
        &mut self,
        cmm: &M,
        encryption_context: &mut [(&str, &str)],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.check_running()?;
        if !matches!(self.state, State::Start) {
            return Err(ApiMisuse::WrongState.into());
        }
        let r = self.write_header_inner(cmm, encryption_context, out);
        match r {
            Ok((n, body)) => {
                self.state = State::Body(body);
                Ok(n)
            }
            Err(e) => self.poison(Err(e)),
        }
    }

    fn write_header_inner<M: CryptoMaterialsManager + ?Sized>(
        &self,
        cmm: &M,
        ec_pairs: &mut [(&str, &str)],
        out: &mut [u8],
    ) -> Result<(usize, Body<P>), Error> {
        let suite = self.suite;
        let provider = self.provider;
        ec::sort_and_check(ec_pairs)?;
        let ec_pairs: &[(&str, &str)] = ec_pairs;
        let required = cmm.required_encryption_context_keys();
        for k in required {
            if !ec_pairs.iter().any(|(ek, _)| ek == k) {
                return Err(ApiMisuse::RequiredKeyNotInContext.into());
            }
        }

        // Signing key pair; its public half goes into the encryption context.
        let mut signer = None;
        let mut pk_text = PublicKeyText {
            buf: [0; 68],
            len: 0,
        };
        if let Some(alg) = suite.signature() {
            let mut private = Zeroizing::new([0u8; 48]);
            let mut public = [0u8; 49];
            provider.generate_signing_key(
                alg,
                &mut private[..alg.scalar_len()],
                &mut public[..alg.public_key_len()],
            )?;
            pk_text.len = b64_encode(&public[..alg.public_key_len()], &mut pk_text.buf);
            signer = Some(Signer::<P> {
                alg,
                hasher: provider.hasher(alg)?,
                private,
            });
        }
        let pk_pair: Option<RawPair<'_>> = suite
            .signature()
            .map(|_| (PUBLIC_KEY_EC_KEY.as_bytes(), pk_text.as_str().as_bytes()));
        let full = || ec::Merge::new(ec::raw_pairs(ec_pairs), pk_pair.into_iter());
        let stored = || full().filter(|(k, _)| !is_required(required, k));

        let mut message_id = [0u8; 32];
        let mid_len = suite.message_id_len();
        provider.fill_random(&mut message_id[..mid_len])?;

        // Prefix.
        let version = suite.message_format_version();
        let prefix_len = if version == 1 {
            4 + mid_len
        } else {
            3 + mid_len
        };
        let min_header = header::header_len(suite, 0, 0);
        if out.len() < min_header {
            return Err(Error::BufferTooSmall {
                required: min_header,
            });
        }
        let mut at = 0;
        out[at] = version;
        at += 1;
        if version == 1 {
            out[at] = 0x80;
            at += 1;
        }
        out[at..at + 2].copy_from_slice(&suite.id().to_be_bytes());
        at += 2;
        out[at..at + mid_len].copy_from_slice(&message_id[..mid_len]);
        at += mid_len;
        debug_assert_eq!(at, prefix_len);

        // The full context goes where the stored one will be, so keyrings can use it as AAD.
        let ec_at = at + 2;
        let full_len = ec::serialized_len(full()).map_err(ec::ec_err)?;
        let stored_len = ec::serialized_len(stored()).map_err(ec::ec_err)?;
        let tail_len = min_header - prefix_len - 4;
        let need_so_far = ec_at + full_len + 2 + tail_len;
        if out.len() < need_so_far {
            return Err(Error::BufferTooSmall {
                required: need_so_far + (full_len - stored_len),
            });
        }
        ec::write(full(), &mut out[ec_at..])?;
        let edk_at = ec_at + full_len + 2;
        let (head, rest) = out.split_at_mut(edk_at);
        let avail = rest.len() - tail_len;
        let ec_view = EcView::parse(&head[ec_at..ec_at + full_len]).map_err(ec::ec_err)?;
        let mut m = EncryptionMaterials {
            suite,
            ec: ec_view,
            data_key: None,
            edks: EdkWriter::new(&mut rest[..avail], edk_at),
            rng: provider,
            required_keys: required,
        };
        match cmm.get_encryption_materials(&mut m) {
            Err(Error::BufferTooSmall { required: r }) => {
                return Err(Error::BufferTooSmall {
                    required: r + tail_len,
                });
            }
            r => r?,
        }
        let data_key = m.data_key.take().ok_or(KeyringError::NoDataKeyGenerated)?;
        if data_key.as_bytes().len() != suite.key_len() {
            return Err(KeyringError::DataKeyLength.into());
        }
        let edk_count = m.edks.count();
        let edks_len = m.edks.len();
        drop(m);
        if edk_count == 0 {
            return Err(KeyringError::NoEncryptedDataKey.into());
        }
        if let Some(max) = self.cfg.max_encrypted_data_keys {
            if edk_count > max {
                return Err(PolicyViolation::TooManyEncryptedDataKeys { max }.into());
            }
        }

        // Drop the required pairs from the stored context and close the gap.
        let edk_at = if stored_len != full_len {
            let old = edk_at;
            ec::write(stored(), &mut out[ec_at..])?;
            let new = ec_at + stored_len + 2;
            out.copy_within(old..old + edks_len, new);
            new
        } else {
            edk_at
        };
        out[ec_at - 2..ec_at].copy_from_slice(&(stored_len as u16).to_be_bytes());
        out[edk_at - 2..edk_at].copy_from_slice(&edk_count.to_be_bytes());
        let mut at = edk_at + edks_len;

        let mut commit = Zeroizing::new([0u8; 32]);
        let key = body::derive_key(
            provider,
            suite,
            data_key.as_bytes(),
            &message_id[..mid_len],
            KdfVariant::Standard,
            &mut commit,
        )?;
        drop(data_key);

        out[at] = 2; // framed
        at += 1;
        if version == 1 {
            out[at..at + 4].fill(0);
            out[at + 4] = 12;
            at += 5;
        }
        out[at..at + 4].copy_from_slice(&self.frame_len.to_be_bytes());
        at += 4;
        if suite.is_committing() {
            out[at..at + 32].copy_from_slice(&commit[..]);
            at += 32;
        }
        let body_len = at;
        if version == 1 {
            out[at..at + 12].fill(0);
            at += 12;
        }
        let tag = {
            let header_body = &out[..body_len];
            key.gmac(&[0u8; 12], &mut |sink| {
                sink(header_body);
                ec::feed(full().filter(|(k, _)| is_required(required, k)), sink);
            })?
        };
        out[at..at + 16].copy_from_slice(&tag);
        at += 16;
        if let Some(s) = signer.as_mut() {
            s.hasher.update(&out[..at]);
        }
        Ok((
            at,
            Body {
                key,
                message_id,
                next_seq: 1,
                signer,
            },
        ))
    }

    fn body(&mut self) -> Result<&mut Body<P>, Error> {
        match &mut self.state {
            State::Body(b) => Ok(b),
            State::Failed(e) => Err(*e),
            _ => Err(ApiMisuse::WrongState.into()),
        }
    }

    /// Encrypts one regular frame of exactly `frame_length` bytes into `out`; returns the
    /// bytes written (`frame_length + 32`).
    ///
    /// # Errors
    /// [`ApiMisuse::FrameSize`], [`Error::BufferTooSmall`], [`Malformed::TooManyFrames`].
    pub fn seal_frame(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let frame_len = self.frame_len as usize;
        let mid_len = self.suite.message_id_len();
        let b = self.body()?;
        if plaintext.len() != frame_len {
            return Err(ApiMisuse::FrameSize.into());
        }
        let need = frame_len + body::REGULAR_FRAME_OVERHEAD;
        if out.len() < need {
            return Err(Error::BufferTooSmall { required: need });
        }
        if b.next_seq == u32::MAX {
            let e = Error::Malformed {
                offset: 0,
                kind: Malformed::TooManyFrames,
            };
            return self.poison(Err(e));
        }
        let seq = b.next_seq;
        let iv = body::frame_iv(seq);
        out[..4].copy_from_slice(&seq.to_be_bytes());
        out[4..16].copy_from_slice(&iv);
        let ct = &mut out[16..16 + frame_len];
        let mut aad = [0u8; 96];
        let n = body::body_aad(
            &b.message_id[..mid_len],
            BodyKind::Regular,
            seq,
            frame_len as u64,
            &mut aad,
        );
        let r = b.key.seal_to(&iv, &aad[..n], plaintext, ct);
        let tag = match r {
            Ok(t) => t,
            Err(e) => return self.poison(Err(e.into())),
        };
        out[16 + frame_len..need].copy_from_slice(&tag);
        if let Some(s) = b.signer.as_mut() {
            s.hasher.update(&out[..need]);
        }
        b.next_seq += 1;
        Ok(need)
    }

    /// Bytes [`finish`](Self::finish) writes for a last chunk of `last_len` bytes.
    pub fn finish_len(&self, last_len: usize) -> usize {
        last_len + body::FINAL_FRAME_OVERHEAD + body::footer_len(self.suite.signature())
    }

    /// Encrypts the final frame (`0..=frame_length` bytes) and writes the footer; returns the
    /// bytes written.
    ///
    /// # Errors
    /// [`ApiMisuse::FrameSize`], [`Error::BufferTooSmall`], crypto failures.
    pub fn finish(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let frame_len = self.frame_len as usize;
        let mid_len = self.suite.message_id_len();
        let need = self.finish_len(plaintext.len());
        let b = self.body()?;
        if plaintext.len() > frame_len {
            return Err(ApiMisuse::FrameSize.into());
        }
        if out.len() < need {
            return Err(Error::BufferTooSmall { required: need });
        }
        let seq = b.next_seq;
        let iv = body::frame_iv(seq);
        let len = plaintext.len();
        out[..4].copy_from_slice(&body::FINAL_FRAME_MARKER.to_be_bytes());
        out[4..8].copy_from_slice(&seq.to_be_bytes());
        out[8..20].copy_from_slice(&iv);
        out[20..24].copy_from_slice(&(len as u32).to_be_bytes());
        let mut aad = [0u8; 96];
        let n = body::body_aad(
            &b.message_id[..mid_len],
            BodyKind::Final,
            seq,
            len as u64,
            &mut aad,
        );
        let tag = match b
            .key
            .seal_to(&iv, &aad[..n], plaintext, &mut out[24..24 + len])
        {
            Ok(t) => t,
            Err(e) => return self.poison(Err(e.into())),
        };
        let frame_end = 24 + len + 16;
        out[24 + len..frame_end].copy_from_slice(&tag);
        let mut at = frame_end;
        if let Some(s) = b.signer.take() {
            let Signer {
                alg,
                mut hasher,
                private,
            } = s;
            hasher.update(&out[..frame_end]);
            let mut digest = [0u8; 64];
            let dl = hasher.finalize_into(&mut digest);
            let sig_out = &mut out[at + 2..];
            let r = self.provider.sign_digest(
                alg,
                &private[..alg.scalar_len()],
                &digest[..dl],
                sig_out,
            );
            digest.zeroize();
            let sl = match r {
                Ok(n) => n,
                Err(e) => return self.poison(Err(e.into())),
            };
            out[at..at + 2].copy_from_slice(&(sl as u16).to_be_bytes());
            at += 2 + sl;
        }
        self.state = State::Done;
        Ok(at)
    }
}

/// The exact length of the message [`encrypt`] writes for a plaintext of `plaintext_len`
/// bytes, when the keyring can tell its EDK sizes in advance
/// ([`Keyring::encrypted_data_keys_len`](crate::Keyring::encrypted_data_keys_len)); a
/// `const`-friendly building block is [`ciphertext_len`].
///
/// # Errors
/// Policy violations as [`encrypt`]; [`KeyringError::Other`] when the keyring cannot tell.
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
        ec_len += 4 + PUBLIC_KEY_EC_KEY.len() + sig.public_key_b64_len();
        any = true;
    }
    if any {
        ec_len += 2;
    }
    if ec_len > 0xFFFF {
        return Err(ec::ec_err(crate::error::EcError::TooLarge));
    }
    let (_, edks_len) = cmm
        .encrypted_data_keys_len(suite)
        .ok_or(KeyringError::Other(
            "the keyring cannot tell its EDK length in advance",
        ))?;
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

fn encrypt_frames<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &mut [(&str, &str)],
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let mut enc = Encryptor::new(cfg, provider, opts)?;
    let mut at = enc.write_header(cmm, encryption_context, out)?;
    let f = opts.frame_length as usize;
    let regular = if plaintext.is_empty() {
        0
    } else {
        (plaintext.len() - 1) / f
    };
    for chunk in plaintext[..regular * f].chunks_exact(f) {
        at += enc.seal_frame(chunk, &mut out[at..])?;
    }
    at += enc.finish(&plaintext[regular * f..], &mut out[at..])?;
    Ok(at)
}
