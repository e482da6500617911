//! Test fixtures shared by the integration tests of every esdk crate.
//!
//! * [`policy_for`] / [`config_for`]: the commitment policy a suite is tested under.
//! * [`XorShift`]: a deterministic stand-in for a board's TRNG (a `RandomSource`).
//! * [`alloc`]: a counting global allocator (allocations, per-thread allocations, current and
//!   peak bytes, an optional size cap and a hook on every freed block).
//!
//! It depends on `esdk-core` only (no features), so that the core's own tests and the no-alloc
//! proof can use it as well as the backends, the std adapter and `esdk-tests`.

use core::cell::Cell;

use esdk_core::error::CryptoError;
use esdk_core::provider::RandomSource;
use esdk_core::{AlgorithmSuite, CommitmentPolicy, Config};

pub mod alloc;

/// The strictest commitment policy under which `suite` can be encrypted and decrypted:
/// `RequireEncryptRequireDecrypt` for the committing suites, `ForbidEncryptAllowDecrypt` for
/// the others.
pub fn policy_for(suite: AlgorithmSuite) -> CommitmentPolicy {
    if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    }
}

/// A default [`Config`] with [`policy_for`]`(suite)`.
pub fn config_for(suite: AlgorithmSuite) -> Config {
    Config::new().with_commitment_policy(policy_for(suite))
}

/// A deterministic stand-in for a board's TRNG: xorshift64 from `seed` (never 0). For tests
/// that count allocations or round-trip messages, never for secrecy.
#[derive(Debug, Clone)]
pub struct XorShift(Cell<u64>);

impl XorShift {
    /// A generator starting from `seed` (a 0 seed is replaced by 1: xorshift stays at 0).
    pub const fn new(seed: u64) -> Self {
        Self(Cell::new(if seed == 0 { 1 } else { seed }))
    }
}

impl RandomSource for XorShift {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        for b in out {
            let mut x = self.0.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0.set(x);
            *b = (x >> 24) as u8;
        }
        Ok(())
    }
}
