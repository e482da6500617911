//! The hierarchical keyring's data key wrapping (spec
//! `framework/aws-kms/aws-kms-hierarchical-keyring.md`, "Branch Key Wrapping"; MPL
//! `AwsKmsHierarchicalKeyring.dfy` and `KdfCtr.dfy`), shared by the AWS KMS hierarchical
//! keyring (`kms::AwsKmsHierarchicalKeyring`, feature `kms`: branch keys from a DynamoDB key
//! store) and [`StaticBranchKeyKeyring`] (a branch key the caller holds, as the MPL's static
//! key store of its test vectors).
//!
//! EDK: provider id `aws-kms-hierarchy`, provider info the branch key id, ciphertext
//! salt (16) ‖ IV (12) ‖ branch key version (16 UUID bytes) ‖ wrapped data key ‖ tag (16).
//! The wrapping key is the SP 800-108 counter-mode KDF with HMAC-SHA256 of the branch key
//! (label `aws-kms-hierarchy`, context the salt, 32 bytes); AES-256-GCM with AAD =
//! `aws-kms-hierarchy` ‖ branch key id ‖ version bytes ‖ the serialized encryption context.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use esdk_core::AlgorithmSuite;
use esdk_core::error::{AttemptFailure, CryptoError, KeyringError};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::{Error, Keyring};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The key provider id of the hierarchical keyring's EDKs.
pub const HIERARCHY_PROVIDER_ID: &str = "aws-kms-hierarchy";
/// A branch key's length.
pub const BRANCH_KEY_LEN: usize = 32;

pub(crate) const SALT_LEN: usize = 16;
pub(crate) const IV_LEN: usize = 12;
pub(crate) const VERSION_LEN: usize = 16;
pub(crate) const TAG_LEN: usize = 16;
/// Salt, IV and version before the wrapped key.
pub(crate) const HEADER_LEN: usize = SALT_LEN + IV_LEN + VERSION_LEN;

/// The EDK ciphertext length for `suite`.
pub(crate) fn ciphertext_len(suite: AlgorithmSuite) -> usize {
    HEADER_LEN + suite.key_len() + TAG_LEN
}

/// The wrapping key: SP 800-108 KDF in counter mode, HMAC-SHA256 as the PRF, one block:
/// HMAC(branch key, [1]₃₂ ‖ label ‖ 0x00 ‖ salt ‖ [256]₃₂) (MPL `KdfCtr.dfy`).
pub(crate) fn wrapping_key(
    branch_key: &[u8; BRANCH_KEY_LEN],
    salt: &[u8],
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(branch_key)
        .map_err(|_| Error::from(CryptoError::Aead))?;
    mac.update(&1u32.to_be_bytes());
    mac.update(HIERARCHY_PROVIDER_ID.as_bytes());
    mac.update(&[0]);
    mac.update(salt);
    mac.update(&256u32.to_be_bytes());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

/// The AES-GCM AAD: provider id ‖ branch key id ‖ version bytes ‖ serialized context
/// (sorted pairs; no bytes at all for an empty context).
pub(crate) fn wrapping_aad(id: &str, version: &[u8; 16], ec: &[(&str, &str)]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + id.len());
    aad.extend_from_slice(HIERARCHY_PROVIDER_ID.as_bytes());
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(version);
    esdk_core::encryption_context::feed(
        ec.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        &mut |b: &[u8]| aad.extend_from_slice(b),
    );
    aad
}

