//! Hand-built messages for hostile-input tests and the `hostile-headers` generator: a
//! [`Forge`] seals headers and frames under a known data key, so that a hostile field is
//! reached by the decryptor exactly as an attacker who holds a valid key would reach it.

use esdk_core::error::{AttemptFailure, Error};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::{AeadKey, CryptoProvider, HkdfOutput};
use esdk_core::suite::{HashAlg, Kdf};
use esdk_core::{AlgorithmSuite, CommitmentPolicy, Config, Keyring};

/// The provider the forge seals with.
pub type Provider = esdk::DefaultProvider;
/// The provider instance.
pub const PROVIDER: Provider = esdk::DEFAULT_PROVIDER;

/// Provider id of the one EDK the tests' fixed keyring opens.
pub const FIXED_ID: &str = "fixed";
/// The data key of forged messages (cut to the suite's key length).
pub const FIXED_KEY: [u8; 32] = [
    0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00,
];

/// The tests' keyring with a known data key: decrypts the EDKs whose provider id is
/// [`FIXED_ID`] to [`FIXED_KEY`] (cut to the suite's key length); on encrypt, uses that key
/// and writes one such EDK (empty provider info, ciphertext `k`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedKeyring;

impl Keyring for FixedKeyring {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let n = m.suite().key_len();
        m.set_data_key(DataKey::from_slice(&FIXED_KEY[..n])?)?;
        m.push_edk(FIXED_ID, &[], &[b"k"])
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        for (i, e) in edks.iter() {
            if e.provider_id == FIXED_ID {
                let n = m.suite().key_len();
                return m.set_data_key(DataKey::from_slice(&FIXED_KEY[..n])?);
            }
            m.record_failure(i, AttemptFailure::ProviderIdMismatch);
        }
        Err(m.no_data_key_error())
    }

    fn encrypted_data_keys_len(&self, _: AlgorithmSuite) -> Option<(u16, usize)> {
        Some((1, 6 + FIXED_ID.len() + 1))
    }
}

/// Serialized encryption-context section (count and pairs, without the u16 section length).
pub fn ec_section(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let mut v = (pairs.len() as u16).to_be_bytes().to_vec();
    for (k, val) in pairs {
        for f in [k, val] {
            v.extend_from_slice(&(f.len() as u16).to_be_bytes());
            v.extend_from_slice(f);
        }
    }
    v
}

/// One serialized EDK.
pub fn edk(provider_id: &[u8], info: &[u8], ct: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(6 + provider_id.len() + info.len() + ct.len());
    for f in [provider_id, info, ct] {
        v.extend_from_slice(&(f.len() as u16).to_be_bytes());
        v.extend_from_slice(f);
    }
    v
}

/// Builds messages for an unsigned suite under [`FIXED_KEY`], with real tags.
pub struct Forge {
    /// The suite (unsigned: the forge writes no footer).
    pub suite: AlgorithmSuite,
    /// The message id.
    pub mid: Vec<u8>,
    /// The data key (default [`FIXED_KEY`]).
    pub data_key: Vec<u8>,
}

impl Forge {
    /// A forge for `suite` with a fixed message id and [`FIXED_KEY`].
    pub fn new(suite: AlgorithmSuite) -> Self {
        assert!(suite.signature().is_none(), "the forge writes no footer");
        let mid = (0..suite.message_id_len())
            .map(|i| (i as u8).wrapping_mul(7) ^ 0x5a)
            .collect();
        Self {
            suite,
            mid,
            data_key: FIXED_KEY.to_vec(),
        }
    }

    /// A configuration that accepts the suite.
    pub fn cfg(&self) -> Config {
        if self.suite.is_committing() {
            Config::new()
        } else {
            Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        }
    }

    /// The content key and the commitment value.
    pub fn key(&self) -> (<Provider as CryptoProvider>::Aead, [u8; 32]) {
        let s = self.suite;
        let n = s.key_len();
        let dk = &self.data_key[..n];
        let id = s.id().to_be_bytes();
        let mut key = [0u8; 32];
        let mut commit = [0u8; 32];
        match s.kdf() {
            Kdf::Identity => key[..n].copy_from_slice(dk),
            Kdf::Hkdf(HashAlg::Sha512) => {
                PROVIDER
                    .hkdf(
                        HashAlg::Sha512,
                        &self.mid,
                        dk,
                        &mut [HkdfOutput::new(&[&id, b"DERIVEKEY"], &mut key[..n])],
                    )
                    .expect("hkdf");
                PROVIDER
                    .hkdf(
                        HashAlg::Sha512,
                        &self.mid,
                        dk,
                        &mut [HkdfOutput::new(&[b"COMMITKEY"], &mut commit)],
                    )
                    .expect("hkdf");
            }
            Kdf::Hkdf(h) => PROVIDER
                .hkdf(
                    h,
                    &[],
                    dk,
                    &mut [HkdfOutput::new(&[&id, &self.mid], &mut key[..n])],
                )
                .expect("hkdf"),
        }
        (PROVIDER.aead_key(&key[..n]).expect("aead key"), commit)
    }

