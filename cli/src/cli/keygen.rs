//! `esdk keygen`: a new raw AES-256 key from the operating system's CSPRNG.

use std::fs::{self, OpenOptions};
use std::io::{self, IsTerminal, Write};

use base64::Engine as _;
use esdk::core::provider::RandomSource;
use zeroize::Zeroizing;

use super::args::{KeygenArgs, KeygenEncoding};
use super::error::{CliError, Code};

/// The key file's content: every buffer holding the key (or its encoding) is allocated
/// once at its final size and zeroized when dropped, so no copy is left in freed memory.
fn encode(key: &[u8; 32], encoding: KeygenEncoding) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let bad = |what: &str| CliError::crypto(format!("encoding the key as {what}: internal error"));
    let data = match encoding {
        KeygenEncoding::Raw => Zeroizing::new(key.to_vec()),
        KeygenEncoding::Hex => {
            let mut s = Zeroizing::new(vec![0u8; 2 * key.len() + 1]);
            hex::encode_to_slice(key, &mut s[..2 * key.len()]).map_err(|_| bad("hex"))?;
            s[2 * key.len()] = b'\n';
            s
        }
        KeygenEncoding::Base64 => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let len = base64::encoded_len(key.len(), true).ok_or_else(|| bad("base64"))?;
            let mut s = Zeroizing::new(vec![0u8; len + 1]);
            let n = b64
                .encode_slice(key, &mut s[..len])
                .map_err(|_| bad("base64"))?;
            if n != len {
                return Err(bad("base64"));
            }
            s[len] = b'\n';
            s
        }
    };
    Ok(data)
}

/// Writes the key file.
///
/// # Errors
/// An existing output (never replaced), a raw key to a terminal, I/O failures.
pub(crate) fn run(a: &KeygenArgs) -> Result<(), CliError> {
    let mut key = Zeroizing::new([0u8; 32]);
    esdk::OsRng
        .fill_random(&mut key[..])
        .map_err(|e| CliError::crypto(format!("generating a key: {e}")))?;
    let data = encode(&key, a.encoding)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_exact_and_preallocated() {
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = (i * 37) as u8;
        }
        let raw = encode(&key, KeygenEncoding::Raw).expect("raw");
        assert_eq!(raw[..], key);
        let hex = encode(&key, KeygenEncoding::Hex).expect("hex");
        assert_eq!(hex.len(), 65);
        assert_eq!(hex.capacity(), 65, "allocated once at its final size");
        assert_eq!(&hex[..64], hex::encode(key).as_bytes());
        assert_eq!(hex[64], b'\n');
        let b64 = encode(&key, KeygenEncoding::Base64).expect("base64");
        assert_eq!(b64.len(), 45);
        assert_eq!(b64.capacity(), 45, "allocated once at its final size");
        assert_eq!(
            &b64[..44],
            base64::engine::general_purpose::STANDARD
                .encode(key)
                .as_bytes()
        );
        // The key files read back as the same key.
        for text in [&hex[..], &b64[..]] {
            let back =
                super::super::keys::decode_aes_key(text, super::super::args::KeyEncoding::Auto)
                    .expect("decodes");
            assert_eq!(back[..], key);
        }
    }
}
