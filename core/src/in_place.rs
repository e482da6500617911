//! One buffer for a whole message: [`decrypt_in_place`] turns the ciphertext in `buf` into
//! the plaintext at the start of the same `buf`, and [`encrypt_in_place`] the plaintext at
//! the start of `buf` into the message, so that firmware needs one message-sized buffer, not
//! two.
//!
//! The walk is the engine's frame API ([`crate::frames`]) over one slice: the header is
//! processed from `buf` ([`Decryptor::process_with`]); then each unit is located
//! ([`Decryptor::next_frame`]), given back for the signature hash while it is still
//! ciphertext ([`Decryptor::absorb_frame`]: the hash is over the message as received), opened
//! in place ([`FrameCipher::open_in_place`](crate::FrameCipher::open_in_place)), and its
//! plaintext moved down to follow the plaintext of the frames before it. A signed message's
//! footer is verified after the final frame ([`Decryptor::verify_footer`]).
//!
//! ```text
//!  buf before: [ header | 16 iv₁ c₁ tag₁ | 16 iv₂ c₂ tag₂ | 24 … cₙ tagₙ | footer ]
//!  buf after:  [ p₁ p₂ … pₙ | zeros and what is left of the frame headers, tags, footer ]
//! ```
//!
//! The plaintext never gets ahead of the ciphertext: frame k's plaintext goes to where the
//! header and the first k frames' overhead were, which the engine has consumed.
//!
//! Encryption runs the other way: the plaintext is moved to the end of the message's place,
//! the header written before it, and each frame's plaintext moved down to its content's place
//! and sealed there ([`Encryptor::seal_in_place`]); a frame never reaches the plaintext still
//! to seal, since the overhead of the frames before it is less than the whole body's. Front
//! ends that fill frames themselves (a sensor writing into the content's place) use
//! [`Encryptor::seal_in_place`] or [`Encryptor::seal_detached`](crate::Encryptor::seal_detached)
//! directly.

use zeroize::Zeroize;

use crate::body::{FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD};
use crate::config::{Config, EncryptOptions};
use crate::decrypt::{Decryptor, Status};
use crate::encrypt::{Encryptor, encrypted_len};
use crate::error::{ApiMisuse, Error};
use crate::frames::Located;
use crate::header::{ContentType, Header};
use crate::keyring::CryptoMaterialsManager;
use crate::provider::CryptoProvider;
use crate::suite::AlgorithmSuite;

/// The result of [`decrypt_in_place`]: the plaintext is `buf[..plaintext_len]`. The header
/// facts are copied out, since the header's bytes in `buf` are overwritten by the plaintext
/// (see [`Decryptor::decrypt_all_in_place`] to look at the encryption context before that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecryptedInPlace {
    /// Length of the plaintext, now at the start of `buf`.
    pub plaintext_len: usize,
    /// The message's algorithm suite.
    pub suite: AlgorithmSuite,
    /// Framed, or the legacy non-framed body.
    pub content_type: ContentType,
    /// The frame length (0 for a non-framed message).
    pub frame_length: u32,
    /// Length of the header at the start of the message.
    pub header_len: usize,
    /// Units of the body: frames (the final one included), or 1 for a non-framed body.
    pub frames: u32,
    /// Key comparisons of the encryption-context checks
    /// ([`Decryptor::context_comparisons`]).
    pub context_comparisons: u64,
    message_id: [u8; 32],
    message_id_len: u8,
}

impl DecryptedInPlace {
    /// The message id (16 bytes for message format 1, 32 for format 2).
    pub fn message_id(&self) -> &[u8] {
        &self.message_id[..usize::from(self.message_id_len)]
    }
}

/// Decrypts the whole message in `buf` in place: on success the plaintext is
/// `buf[..plaintext_len]` of the result (the rest of `buf` holds zeros and what is left of the
/// frame headers, tags and footer). One buffer, no heap.
///
/// Release rule: nothing counts as released until every check passed, the signature of a
/// signed suite included; on any error, every byte of `buf` that held plaintext is zeroed
/// (the plaintext is only ever in `buf[..n]` for the `n` bytes opened so far, and those are
/// zeroed; the frame being opened is zeroed by its failing tag check), and the rest of `buf`
/// keeps ciphertext or zeros.
///
/// `scratch` is for the materials step, which assembles the full encryption context in
/// canonical form when `reproduced_context` adds pairs the message does not store (required
/// encryption context), or when the stored context arrived unsorted. No part of `buf` is free
/// then (it holds the whole message, all of which is still to be read), so this scratch is
/// separate: `&mut []` suffices for every message whose stored context is canonical when the
/// reproduced context adds nothing (every message the ESDKs write, decrypted without a required
/// context). The only [`Error::BufferTooSmall`] this returns is about `scratch`:
/// `required` is the scratch length needed, nothing was written to `buf`, and a call with that
/// much scratch goes on. With a scratch of 2 bytes per reproduced pair (plus 2 per stored
/// pair when the stored context arrived unsorted) or more, the context checks are
/// O(n log n) comparisons; with less, they take the bounded path ([`Decryptor`]'s
/// contract). The scratch holds no secret.
///
/// # Errors
/// The errors of the two-buffer [`decrypt`](crate::decrypt()), the same for the same
/// message ([`Error::Truncated`] at the end of `buf`, [`Error::TrailingBytes`] included);
/// [`Error::BufferTooSmall`] for `scratch` only.
// Never inlined: the decryptor's state lives in this frame, not in the caller's.
#[inline(never)]
pub fn decrypt_in_place<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    buf: &mut [u8],
    scratch: &mut [u8],
) -> Result<DecryptedInPlace, Error> {
    Decryptor::new(cfg, provider, reproduced_context).decrypt_all_in_place(
        cmm,
        buf,
        scratch,
        |_| Ok(()),
    )
}

