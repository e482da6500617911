//! # esdk-fuzz: support code for the cargo-fuzz targets. FUZZING ONLY.
//!
//! <div class="warning">
//!
//! [`FuzzProvider`] is **not cryptography**. Its "cipher" is an XOR with a key-derived pad,
//! its tags and signatures are a 128-bit non-cryptographic hash, and in lax mode it accepts
//! any frame tag or signature. It exists so that the fuzzer gets past authentication and
//! reaches the body, final-frame and footer logic of the core. This crate refuses to compile
//! outside `cargo fuzz` (which sets `--cfg fuzzing`); it is not a member of the project
//! workspace and nothing in the workspace depends on it, so it can never end up in a release
//! build.
//!
//! </div>
//!
//! ## How the fuzzer gets past tags and signatures
//! The core checks the header tag itself, with a constant-time comparison against
//! [`AeadKey::gmac`], and checks the key commitment against an HKDF output: a provider cannot
//! simply "accept" those. Instead the decrypt targets, in fuzz-provider mode, first
//! [`reseal`] the mutated message: they parse its header, take the data key the
//! [`FuzzKeyring`] would take (it stores data keys in clear), derive the content key and the
//! commitment exactly as the core does, and write the matching commitment and header tag
//! into the input. The fuzzer can therefore change any header field and still reach the body.
//! Frame tags and the footer signature go through the provider: in lax mode they always
//! verify (the body and footer *structure* is what is being fuzzed), in strict mode they must
//! match (the reject paths). Targets take the mode from a flag byte of the input.
//!
//! The targets also run the real pure-Rust provider with the raw AES keys of the official
//! test vectors (the seeds include the python-4.0.7-local ciphertexts), which exercises the
//! real authentication failures.

#[cfg(not(any(fuzzing, test)))]
compile_error!(
    "esdk-fuzz is for fuzzing only: build it with `cargo +nightly fuzz` (which sets --cfg fuzzing)"
);

use core::cell::Cell;

use esdk_core::error::{AttemptFailure, CryptoError, Error};
use esdk_core::header::{ContentType, Header, ParseLimits, Parsed};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::{
    AadFeed, AeadKey, CryptoProvider, HkdfOutput, MessageHasher, RandomSource, TagMismatch,
};
use esdk_core::suite::{AlgorithmSuite, HashAlg, Kdf, SignatureAlg};
use esdk_core::{CommitmentPolicy, Config, Keyring};

// ---------------------------------------------------------------------------------------------
// A 128-bit non-cryptographic hash (FNV-style), the only "primitive" of the fuzzing provider
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Mix([u64; 2]);

