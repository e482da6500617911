//! Random access to a framed message: the frames that hold a plaintext range, where they are
//! in the message, and each one opened on its own, so that a part of a large message is
//! decrypted without the frames before it.
//!
//! Every frame of a framed message is authenticated on its own (its IV is its sequence
//! number, its AAD holds the message id, its sequence number and its length), and the frame
//! length is in the authenticated header; so the message length alone fixes where every
//! frame is. The walk:
//!
//! ```text
//! Decryptor: header … Status::Header
//!   random_access(message_len, opts) ──► Layout          arithmetic only, nothing trusted
//!     Layout::final_frame() : where the final frame is   read those bytes
//!     Layout::verify_final(final frame bytes) ──► RandomAccess
//!   RandomAccess::map().frames_for(range) ──► FrameSpan*  which frames, where, which bytes
//!   RandomAccess::open_frame(seq, frame bytes, out)       any frame, any order, any thread
//! ```
//!
//! # Why the final frame first
//! A frame's tag proves the frame, not the message around it: a message cut after frame 3,
//! or with frames appended, still holds valid frames 1 to 3. The final frame is what ends a
//! message, and the message length is what put it where [`Layout`] looked: only when the
//! final frame opens there (marker, sequence number, declared length, IV, tag) is the
//! message known to be neither truncated nor extended, whole frames or single bytes. So the
//! type that opens frames, [`RandomAccess`], exists only once the final frame verified:
//! [`Layout::verify_final`] consumes the layout and returns it. A caller cannot open a frame
//! of an unchecked message by forgetting a call, and the check is made once, before any
//! range, not per range. (A runtime flag on one type would make every `open_frame` a
//! possible misuse error and a `&mut` step in the middle of shareable `&self` calls.)
//!
//! # What is not checked
//! - Frames outside the range are not read: a range is as trustworthy as its own frames, the
//!   header and the final frame. A flipped byte in a frame that is never read goes unnoticed
//!   (a whole-message decrypt would refuse the message).
//! - Signed suites: the signature covers the whole message, so nothing short of the whole
//!   message verifies it. Frame tags only prove that a holder of the data key wrote the
//!   frame, and for a signed message every reader holds it. A range of a signed message is
//!   **unverified output**; it is refused unless the caller opts in
//!   ([`RandomAccessOptions::unverified_signed`]), and the footer's signature is never
//!   checked here.
//! - Non-framed messages are one AES-GCM unit: no part of them can be verified without all
//!   of it, so they are refused ([`PolicyViolation::RandomAccessNonFramed`]).
//!
//! Positions in the message are `u64` (a message may exceed the address space of a 32-bit
//! target); the `offset` of the [`FrameSlot`]s issued here and the offsets in errors are
//! `usize` and saturate on such a target.

use core::ops::Range;

use crate::body::{BodyKind, IV_LEN};
use crate::body::{FINAL_FRAME_MARKER, FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD, frame_iv};
use crate::error::{ApiMisuse, Error, Malformed, PolicyViolation};
use crate::frames::{FrameCipher, FrameSlot};
use crate::provider::AeadKey;
use crate::suite::AlgorithmSuite;

/// The message bytes a caller opting into ranges of signed messages hands over
/// ([`RandomAccessOptions::unverified_signed`]): the last `SIGNED_TAIL_LEN` bytes (or the
/// whole message when shorter), which hold the footer, so that its length is known.
pub const SIGNED_TAIL_LEN: usize = 2 + 104;

/// How [`Decryptor::random_access`](crate::Decryptor::random_access) treats a message.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomAccessOptions<'t> {
    signed_tail: Option<&'t [u8]>,
}

impl<'t> RandomAccessOptions<'t> {
    /// Unsigned messages only (the default).
    pub const fn new() -> Self {
        Self { signed_tail: None }
    }

    /// Opts into ranges of **signed** messages, whose output is **unverified**: the signature
    /// covers the whole message and is not checked, and every frame tag can be forged by
    /// anyone who can decrypt the message (all its readers hold the data key). Use only where
    /// the message's origin is established otherwise.
    ///
    /// `tail` is the message's last [`SIGNED_TAIL_LEN`] bytes (all of it when shorter): the
    /// footer's length is read from it, since the signature's DER length varies.
    pub const fn unverified_signed(mut self, tail: &'t [u8]) -> Self {
        self.signed_tail = Some(tail);
        self
    }
}

