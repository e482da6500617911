//! The std crate's one error type: the core's allocation-free error, I/O errors, every
//! keyring attempt of a decryption, and (feature `kms`) the detail of AWS KMS failures: the
//! key, the region, the KMS error code and one record per encrypted data key tried
//! (reference/user-asks.md #6).

use std::fmt;
use std::io;

#[cfg(feature = "kms")]
use crate::kms::{ArnError, Attempt, Failure, KmsError, KmsOperation};

/// Errors of the std APIs: [`encrypt`](crate::encrypt), [`decrypt`](crate::decrypt),
/// [`decrypt_detailed`](crate::decrypt_detailed) and the KMS keyrings and front ends.
///
/// The core's error stays reachable as [`esdk::core::Error`](esdk_core::Error) and comes
/// back here as [`Error::Core`]; compare with it through `==` (`Error` implements
/// `PartialEq<esdk_core::Error>`) or get it with [`Error::core`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The message engine failed (format, policy, authentication, a keyring, ...).
    Core(esdk_core::Error),
    /// An I/O error of a stream or of the runtime.
    Io(io::Error),
    /// No keyring decrypted any encrypted data key: every attempt of every keyring, where
    /// the core error keeps only the first few.
    NoKeyringDecrypted {
        /// Which keyring (index in a multi-keyring), which EDK, and why, in order.
        attempts: Vec<esdk_core::error::Attempt>,
    },
    /// Random access ([`RangeReader`](crate::RangeReader),
    /// [`decrypt_range`](crate::decrypt_range)): reading frame `sequence` from the source
    /// failed, or the source ended inside it (it shrank after the reader was opened).
    FrameRead {
        /// The frame's sequence number.
        sequence: u32,
        /// Where the frame starts in the message.
        offset: u64,
        /// The source's error (kind `UnexpectedEof` when it ended early).
        source: io::Error,
    },
    /// A key identifier is not a valid ARN, key id or alias.
    #[cfg(feature = "kms")]
    InvalidKeyId {
        /// The identifier given.
        key_id: String,
        /// What is wrong with it.
        reason: ArnError,
    },
    /// A key ARN names another region than the KMS client it is used with.
    #[cfg(feature = "kms")]
    RegionMismatch {
        /// The key.
        key_id: String,
        /// The client's region.
        client_region: String,
    },
    /// Two identifiers name the same multi-Region key (which region to call is ambiguous).
    #[cfg(feature = "kms")]
    DuplicateMultiRegionKeys(Vec<String>),
    /// A multi-keyring was given neither a generator nor a child keyring.
    #[cfg(feature = "kms")]
    NoKeyring,
    /// A discovery multi-keyring was given no region.
    #[cfg(feature = "kms")]
    NoRegion,
    /// A region is the empty string.
    #[cfg(feature = "kms")]
    EmptyRegion,
    /// A region is not a region name (1 to 63 lowercase letters, digits and `-`, not
    /// starting or ending with `-`), so no endpoint is built from it.
    #[cfg(feature = "kms")]
    InvalidRegion {
        /// The region given.
        region: String,
    },
    /// A key id or alias names no region and the client supplier has no default region.
    #[cfg(feature = "kms")]
    NoDefaultRegion,
    /// A named AWS profile is in neither shared file, or a file cannot be parsed.
    #[cfg(feature = "kms")]
    AwsProfile {
        /// The profile asked for.
        profile: String,
        /// What is wrong.
        reason: String,
    },
    /// A discovery filter was given an empty partition.
    #[cfg(feature = "kms")]
    FilterPartition,
    /// A discovery filter was given no account, or an empty one.
    #[cfg(feature = "kms")]
    FilterAccounts,
    /// Prepared encryption materials were used for a second message.
    #[cfg(feature = "kms")]
    MaterialsAlreadyUsed,
    /// A decrypt-only (discovery) keyring was asked to encrypt.
    #[cfg(feature = "kms")]
    EncryptNotSupported {
        /// The keyring.
        keyring: String,
    },
    /// A keyring without a KMS client was asked to decrypt (an AWS KMS RSA keyring built
    /// with a public key only).
    #[cfg(feature = "kms")]
    DecryptNotSupported {
        /// The keyring.
        keyring: String,
    },
    /// The AWS KMS RSA keyring refuses algorithm suites with an ECDSA signature, on encrypt
    /// and on decrypt (spec `framework/aws-kms/aws-kms-rsa-keyring.md`, "Security
    /// Considerations": its wrapping key is public, so a signature proves nothing).
    #[cfg(feature = "kms")]
    SigningSuiteNotSupported {
        /// The keyring.
        keyring: String,
        /// The suite of the message.
        suite: esdk_core::AlgorithmSuite,
    },
    /// A keyring that needs a key (ARN or id) was given an alias.
    #[cfg(feature = "kms")]
    AliasNotAllowed {
        /// The keyring kind, e.g. `AWS KMS RSA keyring`.
        keyring: &'static str,
        /// The alias given.
        key_id: String,
    },
    /// The AWS KMS ECDH keyring cannot use a key as configured (spec
    /// `framework/key-agreement-schemas.md`: a KEY_AGREEMENT key on the keyring's curve).
    #[cfg(feature = "kms")]
    EcdhKey {
        /// The KMS key ARN, or which public key.
        key: String,
        /// What is wrong with it.
        problem: crate::kms::EcdhKeyProblem,
    },
    /// A KMS call on encryption failed.
    #[cfg(feature = "kms")]
    Kms(Box<KmsError>),
    /// A KMS response on encryption was refused (wrong key id or data key length).
    #[cfg(feature = "kms")]
    InvalidResponse {
        /// The operation.
        operation: KmsOperation,
        /// The key asked for.
        key_id: String,
        /// What was wrong.
        failure: Box<Failure>,
    },
    /// No KMS keyring could decrypt any EDK; one record per keyring and EDK tried.
    #[cfg(feature = "kms")]
    NoDataKeyDecrypted {
        /// The attempts, in order.
        attempts: Vec<Attempt>,
    },
    /// The hierarchical keyring or its branch key store failed (unknown branch key id or
    /// version, a KMS or DynamoDB failure naming the key and table, an invalid item, ...).
    #[cfg(feature = "kms")]
    BranchKeyStore(Box<crate::kms::BranchKeyStoreError>),
}

