//! AES-GCM over one expanded AES key ([`AesGcmKey`]), on RustCrypto's `aes`, `ctr` and
//! `ghash` (feature `gcm`; the `rustcrypto` provider's AEAD and `esdk-raw`'s raw AES
//! keyring use it).

use aes::cipher::consts::U16;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
#[cfg(not(aes_backend_soft = "compact"))]
use aes::cipher::{InnerIvInit, StreamCipherCore};
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::CryptoError;
use crate::provider::{AadFeed, AeadKey, TagMismatch};

/// AES-GCM (NIST SP 800-38D with 96-bit IVs and 128-bit tags) over one expanded AES key:
/// RustCrypto's `aes` block cipher, its `ctr` 32-bit big-endian counter mode and its `ghash`,
/// composed as the `aes-gcm` crate composes them. `aes-gcm` keeps its own copy of the key
/// schedule, which the header's GMAC over associated data given in pieces cannot reach, so
/// a key had to hold the schedule twice; here one schedule serves sealing, opening and the
/// GMAC (an AES-256 key is 276 bytes with the compact software AES of a microcontroller,
/// where every copy of a key on the stack counts, instead of 512). The key schedule and
/// GHASH's key H are zeroized on drop (`aes`'s and `ghash`'s `zeroize`).
///
/// Firmware with a provider of its own (only the suites it sends) uses it as its AEAD key:
/// `AesGcmKey<aes::Aes256>` for the committing suites.
#[derive(Clone)]
pub struct AesGcmKey<C> {
    cipher: C,
    /// GHASH keyed with H = E_K(0^128), cloned for each message.
    ghash: ghash::GHash,
}

impl<C> core::fmt::Debug for AesGcmKey<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AesGcmKey(<redacted>)")
    }
}

/// Longest plaintext AES-GCM takes under one IV: 2^32 - 2 blocks (SP 800-38D).
const GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

#[cfg(not(aes_backend_soft = "compact"))]
type Ctr32Be<'c, C> = ctr::CtrCore<&'c C, ctr::flavors::Ctr32BE>;

impl<C: BlockCipherEncrypt<BlockSize = U16> + KeyInit> AesGcmKey<C> {
    /// Expands `key` (the cipher's key length).
    pub fn new(key: &aes::cipher::Key<C>) -> Self {
        let cipher = C::new(key);
        let mut h = aes::Block::default();
        cipher.encrypt_block(&mut h);
        let ghash = ghash::GHash::new(&h);
        h.zeroize();
        Self { cipher, ghash }
    }
}

impl<C: BlockCipherEncrypt<BlockSize = U16>> AesGcmKey<C> {
    /// A fresh GHASH under this key's H.
    fn ghash(&self) -> ghash::GHash {
        self.ghash.clone()
    }

    /// J0 = IV ‖ 0^31 ‖ 1 and E_K(J0), the tag's mask; the data's counter blocks start at
    /// J0 + 1.
    fn counter(&self, iv: &[u8; 12]) -> (aes::Block, aes::Block) {
        let mut j0 = aes::Block::default();
        j0[..12].copy_from_slice(iv);
        j0[15] = 1;
        let mut mask = j0;
        self.cipher.encrypt_block(&mut mask);
        (j0, mask)
    }

    /// Counter mode over `buf` (in to out) from J0 + 1, through the `ctr` crate: blocks in
    /// parallel where the cipher has a parallel path (AES-NI, ARMv8, fixsliced software AES).
    #[cfg(not(aes_backend_soft = "compact"))]
    fn apply_ctr(&self, j0: &aes::Block, buf: InOutBuf<'_, '_, u8>) {
        // J0 + 1: a 96-bit IV's J0 ends in the 32-bit counter 1.
        let mut j1 = *j0;
        j1[15] = 2;
        Ctr32Be::inner_iv_init(&self.cipher, &j1).apply_keystream_partial(buf);
    }

