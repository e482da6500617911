//! The CLI's error: a message that names the file and the failed check, and an exit code.

use std::fmt;
use std::io;
use std::path::Path;

use esdk::core::Error;
use esdk::core::error::KeyringError;

/// The exit codes documented in `--help` (see [`super::args::EXIT_CODES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Code {
    /// Cryptographic or message-format failure.
    Crypto = 1,
    /// Bad arguments or key material.
    Usage = 2,
    /// An input could not be read or an output written.
    Io = 3,
}

/// A failure, ready to print as `esdk: <message>`.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The exit code.
    pub code: Code,
    /// What failed, naming the file and the check.
    pub message: String,
}

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: Code::Usage,
            message: message.into(),
        }
    }

    /// A cryptographic or format failure.
    pub fn crypto(message: impl Into<String>) -> Self {
        Self {
            code: Code::Crypto,
            message: message.into(),
        }
    }

    /// An I/O failure on `path` while doing `what` ("reading", "writing", ...).
    pub fn io(what: &str, path: &str, e: &io::Error) -> Self {
        Self {
            code: Code::Io,
            message: format!("{what} {path}: {e}"),
        }
    }

    /// An I/O failure on a filesystem path.
    pub fn io_path(what: &str, path: &Path, e: &io::Error) -> Self {
        Self::io(what, &quote(path), e)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A path as shown in messages: quoted, lossy for non-UTF-8 names.
pub(crate) fn quote(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// The text of a core error: which check failed and where.
pub(crate) fn esdk_message(e: &Error) -> String {
    match e {
        Error::Keyring(KeyringError::Key(k)) => k.to_string(),
        Error::Keyring(KeyringError::Pkcs11(p)) => format!("PKCS#11: {p}"),
        other => other.to_string(),
    }
}
