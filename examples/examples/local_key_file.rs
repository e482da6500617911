//! Encrypt and decrypt a file with a raw AES-256 key kept in a local key file: no AWS
//! account. Creates the key file (32 random bytes, mode 0600) if it does not exist.
//!
//! Run: `cargo run --release -p esdk-examples --example local_key_file -- KEYFILE INPUT`
//! Writes `INPUT.esdk` and `INPUT.esdk.decrypted`, and checks the round trip.

use std::io::Write;
use std::process::ExitCode;

use esdk::raw::RawAesKeyring;
use esdk::{Config, EncryptOptions};

fn load_or_create_key(path: &str) -> std::io::Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{path}: expected 32 raw key bytes, found {}", bytes.len()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(std::io::Error::other)?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            opts.open(path)?.write_all(&key)?;
            eprintln!("created new key file {path}");
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

fn run(key_path: &str, input: &str) -> Result<(), Box<dyn std::error::Error>> {
    let key = load_or_create_key(key_path)?;
    let keyring = RawAesKeyring::new("local-key-file", key_path, &key)?;
    let cfg = Config::new();
    let plaintext = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let started = std::time::Instant::now();
    let msg = esdk::encrypt(
        &cfg,
        &keyring,
        &EncryptOptions::new().with_frame_length(65536),
        &[("file", input)],
        &plaintext,
    )?;
    let enc_time = started.elapsed();
    std::fs::write(format!("{input}.esdk"), &msg)?;
    let started = std::time::Instant::now();
    let out = esdk::decrypt(&cfg, &keyring, &[("file", input)], &msg)?;
    let dec_time = started.elapsed();
    std::fs::write(format!("{input}.esdk.decrypted"), &out.plaintext)?;
    if out.plaintext != plaintext {
        return Err("round trip mismatch".into());
    }
    println!(
        "{input}: {} bytes -> {} bytes ({}), encrypt {:?}, decrypt {:?}, round trip OK",
        plaintext.len(),
        msg.len(),
        out.suite,
        enc_time,
        dec_time
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, input] = args.as_slice() else {
        eprintln!("usage: local_key_file KEYFILE INPUT");
        return ExitCode::from(2);
    };
    match run(key, input) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
