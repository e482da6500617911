//! Client configuration and per-call options.

use crate::suite::{AlgorithmSuite, CommitmentPolicy};

/// Client configuration shared by encrypt and decrypt. Build it once and keep it: the
/// commitment policy, once chosen, should not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The commitment policy. Default: `RequireEncryptRequireDecrypt`.
    pub commitment_policy: CommitmentPolicy,
    /// Maximum number of encrypted data keys on encrypt and decrypt. Default: no limit.
    pub max_encrypted_data_keys: Option<u16>,
    /// Maximum header length accepted on decrypt. Default: no limit.
    pub max_header_len: Option<usize>,
    /// Maximum body size accepted on decrypt: the frame length of a framed message, the
    /// content length of a non-framed one (like the official SDKs' `max_body_length`).
    /// Default: no limit.
    pub max_body_len: Option<u64>,
    /// Refuse signed messages right after the header (the "decrypt unsigned" mode).
    pub unsigned_only: bool,
    /// Also accept messages written by ESDK-.NET 4.0.0, whose header authentication and
    /// key derivation were wrong (tried only after the standard check fails). Off by default.
    pub net_v4_0_0_retry: bool,
    /// Threads the std front ends (the `esdk` crate's one-shot calls and streams, the `esdk`
    /// tool) seal or open one message's frames on: 0 (the default) means the machine's
    /// available parallelism, 1 the sequential path. The output is the same for any value.
    /// The core itself is single-threaded and does not read it.
    pub threads: usize,
}

impl Config {
    /// The defaults: `RequireEncryptRequireDecrypt`, no limits, signed messages allowed.
    pub const fn new() -> Self {
        Self {
            commitment_policy: CommitmentPolicy::RequireEncryptRequireDecrypt,
            max_encrypted_data_keys: None,
            max_header_len: None,
            max_body_len: None,
            unsigned_only: false,
            net_v4_0_0_retry: false,
            threads: 0,
        }
    }

    /// The same configuration with `threads` worker threads for the std front ends (0: the
    /// available parallelism; 1: sequential).
    pub const fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The same configuration with another commitment policy.
    pub const fn with_commitment_policy(mut self, policy: CommitmentPolicy) -> Self {
        self.commitment_policy = policy;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// Options of one encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptOptions {
    /// The algorithm suite; `None` = the commitment policy's default (0x0578, or 0x0378
    /// under `ForbidEncryptAllowDecrypt`).
    pub suite: Option<AlgorithmSuite>,
    /// Frame length in bytes (1 ..= 2^32 - 1). Default 4096.
    pub frame_length: u32,
    /// The plaintext length, when known before encrypting (the spec's max plaintext
    /// length): CMMs see it (a caching CMM needs it to count bytes), and the encryptor
    /// refuses more plaintext than declared
    /// ([`PolicyViolation::PlaintextLengthBound`](crate::error::PolicyViolation)). The
    /// one-shot [`encrypt`](crate::encrypt()) declares it itself.
    pub plaintext_len: Option<u64>,
}

impl EncryptOptions {
    /// Default suite, 4096-byte frames.
    pub const fn new() -> Self {
        Self {
            suite: None,
            frame_length: 4096,
            plaintext_len: None,
        }
    }

    /// With a given suite.
    pub const fn with_suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = Some(suite);
        self
    }

    /// With a given frame length.
    pub const fn with_frame_length(mut self, frame_length: u32) -> Self {
        self.frame_length = frame_length;
        self
    }

    /// With a declared plaintext length (see [`plaintext_len`](Self::plaintext_len)).
    pub const fn with_plaintext_len(mut self, plaintext_len: u64) -> Self {
        self.plaintext_len = Some(plaintext_len);
        self
    }
}

impl Default for EncryptOptions {
    fn default() -> Self {
        Self::new()
    }
}
