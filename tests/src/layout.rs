//! Where each byte of an ESDK message lies, which check a tampered byte must trip, and how
//! much plaintext a decryptor may release before it notices.
//!
//! Shared by the tamper sweep (`tests/tests/tamper_sweep.rs`), the vector runner's
//! expectations for the official "Bit N flipped" / "Truncated at byte N" vectors
//! ([`crate::expect`]) and the release-bound checks of every decrypt mode
//! ([`crate::modes::check_release`]).

use esdk_core::AlgorithmSuite;
use esdk_core::error::{AuthFailure, CryptoError, Error, Malformed, PolicyViolation};
use esdk_core::header::{self, ContentType, ParseLimits, Parsed};

/// A field of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    /// The version byte.
    Version,
    /// The v1 message type byte.
    MessageType,
    /// The algorithm suite id.
    Suite,
    /// The message id.
    MessageId,
    /// A length or count field (encryption-context length, EDK count, EDK field lengths):
    /// a changed value misaligns the rest of the parse.
    Length,
    /// Encryption-context bytes (keys, values, pair count).
    EncryptionContext,
    /// An EDK's provider id, provider info or ciphertext.
    Edk,
    /// The content type byte.
    ContentType,
    /// The v1 reserved bytes.
    Reserved,
    /// The v1 IV length byte.
    IvLength,
    /// The frame length.
    FrameLength,
    /// The v2 algorithm-suite data (the commitment key).
    SuiteData,
    /// The v1 header IV.
    HeaderIv,
    /// The header authentication tag.
    HeaderTag,
}

/// A region of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// A header field.
    Header(HeaderField),
    /// The sequence number of frame `n`.
    FrameSeq(u32),
    /// The IV of frame `n`.
    FrameIv(u32),
    /// Content and tag of frame `n`.
    FrameBody(u32),
    /// The end-of-sequence marker of the final frame `n`.
    FinalMarker(u32),
    /// The content length of the final frame `n`.
    FinalLength(u32),
    /// The non-framed body's IV.
    NonFramedIv,
    /// The non-framed body's length.
    NonFramedLength,
    /// The non-framed body's content and tag.
    NonFramedBody,
    /// The footer's signature length.
    SignatureLength,
    /// The footer's signature.
    Signature,
}

/// Where each byte of a message lies, and how much plaintext precedes it in regular frames.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The message's suite.
    pub suite: AlgorithmSuite,
    /// Header length.
    pub header_len: usize,
    /// `(start, end, region)`, in order, covering the bytes laid out.
    pub regions: Vec<(usize, usize, Region)>,
    /// `(end offset of regular frame, plaintext bytes up to and including it)`.
    pub regular_ends: Vec<(usize, usize)>,
}

fn be32(m: &[u8], a: usize) -> Option<u32> {
    Some(u32::from_be_bytes(m.get(a..a + 4)?.try_into().ok()?))
}

