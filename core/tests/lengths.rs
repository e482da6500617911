//! Lengths from the body that do not fit in `usize` on 32-bit targets (issue #14): a frame
//! length of 2^32 - 1, a final frame that claims it, non-framed lengths of 2^32 - 1 and 2^32.
//! On a 32-bit target each must be a specific `Malformed::LengthOverflow` naming the field
//! and its offset (not an overflow panic, not a misleading `BufferTooSmall`); on 64-bit the
//! same inputs are simply incomplete (`NeedInput`). Run on 32 bits with
//! `scripts/test-32bit.sh`.

use esdk_core::error::{Error, Malformed};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::{AeadKey, CryptoProvider, RandomSource};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{CommitmentPolicy, Config, Decryptor, Keyring, Status};

struct NoRng;
impl RandomSource for NoRng {
    fn fill_random(&self, _: &mut [u8]) -> Result<(), esdk_core::error::CryptoError> {
        Err(esdk_core::error::CryptoError::Rng)
    }
}

const KEY: [u8; 16] = [0x42; 16];

/// Opens every EDK to [`KEY`] (suite 0x0014 uses the data key as the content key, so the
/// test can authenticate the headers it forges).
struct Fixed;
impl Keyring for Fixed {
    fn on_encrypt(&self, _: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        Err(esdk_core::error::ApiMisuse::WrongState.into())
    }
    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, _: Edks<'_>) -> Result<(), Error> {
        m.set_data_key(DataKey::from_slice(&KEY)?)
    }
    fn encrypted_data_keys_len(&self, _: esdk_core::AlgorithmSuite) -> Option<(u16, usize)> {
        None
    }
}

/// A v1 header for suite 0x0014 with a valid tag.
fn header(content_type: u8, frame_len: u32) -> Vec<u8> {
    let mut h = vec![1, 0x80, 0x00, 0x14];
    h.extend_from_slice(&[7; 16]);
    h.extend_from_slice(&[0, 0, 0, 1, 0, 1, b'f', 0, 0, 0, 1, b'k']);
    h.push(content_type);
    h.extend_from_slice(&[0, 0, 0, 0, 12]);
    h.extend_from_slice(&frame_len.to_be_bytes());
    let p = RustCrypto::new(NoRng);
    let key = p.aead_key(&KEY).expect("key");
    let iv = [0u8; 12];
    let tag = key.gmac(&iv, &mut |sink| sink(&h)).expect("gmac");
    h.extend_from_slice(&iv);
    h.extend_from_slice(&tag);
    h
}

fn run(msg: &[u8]) -> (usize, Result<Status, Error>) {
    let cfg = Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt);
    let p = RustCrypto::new(NoRng);
    let mut dec = Decryptor::new(&cfg, &p, &[]);
    let mut out = [0u8; 64];
    let h = dec.process_with(&Fixed, msg, &mut out).expect("header");
    assert_eq!(h.status, Status::Header);
    let r = dec.process(&msg[h.consumed..], &mut out).map(|p| p.status);
    (h.consumed, r)
}

#[test]
fn lengths_near_2_32_are_a_specific_error_on_32_bit_targets() {
    let is32 = cfg!(target_pointer_width = "32");
    let mut checked = 0;
    // (message, offset of the length field after the header, field, length)
    let mut cases: Vec<(Vec<u8>, usize, &str, u64)> = Vec::new();
    let mut regular = header(2, u32::MAX);
    regular.extend_from_slice(&[0, 0, 0, 1]);
    regular.extend_from_slice(&[0; 20]);
    cases.push((regular, 0, "frame length", u64::from(u32::MAX)));
    let mut fin = header(2, u32::MAX);
    fin.extend_from_slice(&[0xFF; 4]);
    fin.extend_from_slice(&[0, 0, 0, 1]);
    fin.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    fin.extend_from_slice(&u32::MAX.to_be_bytes());
    fin.extend_from_slice(&[0; 9]);
    cases.push((fin, 20, "final frame content length", u64::from(u32::MAX)));
    for len in [u64::from(u32::MAX), 1 << 32, (1 << 32) - 17] {
        let mut nf = header(1, 0);
        nf.extend_from_slice(&[0; 12]);
        nf.extend_from_slice(&len.to_be_bytes());
        nf.extend_from_slice(&[0; 5]);
        cases.push((nf, 12, "non-framed content length", len));
    }
    for (msg, at, field, length) in &cases {
        let (hl, r) = run(msg);
        if is32 {
            assert_eq!(
                r,
                Err(Error::Malformed {
                    offset: hl + at,
                    kind: Malformed::LengthOverflow {
                        field,
                        length: *length
                    }
                }),
                "{field} {length}"
            );
            let text = r.unwrap_err().to_string();
            assert!(
                text.contains(field) && text.contains("address space"),
                "{text}"
            );
        } else {
            assert!(
                matches!(r, Ok(Status::NeedInput { min }) if min > msg.len() - hl),
                "{field} {length}: {r:?}"
            );
        }
        checked += 1;
    }
    println!(
        "lengths: {checked} cases checked on a {}-bit target",
        usize::BITS
    );
    assert_eq!(checked, 5);
}