impl Mix {
    fn new(domain: u8) -> Self {
        Mix([
            0xcbf2_9ce4_8422_2325 ^ u64::from(domain),
            0x9e37_79b9_7f4a_7c15,
        ])
    }

    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0[0] = (self.0[0] ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
            self.0[1] = (self.0[1] ^ u64::from(x))
                .wrapping_mul(0xff51_afd7_ed55_8ccd)
                .rotate_left(23);
        }
    }

    /// Absorbs a length-framed part.
    fn part(&mut self, b: &[u8]) {
        self.bytes(&(b.len() as u64).to_be_bytes());
        self.bytes(b);
    }

    fn out16(&self) -> [u8; 16] {
        let mut o = [0u8; 16];
        o[..8].copy_from_slice(&self.0[0].to_be_bytes());
        o[8..].copy_from_slice(&self.0[1].to_be_bytes());
        o
    }

    fn expand(&self, out: &mut [u8]) {
        for (i, chunk) in out.chunks_mut(16).enumerate() {
            let mut m = *self;
            m.bytes(&(i as u32).to_be_bytes());
            chunk.copy_from_slice(&m.out16()[..chunk.len()]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fuzzing provider
// ---------------------------------------------------------------------------------------------

/// FUZZING ONLY: a [`CryptoProvider`] with no security at all. See the crate docs.
#[derive(Debug)]
pub struct FuzzProvider {
    /// Accept any frame / non-framed tag.
    pub lax_tags: bool,
    /// Accept any footer signature.
    pub lax_signatures: bool,
    rng: Cell<u64>,
}

impl FuzzProvider {
    /// A provider; `lax_*` as the fields.
    pub fn new(lax_tags: bool, lax_signatures: bool) -> Self {
        Self {
            lax_tags,
            lax_signatures,
            rng: Cell::new(0x2545_f491_4f6c_dd1d),
        }
    }
}

impl RandomSource for FuzzProvider {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        // xorshift64: deterministic, so that every fuzz input replays identically.
        for b in out {
            let mut x = self.rng.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.rng.set(x);
            *b = (x >> 24) as u8;
        }
        Ok(())
    }
}

/// FUZZING ONLY: the "AEAD key" of [`FuzzProvider`].
#[derive(Debug)]
pub struct FuzzAead {
    key: [u8; 32],
    len: usize,
    lax: bool,
}

impl FuzzAead {
    fn pad(&self, iv: &[u8; 12], buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= self.key[i % self.len] ^ iv[i % 12] ^ (i as u8).wrapping_mul(31);
        }
    }

    fn tag(&self, iv: &[u8; 12], aad: &mut AadFeed<'_>, ct: &[u8]) -> [u8; 16] {
        let mut m = Mix::new(1);
        m.part(&self.key[..self.len]);
        m.part(iv);
        let mut total = 0u64;
        aad(&mut |p: &[u8]| {
            m.bytes(p);
            total += p.len() as u64;
        });
        m.bytes(&total.to_be_bytes());
        m.part(ct);
        m.out16()
    }
}

impl AeadKey for FuzzAead {
    fn seal_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        self.pad(iv, buf);
        Ok(self.tag(iv, &mut |s| s(aad), buf))
    }

    fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), TagMismatch> {
        let ok = self.lax || self.tag(iv, &mut |s| s(aad), buf) == *tag;
        self.pad(iv, buf);
        if ok { Ok(()) } else { Err(TagMismatch) }
    }

    fn gmac(&self, iv: &[u8; 12], aad: &mut AadFeed<'_>) -> Result<[u8; 16], CryptoError> {
        Ok(self.tag(iv, aad, &[]))
    }
}

/// FUZZING ONLY: the message hasher of [`FuzzProvider`].
pub struct FuzzHasher {
    m: Mix,
    len: usize,
}

impl MessageHasher for FuzzHasher {
    fn update(&mut self, data: &[u8]) {
        self.m.bytes(data);
    }
    fn finalize_into(self, out: &mut [u8; 64]) -> usize {
        self.m.expand(&mut out[..self.len]);
        self.len
    }
}

fn fake_signature(digest: &[u8], out: &mut [u8]) {
    let mut m = Mix::new(4);
    m.part(digest);
    m.expand(out);
}

impl CryptoProvider for FuzzProvider {
    type Aead = FuzzAead;
    type Hasher = FuzzHasher;

