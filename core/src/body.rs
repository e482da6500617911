//! Body layout, frame IVs and AAD, key derivation and commitment
//! (spec `data-format/message-body.md`, `message-body-aad.md`,
//! `framework/transitive-requirements.md`).

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::{AuthFailure, Error};
use crate::provider::CryptoProvider;
use crate::suite::{AlgorithmSuite, HashAlg, Kdf, SignatureAlg};

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

/// How the data key becomes the content key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KdfVariant {
    /// As the spec says.
    Standard,
    /// ESDK-.NET 4.0.0: the message id left out of the v1 HKDF info.
    NetV400,
}

/// Derives the content key and, for committing suites, the commitment key.
pub(crate) fn derive_key<P: CryptoProvider>(
    provider: &P,
    suite: AlgorithmSuite,
    data_key: &[u8],
    message_id: &[u8],
    variant: KdfVariant,
    commit_out: &mut [u8; 32],
) -> Result<P::Aead, Error> {
    let id = suite.id().to_be_bytes();
    let mut key = [0u8; 32];
    let n = suite.key_len();
    let r = match suite.kdf() {
        Kdf::Identity => {
            key[..n].copy_from_slice(
                data_key
                    .get(..n)
                    .ok_or(crate::error::KeyringError::DataKeyLength)?,
            );
            Ok(())
        }
        Kdf::Hkdf(HashAlg::Sha512) if suite.is_committing() => provider
            .hkdf(
                HashAlg::Sha512,
                message_id,
                data_key,
                &[&id, b"DERIVEKEY"],
                &mut key[..n],
            )
            .and_then(|()| {
                provider.hkdf(
                    HashAlg::Sha512,
                    message_id,
                    data_key,
                    &[b"COMMITKEY"],
                    commit_out,
                )
            }),
        Kdf::Hkdf(h) => {
            let info: &[&[u8]] = match variant {
                KdfVariant::Standard => &[&id, message_id],
                KdfVariant::NetV400 => &[&id],
            };
            provider.hkdf(h, &[], data_key, info, &mut key[..n])
        }
    };
    let out = r.and_then(|()| provider.aead_key(&key[..n]));
    key.zeroize();
    Ok(out?)
}

/// Checks the header's commitment value against the derived one, in constant time.
pub(crate) fn check_commitment(expected: &[u8; 32], stored: &[u8]) -> Result<(), Error> {
    if stored.len() == 32 && bool::from(expected.as_slice().ct_eq(stored)) {
        Ok(())
    } else {
        Err(AuthFailure::Commitment.into())
    }
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

/// Length of the footer this crate writes for `sig` (0 when unsigned).
pub const fn footer_len(sig: Option<SignatureAlg>) -> usize {
    match sig {
        Some(s) => 2 + s.fixed_signature_len(),
        None => 0,
    }
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
