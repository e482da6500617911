//! `hsm_wrap`: a server-style program that encrypts (or decrypts) files with a wrapping key
//! that stays on a PKCS#11 token.
//!
//! It is configured like a service, from the environment (the PIN is never printed):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `ESDK_PKCS11_MODULE` | PKCS#11 module (shared library) | `/usr/lib/softhsm/libsofthsm2.so` |
//! | `ESDK_PKCS11_TOKEN` | token label | required |
//! | `ESDK_PKCS11_PIN` or `ESDK_PKCS11_PIN_FILE` | user PIN, or a file holding it | required |
//! | `ESDK_PKCS11_KEY` | label of the AES wrapping key on the token | required |
//! | `ESDK_PKCS11_NAMESPACE` | EDK provider id (raw AES key namespace) | `hsm-wrap` |
//! | `ESDK_PKCS11_KEY_NAME` | EDK key name | the key label |
//!
//! ```text
//! hsm_wrap encrypt [--out-dir DIR] FILE...      # FILE -> DIR/FILE.esdk
//! hsm_wrap decrypt [--out-dir DIR] FILE.esdk... # FILE.esdk -> DIR/FILE
//! ```
//!
//! The token is opened once and one keyring is shared by a worker thread per file (up to the
//! number of CPUs), the way a server shares it between request handlers. Each message binds
//! the file name in its encryption context. The messages are standard ESDK messages: the
//! official SDKs open them with a raw AES keyring holding the same key, namespace and name.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use esdk_core::{Config, EncryptOptions};
use esdk_pkcs11::{KeySelector, Pkcs11AesKeyring, Token, TokenConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn pin() -> Result<String, BoxError> {
    if let Ok(p) = std::env::var("ESDK_PKCS11_PIN") {
        return Ok(p);
    }
    let file =
        var("ESDK_PKCS11_PIN_FILE").map_err(|_| "set ESDK_PKCS11_PIN or ESDK_PKCS11_PIN_FILE")?;
    let p = std::fs::read_to_string(&file).map_err(|e| format!("reading {file}: {e}"))?;
    Ok(p.trim_end_matches(['\r', '\n']).to_owned())
}

fn keyring() -> Result<Pkcs11AesKeyring, BoxError> {
    let module = std::env::var("ESDK_PKCS11_MODULE")
        .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".to_owned());
    let config = TokenConfig::new(module, var("ESDK_PKCS11_TOKEN")?).with_pin(pin()?);
    let token = Token::open(config)?;
    let key = var("ESDK_PKCS11_KEY")?;
    let namespace = std::env::var("ESDK_PKCS11_NAMESPACE").unwrap_or_else(|_| "hsm-wrap".into());
    let name = std::env::var("ESDK_PKCS11_KEY_NAME").unwrap_or_else(|_| key.clone());
    Ok(Pkcs11AesKeyring::new(
        &token,
        KeySelector::label(key),
        namespace,
        name,
    )?)
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Encrypt,
    Decrypt,
}

/// One job: read `input`, write the result next to it or in `out_dir`.
fn process(
    mode: Mode,
    keyring: &Pkcs11AesKeyring,
    input: &Path,
    out_dir: Option<&Path>,
) -> Result<(PathBuf, usize), BoxError> {
    let file_name = input
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("input path has no UTF-8 file name")?;
    let data = std::fs::read(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    let cfg = Config::new();
    let (out_name, bytes) = match mode {
        Mode::Encrypt => {
            let ec = [("file", file_name), ("app", "hsm_wrap")];
            let msg = esdk::encrypt(&cfg, keyring, &EncryptOptions::new(), &ec, &data)?;
            (format!("{file_name}.esdk"), msg)
        }
        Mode::Decrypt => {
            let stem = file_name
                .strip_suffix(".esdk")
                .ok_or("decrypt expects FILE.esdk")?;
            let out = esdk::decrypt(&cfg, keyring, &[], &data)?;
            let bound = out
                .encryption_context
                .iter()
                .any(|(k, v)| k == "file" && v == stem);
            if !bound {
                return Err(format!("{file_name} was encrypted for another file name").into());
            }
            (stem.to_owned(), out.plaintext)
        }
    };
    let dir = match out_dir {
        Some(d) => d.to_path_buf(),
        None => input.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let out = dir.join(out_name);
    if out.exists() {
        return Err(format!("{} exists; not overwriting", out.display()).into());
    }
    // Write next to the target, then rename: no partial output on failure.
    let tmp = dir.join(format!(".{}.partial", file_name));
    std::fs::write(&tmp, &bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &out).map_err(|e| format!("renaming to {}: {e}", out.display()))?;
    Ok((out, bytes.len()))
}

fn run() -> Result<bool, BoxError> {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("encrypt") => Mode::Encrypt,
        Some("decrypt") => Mode::Decrypt,
        _ => {
            return Err("usage: hsm_wrap encrypt|decrypt [--out-dir DIR] FILE...".into());
        }
    };
    let mut out_dir = None;
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        if a == "--out-dir" {
            out_dir = Some(PathBuf::from(args.next().ok_or("--out-dir needs a value")?));
        } else {
            files.push(PathBuf::from(a));
        }
    }
    if files.is_empty() {
        return Err("no input files".into());
    }

    let start = Instant::now();
    let keyring = Arc::new(keyring()?);
    eprintln!(
        "hsm_wrap: token {:?} open, key {:?} ({:.1} ms)",
        keyring.token().label(),
        keyring.name(),
        start.elapsed().as_secs_f64() * 1e3
    );

    // A small worker pool sharing one keyring, like request handlers in a server.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(files.len());
    let queue = Arc::new(Mutex::new(files));
    let ok = Arc::new(Mutex::new(true));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (queue, keyring, ok, out_dir) =
                (queue.clone(), keyring.clone(), ok.clone(), out_dir.clone());
            std::thread::spawn(move || {
                // The guard is consumed inside the closure: the queue is unlocked while a
                // file is processed.
                while let Some(input) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    let t = Instant::now();
                    match process(mode, &keyring, &input, out_dir.as_deref()) {
                        Ok((out, n)) => println!(
                            "{} -> {} ({n} bytes, {:.1} ms)",
                            input.display(),
                            out.display(),
                            t.elapsed().as_secs_f64() * 1e3
                        ),
                        Err(e) => {
                            eprintln!("hsm_wrap: {}: {e}", input.display());
                            if let Ok(mut ok) = ok.lock() {
                                *ok = false;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        if h.join().is_err() {
            return Err("a worker thread panicked".into());
        }
    }
    let all_ok = ok.lock().map(|g| *g).unwrap_or(false);
    Ok(all_ok)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hsm_wrap: {e}");
            ExitCode::from(2)
        }
    }
}