    fn aead_key(&self, key: &[u8]) -> Result<Self::Aead, CryptoError> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(CryptoError::InvalidKey);
        }
        let mut k = [0u8; 32];
        k[..key.len()].copy_from_slice(key);
        Ok(FuzzAead {
            key: k,
            len: key.len(),
            lax: self.lax_tags,
        })
    }

    fn hkdf(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
        outputs: &mut [HkdfOutput<'_>],
    ) -> Result<(), CryptoError> {
        for o in outputs {
            let mut m = Mix::new(2);
            m.part(&[hash as u8]);
            m.part(salt);
            m.part(ikm);
            let mut total = 0u64;
            for i in o.info {
                m.bytes(i);
                total += i.len() as u64;
            }
            m.bytes(&total.to_be_bytes());
            m.expand(o.okm);
        }
        Ok(())
    }

    fn hasher(&self, alg: SignatureAlg) -> Result<Self::Hasher, CryptoError> {
        Ok(FuzzHasher {
            m: Mix::new(3),
            len: alg.hash().output_len(),
        })
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlg,
        private: &mut [u8],
        public: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.fill_random(private)?;
        let public = public
            .get_mut(..alg.public_key_len())
            .ok_or(CryptoError::InvalidKey)?;
        self.fill_random(public)?;
        public[0] = 2;
        Ok(())
    }

    fn sign_digest(
        &self,
        alg: SignatureAlg,
        _private: &[u8],
        digest: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let n = alg.fixed_signature_len();
        fake_signature(digest, out.get_mut(..n).ok_or(CryptoError::Sign)?);
        Ok(n)
    }

    fn verify_digest(
        &self,
        alg: SignatureAlg,
        _public: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError> {
        if self.lax_signatures {
            return Ok(true);
        }
        let n = alg.fixed_signature_len();
        let mut want = [0u8; 104];
        fake_signature(digest, &mut want[..n]);
        Ok(sig == &want[..n])
    }
}

// ---------------------------------------------------------------------------------------------
// The fuzzing keyring
// ---------------------------------------------------------------------------------------------

/// Provider id of the EDKs [`FuzzKeyring`] reads and writes.
pub const FUZZ_PROVIDER_ID: &str = "fuzz";

/// FUZZING ONLY: a keyring whose EDK ciphertext *is* the data key (no wrapping at all).
/// On decrypt it takes the first EDK with provider id [`FUZZ_PROVIDER_ID`] whose ciphertext
/// has the suite's key length.
#[derive(Debug, Clone, Copy, Default)]
pub struct FuzzKeyring;

/// The data key [`FuzzKeyring`] takes from `edks`.
pub fn fuzz_data_key<'a>(suite: AlgorithmSuite, edks: &Edks<'a>) -> Option<&'a [u8]> {
    edks.iter()
        .map(|(_, e)| e)
        .find(|e| e.provider_id == FUZZ_PROVIDER_ID && e.ciphertext.len() == suite.key_len())
        .map(|e| e.ciphertext)
}

impl Keyring for FuzzKeyring {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let mut k = [0u8; 32];
        let n = {
            let dk = m.generate_data_key()?.as_bytes();
            k[..dk.len()].copy_from_slice(dk);
            dk.len()
        };
        m.push_edk(FUZZ_PROVIDER_ID, &[b"fuzz-info"], &[&k[..n]])
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        match fuzz_data_key(m.suite(), &edks) {
            Some(k) => m.set_data_key(DataKey::from_slice(k)?),
            None => {
                for (i, _) in edks.iter() {
                    m.record_failure(i, AttemptFailure::UnwrapFailed);
                }
                Err(m.no_data_key_error())
            }
        }
    }

    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        Some((1, 6 + FUZZ_PROVIDER_ID.len() + 9 + suite.key_len()))
    }
}

// ---------------------------------------------------------------------------------------------
// Resealing a mutated header
// ---------------------------------------------------------------------------------------------

/// The content key and commitment, derived as `esdk_core::body::derive_key` does.
fn derive<P: CryptoProvider>(
    p: &P,
    suite: AlgorithmSuite,
    dk: &[u8],
    mid: &[u8],
) -> Option<(P::Aead, [u8; 32])> {
    let id = suite.id().to_be_bytes();
    let n = suite.key_len();
    let mut key = [0u8; 32];
    let mut commit = [0u8; 32];
    match suite.kdf() {
        Kdf::Identity => key[..n].copy_from_slice(dk.get(..n)?),
        Kdf::Hkdf(HashAlg::Sha512) if suite.is_committing() => {
            p.hkdf(
                HashAlg::Sha512,
                mid,
                dk,
                &mut [
                    HkdfOutput::new(&[&id, b"DERIVEKEY"], &mut key[..n]),
                    HkdfOutput::new(&[b"COMMITKEY"], &mut commit),
                ],
            )
            .ok()?;
        }
        Kdf::Hkdf(h) => p
            .hkdf(
                h,
                &[],
                dk,
                &mut [HkdfOutput::new(&[&id, mid], &mut key[..n])],
            )
            .ok()?,
    }
    Some((p.aead_key(&key[..n]).ok()?, commit))
}

