//! Key derivation and key commitment: the data key becomes the message's content key (and,
//! for committing suites, the commitment value stored in the header); on decryption the key
//! that authenticates the header is searched among the derivations the configuration allows
//! (spec `framework/algorithm-suites.md` §Key Derivation, §Key Commitment,
//! `client-apis/decrypt.md`).

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::encryption_context::{self, RawPair};
use crate::error::{AuthFailure, Error};
use crate::frames::KeyBytes;
use crate::header::Header;
use crate::provider::{AeadKey, CryptoProvider};
use crate::suite::{AlgorithmSuite, HashAlg, Kdf};

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
) -> Result<(P::Aead, KeyBytes), Error> {
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
    let bytes = KeyBytes::new(&key[..n]);
    key.zeroize();
    Ok((out?, bytes))
}

/// Checks the header's commitment value against the derived one, in constant time.
pub(crate) fn check_commitment(expected: &[u8; 32], stored: &[u8]) -> Result<(), Error> {
    if stored.len() == 32 && bool::from(expected.as_slice().ct_eq(stored)) {
        Ok(())
    } else {
        Err(AuthFailure::Commitment.into())
    }
}

/// The content key of a received header: derived from `data_key`, its commitment checked
/// (committing suites), and the header tag verified over the header body followed by
/// `extras` (the reproduced pairs the message does not store, in key order).
///
/// With `net_v4_0_0_retry` the derivations of ESDK-.NET 4.0.0 are tried too (the message id
/// left out of the v1 HKDF info; an empty required context serialized as `00 00`), in the
/// order the .NET SDK's fix tries them.
///
/// # Errors
/// [`AuthFailure::Commitment`], [`AuthFailure::HeaderTag`], provider failures.
pub(crate) fn header_key<'x, P: CryptoProvider>(
    provider: &P,
    h: &Header<'_>,
    data_key: &[u8],
    extras: impl Iterator<Item = RawPair<'x>> + Clone,
    net_v4_0_0_retry: bool,
) -> Result<(P::Aead, KeyBytes), Error> {
    let suite = h.suite;
    let has_extras = extras.clone().next().is_some();
    let header_body = &h.bytes[..h.body_len];
    let standard: &[(KdfVariant, bool)] = &[(KdfVariant::Standard, false)];
    let retry: &[(KdfVariant, bool)] = &[
        (KdfVariant::Standard, false),
        (KdfVariant::NetV400, true),
        (KdfVariant::Standard, true),
        (KdfVariant::NetV400, false),
    ];
    let variants = if net_v4_0_0_retry { retry } else { standard };
    let hkdf_v1 = matches!(suite.kdf(), Kdf::Hkdf(_)) && !suite.is_committing();
    for &(kdf, empty_ec_bug) in variants {
        if (kdf == KdfVariant::NetV400 && !hkdf_v1) || (empty_ec_bug && has_extras) {
            continue;
        }
        let mut commit = Zeroizing::new([0u8; 32]);
        let (key, bytes) = derive_key(provider, suite, data_key, h.message_id, kdf, &mut commit)?;
        if suite.is_committing() {
            check_commitment(&commit, h.suite_data)?;
        }
        let tag = key.gmac(&h.iv, &mut |sink| {
            sink(header_body);
            encryption_context::feed(extras.clone(), sink);
            if empty_ec_bug {
                sink(&[0, 0]);
            }
        })?;
        if bool::from(tag.ct_eq(&h.tag)) {
            return Ok((key, bytes));
        }
    }
    Err(AuthFailure::HeaderTag.into())
}
