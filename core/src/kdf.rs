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
use crate::provider::{AeadKey, CryptoProvider, HkdfOutput};
use crate::suite::{AlgorithmSuite, HashAlg, Kdf};

/// How the data key becomes the content key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KdfVariant {
    /// As the spec says.
    Standard,
    /// ESDK-.NET 4.0.0: the message id left out of the v1 HKDF info.
    NetV400,
}

/// Derives the content key (its bytes: the caller builds the cipher) and, for committing
/// suites, the commitment key. A frame of its own, never inlined: the HKDF's stack (HMAC
/// states, the compression function's schedule) then sits beside the AES key schedule the
/// caller builds next, not under it (firmware stacks).
#[inline(never)]
pub(crate) fn derive_key<P: CryptoProvider>(
    provider: &P,
    suite: AlgorithmSuite,
    data_key: &[u8],
    message_id: &[u8],
    variant: KdfVariant,
    commit_out: &mut [u8; 32],
) -> Result<KeyBytes, Error> {
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
        // The content key and the commitment key share the salt (message id) and the IKM
        // (data key): one extract, two expands.
        Kdf::Hkdf(HashAlg::Sha512) if suite.is_committing() => provider.hkdf(
            HashAlg::Sha512,
            message_id,
            data_key,
            &mut [
                HkdfOutput::new(&[&id, b"DERIVEKEY"], &mut key[..n]),
                HkdfOutput::new(&[b"COMMITKEY"], commit_out),
            ],
        ),
        Kdf::Hkdf(h) => {
            let info: &[&[u8]] = match variant {
                KdfVariant::Standard => &[&id, message_id],
                KdfVariant::NetV400 => &[&id],
            };
            provider.hkdf(
                h,
                &[],
                data_key,
                &mut [HkdfOutput::new(info, &mut key[..n])],
            )
        }
    };
    let bytes = KeyBytes::new(&key[..n]);
    key.zeroize();
    r?;
    Ok(bytes)
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
/// `extras` (the reproduced pairs the message does not store, in key order). The key that
/// verifies goes to `found` with its bytes (the caller keeps it as the body key).
///
/// With `net_v4_0_0_retry` the derivations of ESDK-.NET 4.0.0 are tried too (the message id
/// left out of the v1 HKDF info; an empty required context serialized as `00 00`), in the
/// order the .NET SDK's fix tries them.
///
/// The derivation ([`derive_key`]) and the tag check each run in a frame of their own, side
/// by side: the AEAD key (about 0.5 KB with its key schedule on a microcontroller) never
/// sits in a frame under the HKDF's (firmware stacks).
///
/// # Errors
/// [`AuthFailure::Commitment`], [`AuthFailure::HeaderTag`], provider failures.
pub(crate) fn header_key<'x, P: CryptoProvider>(
    provider: &P,
    h: &Header<'_>,
    data_key: &[u8],
    extras: impl Iterator<Item = RawPair<'x>> + Clone,
    net_v4_0_0_retry: bool,
    found: &mut dyn FnMut(P::Aead, KeyBytes),
) -> Result<(), Error> {
    let suite = h.suite;
    let has_extras = extras.clone().next().is_some();
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
        let bytes = derive_key(provider, suite, data_key, h.message_id, kdf, &mut commit)?;
        // The HKDF's temporaries (output blocks, HMAC states) hold the key on the stack
        // below: wiped before the body state is built there, whose padding would carry
        // them into the decryptor's memory, where no drop wipes them.
        crate::materials::scrub_stack();
        if suite.is_committing() {
            check_commitment(&commit, h.suite_data)?;
        }
        if check_tag(provider, bytes, h, extras.clone(), empty_ec_bug, found)? {
            return Ok(());
        }
    }
    Err(AuthFailure::HeaderTag.into())
}

/// Checks the header tag with the key of `bytes`; hands the key to `found` when it verifies.
#[inline(never)]
fn check_tag<'x, P: CryptoProvider>(
    provider: &P,
    bytes: KeyBytes,
    h: &Header<'_>,
    extras: impl Iterator<Item = RawPair<'x>> + Clone,
    empty_ec_bug: bool,
    found: &mut dyn FnMut(P::Aead, KeyBytes),
) -> Result<bool, Error> {
    let key = bytes.aead_key(provider)?;
    let header_body = &h.bytes[..h.body_len];
    let tag = key.gmac(&h.iv, &mut |sink| {
        sink(header_body);
        encryption_context::feed(extras.clone(), sink);
        if empty_ec_bug {
            sink(&[0, 0]);
        }
    })?;
    if bool::from(tag.ct_eq(&h.tag)) {
        // The key schedule's temporaries below, wiped before `found` builds the body
        // state in that stack (see `header_key`).
        crate::materials::scrub_stack();
        found(key, bytes);
        return Ok(true);
    }
    Ok(false)
}

#[cfg(all(test, feature = "rustcrypto"))]
mod tests {
    use super::*;
    use crate::error::CryptoError;
    use crate::provider::RandomSource;
    use crate::rustcrypto::RustCrypto;

    /// Key derivation draws no randomness.
    struct NoRng;
    impl RandomSource for NoRng {
        fn fill_random(&self, _: &mut [u8]) -> Result<(), CryptoError> {
            Err(CryptoError::Rng)
        }
    }

