//! Primitive-level agreement with the pure-Rust provider.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair};
use esdk_core::error::CryptoError;
use esdk_core::provider::{
    AeadKey, CryptoProvider, HKDF_MAX_INFO_LEN, HkdfOutput, MessageHasher, RandomSource,
    TagMismatch,
};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::suite::{HashAlg, SignatureAlg};

use crate::{AwsLc, DEFAULT_PROVIDER};

const ALGS: [SignatureAlg; 2] = [SignatureAlg::EcdsaP256Sha256, SignatureAlg::EcdsaP384Sha384];

fn rc() -> RustCrypto<esdk::OsRng> {
    RustCrypto::new(esdk::OsRng)
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
        .collect()
}

#[test]
fn aead_matches_rustcrypto() {
    let (a, r) = (DEFAULT_PROVIDER, rc());
    for klen in [16, 24, 32] {
        let key = bytes(klen, 1);
        let (ka, kr) = (a.aead_key(&key).unwrap(), r.aead_key(&key).unwrap());
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 1000] {
            let iv = [len as u8; 12];
            let aad = bytes(len % 40, 3);
            let pt = bytes(len, 5);
            let (mut ca, mut cr) = (pt.clone(), pt.clone());
            let ta = ka.seal_in_place(&iv, &aad, &mut ca).unwrap();
            let tr = kr.seal_in_place(&iv, &aad, &mut cr).unwrap();
            assert_eq!((&ca, ta), (&cr, tr), "key {klen} len {len}");
            ka.open_in_place(&iv, &aad, &mut ca, &ta).unwrap();
            assert_eq!(ca, pt);
            let mut bad = ta;
            bad[0] ^= 1;
            assert_eq!(ka.open_in_place(&iv, &aad, &mut cr, &bad), Err(TagMismatch));
        }
    }
    for bad in [0, 15, 17, 31, 33] {
        assert_eq!(
            a.aead_key(&bytes(bad, 0)).map(|_| ()),
            Err(CryptoError::InvalidKey)
        );
    }
}

#[test]
fn gmac_matches_gcm_and_rustcrypto() {
    let (a, r) = (DEFAULT_PROVIDER, rc());
    for klen in [16, 24, 32] {
        let key = bytes(klen, 9);
        let (ka, kr) = (a.aead_key(&key).unwrap(), r.aead_key(&key).unwrap());
        let aad = bytes(301, 4);
        let iv = [0u8; 12];
        let whole = ka.seal_in_place(&iv, &aad, &mut []).unwrap();
        let mut split = |s: &mut dyn FnMut(&[u8])| {
            s(&aad[..5]);
            s(&[]);
            s(&aad[5..200]);
            s(&aad[200..]);
        };
        assert_eq!(ka.gmac(&iv, &mut split).unwrap(), whole);
        assert_eq!(kr.gmac(&iv, &mut split).unwrap(), whole);
        assert_eq!(
            ka.gmac(&iv, &mut |_| {}).unwrap(),
            ka.seal_in_place(&iv, &[], &mut []).unwrap()
        );
    }
}

/// RFC 5869 HKDF by the `hkdf` crate, one output per call (salt empty = zeros).
fn hkdf_ref(h: HashAlg, salt: &[u8], ikm: &[u8], info: &[&[u8]], len: usize) -> Vec<u8> {
    let salt = (!salt.is_empty()).then_some(salt);
    let mut out = vec![0u8; len];
    match h {
        HashAlg::Sha256 => {
            hkdf::Hkdf::<sha2::Sha256>::new(salt, ikm).expand_multi_info(info, &mut out)
        }
        HashAlg::Sha384 => {
            hkdf::Hkdf::<sha2::Sha384>::new(salt, ikm).expand_multi_info(info, &mut out)
        }
        HashAlg::Sha512 => {
            hkdf::Hkdf::<sha2::Sha512>::new(salt, ikm).expand_multi_info(info, &mut out)
        }
    }
    .unwrap();
    out
}