/// The EDK ciphertext of data key `key` under branch key `branch_key` (`id`, `version`) for
/// a message with context `ec`, with this salt and IV.
pub(crate) fn wrap(
    branch_key: &[u8; BRANCH_KEY_LEN],
    id: &str,
    version: &[u8; 16],
    ec: &[(&str, &str)],
    key: &[u8],
    salt_iv: &[u8; SALT_LEN + IV_LEN],
) -> Result<Vec<u8>, Error> {
    let aead = || Error::from(CryptoError::Aead);
    let (salt, iv) = salt_iv.split_at(SALT_LEN);
    let wk = wrapping_key(branch_key, salt)?;
    let aes = Aes256Gcm::new_from_slice(wk.as_slice()).map_err(|_| aead())?;
    let aad = wrapping_aad(id, version, ec);
    let mut out = Vec::with_capacity(HEADER_LEN + key.len() + TAG_LEN);
    out.extend_from_slice(salt_iv);
    out.extend_from_slice(version);
    out.extend_from_slice(key);
    let iv: &[u8; IV_LEN] = iv.try_into().map_err(|_| aead())?;
    let tag = aes
        .encrypt_inout_detached(iv.into(), &aad, (&mut out[HEADER_LEN..]).into())
        .map_err(|_| aead())?;
    out.extend_from_slice(tag.as_slice());
    Ok(out)
}

/// The branch key version an EDK ciphertext names, when it has the suite's length.
pub(crate) fn edk_version(ciphertext: &[u8], suite: AlgorithmSuite) -> Option<[u8; 16]> {
    if ciphertext.len() != ciphertext_len(suite) {
        return None;
    }
    ciphertext
        .get(SALT_LEN + IV_LEN..HEADER_LEN)?
        .try_into()
        .ok()
}

/// The data key of an EDK ciphertext (of the suite's length, see [`edk_version`]), or
/// `None` when it does not authenticate (another context, an altered EDK, another key).
pub(crate) fn unwrap(
    branch_key: &[u8; BRANCH_KEY_LEN],
    id: &str,
    version: &[u8; 16],
    ec: &[(&str, &str)],
    ciphertext: &[u8],
    suite: AlgorithmSuite,
) -> Option<DataKey> {
    if ciphertext.len() != ciphertext_len(suite) {
        return None;
    }
    let (salt, rest) = ciphertext.split_at(SALT_LEN);
    let (iv, rest) = rest.split_at(IV_LEN);
    let (_, rest) = rest.split_at(VERSION_LEN);
    let (wrapped, tag) = rest.split_at(suite.key_len());
    let wk = wrapping_key(branch_key, salt).ok()?;
    let aes = Aes256Gcm::new_from_slice(wk.as_slice()).ok()?;
    let aad = wrapping_aad(id, version, ec);
    let mut buf = Zeroizing::new(wrapped.to_vec());
    let iv: &[u8; IV_LEN] = iv.try_into().ok()?;
    let tag: &[u8; TAG_LEN] = tag.try_into().ok()?;
    aes.decrypt_inout_detached(iv.into(), &aad, buf.as_mut_slice().into(), tag.into())
        .ok()?;
    DataKey::from_slice(&buf).ok()
}

/// A hierarchical keyring over one branch key version the caller holds: a sync core
/// [`Keyring`] whose EDKs are those of the AWS KMS hierarchical keyring (the MPL's static
/// key store, used by its test vectors). It encrypts with that version and decrypts the
/// EDKs of that branch key id and version; for branch keys in a DynamoDB key store, use the
/// AWS KMS hierarchical keyring (feature `kms`).
pub struct StaticBranchKeyKeyring {
    id: String,
    version: [u8; 16],
    key: Zeroizing<[u8; BRANCH_KEY_LEN]>,
}

