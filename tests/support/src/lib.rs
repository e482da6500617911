//! Test fixtures shared by the integration tests of every esdk crate.
//!
//! * [`policy_for`] / [`config_for`]: the commitment policy a suite is tested under.
//! * [`alloc`]: a counting global allocator (allocations, per-thread allocations, current and
//!   peak bytes, an optional size cap and a hook on every freed block).
//!
//! It depends on `esdk-core` only (no features), so that the core's own tests and the no-alloc
//! proof can use it as well as the backends, the std adapter and `esdk-tests`.

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