impl<P: CryptoProvider> Decryptor<'_, P> {
    /// [`decrypt_in_place`] for a decryptor configured first (an attempt observer), with a
    /// look at the header before its bytes are overwritten: `inspect` sees the parsed header
    /// (the stored encryption context, the EDKs) once it is complete and its policies passed,
    /// before the data key is asked for and before any plaintext is written; an error from it
    /// ends the call (nothing was written to `buf`). The header is not authenticated yet
    /// when `inspect` runs: whatever it records counts only if this call returns `Ok`.
    ///
    /// # Errors
    /// As [`decrypt_in_place`]; `inspect`'s error.
    pub fn decrypt_all_in_place<M: CryptoMaterialsManager + ?Sized>(
        mut self,
        cmm: &M,
        buf: &mut [u8],
        scratch: &mut [u8],
        inspect: impl FnOnce(&Header<'_>) -> Result<(), Error>,
    ) -> Result<DecryptedInPlace, Error> {
        let mut facts = self.header_in_place(cmm, buf, scratch, inspect)?;
        let mut written = 0usize;
        match self.body_in_place(buf, facts.header_len, &mut written) {
            Ok(frames) => {
                facts.plaintext_len = written;
                facts.frames = frames;
                facts.context_comparisons = self.context_comparisons();
                Ok(facts)
            }
            Err(e) => {
                // Only `buf[..written]` holds plaintext (see `body_in_place`).
                buf[..written].zeroize();
                Err(e)
            }
        }
    }

    /// The header step over `buf`: parse, policies, `inspect`, data key, header tag. Writes
    /// nothing to `buf`.
    fn header_in_place<M: CryptoMaterialsManager + ?Sized>(
        &mut self,
        cmm: &M,
        buf: &[u8],
        scratch: &mut [u8],
        inspect: impl FnOnce(&Header<'_>) -> Result<(), Error>,
    ) -> Result<DecryptedInPlace, Error> {
        let truncated = Error::Truncated { offset: buf.len() };
        match self.process(buf, scratch)?.status {
            Status::NeedDataKey => {}
            Status::NeedInput { .. } => return Err(truncated),
            // A fresh decryptor stops at the data key; one that was driven before is misused.
            _ => return Err(ApiMisuse::WrongState.into()),
        }
        let h = self.header(buf)?;
        inspect(&h)?;
        let mut facts = DecryptedInPlace {
            plaintext_len: 0,
            suite: h.suite,
            content_type: h.content_type,
            frame_length: h.frame_length,
            header_len: h.bytes.len(),
            frames: 0,
            context_comparisons: 0,
            message_id: [0; 32],
            message_id_len: h.message_id.len() as u8,
        };
        facts.message_id[..h.message_id.len()].copy_from_slice(h.message_id);
        // Resolves the data key with `cmm` and authenticates the header.
        match self.process_with(cmm, buf, scratch)?.status {
            Status::Header => Ok(facts),
            _ => Err(ApiMisuse::WrongState.into()),
        }
    }

    /// The body of `buf` after the header (`pos`): each unit located, absorbed as ciphertext,
    /// opened in place and its plaintext moved to `buf[*written..]`. Invariant: between units,
    /// plaintext is only in `buf[..*written]` (the bytes a move leaves behind are zeroed at
    /// once), so a caller that zeroes that on error leaves none. Returns the units opened.
    fn body_in_place(
        &mut self,
        buf: &mut [u8],
        mut pos: usize,
        written: &mut usize,
    ) -> Result<u32, Error> {
        let mut frames = 0u32;
        loop {
            let slot = match self.next_frame(&buf[pos..])? {
                Located::Frame(s) => s,
                Located::NeedInput { .. } => return Err(Error::Truncated { offset: buf.len() }),
            };
            // `next_frame` checked that `buf[pos..]` holds the unit (frame and footer).
            let frame = pos..pos + slot.frame_len();
            self.absorb_frame(&slot, &buf[frame.clone()])?;
            // On failure the content is zeroed by the open itself.
            self.cipher()?
                .open_in_place(&slot, &mut buf[frame.clone()])?;
            let src = pos + slot.prefix_len();
            let len = slot.content_len();
            // `*written <= src`: the header and every frame's overhead lie behind.
            buf.copy_within(src..src + len, *written);
            let end = *written + len;
            buf[end.max(src)..src + len].zeroize();
            *written = end;
            frames += 1;
            if slot.is_final() {
                self.verify_footer(&buf[frame.end..pos + slot.unit_len()])?;
                pos += slot.unit_len();
                return if pos == buf.len() {
                    Ok(frames)
                } else {
                    Err(Error::TrailingBytes { offset: pos })
                };
            }
            pos += slot.unit_len();
        }
    }
}

/// Encrypts the `plaintext_len` bytes at the start of `buf` in place and returns the message
/// length: the message is then `buf[..n]`, byte for byte what [`encrypt`](crate::encrypt())
/// writes with the same RNG. `buf` must hold the whole message ([`encrypted_len`], which the
/// keyring must be able to tell: [`KeyringError::EdkLengthUnknown`] otherwise).
///
/// `encryption_context` is sorted in place, as by [`encrypt`](crate::encrypt()).
///
/// # Errors
/// As [`encrypt`](crate::encrypt()); [`Error::BufferTooSmall`] (the message's length) when
/// `buf` is shorter than the message: nothing was changed. After any error of the header step (policy, keyring) the plaintext is back at
/// `buf[..plaintext_len]` and the rest of the message's place zeroed; after an error while
/// the frames are sealed (a provider failure) the message's place is zeroed, plaintext
/// included.
///
/// [`KeyringError::EdkLengthUnknown`]: crate::error::KeyringError::EdkLengthUnknown
// Never inlined: the encryptor's state lives in this frame, not in the caller's.
#[inline(never)]
pub fn encrypt_in_place<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &mut [(&str, &str)],
    buf: &mut [u8],
    plaintext_len: usize,
) -> Result<usize, Error> {
    let n = plaintext_len;
    let total = encrypted_len(cfg, opts, cmm, encryption_context, n)?;
    if buf.len() < total {
        return Err(Error::BufferTooSmall { required: total });
    }
    let opts = EncryptOptions {
        plaintext_len: Some(n as u64),
        ..*opts
    };
    // The plaintext waits at the end of the message's place, behind everything written before
    // its last byte is read.
    let tail = total - n;
    buf.copy_within(..n, tail);
    let buf = &mut buf[..total];
    let header = Encryptor::new(cfg, provider, &opts).and_then(|mut enc| {
        let h = enc.write_header(cmm, encryption_context, &mut buf[..tail])?;
        Ok((enc, h))
    });
    let (mut enc, at) = match header {
        Ok(x) => x,
        Err(e) => {
            // Nothing sealed: the plaintext goes back where it was.
            buf.copy_within(tail.., 0);
            buf[n..].zeroize();
            return Err(e);
        }
    };
    let r = seal_tail(&mut enc, buf, at, tail, n);
    if r.is_err() {
        buf.zeroize();
    }
    r
}