/// Where every frame of a framed message is, from the header and the message length:
/// arithmetic, no I/O, no key. Both [`Layout`] and [`RandomAccess`] hand it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMap {
    header_len: u64,
    frame_len: u32,
    /// Regular frames (the final frame is number `regular + 1`).
    regular: u32,
    /// The final frame's content length (0..=frame_len).
    final_len: u32,
    /// Footer bytes after the final frame (signed suites).
    footer_len: usize,
    message_len: u64,
}

/// One frame of a plaintext range: [`FrameMap::frames_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpan {
    /// The frame: sequence number, final or not, content length.
    pub slot: FrameSlot,
    /// Where the frame starts in the message; it is [`FrameSlot::frame_len`] bytes long.
    pub offset: u64,
    /// The bytes of the range within the frame's plaintext (content).
    pub within: Range<usize>,
    /// Where `within` starts in the message's plaintext.
    pub plaintext_offset: u64,
}

fn at(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

impl FrameMap {
    fn unit(&self) -> u64 {
        u64::from(self.frame_len) + REGULAR_FRAME_OVERHEAD as u64
    }

    /// The message length the map was computed from.
    pub fn message_len(&self) -> u64 {
        self.message_len
    }

    /// Length of the header at the start of the message.
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// The frame length of the header.
    pub fn frame_len(&self) -> u32 {
        self.frame_len
    }

    /// Frames in the message, the final one included (its sequence number).
    pub fn frame_count(&self) -> u32 {
        self.regular + 1
    }

    /// Length of the message's plaintext.
    pub fn plaintext_len(&self) -> u64 {
        u64::from(self.regular) * u64::from(self.frame_len) + u64::from(self.final_len)
    }

    /// Where frame `seq` starts in the message.
    ///
    /// # Errors
    /// [`Error::FrameOutOfRange`] for 0 or a number past the final frame.
    pub fn frame_offset(&self, seq: u32) -> Result<u64, Error> {
        self.check_seq(seq)?;
        Ok(self.header_len + u64::from(seq - 1) * self.unit())
    }

    fn check_seq(&self, seq: u32) -> Result<(), Error> {
        if seq == 0 || seq > self.frame_count() {
            return Err(Error::FrameOutOfRange {
                sequence: seq,
                frames: self.frame_count(),
            });
        }
        Ok(())
    }

    /// The slot of frame `seq` (its `offset` saturates where the message exceeds `usize`).
    ///
    /// # Errors
    /// [`Error::FrameOutOfRange`].
    pub fn slot(&self, seq: u32) -> Result<FrameSlot, Error> {
        let offset = at(self.frame_offset(seq)?);
        let last = seq == self.frame_count();
        Ok(FrameSlot {
            kind: if last {
                BodyKind::Final
            } else {
                BodyKind::Regular
            },
            seq,
            // `Layout::new` checked that the frame length (and all around it) fits `usize`.
            len: if last {
                self.final_len as usize
            } else {
                self.frame_len as usize
            },
            footer: if last { self.footer_len } else { 0 },
            offset,
        })
    }

    /// The final frame's slot.
    pub fn final_slot(&self) -> FrameSlot {
        // The final frame's number is always in range.
        self.slot(self.frame_count()).unwrap_or(FrameSlot {
            kind: BodyKind::Final,
            seq: self.frame_count(),
            len: 0,
            footer: 0,
            offset: 0,
        })
    }

    /// The message bytes of frame `seq` (its header, content and tag).
    ///
    /// # Errors
    /// [`Error::FrameOutOfRange`].
    pub fn frame_range(&self, seq: u32) -> Result<Range<u64>, Error> {
        let start = self.frame_offset(seq)?;
        let slot = self.slot(seq)?;
        Ok(start..start + slot.frame_len() as u64)
    }

    /// The frames that hold the plaintext bytes `range`, in order, with the part of each
    /// that falls in the range: `range.start / frame_len + 1` to `(range.end - 1) /
    /// frame_len + 1`. An empty range has no frames.
    ///
    /// # Errors
    /// [`Error::RangeOutOfBounds`] when `range.start > range.end` or the range ends past the
    /// plaintext.
    pub fn frames_for(&self, range: Range<u64>) -> Result<FrameSpans, Error> {
        let len = self.plaintext_len();
        if range.start > range.end || range.end > len {
            return Err(Error::RangeOutOfBounds {
                start: range.start,
                end: range.end,
                plaintext_len: len,
            });
        }
        let f = u64::from(self.frame_len);
        // Both fit: the sequence numbers are at most `frame_count()`.
        let seq = |p: u64| (p / f) as u32 + 1;
        let (next, last) = if range.is_empty() {
            (1, 0)
        } else {
            (seq(range.start), seq(range.end - 1))
        };
        Ok(FrameSpans {
            map: *self,
            range,
            next,
            last,
        })
    }
}

/// The frames of a plaintext range ([`FrameMap::frames_for`]), first to last.
#[derive(Debug, Clone)]
pub struct FrameSpans {
    map: FrameMap,
    range: Range<u64>,
    next: u32,
    last: u32,
}

impl Iterator for FrameSpans {
    type Item = FrameSpan;

    fn next(&mut self) -> Option<FrameSpan> {
        if self.next > self.last {
            return None;
        }
        let seq = self.next;
        self.next += 1;
        let slot = self.map.slot(seq).ok()?;
        let offset = self.map.frame_offset(seq).ok()?;
        let base = u64::from(seq - 1) * u64::from(self.map.frame_len);
        let from = self.range.start.max(base);
        let to = self.range.end.min(base + slot.content_len() as u64);
        Some(FrameSpan {
            slot,
            offset,
            // Both are within the frame's content, whose length is a `usize`.
            within: (from - base) as usize..(to - base) as usize,
            plaintext_offset: from,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.last.saturating_sub(self.next).saturating_add(1))
            .unwrap_or(usize::MAX);
        let n = if self.next > self.last { 0 } else { n };
        (n, Some(n))
    }
}

impl ExactSizeIterator for FrameSpans {}

/// A framed message's layout from its length, before anything was verified: find the final
/// frame ([`final_frame`](Self::final_frame)), read it and give it to
/// [`verify_final`](Self::verify_final) to get the [`RandomAccess`] that opens frames.
/// From [`Decryptor::random_access`](crate::Decryptor::random_access).
pub struct Layout<K: AeadKey> {
    map: FrameMap,
    cipher: FrameCipher<K>,
}

impl<K: AeadKey> core::fmt::Debug for Layout<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Layout").field("map", &self.map).finish()
    }
}