    /// Counter mode over `buf` (in to out) from J0 + 1, one block at a time: the build asked
    /// for the compact software AES (`--cfg aes_backend_soft="compact"`, a microcontroller's
    /// flash), where the cipher's parallel path is a second fixsliced AES in a wider word.
    /// Going block by block keeps it (about 1.5 KB) and `ctr`'s driver out of the image.
    #[cfg(aes_backend_soft = "compact")]
    fn apply_ctr(&self, j0: &aes::Block, buf: InOutBuf<'_, '_, u8>) {
        self.apply_ctr_blockwise(j0, buf);
    }

    /// Counter mode one block at a time (see the compact [`apply_ctr`](Self::apply_ctr));
    /// compiled everywhere so that the host's tests compare it with the `ctr` crate's.
    #[cfg_attr(not(any(aes_backend_soft = "compact", test)), allow(dead_code))]
    fn apply_ctr_blockwise(&self, j0: &aes::Block, buf: InOutBuf<'_, '_, u8>) {
        let mut block = *j0;
        let mut n = u32::from_be_bytes([j0[12], j0[13], j0[14], j0[15]]);
        let mut next = |ks: &mut aes::Block| {
            n = n.wrapping_add(1);
            block[12..].copy_from_slice(&n.to_be_bytes());
            *ks = block;
            self.cipher.encrypt_block(ks);
        };
        let mut ks = aes::Block::default();
        let (blocks, mut tail) = buf.into_chunks::<U16>();
        for mut b in blocks {
            next(&mut ks);
            b.xor_in2out(&ks);
        }
        if !tail.is_empty() {
            next(&mut ks);
            tail.xor_in2out(&ks[..tail.len()]);
        }
        ks.zeroize();
    }

    /// The tag of `ciphertext` with `aad`: GHASH over both (each zero-padded) and their bit
    /// lengths, masked with E_K(J0).
    fn tag(&self, mask: &aes::Block, aad: &[u8], ciphertext: &[u8]) -> [u8; 16] {
        let mut gh = self.ghash();
        gh.update_padded(aad);
        gh.update_padded(ciphertext);
        let mut lens = aes::Block::default();
        lens[..8].copy_from_slice(&(aad.len() as u64 * 8).to_be_bytes());
        lens[8..].copy_from_slice(&(ciphertext.len() as u64 * 8).to_be_bytes());
        gh.update(&[lens]);
        let s = gh.finalize();
        core::array::from_fn(|i| s[i] ^ mask[i])
    }

    /// Encrypts `buf` (in to out) and returns the tag.
    fn seal(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        mut buf: InOutBuf<'_, '_, u8>,
    ) -> Result<[u8; 16], CryptoError> {
        if buf.len() as u64 > GCM_MAX_PLAINTEXT {
            return Err(CryptoError::Aead);
        }
        let (j0, mask) = self.counter(iv);
        self.apply_ctr(&j0, buf.reborrow());
        Ok(self.tag(&mask, aad, buf.get_out()))
    }

    /// Checks `tag` over the ciphertext in `buf`, then decrypts it (in to out); nothing is
    /// decrypted when the tag does not verify.
    fn open(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: InOutBuf<'_, '_, u8>,
        tag: &[u8; 16],
    ) -> Result<(), TagMismatch> {
        if buf.len() as u64 > GCM_MAX_PLAINTEXT {
            return Err(TagMismatch);
        }
        let (j0, mask) = self.counter(iv);
        let expected = self.tag(&mask, aad, buf.get_in());
        if bool::from(expected.ct_eq(tag)) {
            self.apply_ctr(&j0, buf);
            Ok(())
        } else {
            Err(TagMismatch)
        }
    }