/// One HKDF output of provider `p`.
fn hkdf_one<P: CryptoProvider>(
    p: &P,
    h: HashAlg,
    salt: &[u8],
    ikm: &[u8],
    info: &[&[u8]],
    len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; len];
    p.hkdf(h, salt, ikm, &mut [HkdfOutput::new(info, &mut out)])?;
    Ok(out)
}

/// Outputs of `lens` bytes with `infos` from one call of provider `p`.
fn hkdf_many<P: CryptoProvider>(
    p: &P,
    h: HashAlg,
    salt: &[u8],
    ikm: &[u8],
    infos: &[&[&[u8]]],
    lens: &[usize],
) -> Result<Vec<Vec<u8>>, CryptoError> {
    let mut outs: Vec<Vec<u8>> = lens.iter().map(|&l| vec![0u8; l]).collect();
    let mut steps: Vec<HkdfOutput<'_>> = outs
        .iter_mut()
        .zip(infos)
        .map(|(o, info)| HkdfOutput::new(info, o))
        .collect();
    p.hkdf(h, salt, ikm, &mut steps)?;
    Ok(outs)
}

/// Both providers' HKDF, with one output and with several outputs of one extract, against
/// the `hkdf` crate and RFC 5869; the length limits.
#[test]
fn hkdf_matches_the_hkdf_crate_and_rfc5869() {
    let (a, r) = (DEFAULT_PROVIDER, rc());
    // RFC 5869 A.3: SHA-256, empty salt and info.
    let want =
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8";
    for okm in [
        hkdf_one(&a, HashAlg::Sha256, &[], &[0x0b; 22], &[], 42).unwrap(),
        hkdf_one(&r, HashAlg::Sha256, &[], &[0x0b; 22], &[], 42).unwrap(),
    ] {
        let got: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }

    let long_info = bytes(HKDF_MAX_INFO_LEN, 9);
    let infos: [&[&[u8]]; 4] = [
        &[b"\x04\x78", b"DERIVEKEY", &[]],
        &[b"COMMITKEY"],
        &[],
        &[&long_info[..50], &long_info[50..]],
    ];
    for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        let hl = h.output_len();
        let ikm = bytes(32, 7);
        // Salts: none, short, longer than SHA-256's block, longer than SHA-512's block.
        for salt in [vec![], bytes(32, 1), bytes(100, 2), bytes(200, 3)] {
            for len in [0usize, 1, 16, 32, hl - 1, hl, hl + 1, 200, 255 * hl] {
                for info in infos {
                    let want = hkdf_ref(h, &salt, &ikm, info, len);
                    let case = format!("{h:?} salt {} info {info:?} len {len}", salt.len());
                    assert_eq!(
                        hkdf_one(&a, h, &salt, &ikm, info, len).unwrap(),
                        want,
                        "aws-lc {case}"
                    );
                    assert_eq!(
                        hkdf_one(&r, h, &salt, &ikm, info, len).unwrap(),
                        want,
                        "rustcrypto {case}"
                    );
                }
            }
            // Several outputs of one extract, each of its own length, equal separate HKDFs.
            let lens = [32usize, 32, 2 * hl + 1, 7];
            let want: Vec<Vec<u8>> = infos
                .iter()
                .zip(lens)
                .map(|(info, l)| hkdf_ref(h, &salt, &ikm, info, l))
                .collect();
            assert_eq!(hkdf_many(&a, h, &salt, &ikm, &infos, &lens).unwrap(), want);
            assert_eq!(hkdf_many(&r, h, &salt, &ikm, &infos, &lens).unwrap(), want);
        }
        // Explicit zero salt = empty salt.
        assert_eq!(
            hkdf_one(&a, h, &vec![0u8; hl], &ikm, infos[0], 40).unwrap(),
            hkdf_ref(h, &[], &ikm, infos[0], 40)
        );
        // 255 blocks is the most; one output too long fails the call.
        for lens in [[32, 255 * hl + 1], [255 * hl + 1, 32]] {
            let infos: [&[&[u8]]; 2] = [&[], &[]];
            assert_eq!(
                hkdf_many(&a, h, &[], &[1], &infos, &lens),
                Err(CryptoError::InvalidKey)
            );
            assert_eq!(
                hkdf_many(&r, h, &[], &[1], &infos, &lens),
                Err(CryptoError::InvalidKey)
            );
        }
        // aws-lc takes infos up to HKDF_MAX_INFO_LEN (see above), not longer.
        let longer = bytes(HKDF_MAX_INFO_LEN + 1, 4);
        assert_eq!(
            hkdf_one(&a, h, &[], &[1], &[&longer], 32),
            Err(CryptoError::Unsupported)
        );
    }
}

