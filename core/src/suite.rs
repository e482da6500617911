//! The 11 ESDK algorithm suites and the commitment policy
//! (spec: `framework/algorithm-suites.md`, `framework/commitment-policy.md`).

use crate::error::{Error, PolicyViolation};

/// Hash function of a key-derivation or signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }
}

/// The footer signature algorithm of a signing suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SignatureAlg {
    /// ECDSA on P-256 with SHA-256 (suite 0x0214).
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384 (suites 0x0346, 0x0378, 0x0578).
    EcdsaP384Sha384,
}

impl SignatureAlg {
    /// The message hash.
    pub const fn hash(self) -> HashAlg {
        match self {
            SignatureAlg::EcdsaP256Sha256 => HashAlg::Sha256,
            SignatureAlg::EcdsaP384Sha384 => HashAlg::Sha384,
        }
    }
    /// Length of the private scalar in bytes.
    pub const fn scalar_len(self) -> usize {
        match self {
            SignatureAlg::EcdsaP256Sha256 => 32,
            SignatureAlg::EcdsaP384Sha384 => 48,
        }
    }
    /// Length of the SEC1 compressed public point in bytes (33 or 49).
    pub const fn public_key_len(self) -> usize {
        self.scalar_len() + 1
    }
    /// Length of the base64 text of the compressed public point (44 or 68).
    pub const fn public_key_b64_len(self) -> usize {
        self.public_key_len().div_ceil(3) * 4
    }
    /// Length of the DER signatures this crate writes (71 or 103): fixed, like the Python
    /// ESDK's, so the message length is known before encrypting.
    pub const fn fixed_signature_len(self) -> usize {
        match self {
            SignatureAlg::EcdsaP256Sha256 => 71,
            SignatureAlg::EcdsaP384Sha384 => 103,
        }
    }
    /// The longest DER signature possible for the curve (72 or 104).
    pub const fn max_signature_len(self) -> usize {
        self.fixed_signature_len() + 1
    }
}

/// Key derivation of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kdf {
    /// The data key is the encryption key.
    Identity,
    /// HKDF with the given hash (info = suite id ‖ message id; or, for committing suites,
    /// salt = message id, info = suite id ‖ "DERIVEKEY").
    Hkdf(HashAlg),
}

/// One of the 11 ESDK algorithm suites. The discriminant is the wire id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
#[allow(non_camel_case_types)]
pub enum AlgorithmSuite {
    /// 0x0014: AES-128-GCM, no KDF. Legacy: no key derivation, no signature, no commitment.
    Aes128GcmIv12Tag16NoKdf = 0x0014,
    /// 0x0046: AES-192-GCM, no KDF.
    Aes192GcmIv12Tag16NoKdf = 0x0046,
    /// 0x0078: AES-256-GCM, no KDF.
    Aes256GcmIv12Tag16NoKdf = 0x0078,
    /// 0x0114: AES-128-GCM, HKDF-SHA256.
    Aes128GcmIv12Tag16HkdfSha256 = 0x0114,
    /// 0x0146: AES-192-GCM, HKDF-SHA256.
    Aes192GcmIv12Tag16HkdfSha256 = 0x0146,
    /// 0x0178: AES-256-GCM, HKDF-SHA256.
    Aes256GcmIv12Tag16HkdfSha256 = 0x0178,
    /// 0x0214: AES-128-GCM, HKDF-SHA256, ECDSA P-256.
    Aes128GcmIv12Tag16HkdfSha256EcdsaP256 = 0x0214,
    /// 0x0346: AES-192-GCM, HKDF-SHA384, ECDSA P-384.
    Aes192GcmIv12Tag16HkdfSha384EcdsaP384 = 0x0346,
    /// 0x0378: AES-256-GCM, HKDF-SHA384, ECDSA P-384. The default under
    /// `ForbidEncryptAllowDecrypt`.
    Aes256GcmIv12Tag16HkdfSha384EcdsaP384 = 0x0378,
    /// 0x0478: AES-256-GCM, HKDF-SHA512, key commitment (message format v2).
    Aes256GcmHkdfSha512CommitKey = 0x0478,
    /// 0x0578: AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384. The default.
    Aes256GcmHkdfSha512CommitKeyEcdsaP384 = 0x0578,
}