impl Layout {
    /// The layout of `msg`, or of the part of it present when it is a truncated message: the
    /// header must be complete; frames are laid out as far as their headers are present.
    ///
    /// # Errors
    /// A description when the header does not parse.
    pub fn of(msg: &[u8]) -> Result<Self, String> {
        let h = match header::parse(msg, ParseLimits::default()) {
            Ok(Parsed::Complete(h)) => h,
            Ok(Parsed::Need(n)) => return Err(format!("incomplete header (needs {n} bytes)")),
            Err(e) => return Err(format!("header does not parse: {e}")),
        };
        let suite = h.suite;
        let v1 = h.version == 1;
        let hl = h.bytes.len();
        let mut regions = Vec::new();
        let mut at = 0;
        let mut push = |regions: &mut Vec<_>, len: usize, f: HeaderField| {
            regions.push((at, at + len, Region::Header(f)));
            at += len;
        };
        push(&mut regions, 1, HeaderField::Version);
        if v1 {
            push(&mut regions, 1, HeaderField::MessageType);
        }
        push(&mut regions, 2, HeaderField::Suite);
        push(&mut regions, h.message_id.len(), HeaderField::MessageId);
        push(&mut regions, 2, HeaderField::Length);
        push(
            &mut regions,
            h.encryption_context.as_bytes().len(),
            HeaderField::EncryptionContext,
        );
        push(&mut regions, 2, HeaderField::Length);
        for (_, e) in h.edks.iter() {
            for f in [e.provider_id.as_bytes(), e.provider_info, e.ciphertext] {
                push(&mut regions, 2, HeaderField::Length);
                push(&mut regions, f.len(), HeaderField::Edk);
            }
        }
        push(&mut regions, 1, HeaderField::ContentType);
        if v1 {
            push(&mut regions, 4, HeaderField::Reserved);
            push(&mut regions, 1, HeaderField::IvLength);
        }
        push(&mut regions, 4, HeaderField::FrameLength);
        push(&mut regions, h.suite_data.len(), HeaderField::SuiteData);
        if v1 {
            push(&mut regions, 12, HeaderField::HeaderIv);
        }
        push(&mut regions, 16, HeaderField::HeaderTag);
        regions.retain(|(s, e, _)| s < e);
        if at != hl {
            return Err(format!(
                "header fields cover {at} bytes, the header has {hl}"
            ));
        }
        let mut regular_ends = Vec::new();
        match h.content_type {
            ContentType::NonFramed => {
                let len = msg
                    .get(at + 12..at + 20)
                    .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or_default()));
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                regions.push((at, at + 12, Region::NonFramedIv));
                regions.push((at + 12, at + 20, Region::NonFramedLength));
                let end = (at + 20).saturating_add(len).saturating_add(16);
                regions.push((at + 20, end, Region::NonFramedBody));
                at = end;
            }
            ContentType::Framed => {
                let f = h.frame_length as usize;
                let mut plain = 0;
                while let Some(first) = be32(msg, at) {
                    if first == u32::MAX {
                        let seq = be32(msg, at + 4).unwrap_or(0);
                        let len = be32(msg, at + 20).unwrap_or(0) as usize;
                        regions.push((at, at + 4, Region::FinalMarker(seq)));
                        regions.push((at + 4, at + 8, Region::FrameSeq(seq)));
                        regions.push((at + 8, at + 20, Region::FrameIv(seq)));
                        regions.push((at + 20, at + 24, Region::FinalLength(seq)));
                        regions.push((at + 24, at + 24 + len + 16, Region::FrameBody(seq)));
                        at += 24 + len + 16;
                        break;
                    }
                    regions.push((at, at + 4, Region::FrameSeq(first)));
                    regions.push((at + 4, at + 16, Region::FrameIv(first)));
                    regions.push((at + 16, at + 32 + f, Region::FrameBody(first)));
                    at += 32 + f;
                    plain += f;
                    regular_ends.push((at, plain));
                }
            }
        }
        if suite.signature().is_some() && at < msg.len() {
            regions.push((at, at + 2, Region::SignatureLength));
            regions.push((at + 2, msg.len().max(at + 2), Region::Signature));
        }
        Ok(Self {
            suite,
            header_len: hl,
            regions,
            regular_ends,
        })
    }

    /// The region of byte `at`, if the layout covers it.
    pub fn region(&self, at: usize) -> Option<Region> {
        self.regions
            .iter()
            .find(|(s, e, _)| (*s..*e).contains(&at))
            .map(|r| r.2)
    }

    /// Plaintext bytes of the regular frames that end at or before `at` (so untouched by a
    /// change at `at` or a cut there): the most a decryptor may release before failing.
    pub fn intact_plaintext(&self, at: usize) -> usize {
        self.regular_ends
            .iter()
            .take_while(|(end, _)| *end <= at)
            .last()
            .map_or(0, |(_, p)| *p)
    }

    /// Whether `e` is an error that a bit flipped in `region` of a message of `len` bytes
    /// may give: the check that covers that field (see each arm for why some fields allow
    /// more than one).
    pub fn flip_error_ok(&self, region: Region, e: &Error, len: usize) -> bool {
        use AuthFailure as A;
        let signed = self.suite.signature().is_some();
        let truncated = *e == Error::Truncated { offset: len };
        let malformed =
            |k: fn(&Malformed) -> bool| matches!(e, Error::Malformed { kind, .. } if k(kind));
        let seq_err = |want: u32| {
            matches!(e, Error::Malformed { kind: Malformed::FrameSequence { expected, .. }, .. }
                if *expected == want)
        };
        let frame_tag = |s: u32| *e == Error::Authentication(A::FrameTag { sequence: s });
        let footer = malformed(|k| matches!(k, Malformed::SignatureLength(_)))
            || *e == Error::Authentication(A::Signature);
        let header_tag = *e == Error::Authentication(A::HeaderTag);
        let keyring = matches!(e, Error::Keyring(_));
        match region {
            Region::Header(f) => match f {
                // 0x01 becomes 0x41 ('A'): the input then looks base64-encoded.
                HeaderField::Version => {
                    malformed(|k| {
                        matches!(
                            k,
                            Malformed::Version(_) | Malformed::SuiteVersionMismatch { .. }
                        )
                    }) || *e == Error::Base64Encoded
                }
                HeaderField::MessageType => {
                    malformed(|k| matches!(k, Malformed::MessageType(_)))
                        || *e == Error::Base64Encoded
                }
                // Another id is unknown, of the other format version, not allowed by the
                // commitment policy, or another suite of the same version: then the
                // header's shape, key length or signature key no longer fit.
                HeaderField::Suite => {
                    matches!(
                        e,
                        Error::UnsupportedSuite(_)
                            | Error::Malformed { .. }
                            | Error::Keyring(_)
                            | Error::Authentication(A::HeaderTag | A::Commitment)
                            | Error::Policy(
                                PolicyViolation::SuiteNotAllowed { .. }
                                    | PolicyViolation::MissingPublicKey
                                    | PolicyViolation::UnexpectedPublicKey
                            )
                    ) || truncated
                }
                // The data key is derived with the message id: the commitment check (or,
                // without commitment, the header tag) fails.
                HeaderField::MessageId => {
                    if self.suite.is_committing() {
                        *e == Error::Authentication(A::Commitment)
                    } else {
                        header_tag
                    }
                }
                // A changed length misaligns the rest of the parse: a structural error may
                // name any field; otherwise the keyring or the header tag catches it.
                HeaderField::Length => {
                    matches!(
                        e,
                        Error::Malformed { .. }
                            | Error::UnsupportedSuite(_)
                            | Error::Keyring(_)
                            | Error::Authentication(A::HeaderTag | A::Commitment)
                            | Error::Crypto(CryptoError::InvalidPublicKey)
                            | Error::Policy(
                                PolicyViolation::TooManyEncryptedDataKeys { .. }
                                    | PolicyViolation::MissingPublicKey
                                    | PolicyViolation::UnexpectedPublicKey
                                    | PolicyViolation::BodyTooLarge { .. }
                            )
                    ) || truncated
                }
                // The context is the AAD of raw AES wraps (keyring), is checked for UTF-8 and
                // duplicates (malformed), carries the signing key (public key checks), and is
                // authenticated by the header tag.
                HeaderField::EncryptionContext => {
                    malformed(|k| matches!(k, Malformed::EncryptionContext(_)))
                        || keyring
                        || header_tag
                        || matches!(
                            e,
                            Error::Crypto(CryptoError::InvalidPublicKey)
                                | Error::Policy(
                                    PolicyViolation::MissingPublicKey
                                        | PolicyViolation::UnexpectedPublicKey
                                        | PolicyViolation::ReservedEncryptionContextKey
                                )
                        )
                }
                // The keyring cannot use the EDK (or a provider id is not UTF-8); an EDK the
                // keyring does not need is still covered by the header tag.
                HeaderField::Edk => {
                    malformed(|k| matches!(k, Malformed::EdkProviderId { .. }))
                        || keyring
                        || header_tag
                }
                HeaderField::ContentType => {
                    malformed(|k| matches!(k, Malformed::ContentType(_))) || header_tag
                }
                HeaderField::Reserved => malformed(|k| matches!(k, Malformed::Reserved)),
                HeaderField::IvLength => malformed(|k| matches!(k, Malformed::IvLength(_))),
                HeaderField::FrameLength => {
                    malformed(|k| matches!(k, Malformed::FrameLength(_)))
                        || header_tag
                        || matches!(e, Error::Policy(PolicyViolation::BodyTooLarge { .. }))
                }
                HeaderField::SuiteData => *e == Error::Authentication(A::Commitment),
                HeaderField::HeaderIv | HeaderField::HeaderTag => header_tag,
            },
            Region::FrameSeq(s) | Region::FinalMarker(s) => seq_err(s),
            Region::FrameIv(s) => {
                matches!(e, Error::Malformed { kind: Malformed::FrameIv { sequence }, .. }
                    if *sequence == s)
            }
            Region::FrameBody(s) => frame_tag(s),
            Region::FinalLength(s) => {
                frame_tag(s)
                    || truncated
                    || malformed(|k| matches!(k, Malformed::FinalFrameLength { .. }))
                    || (signed && footer)
            }
            Region::NonFramedIv | Region::NonFramedBody => {
                *e == Error::Authentication(A::NonFramedTag)
            }
            Region::NonFramedLength => {
                *e == Error::Authentication(A::NonFramedTag)
                    || truncated
                    || malformed(|k| matches!(k, Malformed::NonFramedLength(_)))
                    || (signed && footer)
            }
            Region::SignatureLength => truncated || footer,
            Region::Signature => *e == Error::Authentication(A::Signature),
        }
    }
}
