//! The message body: frame layout, frame IVs and AAD, body sizes
//! (spec `data-format/message-body.md`, `message-body-aad.md`).

use crate::error::{Error, Malformed, PolicyViolation};

/// The sequence-number field value that marks the final frame.
pub const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
/// AES-GCM IV length.
pub const IV_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Overhead of a regular frame around its content.
pub const REGULAR_FRAME_OVERHEAD: usize = 4 + IV_LEN + TAG_LEN;
/// Overhead of the final frame around its content.
pub const FINAL_FRAME_OVERHEAD: usize = 4 + 4 + IV_LEN + 4 + TAG_LEN;
/// Largest non-framed content length (2^36 - 32).
pub const MAX_NON_FRAMED_LEN: u64 = (1 << 36) - 32;

/// Which body AAD content string applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    NonFramed,
    Regular,
    Final,
}

impl BodyKind {
    fn content_string(self) -> &'static [u8] {
        match self {
            BodyKind::NonFramed => b"AWSKMSEncryptionClient Single Block",
            BodyKind::Regular => b"AWSKMSEncryptionClient Frame",
            BodyKind::Final => b"AWSKMSEncryptionClient Final Frame",
        }
    }
}

/// The IV of frame `seq`: eight zero bytes, then the sequence number big-endian.
pub const fn frame_iv(seq: u32) -> [u8; 12] {
    let s = seq.to_be_bytes();
    [0, 0, 0, 0, 0, 0, 0, 0, s[0], s[1], s[2], s[3]]
}

/// Writes the body AAD (message id ‖ content string ‖ seq ‖ u64 length) into `out`.
pub(crate) fn body_aad(
    message_id: &[u8],
    kind: BodyKind,
    seq: u32,
    len: u64,
    out: &mut [u8; 96],
) -> usize {
    let cs = kind.content_string();
    let mut at = 0;
    for part in [message_id, cs, &seq.to_be_bytes(), &len.to_be_bytes()] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    at
}

pub use crate::signature::footer_len;

/// One unit of a received body, located at the start of the input: a regular frame, the
/// final frame, or the non-framed body. Offsets are relative to the unit's first byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unit {
    pub(crate) kind: BodyKind,
    pub(crate) seq: u32,
    /// The content length; the content starts after the unit's header
    /// ([`FrameSlot::prefix_len`](crate::FrameSlot::prefix_len)), the tag follows it.
    pub(crate) len: usize,
    /// Where the unit (its tag) ends: `ct_at + len + TAG_LEN`, which the locator checked
    /// does not overflow.
    pub(crate) end: usize,
}

/// What a decryptor expects of the next unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    pub(crate) framed: bool,
    pub(crate) frame_len: u32,
    pub(crate) next_seq: u32,
    pub(crate) max_body: Option<u64>,
    /// The message offset of the input's first byte, for error reports.
    pub(crate) base: usize,
}

fn be32(s: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
}