impl Error {
    /// The core error, when this is [`Error::Core`].
    pub fn core(&self) -> Option<esdk_core::Error> {
        match self {
            Error::Core(e) => Some(*e),
            _ => None,
        }
    }

    /// Whether this is a configuration error: the keyring or its client cannot be used as
    /// configured (an invalid key id, a region mismatch, no region, ...).
    pub fn is_configuration(&self) -> bool {
        match self {
            Error::Core(_)
            | Error::Io(_)
            | Error::NoKeyringDecrypted { .. }
            | Error::FrameRead { .. } => false,
            #[cfg(feature = "kms")]
            Error::InvalidKeyId { .. }
            | Error::RegionMismatch { .. }
            | Error::DuplicateMultiRegionKeys(_)
            | Error::NoKeyring
            | Error::NoRegion
            | Error::EmptyRegion
            | Error::InvalidRegion { .. }
            | Error::NoDefaultRegion
            | Error::AwsProfile { .. }
            | Error::FilterPartition
            | Error::FilterAccounts
            | Error::SigningSuiteNotSupported { .. }
            | Error::EcdhKey { .. }
            | Error::AliasNotAllowed { .. } => true,
            #[cfg(feature = "kms")]
            Error::MaterialsAlreadyUsed
            | Error::EncryptNotSupported { .. }
            | Error::DecryptNotSupported { .. }
            | Error::Kms(_)
            | Error::InvalidResponse { .. }
            | Error::NoDataKeyDecrypted { .. } => false,
            #[cfg(feature = "kms")]
            Error::BranchKeyStore(e) => e.is_configuration(),
        }
    }