    /// RFC 5869 HKDF by the `hkdf` crate, one derivation per call: salt `None` = zeros.
    fn hkdf_ref(
        hash: HashAlg,
        salt: Option<&[u8]>,
        ikm: &[u8],
        info: &[u8],
        len: usize,
    ) -> [u8; 32] {
        let mut out = [0u8; 32];
        let okm = &mut out[..len];
        match hash {
            HashAlg::Sha256 => hkdf::Hkdf::<sha2::Sha256>::new(salt, ikm).expand(info, okm),
            HashAlg::Sha384 => hkdf::Hkdf::<sha2::Sha384>::new(salt, ikm).expand(info, okm),
            HashAlg::Sha512 => hkdf::Hkdf::<sha2::Sha512>::new(salt, ikm).expand(info, okm),
        }
        .expect("hkdf length");
        out
    }

    /// The content key and commitment key as the spec writes them, from the suite id alone
    /// (§Key Derivation: identity, or HKDF with the suite's hash, no salt and info = suite id
    /// | message id; §Key Commitment: two separate HKDF-SHA512 with salt = message id, info =
    /// suite id | "DERIVEKEY" and "COMMITKEY").
    fn spec_keys(id: u16, dk: &[u8], mid: &[u8], net_v400: bool) -> ([u8; 32], Option<[u8; 32]>) {
        let len = match id & 0xff {
            0x14 => 16,
            0x46 => 24,
            _ => 32,
        };
        let idb = id.to_be_bytes();
        let mut info = [0u8; 34];
        let v1 = |info: &mut [u8; 34]| {
            info[..2].copy_from_slice(&idb);
            let n = if net_v400 { 0 } else { mid.len() };
            info[2..2 + n].copy_from_slice(&mid[..n]);
            2 + n
        };
        match id >> 8 {
            0x00 => {
                let mut k = [0u8; 32];
                k[..len].copy_from_slice(&dk[..len]);
                (k, None)
            }
            0x01 | 0x02 => {
                let n = v1(&mut info);
                (hkdf_ref(HashAlg::Sha256, None, dk, &info[..n], len), None)
            }
            0x03 => {
                let n = v1(&mut info);
                (hkdf_ref(HashAlg::Sha384, None, dk, &info[..n], len), None)
            }
            _ => {
                info[..2].copy_from_slice(&idb);
                info[2..11].copy_from_slice(b"DERIVEKEY");
                let key = hkdf_ref(HashAlg::Sha512, Some(mid), dk, &info[..11], len);
                let commit = hkdf_ref(HashAlg::Sha512, Some(mid), dk, b"COMMITKEY", 32);
                (key, Some(commit))
            }
        }
    }

    /// The same GMAC under both keys: the keys are equal.
    fn same_key<K: AeadKey>(a: &K, b: &K) -> bool {
        let iv = [5u8; 12];
        let tag = |k: &K| k.gmac(&iv, &mut |sink| sink(b"kdf test")).expect("gmac");
        tag(a) == tag(b)
    }

    #[test]
    fn derivation_equals_the_specs_separate_hkdfs() {
        let p = RustCrypto::new(NoRng);
        let mut checked = 0;
        for suite in AlgorithmSuite::ALL {
            for seed in 0..4u8 {
                let dk: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ seed);
                let mid_all: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(7) ^ !seed);
                let mid = &mid_all[..suite.message_id_len()];
                let dk = &dk[..suite.key_len()];
                let variants: &[KdfVariant] =
                    if matches!(suite.kdf(), Kdf::Hkdf(_)) && !suite.is_committing() {
                        &[KdfVariant::Standard, KdfVariant::NetV400]
                    } else {
                        &[KdfVariant::Standard]
                    };
                for &variant in variants {
                    let mut commit = [0u8; 32];
                    let bytes = derive_key(&p, suite, dk, mid, variant, &mut commit).unwrap();
                    let key = bytes.aead_key(&p).unwrap();
                    let (want, want_commit) =
                        spec_keys(suite.id(), dk, mid, variant == KdfVariant::NetV400);
                    let want_key = p.aead_key(&want[..suite.key_len()]).unwrap();
                    assert!(same_key(&key, &want_key), "suite {:04x}", suite.id());
                    assert_eq!(
                        commit,
                        want_commit.unwrap_or([0; 32]),
                        "suite {:04x}",
                        suite.id()
                    );
                    if let Some(c) = want_commit {
                        assert!(check_commitment(&c, &commit).is_ok());
                        let mut other = c;
                        other[31] ^= 1;
                        assert!(check_commitment(&other, &commit).is_err());
                    }
                    checked += 1;
                }
            }
        }
        // 11 suites x 4 seeds, the 6 HKDF v1 suites twice.
        assert_eq!(checked, (11 + 6) * 4);
    }

    #[test]
    fn a_short_data_key_fails_the_identity_kdf() {
        let p = RustCrypto::new(NoRng);
        let mut commit = [0u8; 32];
        let r = derive_key(
            &p,
            AlgorithmSuite::Aes256GcmIv12Tag16NoKdf,
            &[1u8; 16],
            &[0u8; 16],
            KdfVariant::Standard,
            &mut commit,
        );
        assert!(matches!(
            r,
            Err(Error::Keyring(crate::error::KeyringError::DataKeyLength))
        ));
    }
}