impl<K: AeadKey> Layout<K> {
    /// The layout of a message whose header (authenticated, `header_len` bytes, of `suite`
    /// and `frame_len`) the caller's decryptor processed, for `message_len` bytes in all.
    pub(crate) fn new(
        cipher: FrameCipher<K>,
        suite: AlgorithmSuite,
        frame_len: Option<u32>,
        header_len: usize,
        message_len: u64,
        opts: RandomAccessOptions<'_>,
    ) -> Result<Self, Error> {
        let frame_len = frame_len.ok_or(PolicyViolation::RandomAccessNonFramed)?;
        let header_len = header_len as u64;
        let bad_length = Error::Malformed {
            offset: at(header_len),
            kind: Malformed::MessageLength(message_len),
        };
        let footer_len = match (suite.signature(), opts.signed_tail) {
            (None, _) => 0,
            (Some(_), None) => return Err(PolicyViolation::RandomAccessSigned.into()),
            (Some(alg), Some(tail)) => find_footer(tail, message_len, alg.max_signature_len())
                .ok_or(Error::Malformed {
                    offset: at(message_len.saturating_sub(tail.len() as u64)),
                    kind: Malformed::Footer,
                })?,
        };
        // Frames must be addressable: the final frame's bytes, and the footer after them.
        usize::try_from(frame_len)
            .ok()
            .and_then(|n| n.checked_add(FINAL_FRAME_OVERHEAD + footer_len))
            .ok_or(Error::Malformed {
                offset: at(header_len),
                kind: Malformed::LengthOverflow {
                    field: "frame length",
                    length: u64::from(frame_len),
                },
            })?;
        let rest = message_len
            .checked_sub(header_len + (FINAL_FRAME_OVERHEAD + footer_len) as u64)
            .ok_or(bad_length)?;
        let unit = u64::from(frame_len) + REGULAR_FRAME_OVERHEAD as u64;
        let (regular, final_len) = (rest / unit, rest % unit);
        if final_len > u64::from(frame_len) {
            return Err(bad_length);
        }
        // The final frame's sequence number must fit: at most 2^32 - 1 frames.
        let regular = u32::try_from(regular)
            .ok()
            .filter(|&r| r < u32::MAX)
            .ok_or(Error::Malformed {
                offset: at(header_len),
                kind: Malformed::TooManyFrames,
            })?;
        Ok(Self {
            map: FrameMap {
                header_len,
                frame_len,
                regular,
                final_len: final_len as u32,
                footer_len,
                message_len,
            },
            cipher,
        })
    }