    /// The KMS error codes met, in order (for tests and logs).
    #[cfg(feature = "kms")]
    pub fn kms_codes(&self) -> Vec<String> {
        fn of(f: &Failure, out: &mut Vec<String>) {
            match f {
                Failure::Kms(e) => out.extend(e.code.clone()),
                Failure::Keyring(e) => out.extend(e.kms_codes()),
                Failure::BranchKeyStore(e) => out.extend(e.kms_code().map(str::to_owned)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        match self {
            Error::Kms(e) => out.extend(e.code.clone()),
            Error::NoDataKeyDecrypted { attempts } => {
                for a in attempts {
                    of(&a.failure, &mut out);
                }
            }
            Error::InvalidResponse { failure, .. } => of(failure, &mut out),
            Error::BranchKeyStore(e) => out.extend(e.kms_code().map(str::to_owned)),
            _ => {}
        }
        out
    }
}

impl PartialEq<esdk_core::Error> for Error {
    fn eq(&self, other: &esdk_core::Error) -> bool {
        self.core() == Some(*other)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Core(e) => e.fmt(f),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::NoKeyringDecrypted { attempts } => {
                let n = attempts.len();
                let s = if n == 1 { "" } else { "s" };
                write!(
                    f,
                    "no keyring decrypted any of the encrypted data keys ({n} attempt{s})"
                )?;
                for a in attempts {
                    write!(
                        f,
                        "\n  keyring #{} on EDK #{}: {}",
                        a.keyring, a.edk, a.reason
                    )?;
                }
                Ok(())
            }
            Error::FrameRead {
                sequence,
                offset,
                source,
            } => write!(
                f,
                "reading frame {sequence} at message byte {offset}: {source}"
            ),
            #[cfg(feature = "kms")]
            Error::InvalidKeyId { key_id, reason } => {
                write!(f, "invalid AWS KMS key identifier {key_id:?}: {reason}")
            }
            #[cfg(feature = "kms")]
            Error::RegionMismatch {
                key_id,
                client_region,
            } => write!(
                f,
                "AWS KMS key {key_id} is not in the KMS client's region {client_region}: \
                 use a client for the key's region (a client supplier does this)"
            ),
            #[cfg(feature = "kms")]
            Error::DuplicateMultiRegionKeys(ids) => write!(
                f,
                "these identifiers name the same multi-Region key, so which region to call \
                 is ambiguous: {}",
                ids.join(", ")
            ),
            #[cfg(feature = "kms")]
            Error::NoKeyring => {
                f.write_str("a multi-keyring needs a generator or at least one child keyring")
            }
            #[cfg(feature = "kms")]
            Error::NoRegion => f.write_str("a discovery multi-keyring needs at least one region"),
            #[cfg(feature = "kms")]
            Error::EmptyRegion => f.write_str("a region must not be empty"),
            #[cfg(feature = "kms")]
            Error::InvalidRegion { region } => write!(
                f,
                "{region:?} is not a region name: 1 to 63 lowercase letters, digits and '-', \
                 not starting or ending with '-'"
            ),
            #[cfg(feature = "kms")]
            Error::NoDefaultRegion => f.write_str(
                "a key id or alias names no region and the client supplier has no default \
                 region: use a key ARN, set AWS_REGION or give the profile a region",
            ),
            #[cfg(feature = "kms")]
            Error::AwsProfile { profile, reason } => {
                write!(f, "AWS profile {profile:?}: {reason}")
            }
            #[cfg(feature = "kms")]
            Error::FilterPartition => f.write_str("a discovery filter needs a partition"),
            #[cfg(feature = "kms")]
            Error::FilterAccounts => {
                f.write_str("a discovery filter needs at least one account, none empty")
            }
            #[cfg(feature = "kms")]
            Error::MaterialsAlreadyUsed => {
                f.write_str("prepared encryption materials are for one message only")
            }
            #[cfg(feature = "kms")]
            Error::EncryptNotSupported { keyring } => write!(
                f,
                "{keyring} is decrypt-only: encrypt with a keyring configured with a key"
            ),
            #[cfg(feature = "kms")]
            Error::DecryptNotSupported { keyring } => write!(
                f,
                "{keyring} has no KMS client and so cannot decrypt: give it a client"
            ),
            #[cfg(feature = "kms")]
            Error::SigningSuiteNotSupported { keyring, suite } => write!(
                f,
                "{keyring} does not accept algorithm suite {suite}, which signs with ECDSA: \
                 its wrapping key is public, so the signature would prove nothing; use a suite \
                 without signing (0x0478, or 0x0178 without key commitment)"
            ),
            #[cfg(feature = "kms")]
            Error::AliasNotAllowed { keyring, key_id } => write!(
                f,
                "{keyring} needs a key ARN or key id, not the alias {key_id:?}"
            ),
            #[cfg(feature = "kms")]
            Error::EcdhKey { key, problem } => {
                write!(f, "AWS KMS ECDH keyring: {key}: {problem}")
            }
            #[cfg(feature = "kms")]
            Error::Kms(e) => e.fmt(f),
            #[cfg(feature = "kms")]
            Error::InvalidResponse {
                operation,
                key_id,
                failure,
            } => write!(f, "KMS {operation} with key {key_id}: {failure}"),
            #[cfg(feature = "kms")]
            Error::NoDataKeyDecrypted { attempts } => {
                write!(f, "no KMS keyring could decrypt a data key")?;
                if attempts.is_empty() {
                    return f.write_str(" (the message has no EDK these keyrings handle)");
                }
                f.write_str(":")?;
                for a in attempts {
                    write!(f, "\n  - {a}")?;
                }
                Ok(())
            }
            #[cfg(feature = "kms")]
            Error::BranchKeyStore(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            Error::Io(e) => Some(e),
            Error::FrameRead { source, .. } => Some(source),
            #[cfg(feature = "kms")]
            Error::InvalidKeyId { reason, .. } => Some(reason),
            #[cfg(feature = "kms")]
            Error::Kms(e) => Some(e.as_ref()),
            #[cfg(feature = "kms")]
            Error::BranchKeyStore(e) => Some(e.as_ref()),
            #[cfg(feature = "kms")]
            Error::NoDataKeyDecrypted { attempts } => {
                attempts.iter().find_map(|a| match &a.failure {
                    Failure::Kms(e) => Some(e as &(dyn std::error::Error + 'static)),
                    _ => None,
                })
            }
            _ => None,
        }
    }
}

impl From<esdk_core::Error> for Error {
    fn from(e: esdk_core::Error) -> Self {
        Error::Core(e)
    }
}

/// An `io::Error` from the [streams](crate::stream) gives back the ESDK error it carries
/// ([`Error::Core`]), one made from an [`Error`] gives that error back; any other is
/// [`Error::Io`].
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        if let Some(core) = crate::stream::esdk_error(&e) {
            return Error::Core(core);
        }
        if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return Error::Io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(err)) => *err,
            Some(Err(inner)) => Error::Io(io::Error::new(kind, inner)),
            None => Error::Io(io::Error::from(kind)),
        }
    }
}

/// For `Read`/`Write` code: an [`Error::Io`] is the `io::Error` it holds, an
/// [`Error::Core`] the one the streams make ([`stream::io_error`](crate::stream::io_error)),
/// an [`Error::FrameRead`] one of its source's kind carrying it, anything else an `io::Error`
/// of kind `Other` carrying it (`Error::from` gives it back).
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::Core(e) => crate::stream::io_error(e),
            // The source's kind is kept (`UnexpectedEof`, `Interrupted`, ...).
            Error::FrameRead {
                sequence,
                offset,
                source,
            } => io::Error::new(
                source.kind(),
                Error::FrameRead {
                    sequence,
                    offset,
                    source,
                },
            ),
            other => io::Error::other(other),
        }
    }
}

