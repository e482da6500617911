//! `esdk keygen`: a new raw AES-256 key from the operating system's CSPRNG.

use std::fs::{self, OpenOptions};
use std::io::{self, IsTerminal, Write};

use base64::Engine as _;
use esdk::core::provider::RandomSource;
use zeroize::Zeroizing;

use super::args::{KeygenArgs, KeygenEncoding};
use super::error::{CliError, Code};

/// Writes the key file.
///
/// # Errors
/// An existing output (never replaced), a raw key to a terminal, I/O failures.
pub(crate) fn run(a: &KeygenArgs) -> Result<(), CliError> {
    let mut key = Zeroizing::new([0u8; 32]);
    esdk::OsRng
        .fill_random(&mut key[..])
        .map_err(|e| CliError::crypto(format!("generating a key: {e}")))?;
    let data: Zeroizing<Vec<u8>> = match a.encoding {
        KeygenEncoding::Raw => Zeroizing::new(key.to_vec()),
        KeygenEncoding::Hex => {
            let mut s = Zeroizing::new(Vec::with_capacity(65));
            for b in key.iter() {
                s.extend_from_slice(format!("{b:02x}").as_bytes());
            }
            s.push(b'\n');
            s
        }
        KeygenEncoding::Base64 => {
            let mut s = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .encode(&key[..])
                    .into_bytes(),
            );
            s.push(b'\n');
            s
        }
    };
    if a.output == "-" {
        let mut out = io::stdout().lock();
        if a.encoding == KeygenEncoding::Raw && out.is_terminal() {
            return Err(CliError::usage(
                "not writing raw key bytes to a terminal: use --encoding hex or base64",
            ));
        }
        return out
            .write_all(&data)
            .and_then(|()| out.flush())
            .map_err(|e| CliError::io("writing", "<stdout>", &e));
    }
    let path = &a.output;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            CliError {
                code: Code::Io,
                message: format!("refusing to overwrite the existing file '{path}'"),
            }
        } else {
            CliError::io("creating", &format!("'{path}'"), &e)
        }
    })?;
    if let Err(e) = f.write_all(&data).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = fs::remove_file(path);
        return Err(CliError::io("writing", &format!("'{path}'"), &e));
    }
    Ok(())
}