/// The provider's hasher (aws-lc's, or OpenSSL's with the `openssl-sha` feature) against
/// aws-lc's one-shot digest: lengths around the SHA-256 / SHA-512 block and padding
/// boundaries and a large input, fed in pieces of several sizes.
#[test]
fn hasher_matches_aws_lc_digest() {
    let data = bytes((1 << 20) + 333, 11);
    let lens = [
        0,
        1,
        55,
        56,
        63,
        64,
        65,
        111,
        112,
        127,
        128,
        129,
        1000,
        4096,
        data.len(),
    ];
    for (alg, d) in [(ALGS[0], &digest::SHA256), (ALGS[1], &digest::SHA384)] {
        for len in lens {
            let want = digest::digest(d, &data[..len]);
            for piece in [1usize, 7, 128, 4096, 1 << 20] {
                if piece < 128 && len > 4096 {
                    continue; // byte-at-a-time over 1 MiB adds nothing but time
                }
                let mut h = DEFAULT_PROVIDER.hasher(alg).unwrap();
                for chunk in data[..len].chunks(piece) {
                    h.update(chunk);
                }
                let mut out = [0u8; 64];
                let n = h.finalize_into(&mut out);
                assert_eq!(&out[..n], want.as_ref(), "{alg:?} len {len} piece {piece}");
            }
        }
    }
}

#[test]
fn hasher_matches_rustcrypto() {
    let (a, r) = (DEFAULT_PROVIDER, rc());
    let data = bytes(5000, 3);
    for alg in ALGS {
        let (mut ha, mut hr) = (a.hasher(alg).unwrap(), r.hasher(alg).unwrap());
        for chunk in data.chunks(333) {
            ha.update(chunk);
            hr.update(chunk);
        }
        let (mut da, mut dr) = ([0u8; 64], [0u8; 64]);
        let (na, nr) = (ha.finalize_into(&mut da), hr.finalize_into(&mut dr));
        assert_eq!((na, &da[..na]), (nr, &dr[..nr]));
        assert_eq!(na, alg.hash().output_len());
    }
}

/// Whether the DER signature's S is at most n/2.
fn is_low_s(alg: SignatureAlg, sig: &[u8]) -> bool {
    let c = crate::ecdsa::curve(alg).order;
    let (_, s) = crate::ecdsa::der::split(sig).unwrap();
    let mut low = vec![0u8; c.len()];
    crate::ecdsa::der::low_s(s, c, &mut low).unwrap();
    let mut padded = vec![0u8; c.len() - s.len()];
    padded.extend_from_slice(s);
    padded == low
}

