//! What a decrypt test vector must produce, in detail: the plaintext, or the one error the
//! manifest's `error-description` calls for, with the most plaintext a decryptor may release
//! before failing.
//!
//! The official negative vectors describe their failure in words; this module turns the
//! descriptions into checks:
//!
//! * `Truncated at byte N`: the ciphertext is the first N bytes of a message; the error must
//!   be [`Error::Truncated`] at offset N (the end of what there is), and N must be the
//!   ciphertext's length.
//! * `Bit N flipped`: bit N (most significant bit first) of an authentic message was
//!   flipped. The untampered reference is the ciphertext with that bit flipped back; it must
//!   decrypt (which proves the reading of N), its layout says which field byte N/8 lies in,
//!   and the error must be that field's check ([`Layout::flip_error_ok`]): a header field's
//!   own check, the header tag, the commitment, the tag of the frame holding the byte, the
//!   signature. The reference's plaintext bounds what may be released.
//! * `Signed message input to streaming unsigned-only decryption method`:
//!   `PolicyViolation::SignedMessageRejected`.
//! * `Unsigned message using a data key with a public key`:
//!   `PolicyViolation::UnexpectedPublicKey`.
//! * With `expect_header_tag` (ESDK-.NET 4.0.0 messages decrypted without the retry policy):
//!   exactly `AuthFailure::HeaderTag`.
//!
//! Any other description is a failure of the run (no rule to check it by), never a pass.

use esdk_core::error::{AuthFailure, Error, Malformed, PolicyViolation};

use crate::layout::{Layout, Region};
use crate::manifest::{DecryptTest, Expected};
use crate::modes::ReleaseBound;
use crate::runner::CaseError;

/// The failure a negative vector calls for.
#[derive(Debug, Clone)]
enum Rule {
    /// Exactly this error.
    Exact(Error),
    /// A bit flipped in `region` of a message of `len` bytes.
    Flip {
        byte: usize,
        region: Region,
        layout: Box<Layout>,
        len: usize,
    },
}

/// A negative vector's expected error and release bound.
#[derive(Debug, Clone)]
pub struct ExpectedError {
    /// The manifest's description (or `--expect-error`).
    pub description: String,
    rule: Rule,
    /// Plaintext bytes of intact regular frames before the damage.
    pub intact: usize,
    /// The untampered message's plaintext, where known.
    pub plaintext: Option<Vec<u8>>,
}

impl ExpectedError {
    /// Whether `e` is the error this vector calls for.
    ///
    /// # Errors
    /// Why it is not.
    pub fn check(&self, e: &Error) -> Result<(), String> {
        let ok = match &self.rule {
            Rule::Exact(want) => e == want,
            Rule::Flip {
                region,
                layout,
                len,
                ..
            } => layout.flip_error_ok(*region, e, *len),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "wrong error for {:?}: got {e:?} ({e}), expected {}",
                self.description,
                self.want()
            ))
        }
    }

    /// What is expected, in words.
    pub fn want(&self) -> String {
        match &self.rule {
            Rule::Exact(e) => format!("{e:?}"),
            Rule::Flip { byte, region, .. } => {
                format!("the check covering byte {byte} ({region:?})")
            }
        }
    }

    /// The region of the flipped byte, for a "Bit N flipped" vector.
    pub fn region(&self) -> Option<Region> {
        match &self.rule {
            Rule::Flip { region, .. } => Some(*region),
            Rule::Exact(_) => None,
        }
    }

    /// The release bound of a failed decryption of this vector.
    pub fn bound(&self) -> ReleaseBound<'_> {
        ReleaseBound {
            intact: self.intact,
            plaintext: self.plaintext.as_deref(),
        }
    }
}

/// What a vector must produce.
#[derive(Debug, Clone)]
pub enum Expectation {
    /// Exactly this plaintext.
    Plaintext(Vec<u8>),
    /// This error.
    Error(ExpectedError),
}

