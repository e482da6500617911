//! `stream-bench`: encrypts a generated stream through `esdk::EncryptingWriter` into a pipe,
//! decrypts it on another thread through `esdk::DecryptingReader`, checks every byte, and
//! prints MB/s and the process's peak RSS. Nothing holds the whole stream.
//!
//! ```text
//! cargo run --release -p esdk-tests --bin stream-bench -- [--size-mib 1024] [--frame 65536] [--suite 0x0578]
//! ```

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;

use esdk::raw::RawAesKeyring;
use esdk::{AlgorithmSuite, Config, DecryptingReader, EncryptOptions, EncryptingWriter};

/// Deterministic pseudo-random bytes (xorshift64), so the reader can check what it gets.
struct Gen(u64);

impl Gen {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size_mib: u64 = arg(&args, "--size-mib")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let frame: u32 = arg(&args, "--frame")
        .and_then(|v| v.parse().ok())
        .unwrap_or(65536);
    let suite = arg(&args, "--suite")
        .and_then(|v| u16::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .map(AlgorithmSuite::from_id)
        .transpose();
    let suite = match suite {
        Ok(s) => s.unwrap_or(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let total = size_mib << 20;
    let key = [0x11u8; 32];
    let keyring = match RawAesKeyring::new("stream-bench", "key", &key) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = Config::new();
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame);
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let result = std::thread::scope(|s| {
        let enc = s.spawn(|| -> std::io::Result<f64> {
            let mut w = EncryptingWriter::new(
                &cfg,
                &esdk::DEFAULT_PROVIDER,
                &keyring,
                &opts,
                &[("bench", "1")],
                writer,
            )?;
            let mut g = Gen(0x9E37_79B9_7F4A_7C15);
            let mut buf = vec![0u8; 256 * 1024];
            let mut left = total;
            while left > 0 {
                let n = (buf.len() as u64).min(left) as usize;
                g.fill(&mut buf[..n]);
                w.write_all(&buf[..n])?;
                left -= n as u64;
            }
            drop(w.finish()?);
            Ok(start.elapsed().as_secs_f64())
        });
        let mut r = DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &keyring, &[], reader);
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        let mut got = vec![0u8; 256 * 1024];
        let mut want = vec![0u8; 256 * 1024];
        let mut seen = 0u64;
        loop {
            let n = match r.read(&mut got) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(format!("decrypt at byte {seen}: {e}")),
            };
            g.fill(&mut want[..n]);
            if got[..n] != want[..n] {
                return Err(format!("plaintext mismatch near byte {seen}"));
            }
            // Keep the generator aligned on 8-byte chunks: re-seed per read is not needed
            // because reads come in multiples of 8 except at the very end.
            if n % 8 != 0 && seen + (n as u64) < total {
                return Err(
                    "reader returned a non-multiple of 8 mid-stream; checker cannot follow".into(),
                );
            }
            seen += n as u64;
        }
        let enc_secs = enc
            .join()
            .map_err(|_| "encrypt thread panicked".to_string())?
            .map_err(|e| e.to_string())?;
        if seen != total {
            return Err(format!("decrypted {seen} bytes, expected {total}"));
        }
        Ok(enc_secs)
    });
    let secs = start.elapsed().as_secs_f64();
    match result {
        Ok(enc_secs) => {
            let mb = total as f64 / 1e6;
            println!(
                "stream-bench: suite {suite}, frame {frame}, {size_mib} MiB: encrypt {:.0} MB/s, encrypt+decrypt pipeline {:.0} MB/s ({secs:.2} s), peak RSS {:.1} MiB",
                mb / enc_secs,
                mb / secs,
                peak_rss_kib() as f64 / 1024.0
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stream-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