#[test]
fn signatures_cross_verify() {
    let (a, r) = (DEFAULT_PROVIDER, rc());
    for alg in ALGS {
        let n = alg.scalar_len();
        let dl = alg.hash().output_len();
        for round in 0..8u8 {
            let digest = bytes(dl, round);
            let (mut sk, mut pk) = (vec![0u8; n], vec![0u8; n + 1]);
            // Keys from each provider, signatures from each provider, verified by both.
            let key_gen: &dyn Fn(&mut [u8], &mut [u8]) = if round % 2 == 0 {
                &|s, p| a.generate_signing_key(alg, s, p).unwrap()
            } else {
                &|s, p| r.generate_signing_key(alg, s, p).unwrap()
            };
            key_gen(&mut sk, &mut pk);
            assert!(matches!(pk[0], 2 | 3));
            let mut sig = [0u8; 104];
            let sl = a.sign_digest(alg, &sk, &digest, &mut sig).unwrap();
            assert_eq!(sl, alg.fixed_signature_len());
            assert!(is_low_s(alg, &sig[..sl]));
            assert_eq!(r.verify_digest(alg, &pk, &digest, &sig[..sl]), Ok(true));
            assert_eq!(a.verify_digest(alg, &pk, &digest, &sig[..sl]), Ok(true));
            let mut other = digest.clone();
            other[0] ^= 1;
            assert_eq!(a.verify_digest(alg, &pk, &other, &sig[..sl]), Ok(false));

            let sl = r.sign_digest(alg, &sk, &digest, &mut sig).unwrap();
            assert_eq!(a.verify_digest(alg, &pk, &digest, &sig[..sl]), Ok(true));
            sig[sl - 1] ^= 1;
            assert_eq!(a.verify_digest(alg, &pk, &digest, &sig[..sl]), Ok(false));
            // Not DER at all.
            assert_eq!(a.verify_digest(alg, &pk, &digest, &[0x30, 0]), Ok(false));
            assert_eq!(a.verify_digest(alg, &pk, &digest, &[]), Ok(false));
        }
    }
}

/// aws-lc's own signatures (random length, random S half) verify: any DER length, high S.
#[test]
fn any_length_and_high_s_verify() {
    let a = DEFAULT_PROVIDER;
    for (alg, signing, dalg) in [
        (
            SignatureAlg::EcdsaP256Sha256,
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &digest::SHA256,
        ),
        (
            SignatureAlg::EcdsaP384Sha384,
            &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &digest::SHA384,
        ),
    ] {
        let kp = EcdsaKeyPair::generate(signing).unwrap();
        let pk: aws_lc_rs::encoding::EcPublicKeyCompressedBin<'static> =
            aws_lc_rs::encoding::AsBigEndian::as_be_bytes(kp.public_key()).unwrap();
        let d = digest::digest(dalg, b"message");
        let (mut high, mut lens) = (0, std::collections::BTreeSet::new());
        for _ in 0..64 {
            let sig = kp.sign_digest(&d).unwrap();
            lens.insert(sig.as_ref().len());
            if !is_low_s(alg, sig.as_ref()) {
                high += 1;
            }
            assert_eq!(
                a.verify_digest(alg, pk.as_ref(), d.as_ref(), sig.as_ref()),
                Ok(true)
            );
        }
        assert!(high > 0, "no high-S signature in 64 tries");
        assert!(lens.len() > 1, "one DER length only: {lens:?}");
    }
}

#[test]
fn random_and_debug() {
    let p = AwsLc::new();
    let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
    p.fill_random(&mut x).unwrap();
    p.fill_random(&mut y).unwrap();
    assert_ne!(x, y);
    p.fill_random(&mut []).unwrap();

    let key = [0xABu8; 32];
    let k = p.aead_key(&key).unwrap();
    let dbg = format!("{k:?} {p:?} {:?}", p.hasher(ALGS[1]).unwrap());
    assert!(!dbg.to_lowercase().contains("abab"), "{dbg}");
    assert!(!dbg.contains("171"), "{dbg}");
    assert_eq!(
        dbg,
        "AwsLcAead { key_bits: 256, .. } AwsLc AwsLcHasher { output_len: 48, .. }"
    );
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<AwsLc>();
    check::<crate::AwsLcAead>();
    check::<crate::AwsLcHasher>();
}
