//! # esdk-core
//!
//! The `#![no_std]`, allocation-free core of a Rust AWS Encryption SDK (ESDK) that is
//! byte-compatible with the official SDKs (Python, Java, C, JavaScript, .NET).
//!
//! - All 11 ESDK algorithm suites, message formats v1 and v2, commitment policies.
//! - Zero-copy header parsing ([`header::parse`]); the encryption context and EDKs are views
//!   over the received bytes, and header authentication runs over the bytes as received.
//! - Encryption into a caller `&mut [u8]` ([`encrypt`]) sized exactly by [`encrypted_len`];
//!   decryption into a caller buffer ([`decrypt`]).
//! - Incremental, sans-I/O state machines ([`Encryptor`], [`Decryptor`]) that the one-shot
//!   functions are thin loops over.
//! - [`Keyring`] and [`CryptoMaterialsManager`] traits with materials that need no heap;
//!   [`MultiKeyring`] over borrowed keyrings; [`RequiredEncryptionContextCmm`].
//! - A pluggable [`CryptoProvider`] with the pure-Rust default [`rustcrypto::RustCrypto`]
//!   (feature `rustcrypto`, on by default).
//!
//! ## Getting started (firmware, fixed buffers)
//! ```
//! use esdk_core::{Config, EncryptOptions, decrypt, encrypt, encrypted_len};
//! # use esdk_core::{Keyring, materials::*, Error, error::AttemptFailure};
//! # use esdk_core::rustcrypto::RustCrypto;
//! # struct Rng; impl esdk_core::provider::RandomSource for Rng {
//! #   fn fill_random(&self, o: &mut [u8]) -> Result<(), esdk_core::error::CryptoError> {
//! #     for (i, b) in o.iter_mut().enumerate() { *b = i as u8 ^ 0x5a; } Ok(()) } }
//! # /// A toy keyring for the doc test: "wraps" by XOR. Use esdk-raw's RawAesKeyring.
//! # struct Toy; impl Keyring for Toy {
//! #   fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
//! #     let mut k = [0u8; 32]; let dk = m.generate_data_key()?.as_bytes(); let n = dk.len();
//! #     for i in 0..n { k[i] = dk[i] ^ 0xAA; } m.push_edk("toy", &[], &[&k[..n]]) }
//! #   fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
//! #     for (i, e) in edks.iter() { if e.provider_id != "toy" { m.record_failure(i, AttemptFailure::ProviderIdMismatch); continue; }
//! #       let mut k = [0u8; 32]; let n = e.ciphertext.len().min(32); for j in 0..n { k[j] = e.ciphertext[j] ^ 0xAA; }
//! #       return m.set_data_key(DataKey::from_slice(&k[..n])?); } Err(m.no_data_key_error()) }
//! #   fn encrypted_data_keys_len(&self, s: esdk_core::AlgorithmSuite) -> Option<(u16, usize)> { Some((1, 6 + 3 + s.key_len())) } }
//! # let keyring = Toy;
//! let provider = RustCrypto::new(Rng); // supply a real CSPRNG
//! let cfg = Config::new();
//! let opts = EncryptOptions::new();
//! let mut ec = [("device", "sensor-7")];
//! let record = b"temperature=21.5";
//! let mut msg = [0u8; 1024];
//! assert!(encrypted_len(&cfg, &opts, &keyring, &ec, record.len())? <= msg.len());
//! let n = encrypt(&cfg, &provider, &keyring, &opts, &mut ec, record, &mut msg)?;
//! let mut plain = [0u8; 64];
//! let d = decrypt(&cfg, &provider, &keyring, &[], &msg[..n], &mut plain)?;
//! assert_eq!(&plain[..d.plaintext_len], record);
//! # Ok::<(), esdk_core::Error>(())
//! ```
//!
//! ## Crate features
//! - `rustcrypto` (default): the pure-Rust provider (aes-gcm, hkdf, sha2, p256, p384).
//! - `defmt`: `defmt::Format` for the error types.
//! - `embedded-io`: [`eio`] `Read`/`Write` adapters streaming through caller buffers.
//! - `embedded-io-async`: [`eio_async`], their `embedded-io-async` counterparts (same
//!   state, awaited I/O).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
pub mod config;
pub mod decrypt;
pub mod ec;
#[cfg(feature = "embedded-io")]
pub mod eio;
#[cfg(feature = "embedded-io-async")]
pub mod eio_async;
pub mod encrypt;
pub mod error;
pub mod header;
pub mod keyring;
pub mod materials;
pub mod provider;
#[cfg(feature = "rustcrypto")]
pub mod rustcrypto;
pub mod signature;
pub mod suite;

#[cfg(test)]
mod test_util;

pub use config::{Config, EncryptOptions};
pub use decrypt::{Decrypted, Decryptor, Progress, Status, decrypt};
pub use encrypt::{EncryptionRequest, Encryptor, ciphertext_len, encrypt, encrypted_len};
pub use error::{Error, Result};
pub use keyring::{CryptoMaterialsManager, Keyring, MultiKeyring, RequiredEncryptionContextCmm};
pub use provider::{AeadKey, CryptoProvider, RandomSource};
pub use signature::SigningKey;
pub use suite::{AlgorithmSuite, CommitmentPolicy};