impl std::fmt::Debug for StaticBranchKeyKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticBranchKeyKeyring")
            .field("branch_key_id", &self.id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl StaticBranchKeyKeyring {
    /// A keyring for version `version` (the 16 bytes of its UUID) of branch key
    /// `branch_key_id`, whose key is `branch_key`.
    ///
    /// # Errors
    /// [`KeyringError::InvalidConfiguration`] for an empty id or a key that is not 32 bytes.
    pub fn new(branch_key_id: &str, version: [u8; 16], branch_key: &[u8]) -> Result<Self, Error> {
        let key: [u8; BRANCH_KEY_LEN] = branch_key
            .try_into()
            .map_err(|_| Error::from(KeyringError::InvalidConfiguration))?;
        if branch_key_id.is_empty() {
            return Err(KeyringError::InvalidConfiguration.into());
        }
        Ok(Self {
            id: branch_key_id.to_owned(),
            version,
            key: Zeroizing::new(key),
        })
    }
}

impl Keyring for StaticBranchKeyKeyring {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let mut salt_iv = [0u8; SALT_LEN + IV_LEN];
        m.fill_random(&mut salt_iv)?;
        let ec: Vec<(&str, &str)> = m.encryption_context().iter().collect();
        let key = Zeroizing::new(m.generate_data_key()?.as_bytes().to_vec());
        let ct = wrap(&self.key, &self.id, &self.version, &ec, &key, &salt_iv)?;
        m.push_edk(HIERARCHY_PROVIDER_ID, &[self.id.as_bytes()], &[&ct])
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        let ec: Vec<(&str, &str)> = m.encryption_context().iter().collect();
        let suite = m.suite();
        for (i, e) in edks.iter() {
            if e.provider_id != HIERARCHY_PROVIDER_ID {
                m.record_failure(i, AttemptFailure::ProviderIdMismatch);
                continue;
            }
            if e.provider_info != self.id.as_bytes()
                || edk_version(e.ciphertext, suite) != Some(self.version)
            {
                m.record_failure(i, AttemptFailure::KeyNameMismatch);
                continue;
            }
            match unwrap(&self.key, &self.id, &self.version, &ec, e.ciphertext, suite) {
                Some(k) => return m.set_data_key(k),
                None => m.record_failure(i, AttemptFailure::UnwrapFailed),
            }
        }
        Err(m.no_data_key_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KDF is one HMAC-SHA256 block over counter ‖ label ‖ 0 ‖ salt ‖ L (SP 800-108).
    #[test]
    fn wrapping_key_is_counter_mode_hmac_sha256() {
        let bk = [7u8; 32];
        let salt = [9u8; 16];
        let mut input = vec![0, 0, 0, 1];
        input.extend_from_slice(b"aws-kms-hierarchy");
        input.push(0);
        input.extend_from_slice(&salt);
        input.extend_from_slice(&[0, 0, 1, 0]);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&bk).unwrap();
        mac.update(&input);
        let expected = mac.finalize().into_bytes();
        assert_eq!(
            wrapping_key(&bk, &salt).unwrap().as_slice(),
            expected.as_slice()
        );
        assert_ne!(
            wrapping_key(&bk, &[8u8; 16]).unwrap().as_slice(),
            expected.as_slice()
        );
    }

    #[test]
    fn aad_is_provider_id_branch_key_id_version_and_context() {
        let v = [3u8; 16];
        let aad = wrapping_aad("bk", &v, &[("a", "1")]);
        let mut expected = b"aws-kms-hierarchybk".to_vec();
        expected.extend_from_slice(&v);
        expected.extend_from_slice(&[0, 1, 0, 1, b'a', 0, 1, b'1']);
        assert_eq!(aad, expected);
        // No context: nothing after the version (the MPL serializes it to no bytes).
        assert_eq!(wrapping_aad("bk", &v, &[]).len(), 17 + 2 + 16);
    }

    #[test]
    fn wrap_then_unwrap_and_every_changed_input_fails() {
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let (bk, v, key) = ([1u8; 32], [2u8; 16], [5u8; 32]);
        let ec = [("k", "v")];
        let ct = wrap(&bk, "id", &v, &ec, &key, &[4u8; 28]).unwrap();
        assert_eq!(ct.len(), ciphertext_len(suite));
        assert_eq!(edk_version(&ct, suite), Some(v));
        let dk = unwrap(&bk, "id", &v, &ec, &ct, suite).unwrap();
        assert_eq!(dk.as_bytes(), key);
        assert!(unwrap(&bk, "id", &v, &[("k", "w")], &ct, suite).is_none());
        assert!(unwrap(&bk, "id2", &v, &ec, &ct, suite).is_none());
        assert!(unwrap(&[9u8; 32], "id", &v, &ec, &ct, suite).is_none());
        let mut bad = ct.clone();
        bad[50] ^= 1;
        assert!(unwrap(&bk, "id", &v, &ec, &bad, suite).is_none());
        assert!(unwrap(&bk, "id", &v, &ec, &ct[1..], suite).is_none());
    }
}