/// The expectation of `test`. `expect_header_tag` turns a positive vector into one that must
/// fail header authentication (ESDK-.NET 4.0.0 messages without the retry policy).
/// `decrypt_reference` decrypts a reconstructed untampered message (same keys, same
/// provider) for "Bit N flipped" vectors.
///
/// # Errors
/// A description when the manifest's description has no rule here, or its reference does
/// not check out: a failure of the run.
pub fn expectation(
    test: &DecryptTest,
    expect_header_tag: bool,
    decrypt_reference: impl FnOnce(&[u8]) -> Result<Vec<u8>, CaseError>,
) -> Result<Expectation, String> {
    let ct = &test.ciphertext;
    let desc = match (&test.expected, expect_header_tag) {
        (Expected::Plaintext(p), false) => return Ok(Expectation::Plaintext(p.clone())),
        (Expected::Plaintext(p), true) => {
            return Ok(Expectation::Error(ExpectedError {
                description: "--expect-error (header authentication)".into(),
                rule: Rule::Exact(Error::Authentication(AuthFailure::HeaderTag)),
                intact: 0,
                plaintext: Some(p.clone()),
            }));
        }
        (Expected::Error(d), _) => d.as_str(),
    };
    let exact = |e: Error| {
        Ok(Expectation::Error(ExpectedError {
            description: desc.to_owned(),
            rule: Rule::Exact(e),
            intact: 0,
            plaintext: None,
        }))
    };
    let number = |prefix: &str, suffix: &str| {
        desc.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .and_then(|n| n.parse::<usize>().ok())
    };
    if let Some(n) = number("Truncated at byte ", "") {
        if n != ct.len() {
            return Err(format!(
                "{desc:?}, but the ciphertext has {} bytes",
                ct.len()
            ));
        }
        // Frames wholly inside the N bytes are intact; their plaintext may be released.
        let intact = Layout::of(ct).map_or(0, |l| l.intact_plaintext(n));
        return Ok(Expectation::Error(ExpectedError {
            description: desc.to_owned(),
            rule: Rule::Exact(Error::Truncated { offset: n }),
            intact,
            plaintext: None,
        }));
    }
    if let Some(bit) = number("Bit ", " flipped") {
        let byte = bit / 8;
        if byte >= ct.len() {
            return Err(format!(
                "{desc:?}, but the ciphertext has {} bytes",
                ct.len()
            ));
        }
        let mut reference = ct.clone();
        reference[byte] ^= 0x80 >> (bit % 8);
        let plaintext = decrypt_reference(&reference).map_err(|e| {
            format!("{desc:?}: the message with the bit flipped back does not decrypt: {e}")
        })?;
        let layout =
            Layout::of(&reference).map_err(|e| format!("{desc:?}: the reference's layout: {e}"))?;
        let region = layout
            .region(byte)
            .ok_or_else(|| format!("{desc:?}: byte {byte} lies outside the reference's layout"))?;
        let intact = layout.intact_plaintext(byte);
        return Ok(Expectation::Error(ExpectedError {
            description: desc.to_owned(),
            rule: Rule::Flip {
                byte,
                region,
                layout: Box::new(layout),
                len: ct.len(),
            },
            intact,
            plaintext: Some(plaintext),
        }));
    }
    // Python commitment vectors whose frame IVs are not their sequence numbers
    // (`manifest::load_commitment_vectors`).
    if let Some((seq, at)) = desc
        .strip_prefix("Frame ")
        .and_then(|r| r.split_once(" IV is not its sequence number at byte "))
        .and_then(|(seq, at)| Some((seq.parse::<u32>().ok()?, at.parse::<usize>().ok()?)))
    {
        return exact(Error::Malformed {
            offset: at,
            kind: Malformed::FrameIv { sequence: seq },
        });
    }
    match desc {
        "Signed message input to streaming unsigned-only decryption method" => {
            exact(Error::Policy(PolicyViolation::SignedMessageRejected))
        }
        "Unsigned message using a data key with a public key" => {
            exact(Error::Policy(PolicyViolation::UnexpectedPublicKey))
        }
        // The Python ESDK's commitment vectors (`python-commitment-v2`).
        "EXCEPTION: Invalid commitment" => exact(Error::Authentication(AuthFailure::Commitment)),
        _ => Err(format!(
            "no rule for the error-description {desc:?}: cannot check which error is right"
        )),
    }
}
