//! Frames as independent jobs: a message body split into [`FrameSlot`]s that a
//! [`FrameCipher`] seals or opens on any thread, in any order, in the caller's buffers.
//!
//! The engine stays the only authority on the format. The [`Encryptor`](crate::Encryptor)
//! issues each frame's slot ([`Encryptor::next_frame`](crate::Encryptor::next_frame): the
//! sequence number, final or not, the content length, counted against a declared plaintext
//! length); the [`Decryptor`](crate::Decryptor) locates each received frame and checks its
//! header ([`Decryptor::next_frame`](crate::Decryptor::next_frame)). The AES-GCM work of a
//! frame depends only on the message key, the message id and the slot (the IV is the
//! sequence number), so a front end may hand slots to worker threads, each with its own
//! [`FrameCipher`] ([`Encryptor::frame_cipher`](crate::Encryptor::frame_cipher)). The message
//! hash of the signed suites is the serial part: every frame goes back to the engine in
//! order ([`Encryptor::absorb_frame`](crate::Encryptor::absorb_frame),
//! [`Decryptor::absorb_frame`](crate::Decryptor::absorb_frame)), which checks the order, and
//! the footer closes the message ([`Encryptor::write_footer`](crate::Encryptor::write_footer),
//! [`Decryptor::verify_footer`](crate::Decryptor::verify_footer)).
//!
//! The sealing and opening calls come in the three shapes of RustCrypto's `aead`: into
//! another buffer (`seal_to`, `open_to`), in place in a buffer laid out as the frame
//! (`seal_in_place`, `open_in_place`), and with the frame header and tag detached from the
//! content ([`FrameCipher::seal_detached`], [`FrameCipher::open_detached`]), so firmware
//! needs one buffer, not two.

use core::ops::Range;

use zeroize::{Zeroize, Zeroizing};

use crate::body::{self, BodyKind, IV_LEN, TAG_LEN};
use crate::error::{ApiMisuse, AuthFailure, Error, Malformed};
use crate::provider::{AeadKey, CryptoProvider};

/// One frame's place in a message: its sequence number, whether it is the final frame, its
/// content length; on decryption also where it starts in the message and the footer that
/// follows it. Issued by the engine, consumed by a [`FrameCipher`].
///
/// The frame's bytes are its header ([`prefix_len`](Self::prefix_len) bytes), the content
/// ([`content_range`](Self::content_range)) and the 16-byte tag: [`frame_len`](Self::frame_len)
/// in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSlot {
    pub(crate) kind: BodyKind,
    pub(crate) seq: u32,
    pub(crate) len: usize,
    /// Footer bytes after the frame (decryption of a signed message's final frame).
    pub(crate) footer: usize,
    /// Message offset of the frame's first byte (decryption; 0 when encrypting).
    pub(crate) offset: usize,
}

impl FrameSlot {
    /// The frame's sequence number (1 for the first frame and for a non-framed body).
    pub fn sequence(&self) -> u32 {
        self.seq
    }

    /// Whether this is the last unit of the body: the final frame, or a non-framed body.
    pub fn is_final(&self) -> bool {
        self.kind != BodyKind::Regular
    }

    /// The content (plaintext or ciphertext) length.
    pub fn content_len(&self) -> usize {
        self.len
    }

    /// Bytes of the frame header before the content: 16 for a regular frame (sequence
    /// number, IV), 24 for the final frame (marker, sequence number, IV, content length),
    /// 20 for a non-framed body (IV, content length).
    pub fn prefix_len(&self) -> usize {
        prefix_len(self.kind)
    }

    /// Where the content is in the frame's bytes.
    pub fn content_range(&self) -> Range<usize> {
        self.prefix_len()..self.prefix_len() + self.len
    }

    /// Bytes of the frame: header, content, tag.
    pub fn frame_len(&self) -> usize {
        self.prefix_len() + self.len + TAG_LEN
    }

