//! Integration tests, the official test-vector runner and interop harnesses for the
//! Rust ESDK.
//!
//! * [`manifest`] parses the official decrypt test-vector manifests into a normalized model.
//! * [`runner`] decrypts one parsed test case with this implementation.
//! * [`expect`] turns a vector's expected result into checks (which error, release bound).
//! * [`layout`] maps a message's bytes to fields and the checks that cover them.
//! * [`modes`] decrypts one message in every decrypt mode, under either provider.
//! * [`forge`] seals hand-built (hostile) messages under a known data key.
//! * `keys` loads the keys manifests both kinds of manifest name.
//! * [`encrypt_manifest`] runs the official *encrypt* manifests and writes decrypt-manifest sets.

pub mod encrypt_manifest;
pub mod expect;
pub mod forge;
mod keys;
pub mod layout;
pub mod manifest;
pub mod modes;
pub mod runner;
