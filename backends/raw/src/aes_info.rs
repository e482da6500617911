//! The raw AES keyring's EDK fields (spec `framework/raw-aes-keyring.md`), shared by every
//! keyring that writes raw-AES-compatible EDKs (`RawAesKeyring` here, the PKCS#11 AES keyring
//! in `esdk-pkcs11`).
//!
//! Provider info = key name ‖ tag length in bits (u32, big-endian, 128) ‖ IV length in bytes
//! (u32, big-endian, 12) ‖ IV; ciphertext = wrapped data key ‖ 16-byte tag.

use esdk_core::AlgorithmSuite;
use esdk_core::error::AttemptFailure;

/// Tag length written in the provider info, in bits.
pub const TAG_BITS: u32 = 128;
/// IV length written in the provider info, in bytes.
pub const IV_LEN: usize = 12;
/// Tag length in bytes, at the end of the EDK ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes of the provider info after the key name: tag length, IV length, IV.
pub const INFO_SUFFIX_LEN: usize = 4 + 4 + IV_LEN;

const TAG_BITS_BE: [u8; 4] = TAG_BITS.to_be_bytes();
#[allow(clippy::cast_possible_truncation)] // 12 fits in a u32.
const IV_LEN_BE: [u8; 4] = (IV_LEN as u32).to_be_bytes();

/// The provider info of an EDK wrapped under `name` with `iv`, as the parts
/// [`EncryptionMaterials::push_edk`](esdk_core::materials::EncryptionMaterials::push_edk)
/// concatenates.
pub fn provider_info<'a>(name: &'a str, iv: &'a [u8; IV_LEN]) -> [&'a [u8]; 4] {
    [name.as_bytes(), &TAG_BITS_BE, &IV_LEN_BE, iv]
}

/// The IV of an EDK whose provider info is `info` and ciphertext `ciphertext`, if a keyring
/// holding the key `name` may unwrap it for `suite`.
///
/// # Errors
/// The reason to record for the EDK: [`AttemptFailure::KeyNameMismatch`] (another key name, or
/// a provider info of another length), [`AttemptFailure::ProviderInfoFormat`] (a tag or IV
/// length other than 128 bits / 12 bytes), [`AttemptFailure::DataKeyLength`] (a ciphertext
/// that is not the suite's key length plus the tag).
pub fn parse(
    name: &str,
    suite: AlgorithmSuite,
    info: &[u8],
    ciphertext: &[u8],
) -> Result<[u8; IV_LEN], AttemptFailure> {
    let name = name.as_bytes();
    let rest = match info.strip_prefix(name) {
        Some(rest) if rest.len() == INFO_SUFFIX_LEN => rest,
        _ => return Err(AttemptFailure::KeyNameMismatch),
    };
    let (lengths, iv) = rest.split_at(8);
    if lengths[..4] != TAG_BITS_BE || lengths[4..] != IV_LEN_BE {
        return Err(AttemptFailure::ProviderInfoFormat);
    }
    if ciphertext.len() != suite.key_len() + TAG_LEN {
        return Err(AttemptFailure::DataKeyLength);
    }
    let mut out = [0u8; IV_LEN];
    out.copy_from_slice(iv);
    Ok(out)
}

/// The EDK count and serialized length (as
/// [`Keyring::encrypted_data_keys_len`](esdk_core::Keyring::encrypted_data_keys_len) returns
/// them) of one raw-AES EDK under `namespace` and `name` for `suite`.
pub const fn edk_len(namespace: &str, name: &str, suite: AlgorithmSuite) -> (u16, usize) {
    (
        1,
        6 + namespace.len() + name.len() + INFO_SUFFIX_LEN + suite.key_len() + TAG_LEN,
    )
}