/// Rewrites the commitment value and the header tag of the message in `msg` so that they
/// verify under provider `p` (the [`FuzzProvider`], or a real one) and [`FuzzKeyring`] (with an
/// empty reproduced context). Returns whether it could (a complete header with a usable fuzz
/// EDK).
pub fn reseal<P: CryptoProvider>(msg: &mut [u8], p: &P) -> bool {
    let (suite, mid, dk, body_len, header_len, iv) = {
        let Ok(Parsed::Complete(h)) = esdk_core::header::parse(msg, ParseLimits::default()) else {
            return false;
        };
        let Some(dk) = fuzz_data_key(h.suite, &h.edks) else {
            return false;
        };
        let mut d = [0u8; 32];
        d[..dk.len()].copy_from_slice(dk);
        let mut mid = [0u8; 32];
        mid[..h.message_id.len()].copy_from_slice(h.message_id);
        (h.suite, mid, d, h.body_len, h.bytes.len(), h.iv)
    };
    let Some((key, commit)) = derive(
        p,
        suite,
        &dk[..suite.key_len()],
        &mid[..suite.message_id_len()],
    ) else {
        return false;
    };
    if suite.is_committing() {
        msg[body_len - 32..body_len].copy_from_slice(&commit);
    }
    let Ok(tag) = key.gmac(&iv, &mut |s| s(&msg[..body_len])) else {
        return false;
    };
    msg[header_len - 16..header_len].copy_from_slice(&tag);
    true
}

// ---------------------------------------------------------------------------------------------
// Serializers for the round-trip checks
// ---------------------------------------------------------------------------------------------

fn put_field(out: &mut Vec<u8>, f: &[u8]) {
    out.extend_from_slice(&(f.len() as u16).to_be_bytes());
    out.extend_from_slice(f);
}

/// Serializes EDKs (without their count).
pub fn serialize_edks(edks: &Edks<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    for (_, e) in edks.iter() {
        put_field(&mut v, e.provider_id.as_bytes());
        put_field(&mut v, e.provider_info);
        put_field(&mut v, e.ciphertext);
    }
    v
}

/// Serializes pairs in the given order, with their count (the empty sequence gives no bytes).
pub fn serialize_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut v = vec![0, 0];
    let mut n = 0u16;
    for (k, val) in pairs {
        put_field(&mut v, k);
        put_field(&mut v, val);
        n = n.wrapping_add(1);
    }
    if n == 0 {
        return Vec::new();
    }
    v[..2].copy_from_slice(&n.to_be_bytes());
    v
}

/// Serializes a parsed header from its fields (the inverse of `header::parse`).
pub fn serialize_header(h: &Header<'_>) -> Vec<u8> {
    let v1 = h.version == 1;
    let mut v = vec![h.version];
    if v1 {
        v.push(0x80);
    }
    v.extend_from_slice(&h.suite.id().to_be_bytes());
    v.extend_from_slice(h.message_id);
    put_field(&mut v, h.encryption_context.as_bytes());
    v.extend_from_slice(&(h.edks.len() as u16).to_be_bytes());
    v.extend(serialize_edks(&h.edks));
    v.push(match h.content_type {
        ContentType::NonFramed => 1,
        ContentType::Framed => 2,
    });
    if v1 {
        v.extend_from_slice(&[0, 0, 0, 0, 12]);
    }
    v.extend_from_slice(&h.frame_length.to_be_bytes());
    v.extend_from_slice(h.suite_data);
    if v1 {
        v.extend_from_slice(&h.iv);
    }
    v.extend_from_slice(&h.tag);
    v
}

// ---------------------------------------------------------------------------------------------
// Input conventions shared by the decrypt targets
// ---------------------------------------------------------------------------------------------