    /// Bytes of the footer that follows the frame in the received message: the signature
    /// of a signed message after its final frame (length field included), 0 otherwise
    /// (and always 0 for slots of an encryptor, whose footer
    /// [`Encryptor::write_footer`](crate::Encryptor::write_footer) writes).
    pub fn footer_len(&self) -> usize {
        self.footer
    }

    /// Bytes this slot takes in the received message: the frame and the footer after it.
    pub fn unit_len(&self) -> usize {
        self.frame_len() + self.footer
    }

    /// Where the frame starts in the received message (decryption; 0 for an encryptor's
    /// slots). Error reports count from it.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

const fn prefix_len(kind: BodyKind) -> usize {
    match kind {
        BodyKind::Regular => 4 + IV_LEN,
        BodyKind::Final => 8 + IV_LEN + 4,
        BodyKind::NonFramed => IV_LEN + 8,
    }
}

/// Where the IV is in a frame of `kind`.
const fn iv_at(kind: BodyKind) -> usize {
    match kind {
        BodyKind::Regular => 4,
        BodyKind::Final => 8,
        BodyKind::NonFramed => 0,
    }
}

/// What [`Decryptor::next_frame`](crate::Decryptor::next_frame) found at the start of its
/// input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// The next frame (with the footer after it, for a signed message's final frame):
    /// [`FrameSlot::unit_len`] bytes of the input, now consumed.
    Frame(FrameSlot),
    /// The input must hold at least `min` bytes (counted from its start) to locate the next
    /// frame; nothing was consumed.
    NeedInput {
        /// Minimum input length.
        min: usize,
    },
}

/// A frame header and tag held apart from the content: what
/// [`FrameCipher::seal_detached`] returns. The frame is
/// [`prefix`](Self::prefix) ‖ content ‖ [`tag`](Self::tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedFrame {
    prefix: [u8; 24],
    prefix_len: u8,
    tag: [u8; TAG_LEN],
}

impl SealedFrame {
    /// The frame header, to send before the content.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[..usize::from(self.prefix_len)]
    }

    /// The AES-GCM tag, to send after the content.
    pub fn tag(&self) -> &[u8; TAG_LEN] {
        &self.tag
    }
}

/// The body key of one message with its id: seals and opens the frames of [`FrameSlot`]s
/// through `&self`, so that threads can share it (when the provider's key type is `Sync`)
/// or each hold their own ([`Encryptor::frame_cipher`](crate::Encryptor::frame_cipher)).
/// `Debug` shows no key material.
pub struct FrameCipher<K: AeadKey> {
    key: K,
    message_id: [u8; 32],
    mid_len: u8,
}

impl<K: AeadKey> core::fmt::Debug for FrameCipher<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameCipher")
            .field("message_id_len", &self.mid_len)
            .finish_non_exhaustive()
    }
}

impl<K: AeadKey> FrameCipher<K> {
    pub(crate) fn new(key: K, message_id: &[u8]) -> Self {
        let mut id = [0u8; 32];
        id[..message_id.len()].copy_from_slice(message_id);
        Self {
            key,
            message_id: id,
            mid_len: message_id.len() as u8,
        }
    }

    /// The key.
    pub(crate) fn key(&self) -> &K {
        &self.key
    }

    /// The message id.
    pub(crate) fn message_id(&self) -> &[u8] {
        &self.message_id[..usize::from(self.mid_len)]
    }

