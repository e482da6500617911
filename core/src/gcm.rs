//! AES-GCM over one expanded AES key ([`AesGcmKey`]), on RustCrypto's `aes`, `ctr` and
//! `ghash` (feature `gcm`; the `rustcrypto` provider's AEAD and `esdk-raw`'s raw AES
//! keyring use it).

use aes::cipher::consts::U16;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockCipherEncrypt, InnerIvInit, KeyInit, StreamCipherCore};
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

    /// The counter mode for the data, which starts at J0 + 1, and E_K(J0), the tag's mask
    /// (J0 = IV ‖ 0^31 ‖ 1).
    fn counter(&self, iv: &[u8; 12]) -> (Ctr32Be<'_, C>, aes::Block) {
        let mut j0 = aes::Block::default();
        j0[..12].copy_from_slice(iv);
        j0[15] = 1;
        let mut ctr = Ctr32Be::inner_iv_init(&self.cipher, &j0);
        let mut mask = aes::Block::default();
        ctr.write_keystream_block(&mut mask);
        (ctr, mask)
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
        let (ctr, mask) = self.counter(iv);
        ctr.apply_keystream_partial(buf.reborrow());
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
        let (ctr, mask) = self.counter(iv);
        let expected = self.tag(&mask, aad, buf.get_in());
        if bool::from(expected.ct_eq(tag)) {
            ctr.apply_keystream_partial(buf);
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
