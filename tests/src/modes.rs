//! Decryption of one message in every mode the project offers, for verdict comparison:
//! one-shot, incremental fed 1 byte at a time, incremental fed random-sized slices (seeded),
//! std `Read` and std `Write`.

use std::io::{Read, Write};

use esdk_core::error::Error;
use esdk_core::{Config, CryptoMaterialsManager, Decryptor, Status};

/// A decrypt mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `esdk_core::decrypt`.
    OneShot,
    /// `Decryptor` fed one byte at a time.
    OneByte,
    /// `Decryptor` fed random-sized slices from a seeded generator.
    RandomSlices(u64),
    /// `esdk::DecryptingReader`, read with random-sized buffers.
    StdRead(u64),
    /// `esdk::DecryptingWriter`, written with random-sized chunks.
    StdWrite(u64),
}

impl Mode {
    /// The five modes, seeded with `seed`.
    pub fn all(seed: u64) -> [Mode; 5] {
        [
            Mode::OneShot,
            Mode::OneByte,
            Mode::RandomSlices(seed),
            Mode::StdRead(seed),
            Mode::StdWrite(seed),
        ]
    }
}

/// A small seeded generator (xorshift64*), for split sizes only.
#[derive(Debug, Clone)]
pub struct SplitRng(u64);

impl SplitRng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    /// A size in `1..=max`.
    pub fn size(&mut self, max: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        1 + (r % max as u64) as usize
    }
}

/// The outcome of one decryption: the plaintext, or the error with the plaintext released
/// before it (which must never include a signed message's final frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Decrypted and verified.
    Ok(Vec<u8>),
    /// Failed; `released` is what the mode had handed out before the error.
    Err {
        /// The error.
        error: Error,
        /// Plaintext released before the error.
        released: Vec<u8>,
    },
}

/// Feeds `ct` to a `Decryptor` in slices whose sizes `next` chooses.
fn incremental(
    cfg: &Config,
    cmm: &dyn CryptoMaterialsManager,
    reproduced: &[(&str, &str)],
    ct: &[u8],
    mut next: impl FnMut() -> usize,
) -> Outcome {
    let mut dec = Decryptor::new(cfg, &esdk::DEFAULT_PROVIDER, cmm, reproduced);
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0usize;
    let mut need = 1usize;
    let mut out = vec![0u8; ct.len().max(16)];
    let mut released = Vec::new();
    loop {
        if buf.len() < need {
            if fed == ct.len() {
                let error = Error::Truncated { offset: ct.len() };
                return Outcome::Err { error, released };
            }
            let n = next().min(ct.len() - fed);
            buf.extend_from_slice(&ct[fed..fed + n]);
            fed += n;
            continue;
        }
        match dec.process(&buf, &mut out) {
            Ok(p) => {
                buf.drain(..p.consumed);
                released.extend_from_slice(&out[..p.written]);
                match p.status {
                    Status::NeedInput { min } => need = min,
                    Status::Done => {
                        if !buf.is_empty() || fed < ct.len() {
                            let error = Error::TrailingBytes {
                                offset: dec.offset(),
                            };
                            return Outcome::Err { error, released };
                        }
                        return Outcome::Ok(released);
                    }
                    _ => need = 1,
                }
            }
            Err(error) => return Outcome::Err { error, released },
        }
    }
}

/// A reader that hands out at most a random number of bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    rng: SplitRng,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rng.size(70_000).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn io_outcome(e: std::io::Error, released: Vec<u8>) -> Outcome {
    let error = esdk::stream::esdk_error(&e)
        .unwrap_or(Error::ApiMisuse(esdk_core::error::ApiMisuse::WrongState));
    Outcome::Err { error, released }
}

/// Decrypts `ct` in `mode`.
pub fn decrypt_in_mode(
    mode: Mode,
    cfg: &Config,
    cmm: &dyn CryptoMaterialsManager,
    reproduced: &[(&str, &str)],
    ct: &[u8],
) -> Outcome {
    match mode {
        Mode::OneShot => {
            let mut out = vec![0u8; ct.len()];
            match esdk_core::decrypt(cfg, &esdk::DEFAULT_PROVIDER, cmm, reproduced, ct, &mut out) {
                Ok(d) => {
                    out.truncate(d.plaintext_len);
                    Outcome::Ok(out)
                }
                Err(error) => Outcome::Err {
                    error,
                    released: Vec::new(),
                },
            }
        }
        Mode::OneByte => incremental(cfg, cmm, reproduced, ct, || 1),
        Mode::RandomSlices(seed) => {
            let mut rng = SplitRng::new(seed);
            incremental(cfg, cmm, reproduced, ct, move || rng.size(300))
        }
        Mode::StdRead(seed) => {
            let mut rng = SplitRng::new(seed ^ 0x5555);
            let src = Trickle {
                data: ct,
                rng: SplitRng::new(seed),
            };
            let mut r =
                esdk::DecryptingReader::new(cfg, &esdk::DEFAULT_PROVIDER, cmm, reproduced, src);
            let mut released = Vec::new();
            let mut buf = vec![0u8; 70_000];
            loop {
                let n = rng.size(buf.len());
                match r.read(&mut buf[..n]) {
                    Ok(0) => return Outcome::Ok(released),
                    Ok(k) => released.extend_from_slice(&buf[..k]),
                    Err(e) => return io_outcome(e, released),
                }
            }
        }
        Mode::StdWrite(seed) => {
            let mut rng = SplitRng::new(seed ^ 0xAAAA);
            let mut w = esdk::DecryptingWriter::new(
                cfg,
                &esdk::DEFAULT_PROVIDER,
                cmm,
                reproduced,
                Vec::new(),
            );
            let mut at = 0;
            while at < ct.len() {
                let n = rng.size(5000).min(ct.len() - at);
                if let Err(e) = w.write_all(&ct[at..at + n]) {
                    return io_outcome(e, Vec::new());
                }
                at += n;
            }
            match w.finish() {
                Ok(v) => Outcome::Ok(v),
                Err(e) => io_outcome(e, Vec::new()),
            }
        }
    }
}