/// Reads the unit header at the start of `input` and checks it (sequence number, lengths):
/// `Ok(Ok(unit))`, or `Ok(Err(min))` when the input must hold at least `min` bytes to
/// locate it — the content and tag included. Every index below is guarded by the length
/// check before it (`need`): the fixed header of each unit kind, then `end`.
///
/// # Errors
/// [`Malformed::FrameSequence`], [`Malformed::FinalFrameLength`],
/// [`Malformed::NonFramedLength`], [`Malformed::LengthOverflow`] (on targets where a length
/// is not addressable), [`PolicyViolation::BodyTooLarge`].
pub(crate) fn locate(input: &[u8], e: &Expect) -> Result<Result<Unit, usize>, Error> {
    let malformed = |at: usize, kind| Error::Malformed {
        offset: e.base + at,
        kind,
    };
    let overflow = |at: usize, field: &'static str, length: u64| {
        malformed(at, Malformed::LengthOverflow { field, length })
    };
    let (kind, seq, ct_at, len_at, len) = if !e.framed {
        if input.len() < 20 {
            return Ok(Err(20));
        }
        let len = u64::from_be_bytes([
            input[12], input[13], input[14], input[15], input[16], input[17], input[18], input[19],
        ]);
        if len > MAX_NON_FRAMED_LEN {
            return Err(malformed(12, Malformed::NonFramedLength(len)));
        }
        if let Some(max) = e.max_body
            && len > max
        {
            return Err(PolicyViolation::BodyTooLarge { max }.into());
        }
        (BodyKind::NonFramed, 1, 20, 12, len)
    } else {
        if input.len() < 4 {
            return Ok(Err(4));
        }
        let first = be32(input, 0);
        if first == FINAL_FRAME_MARKER {
            if input.len() < 24 {
                return Ok(Err(24));
            }
            let (seq, len) = (be32(input, 4), be32(input, 20));
            if seq != e.next_seq {
                let found = seq;
                let expected = e.next_seq;
                return Err(malformed(4, Malformed::FrameSequence { expected, found }));
            }
            if len > e.frame_len {
                let kind = Malformed::FinalFrameLength {
                    sequence: seq,
                    length: len,
                };
                return Err(malformed(20, kind));
            }
            (BodyKind::Final, seq, 24, 20, u64::from(len))
        } else {
            if first != e.next_seq {
                let expected = e.next_seq;
                return Err(malformed(
                    0,
                    Malformed::FrameSequence {
                        expected,
                        found: first,
                    },
                ));
            }
            (BodyKind::Regular, first, 16, 0, u64::from(e.frame_len))
        }
    };
    // The content and tag must be addressable: on a 32-bit target a length near 2^32 is not.
    let field = match kind {
        BodyKind::Regular => "frame length",
        BodyKind::Final => "final frame content length",
        BodyKind::NonFramed => "non-framed content length",
    };
    let end = usize::try_from(len)
        .ok()
        .and_then(|n| n.checked_add(ct_at + TAG_LEN + 2))
        .map(|n| n - 2)
        .ok_or_else(|| overflow(len_at, field, len))?;
    if input.len() < end {
        return Ok(Err(end));
    }
    Ok(Ok(Unit {
        kind,
        seq,
        len: end - TAG_LEN - ct_at,
        end,
    }))
}

/// Length of a framed body for `plaintext_len` bytes: full regular frames, then a final
/// frame holding the rest (a full final frame when the length is an exact multiple, one
/// empty final frame for an empty plaintext). `None` on overflow or too many frames.
pub const fn framed_body_len(frame_len: u32, plaintext_len: u64) -> Option<u64> {
    if frame_len == 0 {
        return None;
    }
    let f = frame_len as u64;
    let regular = if plaintext_len == 0 {
        0
    } else {
        (plaintext_len - 1) / f
    };
    if regular >= u32::MAX as u64 {
        return None;
    }
    let last = plaintext_len - regular * f;
    let reg_bytes = match regular.checked_mul(f + REGULAR_FRAME_OVERHEAD as u64) {
        Some(v) => v,
        None => return None,
    };
    reg_bytes.checked_add(last + FINAL_FRAME_OVERHEAD as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iv_and_aad_layout() {
        assert_eq!(frame_iv(0x0102_0304), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        let mut out = [0u8; 96];
        let n = body_aad(&[9u8; 16], BodyKind::Final, 2, 5, &mut out);
        assert_eq!(n, 16 + 34 + 4 + 8);
        assert_eq!(&out[16..50], b"AWSKMSEncryptionClient Final Frame");
        assert_eq!(&out[50..54], &[0, 0, 0, 2]);
        assert_eq!(&out[54..62], &[0, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn framed_lengths() {
        let fin = FINAL_FRAME_OVERHEAD as u64;
        let reg = REGULAR_FRAME_OVERHEAD as u64;
        assert_eq!(framed_body_len(10, 0), Some(fin));
        assert_eq!(framed_body_len(10, 10), Some(fin + 10));
        assert_eq!(framed_body_len(10, 11), Some(reg + 10 + fin + 1));
        assert_eq!(framed_body_len(10, 100), Some(9 * (reg + 10) + fin + 10));
        assert_eq!(framed_body_len(0, 1), None);
        assert_eq!(framed_body_len(1, u64::MAX / 2), None);
    }
}