/// The key namespace of the official vectors' raw keys (sic).
pub const VECTOR_NAMESPACE: &str = "aws-raw-vectors-persistant";

/// The vectors' raw AES key of `len` bytes: 00 01 .. 09 10 11 .. 19 20 .. (decimal digits
/// read as hex), see the test-vectors README.
pub fn vector_aes_key(len: usize) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate().take(len) {
        *b = (((i / 10) << 4) | (i % 10)) as u8;
    }
    k
}

/// How a decrypt target runs, from the first byte of its input.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The real pure-Rust provider and the vectors' raw AES keys (bit 0), else
    /// [`FuzzProvider`] and [`FuzzKeyring`].
    pub real: bool,
    /// Fuzz provider: accept any frame tag (bit 1).
    pub lax_tags: bool,
    /// Fuzz provider: accept any signature (bit 2).
    pub lax_signatures: bool,
    /// Fuzz provider: [`reseal`] the header first (bit 3 clear).
    pub reseal: bool,
    /// The decrypt configuration (bits 4-7).
    pub cfg: Config,
}

impl Setup {
    /// Decodes the flag byte.
    pub fn from_flags(f: u8) -> Self {
        let mut cfg = Config::new().with_commitment_policy(match (f >> 4) & 3 {
            0 | 3 => CommitmentPolicy::RequireEncryptAllowDecrypt,
            1 => CommitmentPolicy::RequireEncryptRequireDecrypt,
            _ => CommitmentPolicy::ForbidEncryptAllowDecrypt,
        });
        if (f >> 4) & 3 == 3 {
            cfg.max_encrypted_data_keys = Some(3);
            cfg.max_header_len = Some(2048);
            cfg.max_body_len = Some(4096);
        }
        cfg.unsigned_only = f & 0x40 != 0;
        cfg.net_v4_0_0_retry = f & 0x80 != 0;
        Self {
            real: f & 1 != 0,
            lax_tags: f & 2 != 0,
            lax_signatures: f & 4 != 0,
            reseal: f & 8 == 0,
            cfg,
        }
    }
}

/// The raw AES keyrings (128, 192, 256 bits) of the official vectors.
pub struct VectorKeyrings {
    k128: esdk_raw::RawAesKeyring<'static>,
    k192: esdk_raw::RawAesKeyring<'static>,
    k256: esdk_raw::RawAesKeyring<'static>,
}

impl VectorKeyrings {
    /// Builds them.
    ///
    /// # Panics
    /// Never for these fixed, valid keys.
    pub fn new() -> Self {
        let mk = |name: &'static str, len: usize| {
            esdk_raw::RawAesKeyring::new(VECTOR_NAMESPACE, name, &vector_aes_key(len)[..len])
                .expect("valid vector key")
        };
        Self {
            k128: mk("aes-128", 16),
            k192: mk("aes-192", 24),
            k256: mk("aes-256", 32),
        }
    }

    /// Runs `f` with a multi-keyring over the three.
    pub fn with<T>(&self, f: impl FnOnce(&esdk_core::MultiKeyring<'_>) -> T) -> T {
        let children: [&dyn Keyring; 3] = [&self.k128, &self.k192, &self.k256];
        f(&esdk_core::MultiKeyring::children_only(&children))
    }
}

impl Default for VectorKeyrings {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `r` is an error that a tampered, truncated or hostile input may produce (all of
/// them except API misuse, which would mean the state machine lost track of its own state).
pub fn acceptable_error(e: &Error) -> bool {
    !matches!(e, Error::ApiMisuse(_))
}

/// Splits of the input, chosen by the fuzzer: each byte is a chunk length (`b + 1`), used in
/// turn, cycling.
#[derive(Debug, Clone)]
pub struct Splits<'a> {
    sizes: &'a [u8],
    at: usize,
    scale: usize,
}

impl<'a> Splits<'a> {
    /// Splits from `sizes` (empty: one byte at a time).
    pub fn new(sizes: &'a [u8]) -> Self {
        Self::scaled(sizes, 1)
    }