    /// GMAC: the tag of an empty plaintext under associated data fed in pieces.
    fn gmac(&self, iv: &[u8; 12], aad: &mut AadFeed<'_>) -> [u8; 16] {
        let mut gh = self.ghash();
        let mut block = aes::Block::default();
        let mut fill = 0usize;
        let mut total: u64 = 0;
        aad(&mut |part: &[u8]| {
            total += part.len() as u64;
            let mut p = part;
            while !p.is_empty() {
                let n = (16 - fill).min(p.len());
                block[fill..fill + n].copy_from_slice(&p[..n]);
                fill += n;
                p = &p[n..];
                if fill == 16 {
                    gh.update(&[block]);
                    fill = 0;
                }
            }
        });
        if fill > 0 {
            block[fill..].fill(0);
            gh.update(&[block]);
        }
        let mut lens = aes::Block::default();
        lens[..8].copy_from_slice(&(total * 8).to_be_bytes());
        gh.update(&[lens]);
        let s = gh.finalize();
        let (_, mask) = self.counter(iv);
        core::array::from_fn(|i| s[i] ^ mask[i])
    }
}

impl<C: BlockCipherEncrypt<BlockSize = U16>> AeadKey for AesGcmKey<C> {
    fn seal_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        self.seal(iv, aad, buf.into())
    }

    fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), TagMismatch> {
        self.open(iv, aad, buf.into(), tag)
    }

    fn seal_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let out = out.get_mut(..input.len()).ok_or(CryptoError::Aead)?;
        let buf = InOutBuf::new(input, out).map_err(|_| CryptoError::Aead)?;
        self.seal(iv, aad, buf)
    }

    fn open_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; 16],
        out: &mut [u8],
    ) -> Result<(), TagMismatch> {
        let out = out.get_mut(..input.len()).ok_or(TagMismatch)?;
        let buf = InOutBuf::new(input, out).map_err(|_| TagMismatch)?;
        self.open(iv, aad, buf, tag)
    }

    fn gmac(&self, iv: &[u8; 12], aad: &mut AadFeed<'_>) -> Result<[u8; 16], CryptoError> {
        Ok(AesGcmKey::gmac(self, iv, aad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)] // in scope already unless the build is compact
    use aes::cipher::{InnerIvInit, StreamCipherCore};

    /// The block-at-a-time counter mode (what a `aes_backend_soft="compact"` build runs)
    /// against the `ctr` crate's, in place and in to out, over lengths around the block
    /// size and with the 32-bit counter wrapping.
    #[test]
    fn blockwise_counter_mode_is_ctr32be() {
        let key = AesGcmKey::<aes::Aes256>::new(&[7u8; 32].into());
        let input: [u8; 100] = core::array::from_fn(|i| (i * 37) as u8);
        for start in [1u32, 0xFFFF_FFFD, u32::MAX] {
            let mut j0 = aes::Block::default();
            j0[..12].copy_from_slice(&[0xA5; 12]);
            j0[12..].copy_from_slice(&start.to_be_bytes());
            let mut j1 = j0;
            j1[12..].copy_from_slice(&start.wrapping_add(1).to_be_bytes());
            for len in [0, 1, 15, 16, 17, 31, 32, 33, 64, 100] {
                let mut want = [0u8; 100];
                want[..len].copy_from_slice(&input[..len]);
                ctr::CtrCore::<&aes::Aes256, ctr::flavors::Ctr32BE>::inner_iv_init(
                    &key.cipher,
                    &j1,
                )
                .apply_keystream_partial(want[..len].as_mut().into());
                let mut in_place = input;
                key.apply_ctr_blockwise(&j0, in_place[..len].as_mut().into());
                assert_eq!(
                    in_place[..len],
                    want[..len],
                    "in place, start {start:#x}, {len} B"
                );
                let mut out = [0u8; 100];
                let buf = InOutBuf::new(&input[..len], &mut out[..len]).expect("same lengths");
                key.apply_ctr_blockwise(&j0, buf);
                assert_eq!(
                    out[..len],
                    want[..len],
                    "in to out, start {start:#x}, {len} B"
                );
                if len > 0 {
                    assert_ne!(
                        want[..len.min(16)],
                        input[..len.min(16)],
                        "keystream applied"
                    );
                }
            }
        }
    }
}