    /// The body AAD of `slot` (message id, content string, sequence number, length).
    fn aad<'b>(&self, slot: &FrameSlot, buf: &'b mut [u8; 96]) -> &'b [u8] {
        let mid = &self.message_id[..usize::from(self.mid_len)];
        let n = body::body_aad(mid, slot.kind, slot.seq, slot.len as u64, buf);
        &buf[..n]
    }

    /// Checks that a buffer of `len` bytes fits the slot's `want` bytes exactly.
    fn fits(len: usize, want: usize) -> Result<(), Error> {
        match len.cmp(&want) {
            core::cmp::Ordering::Less => Err(Error::BufferTooSmall { required: want }),
            core::cmp::Ordering::Equal => Ok(()),
            core::cmp::Ordering::Greater => Err(ApiMisuse::FrameSize.into()),
        }
    }

    /// The frame header of `slot` as the encryptor writes it.
    fn prefix(slot: &FrameSlot) -> SealedFrame {
        let mut p = [0u8; 24];
        let iv = body::frame_iv(slot.seq);
        let seq = slot.seq.to_be_bytes();
        match slot.kind {
            BodyKind::Regular => {
                p[..4].copy_from_slice(&seq);
                p[4..16].copy_from_slice(&iv);
            }
            BodyKind::Final => {
                p[..4].copy_from_slice(&body::FINAL_FRAME_MARKER.to_be_bytes());
                p[4..8].copy_from_slice(&seq);
                p[8..20].copy_from_slice(&iv);
                p[20..24].copy_from_slice(&(slot.len as u32).to_be_bytes());
            }
            BodyKind::NonFramed => {
                p[..12].copy_from_slice(&iv);
                p[12..20].copy_from_slice(&(slot.len as u64).to_be_bytes());
            }
        }
        SealedFrame {
            prefix: p,
            prefix_len: prefix_len(slot.kind) as u8,
            tag: [0; TAG_LEN],
        }
    }

    /// Encrypts the content of `slot` in place (`content` holds exactly
    /// [`FrameSlot::content_len`] bytes of plaintext) and returns the frame header and tag
    /// that go around it: the `AeadInPlace` shape, for callers that send the three pieces
    /// (or give them to [`Encryptor::absorb_frame_parts`](crate::Encryptor::absorb_frame_parts))
    /// without assembling the frame.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] / [`ApiMisuse::FrameSize`] when `content` is not the slot's
    /// length; [`Error::Crypto`] when the provider fails.
    pub fn seal_detached(
        &self,
        slot: &FrameSlot,
        content: &mut [u8],
    ) -> Result<SealedFrame, Error> {
        Self::fits(content.len(), slot.len)?;
        let mut sealed = Self::prefix(slot);
        let mut aad = [0u8; 96];
        sealed.tag =
            self.key
                .seal_in_place(&body::frame_iv(slot.seq), self.aad(slot, &mut aad), content)?;
        Ok(sealed)
    }

    /// Seals the frame of `slot` in place: `frame` is [`FrameSlot::frame_len`] bytes whose
    /// [`content_range`](FrameSlot::content_range) holds the plaintext; the header and the tag
    /// are written around it.
    ///
    /// # Errors
    /// As [`seal_detached`](Self::seal_detached), for `frame`'s length.
    pub fn seal_in_place(&self, slot: &FrameSlot, frame: &mut [u8]) -> Result<(), Error> {
        Self::fits(frame.len(), slot.frame_len())?;
        let range = slot.content_range();
        let sealed = self.seal_detached(slot, &mut frame[range.clone()])?;
        frame[..range.start].copy_from_slice(sealed.prefix());
        frame[range.end..].copy_from_slice(&sealed.tag);
        Ok(())
    }

    /// Seals `plaintext` (the slot's content) into `frame`, which must hold at least
    /// [`FrameSlot::frame_len`] bytes; returns that length.
    ///
    /// # Errors
    /// As [`seal_detached`](Self::seal_detached).
    pub fn seal_to(
        &self,
        slot: &FrameSlot,
        plaintext: &[u8],
        frame: &mut [u8],
    ) -> Result<usize, Error> {
        Self::fits(plaintext.len(), slot.len)?;
        let n = slot.frame_len();
        let frame = frame
            .get_mut(..n)
            .ok_or(Error::BufferTooSmall { required: n })?;
        let range = slot.content_range();
        let sealed = Self::prefix(slot);
        let mut aad = [0u8; 96];
        let tag = self.key.seal_to(
            &body::frame_iv(slot.seq),
            self.aad(slot, &mut aad),
            plaintext,
            &mut frame[range.clone()],
        )?;
        frame[..range.start].copy_from_slice(sealed.prefix());
        frame[range.end..].copy_from_slice(&tag);
        Ok(n)
    }

    /// The IV of a received frame, checked against the one its sequence number fixes.
    fn check_iv(slot: &FrameSlot, prefix: &[u8]) -> Result<[u8; IV_LEN], Error> {
        let at = iv_at(slot.kind);
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&prefix[at..at + IV_LEN]);
        if slot.kind != BodyKind::NonFramed && iv != body::frame_iv(slot.seq) {
            return Err(Error::Malformed {
                offset: slot.offset + at,
                kind: Malformed::FrameIv { sequence: slot.seq },
            });
        }
        Ok(iv)
    }

    fn auth_failure(slot: &FrameSlot) -> Error {
        Error::Authentication(match slot.kind {
            BodyKind::NonFramed => AuthFailure::NonFramedTag,
            _ => AuthFailure::FrameTag { sequence: slot.seq },
        })
    }

    /// Opens a received frame whose header and tag are apart from its content: `prefix` is
    /// the frame header as received ([`FrameSlot::prefix_len`] bytes), `content` the
    /// ciphertext, decrypted in place. On failure `content` is zeroed.
    ///
    /// # Errors
    /// [`Malformed::FrameIv`] when the IV is not the one of the sequence number;
    /// [`Error::Authentication`] when the tag does not verify; [`Error::BufferTooSmall`] /
    /// [`ApiMisuse::FrameSize`] for pieces of other lengths than the slot's.
    pub fn open_detached(
        &self,
        slot: &FrameSlot,
        prefix: &[u8],
        content: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        Self::fits(prefix.len(), slot.prefix_len())?;
        Self::fits(content.len(), slot.len)?;
        let iv = Self::check_iv(slot, prefix)?;
        let mut aad = [0u8; 96];
        if self
            .key
            .open_in_place(&iv, self.aad(slot, &mut aad), content, tag)
            .is_err()
        {
            content.zeroize();
            return Err(Self::auth_failure(slot));
        }
        Ok(())
    }

    /// Opens the received frame of `slot` in place: `frame` is its
    /// [`FrameSlot::frame_len`] bytes; on success the
    /// [`content_range`](FrameSlot::content_range) holds the plaintext, on failure zeros.
    ///
    /// # Errors
    /// As [`open_detached`](Self::open_detached).
    pub fn open_in_place(&self, slot: &FrameSlot, frame: &mut [u8]) -> Result<(), Error> {
        Self::fits(frame.len(), slot.frame_len())?;
        let range = slot.content_range();
        let (prefix, rest) = frame.split_at_mut(range.start);
        let (content, tag) = rest.split_at_mut(slot.len);
        // The tag by reference: the provider reads it after the content (see `open_to`).
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| ApiMisuse::FrameSize)?;
        self.open_detached(slot, prefix, content, tag)
    }

    /// Opens the received frame of `slot` (`frame`: its [`FrameSlot::frame_len`] bytes) into
    /// `out`, which must hold [`FrameSlot::content_len`] bytes; returns that length. On
    /// failure `out` is zeroed up to that length.
    ///
    /// # Errors
    /// As [`open_detached`](Self::open_detached).
    pub fn open_to(&self, slot: &FrameSlot, frame: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        Self::fits(frame.len(), slot.frame_len())?;
        let out = out
            .get_mut(..slot.len)
            .ok_or(Error::BufferTooSmall { required: slot.len })?;
        let range = slot.content_range();
        let iv = Self::check_iv(slot, &frame[..range.start])?;
        // The tag by reference, not copied here: it is after the content, so for a frame of
        // a few KiB it is on another page than the header, and loading it before the content
        // stalls on a cache (and TLB) miss per frame; the provider reads it after the
        // content, by when it is in cache.
        let tag: &[u8; TAG_LEN] = frame[range.end..]
            .try_into()
            .map_err(|_| ApiMisuse::FrameSize)?;
        let mut aad = [0u8; 96];
        let aad = self.aad(slot, &mut aad);
        if self.key.open_to(&iv, aad, &frame[range], tag, out).is_err() {
            out.zeroize();
            return Err(Self::auth_failure(slot));
        }
        Ok(slot.len)
    }
}