    /// Splits from `sizes`, each multiplied by `scale`.
    pub fn scaled(sizes: &'a [u8], scale: usize) -> Self {
        Self {
            sizes,
            at: 0,
            scale,
        }
    }

    /// The next chunk length.
    pub fn next_len(&mut self) -> usize {
        if self.sizes.is_empty() {
            return self.scale;
        }
        let n = (usize::from(self.sizes[self.at % self.sizes.len()]) + 1) * self.scale;
        self.at += 1;
        // Occasionally a large chunk, so long frames do not take thousands of calls.
        if n == 256 * self.scale { 1 << 16 } else { n }
    }
}

/// One-shot decryption with the checks every target applies: no plaintext left in `out` on
/// error, exact buffer-size reporting, a stable header. Returns the plaintext or the error.
pub fn one_shot<P: CryptoProvider, M: esdk_core::CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    p: &P,
    cmm: &M,
    msg: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; msg.len()];
    match esdk_core::decrypt(cfg, p, cmm, &[], msg, &mut out) {
        Ok(d) => {
            let n = d.plaintext_len;
            assert!(n <= msg.len());
            assert_eq!(serialize_header(&d.header), d.header.bytes);
            assert_eq!(d.header.bytes, &msg[..d.header.bytes.len()]);
            out.truncate(n);
            // The smallest buffer that works: the plaintext length, or the size of the
            // encryption-context scratch when the header needs more (see `ec_scratch_len`;
            // a known limitation noted in the report of issue #8).
            let need = n.max(ec_scratch_len(msg));
            if need > 0 {
                let mut short = vec![0u8; need - 1];
                let r = esdk_core::decrypt(cfg, p, cmm, &[], msg, &mut short);
                assert_eq!(
                    r.map(|d| d.plaintext_len),
                    Err(Error::BufferTooSmall { required: need })
                );
                let scratch = ec_scratch_len(msg).min(short.len());
                assert!(
                    short[scratch..].iter().all(|b| *b == 0),
                    "plaintext left after BufferTooSmall"
                );
            }
            let mut exact = vec![0u8; need];
            let again = esdk_core::decrypt(cfg, p, cmm, &[], msg, &mut exact)
                .expect("decrypts into a buffer of the size it asked for");
            assert_eq!(&exact[..again.plaintext_len], &out[..]);
            Ok(out)
        }
        Err(e) => {
            assert!(acceptable_error(&e), "{e:?}");
            let scratch = ec_scratch_len(msg);
            assert!(
                out[scratch.min(out.len())..].iter().all(|b| *b == 0),
                "plaintext left in out after {e:?}"
            );
            Err(e)
        }
    }
}

/// How much of the output buffer the header step may use as scratch: it writes the canonical
/// form of a non-canonical stored encryption context there (public header data, not
/// plaintext), and leaves it on error.
pub fn ec_scratch_len(msg: &[u8]) -> usize {
    match esdk_core::header::parse(msg, ParseLimits::default()) {
        // An empty context in its legacy form (`00 00`) is canonically zero bytes: no scratch.
        Ok(Parsed::Complete(h))
            if !h.encryption_context.is_canonical() && !h.encryption_context.is_empty() =>
        {
            h.encryption_context.as_bytes().len()
        }
        _ => 0,
    }
}

/// What an incremental run saw.
#[derive(Debug)]
pub struct Incremental {
    /// The verdict, with the same conventions as the one-shot decrypt (`Truncated` at the
    /// message length, `TrailingBytes` at the end of the message).
    pub result: Result<Vec<u8>, Error>,
    /// Plaintext released before the verdict (equal to the plaintext on success).
    pub released: Vec<u8>,
}