#[cfg(feature = "kms")]
impl From<KmsError> for Error {
    fn from(e: KmsError) -> Self {
        Error::Kms(Box::new(e))
    }
}

impl PartialEq<Error> for esdk_core::Error {
    fn eq(&self, other: &Error) -> bool {
        other == self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esdk_core::error::{KeyringError, PolicyViolation};

    #[test]
    fn errors_survive_the_round_trip_through_io_error() {
        let core = esdk_core::Error::Policy(PolicyViolation::FrameLength);
        let io: io::Error = Error::Core(core).into();
        assert_eq!(crate::stream::esdk_error(&io), Some(core));
        assert_eq!(Error::from(io), core);

        let io: io::Error = Error::NoKeyringDecrypted {
            attempts: Vec::new(),
        }
        .into();
        assert_eq!(io.kind(), io::ErrorKind::Other);
        assert!(matches!(
            Error::from(io),
            Error::NoKeyringDecrypted { attempts } if attempts.is_empty()
        ));

        let plain = io::Error::new(io::ErrorKind::BrokenPipe, "pipe");
        match Error::from(plain) {
            Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn core_errors_compare_both_ways_and_name_their_source() {
        let core = esdk_core::Error::Keyring(KeyringError::NoDataKeyGenerated);
        let e = Error::from(core);
        assert_eq!(e, core);
        assert_eq!(core, e);
        assert_eq!(e.core(), Some(core));
        assert!(std::error::Error::source(&e).is_some());
        let io = Error::Io(io::Error::other("x"));
        assert!(io != core);
        assert_eq!(io.core(), None);
    }

    #[cfg(feature = "kms")]
    #[test]
    fn configuration_errors_are_named() {
        assert!(Error::NoRegion.is_configuration());
        assert!(!Error::MaterialsAlreadyUsed.is_configuration());
        let io: io::Error = Error::EmptyRegion.into();
        assert!(matches!(Error::from(io), Error::EmptyRegion));
    }
}