    /// A complete, correctly authenticated header.
    pub fn header(
        &self,
        ec: &[u8],
        edk_count: u16,
        edks: &[u8],
        content_type: u8,
        frame_len: u32,
    ) -> Vec<u8> {
        let s = self.suite;
        let v1 = s.message_format_version() == 1;
        let mut h = Vec::with_capacity(100 + ec.len() + edks.len());
        h.push(s.message_format_version());
        if v1 {
            h.push(0x80);
        }
        h.extend_from_slice(&s.id().to_be_bytes());
        h.extend_from_slice(&self.mid);
        h.extend_from_slice(&(ec.len() as u16).to_be_bytes());
        h.extend_from_slice(ec);
        h.extend_from_slice(&edk_count.to_be_bytes());
        h.extend_from_slice(edks);
        h.push(content_type);
        if v1 {
            h.extend_from_slice(&[0, 0, 0, 0, 12]);
        }
        h.extend_from_slice(&frame_len.to_be_bytes());
        let (key, commit) = self.key();
        if s.is_committing() {
            h.extend_from_slice(&commit);
        }
        let iv = [0u8; 12];
        let tag = key.gmac(&iv, &mut |sink| sink(&h)).expect("gmac");
        if v1 {
            h.extend_from_slice(&iv);
        }
        h.extend_from_slice(&tag);
        h
    }

    /// A header with one [`FIXED_ID`] EDK and an empty context.
    pub fn simple_header(&self, content_type: u8, frame_len: u32) -> Vec<u8> {
        self.header(
            &[],
            1,
            &edk(FIXED_ID.as_bytes(), b"", b"k"),
            content_type,
            frame_len,
        )
    }

    /// Seals `content` as body unit `seq` (ciphertext and tag).
    pub fn seal(
        &self,
        content: &[u8],
        seq: u32,
        iv: &[u8; 12],
        len: u64,
        aad_cs: &[u8],
    ) -> Vec<u8> {
        let (key, _) = self.key();
        let mut aad = self.mid.clone();
        aad.extend_from_slice(aad_cs);
        aad.extend_from_slice(&seq.to_be_bytes());
        aad.extend_from_slice(&len.to_be_bytes());
        let mut ct = vec![0u8; content.len()];
        let tag = key.seal_to(iv, &aad, content, &mut ct).expect("seal");
        ct.extend_from_slice(&tag);
        ct
    }

    /// The IV of frame `seq`.
    pub fn frame_iv(seq: u32) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[8..].copy_from_slice(&seq.to_be_bytes());
        iv
    }

    /// A regular frame.
    pub fn regular(&self, seq: u32, pt: &[u8]) -> Vec<u8> {
        let iv = Self::frame_iv(seq);
        let mut f = seq.to_be_bytes().to_vec();
        f.extend_from_slice(&iv);
        f.extend(self.seal(
            pt,
            seq,
            &iv,
            pt.len() as u64,
            b"AWSKMSEncryptionClient Frame",
        ));
        f
    }

    /// A final frame.
    pub fn final_frame(&self, seq: u32, pt: &[u8]) -> Vec<u8> {
        let iv = Self::frame_iv(seq);
        let mut f = u32::MAX.to_be_bytes().to_vec();
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&iv);
        f.extend_from_slice(&(pt.len() as u32).to_be_bytes());
        let cs = b"AWSKMSEncryptionClient Final Frame";
        f.extend(self.seal(pt, seq, &iv, pt.len() as u64, cs));
        f
    }

    /// A non-framed body.
    pub fn non_framed(&self, pt: &[u8]) -> Vec<u8> {
        let iv = [0x33u8; 12];
        let mut f = iv.to_vec();
        f.extend_from_slice(&(pt.len() as u64).to_be_bytes());
        let cs = b"AWSKMSEncryptionClient Single Block";
        f.extend(self.seal(pt, 1, &iv, pt.len() as u64, cs));
        f
    }
}

/// `n` (at most 94² = 8 836) distinct two-byte keys of printable ASCII, sorted.
pub fn printable_keys(n: usize) -> Vec<[u8; 2]> {
    assert!(n <= 94 * 94, "at most 8 836 two-byte printable keys");
    (0..n)
        .map(|i| [0x21 + (i / 94) as u8, 0x21 + (i % 94) as u8])
        .collect()
}

/// A deterministic shuffle (xorshift, Fisher-Yates).
pub fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// `count` EDKs with `pid_len`-byte provider ids (that no keyring here opens), a 4-byte
/// provider info and a 32-byte ciphertext each.
pub fn long_edks(count: u16, pid_len: usize) -> Vec<u8> {
    let pid: Vec<u8> = (0..pid_len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut v = Vec::with_capacity(usize::from(count) * (pid_len + 42));
    for i in 0..count {
        v.extend(edk(&pid, &u32::from(i).to_be_bytes(), &[0x5A; 32]));
    }
    v
}

/// A framed 0x0478 header (4096-byte frames, a real tag) with `pairs` sorted context pairs
/// `k000000=v0`, `k000001=v1`, … and `edks` EDKs of provider `other` (info `key-N`, a 40-byte
/// ciphertext) that no keyring here opens: a large header for the tests that feed one in
/// small reads (the CLI's header peek and its whole process on a trickling stdin).
pub fn crowded_header(pairs: usize, edks: usize) -> Vec<u8> {
    let count = u16::try_from(edks).expect("at most 65,535 EDKs");
    let owned: Vec<(String, String)> = (0..pairs)
        .map(|i| (format!("k{i:06}"), format!("v{i}")))
        .collect();
    let refs: Vec<(&[u8], &[u8])> = owned
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    let mut list = Vec::new();
    for i in 0..edks {
        list.extend(edk(b"other", format!("key-{i}").as_bytes(), &[9u8; 40]));
    }
    Forge::new(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey).header(
        &ec_section(&refs),
        count,
        &list,
        2,
        4096,
    )
}
