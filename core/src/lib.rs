//! # esdk-core
//!
//! The `#![no_std]`, allocation-free core of a Rust AWS Encryption SDK (ESDK) that is
//! byte-compatible with the official SDKs (Python, Java, C, JavaScript, .NET).
//!
//! - All 11 ESDK algorithm suites, message formats v1 and v2, commitment policies.
//! - Zero-copy header parsing ([`header::parse`]); the encryption context and EDKs are views
//!   over the received bytes, and header authentication runs over the bytes as received.
//! - Encryption into a caller `&mut [u8]` ([`encrypt()`]) sized exactly by [`encrypted_len`];
//!   decryption into a caller buffer ([`decrypt()`]).
//! - Incremental, sans-I/O state machines ([`Encryptor`], [`Decryptor`]) that every front end
//!   drives: the one-shot functions here, the `embedded-io` adapters, and in the `esdk` crate
//!   the std and async streams, the caching CMM and the KMS front ends. They are the only
//!   place the message format is read or written.
//! - [`Keyring`] and [`CryptoMaterialsManager`] traits with materials that need no heap;
//!   [`MultiKeyring`] over borrowed keyrings; [`RequiredEncryptionContextCmm`].
//! - A pluggable [`CryptoProvider`] with the pure-Rust default [`rustcrypto::RustCrypto`]
//!   (feature `rustcrypto`, on by default).
//!
//! ## The engine's states
//! Getting the data key is a state of each machine, not a call hidden inside it, so a front
//! end can get it any way it likes (a synchronous CMM, an awaited KMS call, a cache) and the
//! engine still makes every check.
//!
//! ```text
//! Encryptor
//!   new(cfg, provider, opts)            suite and frame length checked against the policy
//!     │ request(&mut context, required keys)
//!     ▼                                 context sorted and checked; EncryptionRequest:
//!   [request]                           suite, context, required keys, declared length
//!     │ materials(&request, signing key?, &mut work)
//!     ▼                                 signing key supplied (a cache) or generated;
//!   [materials] ── CMM / keyrings ──►   its public key joins the context; the keyrings put
//!     │                                 the data key and the EDKs into `work`
//!     │ write_header_with(&materials, out)   (BufferTooSmall: retry, same materials)
//!     ▼
//!   [body] ── seal_frame* ── finish ──► final frame + footer signature ──► [done]
//!     │  or frame by frame, as jobs (below):
//!     │  next_frame(len, last) ──► FrameSlot ──► FrameCipher::seal_* (any thread)
//!     │  absorb_frame(slot, frame) in order … write_footer(out) ──► [done]
//!
//!   write_header(cmm, &mut context, out) = request + materials + header in `out`, with a
//!   synchronous CMM (its `encryption_signing_key` hook lets a cache supply the key).
//!
//! Decryptor
//!   new(cfg, provider, reproduced context)
//!   [header] ── process ──► NeedInput … until the header is complete; its policies pass
//!     ▼
//!   [need data key] ── process ──► Status::NeedDataKey (nothing consumed)
//!     │ decryption_materials(input, out)    contexts checked; suite, full context, EDKs
//!     │   … a keyring (sync or awaited) decrypts one EDK …
//!     │ set_data_key(key)
//!     ▼
//!   [key ready] ── process ──► header tag + commitment verified ──► Status::Header
//!     ▼
//!   [body] ── process ──► Plaintext { verified } per frame … ──► Done (signature verified)
//!     │  or as jobs: next_frame(input) ──► Located::Frame(slot) (header checked, not
//!     │  decrypted) ──► FrameCipher::open_* (any thread); absorb_frame(slot, ciphertext)
//!     │  in order … verify_footer(footer) ──► [done]
//!
//!   process_with(cmm, input, out) resolves NeedDataKey with a synchronous CMM;
//!   decrypt_all(cmm, message, out) is the one-shot loop.
//! ```
//!
//! Where each part of the message lives: [`header`] (parse and write), [`encryption_context`] (the
//! encryption context: canonical form, zero-copy view, the reproduced-context checks),
//! [`materials`] (data key, EDKs), `kdf` (key derivation, commitment, header key),
//! [`body`] (frames, IVs, AAD), [`frames`] (frames as jobs: slots, the frame cipher, the
//! in-place and detached shapes), [`signature`] (signing key, footer), [`suite`].
//!
//! ## Frames as jobs
//! A frame depends only on the message key, the message id and its slot, so the engine hands
//! frames out ([`FrameSlot`]) and a [`FrameCipher`] seals or opens them anywhere: on worker
//! threads (each may hold its own: `frame_cipher()`), in place in the caller's buffer, or
//! with the frame header and tag detached from the content (the shape of RustCrypto's
//! `AeadInPlace`). The serial parts stay in the engine: slots are issued (and received frames
//! located) in order, and every frame comes back in order (`absorb_frame`) for the signed
//! suites' message hash before the footer. See [`frames`].
//!
//! ## Getting started (firmware, fixed buffers)
//! ```
//! use esdk_core::{Config, EncryptOptions, decrypt, encrypt, encrypted_len};
//! # use esdk_core::{Keyring, materials::*, Error, error::AttemptFailure};
//! # use esdk_core::rustcrypto::RustCrypto;
//! # use core::sync::atomic::{AtomicU32, Ordering};
//! # /// A toy generator for the doc test (an LCG: each call gives new bytes, as signing's
//! # /// retries need).
//! # struct Rng(AtomicU32); impl esdk_core::provider::RandomSource for Rng {
//! #   fn fill_random(&self, o: &mut [u8]) -> Result<(), esdk_core::error::CryptoError> {
//! #     for b in o { let x = self.0.load(Ordering::Relaxed).wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
//! #       self.0.store(x, Ordering::Relaxed); *b = (x >> 24) as u8; } Ok(()) } }
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
//! let provider = RustCrypto::new(Rng(AtomicU32::new(7))); // supply a real CSPRNG
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
//! - `rustcrypto` (default): the pure-Rust provider (AES-GCM as `gcm`, HKDF on sha2, p256,
//!   p384).
//! - `gcm`: [`gcm::AesGcmKey`], AES-GCM over one expanded AES key on RustCrypto's `aes`,
//!   `ctr` and `ghash` (the raw AES keyring of `esdk-raw` and firmware providers use it).
//! - `defmt`: `defmt::Format` for the error types.
//! - `embedded-io`: `eio` `Read`/`Write` adapters streaming through caller buffers.
//! - `embedded-io-async`: `eio_async`, their `embedded-io-async` counterparts (same
//!   state, awaited I/O).
//! - `heapless`: [`header_facts::HeaderFacts`], an owned, fixed-capacity copy of a parsed
//!   header's facts (suite, message id, encryption context, EDK provider ids) for firmware
//!   that reuses its receive buffer.
//!
//! ## Firmware size: what a build leaves out
//! The engine is generic over its [`CryptoProvider`] and its keyrings, and firmware links
//! with LTO: what a build never calls is not in the image, with no feature of this crate.
//! The encrypt side, the decrypt side and the streaming adapters each disappear from an
//! image that does not use them. What a `match` on a run-time value
//! reaches stays (the suite is one): a build that knew its one suite at compile time
//! (measured by making every suite property 0x0478's constant) was 0.6 KB smaller of the
//! telemetry probe's 30 KB, too little for suite or format-version features. The choices
//! that matter for size are types:
//!
//! | choice | what it leaves out | flash it saved (Cortex-M4, `opt-level = "z"`, LTO) |
//! |---|---|---|
//! | a provider that answers only its suites' algorithms (`firmware/src/lib.rs`'s `Slim`) | ECDSA signing, P-256, HKDF-SHA256/384 | with `opt-level = "z"` and RustCrypto's compact SHA-2/AES: 114 KB -> 34 KB (telemetry probe) |
//! | that provider's key and hash types for its suites only ([`gcm::AesGcmKey`] on AES-256, SHA-384), not `rustcrypto`'s `RustCryptoAead` / `RustCryptoHasher` enums | the AES-128/192 and SHA-256 arms of their `match`es | 2.3 KB (telemetry probe) |
//! | [`CryptoProvider::SIGNS`] `= false` in that provider (it never signs) | the encryptor's signing code: the public key in the context, the header and body signature, the footer (the suite is a run-time value, so a provider that merely fails to sign kept it) | 2.2 KB (telemetry probe) |
//! | RustCrypto's compact software AES (`--cfg aes_backend_soft="compact"`, also read by [`gcm::AesGcmKey`]) | its second, 32-bit AES (the parallel path) and the `ctr` crate's keystream loop: the counter mode goes one block at a time | 3.4 KB (telemetry probe) |
//! | `esdk-raw`'s `ecdh-p384` (or `ecdh-p256`, `ecdh-p521`) instead of `ecdh` (all three) | the other curves' arithmetic | 26 KB (ECDH sender probe: P-256 and P-521 out) |
//!
//! Stack: the engine runs each step in a frame of its own (never inlined), side by side
//! rather than nested, so the deepest path is one step's, not their sum: the keyrings' step
//! (materials, wrapping or unwrapping), the key derivation (HKDF), the body cipher's key
//! schedule and the header tag, the footer signature; the one-shot functions keep the
//! engine's state in their own frame. An AES-256-GCM key ([`gcm::AesGcmKey`]) is one key
//! schedule, 276 bytes with RustCrypto's compact software AES. Keep the state machines and
//! the streams in one place (a `static`, or the frame that owns them) rather than moving
//! them: each move of an [`Encryptor`] or a stream adaptor is a copy of its state (about
//! 0.7 KB) on the stack.
//!
//! `bash scripts/firmware.sh` measures the probe images (flash, static RAM, stack) and
//! `bash scripts/firmware-bloat.sh` says where their bytes go, per crate and per symbol.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
pub mod config;
pub mod decrypt;
#[cfg(feature = "embedded-io")]
pub mod eio;
#[cfg(feature = "embedded-io-async")]
pub mod eio_async;
pub mod encrypt;
pub mod encryption_context;
pub mod error;
pub mod frames;
#[cfg(feature = "gcm")]
pub mod gcm;
pub mod header;
#[cfg(feature = "heapless")]
pub mod header_facts;
pub mod in_place;
mod kdf;
pub mod keyring;
pub mod materials;
pub mod provider;
pub mod random_access;
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
pub use frames::{FrameCipher, FrameSlot, Located, SealedFrame};
pub use in_place::{DecryptedInPlace, decrypt_in_place, encrypt_in_place};
pub use keyring::{CryptoMaterialsManager, Keyring, MultiKeyring, RequiredEncryptionContextCmm};
pub use provider::{AeadKey, CryptoProvider, RandomSource};
pub use signature::SigningKey;
pub use suite::{AlgorithmSuite, CommitmentPolicy};