impl AlgorithmSuite {
    /// All 11 suites in id order.
    pub const ALL: [AlgorithmSuite; 11] = [
        Self::Aes128GcmIv12Tag16NoKdf,
        Self::Aes192GcmIv12Tag16NoKdf,
        Self::Aes256GcmIv12Tag16NoKdf,
        Self::Aes128GcmIv12Tag16HkdfSha256,
        Self::Aes192GcmIv12Tag16HkdfSha256,
        Self::Aes256GcmIv12Tag16HkdfSha256,
        Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
        Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
        Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
        Self::Aes256GcmHkdfSha512CommitKey,
        Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ];

    /// The suite with this wire id.
    ///
    /// # Errors
    /// [`Error::UnsupportedSuite`] naming the id when it is not an ESDK suite (S3EC and DBE
    /// suites included).
    pub const fn from_id(id: u16) -> Result<Self, Error> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i] as u16 == id {
                return Ok(Self::ALL[i]);
            }
            i += 1;
        }
        Err(Error::UnsupportedSuite(id))
    }

    /// The wire id.
    pub const fn id(self) -> u16 {
        self as u16
    }

    /// AES key length in bytes (16, 24 or 32); also the data key length.
    pub const fn key_len(self) -> usize {
        match self.id() & 0xFF {
            0x14 => 16,
            0x46 => 24,
            _ => 32,
        }
    }

    /// The key derivation.
    pub const fn kdf(self) -> Kdf {
        match self.id() >> 8 {
            0 => Kdf::Identity,
            1 | 2 => Kdf::Hkdf(HashAlg::Sha256),
            3 => Kdf::Hkdf(HashAlg::Sha384),
            _ => Kdf::Hkdf(HashAlg::Sha512),
        }
    }

    /// The footer signature algorithm, if the suite signs.
    pub const fn signature(self) -> Option<SignatureAlg> {
        match self {
            Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => Some(SignatureAlg::EcdsaP256Sha256),
            Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384
            | Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384
            | Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => Some(SignatureAlg::EcdsaP384Sha384),
            _ => None,
        }
    }

    /// Whether the suite commits to its key (0x0478, 0x0578).
    pub const fn is_committing(self) -> bool {
        matches!(
            self,
            Self::Aes256GcmHkdfSha512CommitKey | Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384
        )
    }

    /// Message format version: 1 for the non-committing suites, 2 for the committing ones.
    pub const fn message_format_version(self) -> u8 {
        if self.is_committing() { 2 } else { 1 }
    }

    /// Message id length: 16 bytes (v1) or 32 bytes (v2).
    pub const fn message_id_len(self) -> usize {
        if self.is_committing() { 32 } else { 16 }
    }

    /// Length of the header's algorithm-suite data (the commitment key): 32 or 0.
    pub const fn suite_data_len(self) -> usize {
        if self.is_committing() { 32 } else { 0 }
    }
}

impl core::fmt::Display for AlgorithmSuite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "0x{:04X}", self.id())
    }
}

/// The commitment policy (spec `framework/commitment-policy.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommitmentPolicy {
    /// Encrypt with non-committing suites only; decrypt anything. Default suite 0x0378.
    ForbidEncryptAllowDecrypt,
    /// Encrypt with committing suites only; decrypt anything. Default suite 0x0578.
    RequireEncryptAllowDecrypt,
    /// Committing suites only, both ways. Default suite 0x0578. The default policy.
    #[default]
    RequireEncryptRequireDecrypt,
}

impl CommitmentPolicy {
    /// The suite used when the caller names none.
    pub const fn default_suite(self) -> AlgorithmSuite {
        match self {
            // Every implementation uses 0x0378 here (see ESDK-NOTES §1 [GOTCHA]).
            CommitmentPolicy::ForbidEncryptAllowDecrypt => {
                AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384
            }
            _ => AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        }
    }

