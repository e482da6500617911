//! A provider that never signs (`CryptoProvider::SIGNS = false`, as a firmware image's that
//! sends unsigned suites only): the encryptor refuses the signed suites when it is created,
//! encrypts the unsigned ones as the full provider does, and decryption (verification
//! included) is unaffected.
#![cfg(feature = "rustcrypto")]

use esdk_core::error::{CryptoError, Error};
use esdk_core::provider::{CryptoProvider, HkdfOutput, RandomSource};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::suite::{HashAlg, SignatureAlg};
use esdk_core::{AlgorithmSuite, EncryptOptions, Encryptor, decrypt, encrypt};
use esdk_raw::RawAesKeyring;
use esdk_test_support::XorShift;

/// The pure-Rust provider with `SIGNS = false`; everything else delegated to it.
struct NoSigning(RustCrypto<XorShift>);

impl RandomSource for NoSigning {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.0.fill_random(out)
    }
}

impl CryptoProvider for NoSigning {
    const SIGNS: bool = false;
    type Aead = <RustCrypto<XorShift> as CryptoProvider>::Aead;
    type Hasher = <RustCrypto<XorShift> as CryptoProvider>::Hasher;

    fn aead_key(&self, key: &[u8]) -> Result<Self::Aead, CryptoError> {
        self.0.aead_key(key)
    }

    fn hkdf(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
        outputs: &mut [HkdfOutput<'_>],
    ) -> Result<(), CryptoError> {
        self.0.hkdf(hash, salt, ikm, outputs)
    }

    fn hasher(&self, alg: SignatureAlg) -> Result<Self::Hasher, CryptoError> {
        self.0.hasher(alg)
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlg,
        private: &mut [u8],
        public: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.0.generate_signing_key(alg, private, public)
    }

    fn sign_digest(
        &self,
        alg: SignatureAlg,
        private: &[u8],
        digest: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        self.0.sign_digest(alg, private, digest, out)
    }

    fn verify_digest(
        &self,
        alg: SignatureAlg,
        public: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError> {
        self.0.verify_digest(alg, public, digest, sig)
    }
}

#[test]
fn signed_suites_are_refused_and_unsigned_ones_round_trip() {
    let keyring = RawAesKeyring::new("no-signing", "k", &[9u8; 32]).expect("keyring");
    let no_signing = NoSigning(RustCrypto::new(XorShift::new(3)));
    let full = RustCrypto::new(XorShift::new(4));
    let pt = [0x5Au8; 300];
    for suite in AlgorithmSuite::ALL {
        let cfg = esdk_test_support::config_for(suite);
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(128);
        let mut ec = [("device", "sensor-7")];
        let mut out = [0u8; 2048];
        let r = encrypt(&cfg, &no_signing, &keyring, &opts, &mut ec, &pt, &mut out);
        if suite.signature().is_some() {
            assert_eq!(
                r.expect_err("a signed suite on a provider that never signs"),
                Error::Crypto(CryptoError::Unsupported),
                "{suite:?}"
            );
            assert_eq!(
                Encryptor::new(&cfg, &no_signing, &opts).expect_err("refused at creation"),
                Error::Crypto(CryptoError::Unsupported),
                "{suite:?}"
            );
            continue;
        }
        let n = r.unwrap_or_else(|e| panic!("{suite:?}: {e:?}"));
        // The same message as the full provider writes (the same keyring, context and
        // random bytes would give the same bytes; here: the full provider opens it).
        let mut back = [0u8; 300];
        let d = decrypt(&cfg, &full, &keyring, &[], &out[..n], &mut back)
            .unwrap_or_else(|e| panic!("{suite:?}: {e:?}"));
        assert_eq!(&back[..d.plaintext_len], &pt[..], "{suite:?}");
        assert_eq!(d.header.suite, suite);
    }
    // Decryption on the provider that never signs still verifies signed messages.
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let cfg = esdk_test_support::config_for(suite);
    let opts = EncryptOptions::new().with_suite(suite);
    let mut out = [0u8; 2048];
    let n = encrypt(&cfg, &full, &keyring, &opts, &mut [], &pt, &mut out).expect("signed");
    let mut back = [0u8; 300];
    let d = decrypt(&cfg, &no_signing, &keyring, &[], &out[..n], &mut back).expect("verified");
    assert_eq!(&back[..d.plaintext_len], &pt[..]);
    out[n - 1] ^= 1;
    assert!(decrypt(&cfg, &no_signing, &keyring, &[], &out[..n], &mut back).is_err());
}