    /// Where the frames are, as the message length says (not yet verified).
    pub fn map(&self) -> &FrameMap {
        &self.map
    }

    /// The message bytes of the final frame, to read and give to
    /// [`verify_final`](Self::verify_final) (the footer of a signed message is not
    /// included).
    pub fn final_frame(&self) -> Range<u64> {
        let seq = self.map.frame_count();
        self.map.frame_range(seq).unwrap_or(0..0)
    }

    /// Verifies the final frame where the message length puts it: its marker, sequence
    /// number and declared content length (which must be what the length implies), its IV
    /// and its tag. `frame` is the bytes of [`final_frame`](Self::final_frame), opened in
    /// place: on success its [`FrameSlot::content_range`] (of
    /// [`FrameMap::final_slot`]) holds the final frame's plaintext.
    ///
    /// The message is then known to end where its length says: neither truncated nor
    /// extended, by any number of bytes.
    ///
    /// The layout is consumed either way: a message whose final frame fails is refused
    /// (a new [`Decryptor::random_access`](crate::Decryptor::random_access) is only useful
    /// for another length, or after a mistaken `frame`).
    ///
    /// # Errors
    /// [`Malformed::FinalFrameMarker`] (no final frame there: the message is truncated or
    /// extended by whole frames), [`Malformed::FrameSequence`], [`Malformed::MessageLength`]
    /// (the declared length disagrees with the message length), [`Malformed::FrameIv`],
    /// [`AuthFailure::FrameTag`](crate::error::AuthFailure::FrameTag);
    /// [`Error::BufferTooSmall`] / [`ApiMisuse::FrameSize`] for `frame` of another length.
    pub fn verify_final(self, frame: &mut [u8]) -> Result<RandomAccess<K>, Error> {
        let ra = RandomAccess {
            map: self.map,
            cipher: self.cipher,
        };
        ra.open_frame_in_place(ra.map.frame_count(), frame)?;
        Ok(ra)
    }
}

/// Random access to a framed message whose header and final frame verified
/// ([`Layout::verify_final`]): opens any frame, in any order, through `&self` (share it
/// across threads when the provider's key type is `Sync`).
///
/// A range's plaintext is as trustworthy as the header, the final frame (both verified by
/// then) and the frames it was read from; for a signed message it is unverified (see the
/// [module docs](self)).
pub struct RandomAccess<K: AeadKey> {
    map: FrameMap,
    cipher: FrameCipher<K>,
}

impl<K: AeadKey> core::fmt::Debug for RandomAccess<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RandomAccess")
            .field("map", &self.map)
            .finish()
    }
}

impl<K: AeadKey> RandomAccess<K> {
    /// Where the frames are.
    pub fn map(&self) -> &FrameMap {
        &self.map
    }