    /// Checks a suite for encryption.
    ///
    /// # Errors
    /// [`PolicyViolation::SuiteNotAllowed`] when the policy forbids it.
    pub const fn check_encrypt(self, suite: AlgorithmSuite) -> Result<(), Error> {
        let ok = match self {
            CommitmentPolicy::ForbidEncryptAllowDecrypt => !suite.is_committing(),
            _ => suite.is_committing(),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Policy(PolicyViolation::SuiteNotAllowed {
                suite: suite.id(),
            }))
        }
    }

    /// Checks a suite for decryption.
    ///
    /// # Errors
    /// [`PolicyViolation::SuiteNotAllowed`] when the policy forbids it.
    pub const fn check_decrypt(self, suite: AlgorithmSuite) -> Result<(), Error> {
        if matches!(self, CommitmentPolicy::RequireEncryptRequireDecrypt) && !suite.is_committing()
        {
            Err(Error::Policy(PolicyViolation::SuiteNotAllowed {
                suite: suite.id(),
            }))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_named() {
        for s in AlgorithmSuite::ALL {
            assert_eq!(AlgorithmSuite::from_id(s.id()), Ok(s));
        }
        for id in [0x0000u16, 0x0070, 0x0072, 0x6700, 0x0479, 0xFFFF] {
            assert_eq!(
                AlgorithmSuite::from_id(id),
                Err(Error::UnsupportedSuite(id))
            );
        }
    }

    #[test]
    fn suite_properties_match_the_spec_table() {
        use AlgorithmSuite as S;
        assert_eq!(S::Aes192GcmIv12Tag16NoKdf.key_len(), 24);
        assert_eq!(S::Aes128GcmIv12Tag16HkdfSha256EcdsaP256.key_len(), 16);
        assert_eq!(
            S::Aes192GcmIv12Tag16HkdfSha384EcdsaP384.kdf(),
            Kdf::Hkdf(HashAlg::Sha384)
        );
        assert_eq!(
            S::Aes256GcmHkdfSha512CommitKey.kdf(),
            Kdf::Hkdf(HashAlg::Sha512)
        );
        assert_eq!(S::Aes256GcmIv12Tag16NoKdf.kdf(), Kdf::Identity);
        assert_eq!(S::Aes256GcmHkdfSha512CommitKey.signature(), None);
        assert_eq!(
            S::Aes256GcmHkdfSha512CommitKeyEcdsaP384.message_format_version(),
            2
        );
        assert_eq!(
            S::Aes256GcmIv12Tag16HkdfSha384EcdsaP384.message_format_version(),
            1
        );
        assert_eq!(SignatureAlg::EcdsaP256Sha256.public_key_b64_len(), 44);
        assert_eq!(SignatureAlg::EcdsaP384Sha384.public_key_b64_len(), 68);
        assert_eq!(S::ALL.iter().filter(|s| s.signature().is_some()).count(), 4);
    }

    #[test]
    fn commitment_policy_defaults_and_checks() {
        use CommitmentPolicy as P;
        assert_eq!(P::default(), P::RequireEncryptRequireDecrypt);
        assert_eq!(P::default().default_suite().id(), 0x0578);
        assert_eq!(P::ForbidEncryptAllowDecrypt.default_suite().id(), 0x0378);
        let v1 = AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256;
        let v2 = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        assert!(P::ForbidEncryptAllowDecrypt.check_encrypt(v2).is_err());
        assert!(P::ForbidEncryptAllowDecrypt.check_encrypt(v1).is_ok());
        assert!(P::RequireEncryptAllowDecrypt.check_encrypt(v1).is_err());
        assert!(P::RequireEncryptAllowDecrypt.check_decrypt(v1).is_ok());
        assert!(P::RequireEncryptRequireDecrypt.check_decrypt(v1).is_err());
        assert!(P::RequireEncryptRequireDecrypt.check_decrypt(v2).is_ok());
    }
}
