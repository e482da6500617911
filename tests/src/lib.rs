//! Integration tests, the official test-vector runner and interop harnesses for the
//! Rust ESDK.
//!
//! * [`manifest`] parses the official decrypt test-vector manifests into a normalized model.
//! * [`runner`] decrypts one parsed test case with this implementation.

pub mod manifest;
pub mod modes;
pub mod runner;