/// Incremental decryption with `Decryptor`, fed in the chunks `splits` chooses, checking the
/// state-machine contract at every call. With `probe_small`, every step is first tried with a
/// too-small output buffer, which must report `BufferTooSmall` and change nothing.
pub fn incremental<P: CryptoProvider, M: esdk_core::CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    p: &P,
    cmm: &M,
    msg: &[u8],
    mut splits: Splits<'_>,
    probe_small: bool,
) -> Incremental {
    use esdk_core::Status;
    let mut dec = esdk_core::Decryptor::new(cfg, p, &[]);
    let mut start = 0usize;
    let mut end = 0usize;
    let mut out = vec![0u8; msg.len()];
    // How much of `out` the previous call may have written (re-zeroing all of it at every
    // call would make this harness quadratic in the message length).
    let mut dirty = 0usize;
    let mut released = Vec::new();
    let mut signed = None;
    loop {
        if end < msg.len() {
            end = (end + splits.next_len()).min(msg.len());
        }
        let input = &msg[start..end];
        out[..dirty].fill(0);
        dirty = 0;
        let mut r = Err(Error::BufferTooSmall { required: 0 });
        if probe_small {
            // A too-small buffer reports the size and changes nothing; any other outcome
            // stands as the step's result.
            let mut small = [0u8; 3];
            r = dec.process_with(cmm, input, &mut small);
            match r {
                Err(Error::BufferTooSmall { required }) => {
                    assert!(required > small.len() && required <= msg.len());
                    assert_eq!(small, [0u8; 3], "written despite BufferTooSmall");
                }
                _ => {
                    let k = 3.min(out.len());
                    out[..k].copy_from_slice(&small[..k]);
                    dirty = k;
                }
            }
        }
        if matches!(r, Err(Error::BufferTooSmall { .. })) {
            r = dec.process_with(cmm, input, &mut out);
        }
        let pr = match r {
            Ok(pr) => pr,
            Err(e) => {
                assert!(acceptable_error(&e) && !matches!(e, Error::BufferTooSmall { .. }));
                let scratch = ec_scratch_len(msg);
                assert!(
                    out[scratch.min(out.len())..].iter().all(|b| *b == 0),
                    "plaintext written with {e:?}"
                );
                // Poisoned: the same error again.
                assert_eq!(dec.process_with(cmm, input, &mut out).err(), Some(e));
                return Incremental {
                    result: Err(e),
                    released,
                };
            }
        };
        assert!(pr.consumed <= input.len() && pr.written <= out.len());
        dirty = dirty.max(pr.written);
        if pr.status == Status::Header {
            // The header step may have used `out` as encryption-context scratch.
            dirty = out.len();
        }
        if signed.is_none() {
            signed = dec.suite().map(|s| s.signature().is_some());
        }
        released.extend_from_slice(&out[..pr.written]);
        start += pr.consumed;
        match pr.status {
            Status::NeedInput { min } => {
                assert!(pr.consumed == 0 && pr.written == 0);
                assert!(
                    min > input.len(),
                    "NeedInput min {min} with {} given",
                    input.len()
                );
                if end == msg.len() {
                    return Incremental {
                        result: Err(Error::Truncated { offset: msg.len() }),
                        released,
                    };
                }
            }
            Status::Header => assert!(pr.written == 0 && pr.consumed > 0),
            Status::NeedDataKey => panic!("process_with returned NeedDataKey"),
            Status::Plaintext { verified } => {
                assert!(pr.consumed > 0);
                assert_eq!(Some(!verified), signed, "verified flag vs suite");
            }
            Status::Done => {
                assert!(dec.is_done());
                let again = dec
                    .process(&msg[start..end], &mut out)
                    .expect("done stays done");
                assert_eq!(
                    (again.consumed, again.written, again.status),
                    (0, 0, Status::Done)
                );
                let result = if start == msg.len() {
                    Ok(released.clone())
                } else {
                    Err(Error::TrailingBytes { offset: start })
                };
                assert_eq!(dec.offset(), start);
                return Incremental { result, released };
            }
        }
    }
}

/// A reader that returns the chunks `splits` chooses.
pub struct ChunkReader<'a> {
    data: &'a [u8],
    splits: Splits<'a>,
}