    /// Checks the header fields of frame `seq` as received (`prefix`: its first
    /// [`FrameSlot::prefix_len`] bytes) against the ones the layout fixes.
    fn check_prefix(&self, slot: &FrameSlot, prefix: &[u8]) -> Result<(), Error> {
        let base = self.map.frame_offset(slot.seq)?;
        let bad = |rel: u64, kind| Error::Malformed {
            offset: at(base + rel),
            kind,
        };
        let be32 =
            |i: usize| u32::from_be_bytes([prefix[i], prefix[i + 1], prefix[i + 2], prefix[i + 3]]);
        let seq_at = if slot.is_final() {
            if be32(0) != FINAL_FRAME_MARKER {
                return Err(bad(0, Malformed::FinalFrameMarker { sequence: slot.seq }));
            }
            4
        } else {
            0
        };
        let found = be32(seq_at);
        if found != slot.seq {
            let kind = Malformed::FrameSequence {
                expected: slot.seq,
                found,
            };
            return Err(bad(seq_at as u64, kind));
        }
        let iv_at = seq_at + 4;
        if prefix[iv_at..iv_at + IV_LEN] != frame_iv(slot.seq) {
            return Err(bad(iv_at as u64, Malformed::FrameIv { sequence: slot.seq }));
        }
        if slot.is_final() && be32(20) as usize != slot.len {
            return Err(bad(20, Malformed::MessageLength(self.map.message_len)));
        }
        Ok(())
    }

    fn frame_slot(&self, seq: u32, len: usize) -> Result<FrameSlot, Error> {
        let slot = self.map.slot(seq)?;
        match len.cmp(&slot.frame_len()) {
            core::cmp::Ordering::Less => Err(Error::BufferTooSmall {
                required: slot.frame_len(),
            }),
            core::cmp::Ordering::Equal => Ok(slot),
            core::cmp::Ordering::Greater => Err(ApiMisuse::FrameSize.into()),
        }
    }

    /// Opens frame `seq` (`frame`: its bytes as read from [`FrameMap::frame_range`]) into
    /// `out`, which must hold its content length; returns that length. The sequence number
    /// (and, for the final frame, the marker and the declared length), the IV and the tag
    /// are checked; on a tag failure `out` is zeroed.
    ///
    /// # Errors
    /// [`Error::FrameOutOfRange`]; [`Malformed::FrameSequence`] (a frame from elsewhere in
    /// the message), [`Malformed::FrameIv`], [`Malformed::FinalFrameMarker`],
    /// [`Malformed::MessageLength`] (final frame);
    /// [`AuthFailure::FrameTag`](crate::error::AuthFailure::FrameTag) naming the frame;
    /// [`Error::BufferTooSmall`] / [`ApiMisuse::FrameSize`] for `frame` of another length,
    /// `BufferTooSmall` for a short `out`.
    pub fn open_frame(&self, seq: u32, frame: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let slot = self.frame_slot(seq, frame.len())?;
        self.check_prefix(&slot, &frame[..slot.prefix_len()])?;
        self.cipher.open_to(&slot, frame, out)
    }

    /// Opens frame `seq` in place (`frame`: its bytes as read) and returns where its
    /// plaintext now is in `frame`; on a tag failure that part is zeroed. Same checks as
    /// [`open_frame`](Self::open_frame).
    ///
    /// # Errors
    /// As [`open_frame`](Self::open_frame).
    pub fn open_frame_in_place(&self, seq: u32, frame: &mut [u8]) -> Result<Range<usize>, Error> {
        let slot = self.frame_slot(seq, frame.len())?;
        self.check_prefix(&slot, &frame[..slot.prefix_len()])?;
        self.cipher.open_in_place(&slot, frame)?;
        Ok(slot.content_range())
    }
}

/// The footer's length in `tail` (the last bytes of a message of `message_len` bytes):
/// the length field `L` two bytes before the last `L`, with a DER `SEQUENCE` of `L - 2`
/// bytes after it (an ECDSA signature), for the shortest such `L`.
fn find_footer(tail: &[u8], message_len: u64, max_sig: usize) -> Option<usize> {
    let n = tail.len();
    let needed = (SIGNED_TAIL_LEN as u64).min(message_len);
    if (n as u64) < needed {
        return None;
    }
    (8..=max_sig.min(n.saturating_sub(2)))
        .find(|&l| {
            let s = &tail[n - l..];
            let field = &tail[n - l - 2..n - l];
            usize::from(u16::from_be_bytes([field[0], field[1]])) == l
                && s[0] == 0x30
                && usize::from(s[1]) == l - 2
        })
        .map(|l| l + 2)
}