/// The message key's bytes, kept (zeroized on drop) so that the engine can hand out more
/// [`FrameCipher`]s of the same key: one per worker thread. (A clone is zeroized on drop
/// too.)
#[derive(Clone, Default)]
pub(crate) struct KeyBytes {
    bytes: Zeroizing<[u8; 32]>,
    len: u8,
}

impl KeyBytes {
    /// Zeroizes the key where it is (before the value is dropped).
    pub(crate) fn wipe(&mut self) {
        self.bytes.zeroize();
    }

    pub(crate) fn new(key: &[u8]) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes[..key.len()].copy_from_slice(key);
        Self {
            bytes,
            len: key.len() as u8,
        }
    }

    /// The key's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// A new cipher of this key for the message `message_id`.
    pub(crate) fn cipher<P: CryptoProvider>(
        &self,
        provider: &P,
        message_id: &[u8],
    ) -> Result<FrameCipher<P::Aead>, Error> {
        Ok(FrameCipher::new(self.aead_key(provider)?, message_id))
    }

    /// The provider's AEAD key of these bytes. Never inlined: the key schedule's temporaries
    /// stay in this frame, out of the engine's (firmware stacks).
    #[inline(never)]
    pub(crate) fn aead_key<P: CryptoProvider>(&self, provider: &P) -> Result<P::Aead, Error> {
        Ok(provider.aead_key(&self.bytes[..usize::from(self.len)])?)
    }
}