impl<'a> ChunkReader<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8], splits: Splits<'a>) -> Self {
        Self { data, splits }
    }
}

impl std::io::Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.splits.next_len().min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// `esdk::DecryptingReader`, read in chunks.
pub fn std_read<P: CryptoProvider, M: esdk_core::CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    p: &P,
    cmm: &M,
    msg: &[u8],
    splits: Splits<'_>,
) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut sizes = splits.clone();
    let mut r = esdk::DecryptingReader::new(cfg, p, cmm, &[], ChunkReader::new(msg, splits));
    let mut plain = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = sizes.next_len().min(buf.len());
        match r.read(&mut buf[..n]) {
            Ok(0) => return Ok(plain),
            Ok(k) => plain.extend_from_slice(&buf[..k]),
            Err(e) => return Err(esdk::stream::esdk_error(&e).expect("an ESDK error")),
        }
    }
}

/// `esdk::DecryptingWriter`, written in chunks.
pub fn std_write<P: CryptoProvider, M: esdk_core::CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    p: &P,
    cmm: &M,
    msg: &[u8],
    mut splits: Splits<'_>,
) -> Result<Vec<u8>, Error> {
    use std::io::Write;
    let mut w = esdk::DecryptingWriter::new(cfg, p, cmm, &[], Vec::new());
    let mut at = 0;
    while at < msg.len() {
        let n = splits.next_len().min(msg.len() - at);
        if let Err(e) = w.write_all(&msg[at..at + n]) {
            return Err(esdk::stream::esdk_error(&e).expect("an ESDK error"));
        }
        at += n;
    }
    w.finish()
        .map_err(|e| esdk::stream::esdk_error(&e).expect("an ESDK error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_provider_round_trips_through_the_core() {
        let p = FuzzProvider::new(false, false);
        for suite in AlgorithmSuite::ALL {
            let cfg = Config::new().with_commitment_policy(if suite.is_committing() {
                CommitmentPolicy::RequireEncryptRequireDecrypt
            } else {
                CommitmentPolicy::ForbidEncryptAllowDecrypt
            });
            let opts = esdk_core::EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(7);
            let pt = b"fuzzing provider round trip";
            let mut ec = [("a", "b")];
            let mut msg = vec![0u8; 1024];
            let n = esdk_core::encrypt(&cfg, &p, &FuzzKeyring, &opts, &mut ec, pt, &mut msg)
                .expect("encrypt");
            let mut out = vec![0u8; n];
            let d = esdk_core::decrypt(&cfg, &p, &FuzzKeyring, &[], &msg[..n], &mut out)
                .expect("decrypt");
            assert_eq!(&out[..d.plaintext_len], pt);
            // Resealing a valid message changes nothing.
            let mut copy = msg[..n].to_vec();
            assert!(reseal(&mut copy, &p));
            assert_eq!(copy, &msg[..n]);
            // A changed frame length is accepted after resealing, rejected before.
            let Ok(Parsed::Complete(h)) = esdk_core::header::parse(&copy, ParseLimits::default())
            else {
                panic!("header");
            };
            assert_eq!(serialize_header(&h), h.bytes);
            let fl = h.body_len - suite.suite_data_len() - 4;
            copy[fl + 3] = 8;
            let mut out = vec![0u8; n];
            assert!(esdk_core::decrypt(&cfg, &p, &FuzzKeyring, &[], &copy, &mut out).is_err());
            assert!(reseal(&mut copy, &p));
            let r = esdk_core::decrypt(&cfg, &p, &FuzzKeyring, &[], &copy, &mut out);
            assert!(
                !matches!(
                    r,
                    Err(Error::Authentication(
                        esdk_core::error::AuthFailure::HeaderTag
                    ))
                ),
                "{suite}: {r:?}"
            );
        }
    }

    #[test]
    fn vector_keys_match_the_readme() {
        assert_eq!(
            &vector_aes_key(16)[..16],
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
            ]
        );
        assert_eq!(vector_aes_key(32)[31], 0x31);
    }
}
