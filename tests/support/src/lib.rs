//! Test fixtures shared by the integration tests of every esdk crate.
//!
//! * [`policy_for`] / [`config_for`]: the commitment policy a suite is tested under.
//! * [`header_edks`]: the encrypted data keys of a message.
//! * [`mpl_peer`]: the official Python ESDK + MPL peer (`../shared/peers/mpl_peer.py`).
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

/// The encrypted data keys of a message, in order: (provider id, provider info, ciphertext).
///
/// # Panics
/// When `msg` does not start with a complete, valid header (a test failure).
pub fn header_edks(msg: &[u8]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    use esdk_core::header::{ParseLimits, Parsed, parse};
    match parse(msg, ParseLimits::default()) {
        Ok(Parsed::Complete(h)) => h
            .edks
            .iter()
            .map(|(_, e)| {
                let id = e.provider_id.to_owned();
                (id, e.provider_info.to_vec(), e.ciphertext.to_vec())
            })
            .collect(),
        other => panic!("not a complete header: {other:?}"),
    }
}

/// Runs the official Python ESDK + Material Providers Library peer
/// (`$ESDK_SHARED_DIR/peers/mpl_peer.py`, default `../shared` next to the workspace) with
/// `args`, under the Python of `$ESDK_PY`, and returns its output.
///
/// # Panics
/// When `ESDK_PY` is not set (run the test through `scripts/kms-test.sh`, which sets it; the
/// panic names `test`), or the interpreter cannot be started.
pub fn mpl_peer(test: &str, args: &[&str]) -> std::process::Output {
    let py = std::env::var("ESDK_PY").unwrap_or_else(|_| {
        panic!(
            "ESDK_PY is not set: the MPL interop test needs the Python ESDK with the MPL. Run \
             `bash scripts/kms-test.sh {test}` (it sets ESDK_PY from scripts/python-peer.sh)."
        )
    });
    let shared = std::env::var("ESDK_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned());
    std::process::Command::new(&py)
        .arg(format!("{shared}/peers/mpl_peer.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {py}: {e}"))
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