/// Seals the plaintext at `buf[tail..tail + n]` as the frames after the `at`-byte header and
/// writes the footer; returns the message length.
fn seal_tail<P: CryptoProvider>(
    enc: &mut Encryptor<'_, P>,
    buf: &mut [u8],
    mut at: usize,
    tail: usize,
    n: usize,
) -> Result<usize, Error> {
    let f = enc.frame_length() as usize;
    let regular = n.saturating_sub(1) / f;
    for i in 0..=regular {
        let last = i == regular;
        let (start, end) = (i * f, if last { n } else { (i + 1) * f });
        let (prefix, overhead) = if last {
            (FINAL_FRAME_OVERHEAD - 16, FINAL_FRAME_OVERHEAD)
        } else {
            (REGULAR_FRAME_OVERHEAD - 16, REGULAR_FRAME_OVERHEAD)
        };
        let len = end - start;
        // `at + prefix <= tail + start`: the overhead of the frames so far is less than the
        // body's, so the content moves down (or stays) and ends before the next plaintext.
        buf.copy_within(tail + start..tail + end, at + prefix);
        let frame = &mut buf[at..at + len + overhead];
        enc.seal_in_place(frame, last)?;
        at += len + overhead;
    }
    Ok(at + enc.write_footer(&mut buf[at..])?)
}