/// The order the engine expects frames back in ([`Encryptor::absorb_frame`],
/// [`Decryptor::absorb_frame`]), shared by both directions.
///
/// [`Encryptor::absorb_frame`]: crate::Encryptor::absorb_frame
/// [`Decryptor::absorb_frame`]: crate::Decryptor::absorb_frame
#[derive(Debug, Clone, Copy)]
pub(crate) struct Absorbed {
    /// The sequence number of the next frame to absorb.
    pub(crate) next: u32,
    /// The final frame was absorbed.
    pub(crate) done: bool,
}

impl Absorbed {
    pub(crate) const fn new() -> Self {
        Self {
            next: 1,
            done: false,
        }
    }

    /// Checks that `slot` is the next frame and that `len` bytes are its frame; records it.
    pub(crate) fn take(&mut self, slot: &FrameSlot, len: usize) -> Result<(), Error> {
        if self.done || slot.seq != self.next || len != slot.frame_len() {
            return Err(ApiMisuse::FrameOrder.into());
        }
        if slot.is_final() {
            self.done = true;
        } else {
            self.next = self.next.wrapping_add(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CryptoError;
    use crate::provider::RandomSource;
    use crate::rustcrypto::RustCrypto;

    /// The ciphers under test draw no randomness.
    struct NoRng;
    impl RandomSource for NoRng {
        fn fill_random(&self, _: &mut [u8]) -> Result<(), CryptoError> {
            Err(CryptoError::Rng)
        }
    }

    fn cipher() -> FrameCipher<<RustCrypto<NoRng> as CryptoProvider>::Aead> {
        let p = RustCrypto::new(NoRng);
        KeyBytes::new(&[7u8; 32]).cipher(&p, &[9u8; 32]).unwrap()
    }

    fn slot(kind: BodyKind, seq: u32, len: usize) -> FrameSlot {
        FrameSlot {
            kind,
            seq,
            len,
            footer: 0,
            offset: 100,
        }
    }

    #[test]
    fn the_three_shapes_write_the_same_frame() {
        let c = cipher();
        for s in [
            slot(BodyKind::Regular, 3, 40),
            slot(BodyKind::Final, 4, 7),
            slot(BodyKind::NonFramed, 1, 33),
        ] {
            let pt: [u8; 40] = core::array::from_fn(|i| i as u8);
            let pt = &pt[..s.len];
            let mut a = [0u8; 80];
            let n = c.seal_to(&s, pt, &mut a).unwrap();
            assert_eq!(n, s.frame_len());
            let mut b = [0u8; 80];
            b[s.content_range()].copy_from_slice(pt);
            c.seal_in_place(&s, &mut b[..n]).unwrap();
            assert_eq!(a[..n], b[..n]);
            let mut content = [0u8; 40];
            content[..s.len].copy_from_slice(pt);
            let d = c.seal_detached(&s, &mut content[..s.len]).unwrap();
            assert_eq!(d.prefix(), &a[..s.prefix_len()]);
            assert_eq!(&content[..s.len], &a[s.content_range()]);
            assert_eq!(d.tag(), &a[s.content_range().end..n]);
            // and back, in each shape
            let mut out = [0u8; 40];
            assert_eq!(c.open_to(&s, &a[..n], &mut out).unwrap(), s.len);
            assert_eq!(&out[..s.len], pt);
            c.open_in_place(&s, &mut b[..n]).unwrap();
            assert_eq!(&b[s.content_range()], pt);
            c.open_detached(&s, d.prefix(), &mut content[..s.len], d.tag())
                .unwrap();
            assert_eq!(&content[..s.len], pt);
        }
    }

    #[test]
    fn opening_checks_iv_and_tag_and_wipes() {
        let c = cipher();
        let s = slot(BodyKind::Regular, 2, 8);
        let mut f = [0u8; 40];
        c.seal_to(&s, b"secret!!", &mut f).unwrap();
        let mut bad = f;
        bad[15] ^= 1; // last IV byte
        assert_eq!(
            c.open_in_place(&s, &mut bad),
            Err(Error::Malformed {
                offset: 104,
                kind: Malformed::FrameIv { sequence: 2 }
            })
        );
        let mut bad = f;
        bad[39] ^= 1; // tag
        let mut out = [0xAAu8; 8];
        assert_eq!(
            c.open_to(&s, &bad, &mut out),
            Err(Error::Authentication(AuthFailure::FrameTag { sequence: 2 }))
        );
        assert_eq!(out, [0; 8]);
        assert_eq!(
            c.open_in_place(&s, &mut bad),
            Err(Error::Authentication(AuthFailure::FrameTag { sequence: 2 }))
        );
        assert_eq!(bad[16..24], [0; 8]);
        // the slot's lengths are enforced both ways
        assert_eq!(
            c.open_in_place(&s, &mut f[..39]),
            Err(Error::BufferTooSmall { required: 40 })
        );
        let mut long = [0u8; 41];
        assert_eq!(
            c.seal_in_place(&s, &mut long),
            Err(ApiMisuse::FrameSize.into())
        );
    }

    #[test]
    fn absorbed_frames_must_come_in_order() {
        let mut a = Absorbed::new();
        let s1 = slot(BodyKind::Regular, 1, 4);
        let s2 = slot(BodyKind::Final, 2, 1);
        assert_eq!(
            a.take(&s2, s2.frame_len()),
            Err(ApiMisuse::FrameOrder.into())
        );
        assert_eq!(a.take(&s1, 3), Err(ApiMisuse::FrameOrder.into()));
        a.take(&s1, s1.frame_len()).unwrap();
        a.take(&s2, s2.frame_len()).unwrap();
        assert!(a.done);
        assert_eq!(
            a.take(&s2, s2.frame_len()),
            Err(ApiMisuse::FrameOrder.into())
        );
    }
}
