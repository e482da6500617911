//! The embedded-io adapters under I/O faults (issue #14): inner readers and writers that
//! fail with `Interrupted`, `TimedOut` (embedded-io has no `WouldBlock`), `Other`, return `Ok(0)` from a write, or move
//! one byte, at every call index, once or for good; for unsigned and signed suites, one
//! frame and several. After a retried error the output is byte-exact; a permanent failure
//! is reported; ESDK errors (truncation, trailing bytes) are sticky and never release the
//! final frame; trailing bytes give the one-shot API's error and offset.
#![cfg(feature = "embedded-io")]

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use esdk_core::eio::{DecryptingReader, EncryptingWriter, StreamError};
use esdk_core::error::Error;
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions};
use esdk_raw::RawAesKeyring;
use esdk_test_support::XorShift;

const FRAME: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct E(ErrorKind);
impl core::fmt::Display for E {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "injected {:?}", self.0)
    }
}
impl core::error::Error for E {}
impl embedded_io::Error for E {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kind(ErrorKind),
    Short,
    Zero,
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    fault: Fault,
    at: usize,
    permanent: bool,
    max: usize,
}

impl Plan {
    fn fires(&self, i: usize) -> Option<Fault> {
        let hit = if self.permanent {
            i >= self.at
        } else {
            i == self.at
        };
        hit.then_some(self.fault)
    }
}

/// The error kind the adapter must report for a fault (`None`: absorbed).
fn reported(f: Fault) -> Option<ErrorKind> {
    match f {
        Fault::Kind(ErrorKind::Interrupted) | Fault::Short => None,
        Fault::Kind(k) => Some(k),
        Fault::Zero => Some(ErrorKind::WriteZero),
    }
}

struct FaultyReader<'a> {
    data: &'a [u8],
    pos: usize,
    calls: usize,
    plan: Plan,
}

impl ErrorType for FaultyReader<'_> {
    type Error = E;
}

impl Read for FaultyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, E> {
        let i = self.calls;
        self.calls += 1;
        let mut max = self.plan.max;
        match self.plan.fires(i) {
            Some(Fault::Kind(k)) => return Err(E(k)),
            Some(Fault::Short) => max = 1,
            _ => {}
        }
        let n = buf.len().min(max).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct FaultyWriter<'a> {
    data: &'a mut [u8],
    len: usize,
    calls: usize,
    plan: Plan,
}

impl ErrorType for FaultyWriter<'_> {
    type Error = E;
}

impl Write for FaultyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, E> {
        let i = self.calls;
        self.calls += 1;
        let mut max = self.plan.max;
        match self.plan.fires(i) {
            Some(Fault::Kind(k)) => return Err(E(k)),
            Some(Fault::Short) => max = 1,
            Some(Fault::Zero) => return Ok(0),
            None => {}
        }
        let n = buf.len().min(max).min(self.data.len() - self.len);
        self.data[self.len..self.len + n].copy_from_slice(&buf[..n]);
        self.len += n;
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), E> {
        Ok(())
    }
}

const RETRIES: usize = 4;

fn keyring() -> RawAesKeyring<'static> {
    RawAesKeyring::new("eio", "k", &[3u8; 32]).expect("keyring")
}

fn provider() -> RustCrypto<XorShift> {
    RustCrypto::new(XorShift::new(77))
}

fn faults() -> [Fault; 5] {
    [
        Fault::Kind(ErrorKind::Interrupted),
        Fault::Kind(ErrorKind::TimedOut),
        Fault::Kind(ErrorKind::Other),
        Fault::Short,
        Fault::Zero,
    ]
}

/// Encrypts through the eio writer under `plan`, retrying I/O errors. `Ok(len)` or the
/// permanent error kind.
fn encrypt(
    suite: AlgorithmSuite,
    pt: &[u8],
    plan: Plan,
    chunk: usize,
    out: &mut [u8],
) -> Result<usize, (ErrorKind, bool)> {
    let cfg = Config::new();
    let p = provider();
    let k = keyring();
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME as u32);
    let mut frame = [0u8; FRAME];
    let mut obuf = [0u8; 1024];
    let mut ec = [("site", "a")];
    let inner = FaultyWriter {
        data: out,
        len: 0,
        calls: 0,
        plan,
    };
    let what = format!("encrypt {suite:?} {plan:?} {chunk}");
    let mut w =
        match EncryptingWriter::new(&cfg, &p, &k, &opts, &mut ec, inner, &mut frame, &mut obuf) {
            Ok(w) => w,
            // The header write failed: the writer is not constructed.
            Err(StreamError::Io(e)) => return Err((e.0, true)),
            Err(StreamError::WriteZero) => return Err((ErrorKind::WriteZero, true)),
            Err(e) => panic!("{what}: {e}"),
        };
    let mut errors = 0;
    let mut at = 0;
    let check = |e: &StreamError<E>| {
        let kind = match e {
            StreamError::Io(e) => e.0,
            StreamError::WriteZero => ErrorKind::WriteZero,
            StreamError::Esdk(e) => panic!("{what}: {e}"),
        };
        assert_eq!(Some(kind), reported(plan.fault), "{what}");
        kind
    };
    while at < pt.len() {
        match w.write(&pt[at..(at + chunk).min(pt.len())]) {
            Ok(0) => panic!("{what}: Ok(0)"),
            Ok(n) => at += n,
            Err(e) => {
                let kind = check(&e);
                errors += 1;
                if errors > RETRIES {
                    return Err((kind, false));
                }
            }
        }
    }
    loop {
        match w.try_finish() {
            Ok(()) => break,
            Err(e) => {
                let kind = check(&e);
                errors += 1;
                if errors > RETRIES {
                    return Err((kind, false));
                }
            }
        }
    }
    let inner = w.finish().expect("finish again");
    Ok(inner.len)
}

/// Decrypts through the eio reader under `plan` with `size`-byte reads, retrying I/O
/// errors. Returns the plaintext read and the end: `Ok(())`, the ESDK error (checked
/// sticky), or the permanent I/O error kind.
fn decrypt(
    ct: &[u8],
    plan: Plan,
    size: usize,
    out: &mut Vec<u8>,
) -> Result<(), Result<Error, ErrorKind>> {
    let cfg = Config::new();
    let p = provider();
    let k = keyring();
    let mut inbuf = [0u8; 1024];
    let mut obuf = [0u8; FRAME];
    let inner = FaultyReader {
        data: ct,
        pos: 0,
        calls: 0,
        plan,
    };
    let mut r = DecryptingReader::new(&cfg, &p, &k, &[], inner, &mut inbuf, &mut obuf);
    let mut buf = vec![0u8; size];
    let mut errors = 0;
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                assert_eq!(r.read(&mut buf), Ok(0));
                assert!(!r.has_unverified_plaintext());
                return Ok(());
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(StreamError::Esdk(e)) => {
                assert_eq!(r.read(&mut buf), Err(StreamError::Esdk(e)), "sticky");
                assert_eq!(r.read(&mut buf), Err(StreamError::Esdk(e)), "sticky");
                return Err(Ok(e));
            }
            Err(StreamError::Io(e)) => {
                assert_eq!(Some(e.0), reported(plan.fault), "{plan:?}");
                errors += 1;
                if errors > RETRIES {
                    return Err(Err(e.0));
                }
            }
            Err(StreamError::WriteZero) => panic!("a reader reported WriteZero"),
        }
    }
}

#[test]
fn eio_adapters_under_faults() {
    let mut enc_cases = 0;
    let mut dec_cases = 0;
    let suites = [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ];
    for suite in suites {
        for len in [11usize, 3 * FRAME + 10] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let regular = (len - 1) / FRAME * FRAME;
            let mut good = [0u8; 2048];
            let none = Plan {
                fault: Fault::Short,
                at: usize::MAX,
                permanent: false,
                max: usize::MAX,
            };
            let n = encrypt(suite, &pt, none, 1000, &mut good).expect("encrypt");
            let ct = &good[..n];
            let mut trailing = ct.to_vec();
            trailing.extend_from_slice(&[0xEE; 2]);
            let mut one = vec![0u8; trailing.len() + 64];
            let trailing_err = esdk_core::decrypt(
                &Config::new(),
                &provider(),
                &keyring(),
                &[],
                &trailing,
                &mut one,
            )
            .expect_err("trailing");
            for fault in faults() {
                for permanent in [false, true] {
                    // `Interrupted` means "retry" (std's own loops retry it forever too).
                    if permanent && is_interrupted(fault) {
                        continue;
                    }
                    for (max, chunk, top) in [(usize::MAX, 1000, 8), (5, 3, 120)] {
                        for at in 0..top {
                            let plan = Plan {
                                fault,
                                at,
                                permanent,
                                max,
                            };
                            // Encrypt: byte-exact after retries, decryptable.
                            let mut msg = [0u8; 2048];
                            match encrypt(suite, &pt, plan, chunk, &mut msg) {
                                Ok(m) => {
                                    let mut got = Vec::new();
                                    decrypt(&msg[..m], none, 4096, &mut got)
                                        .unwrap_or_else(|e| panic!("{plan:?}: {e:?}"));
                                    assert_eq!(got, pt, "{suite:?} {plan:?}");
                                }
                                Err((kind, in_new)) => {
                                    assert!(permanent || in_new, "{plan:?}: {kind:?}");
                                    assert_eq!(Some(kind), reported(fault));
                                }
                            }
                            enc_cases += 1;
                            if fault == Fault::Zero {
                                continue;
                            }
                            for size in [1usize, 4096] {
                                let what = format!("{suite:?} {len} {plan:?} {size}");
                                let mut got = Vec::new();
                                match decrypt(ct, plan, size, &mut got) {
                                    Ok(()) => assert_eq!(got, pt, "{what}"),
                                    Err(Err(_)) => {
                                        assert!(permanent, "{what}");
                                        assert_eq!(got, pt[..got.len()], "{what}");
                                    }
                                    Err(Ok(e)) => panic!("{what}: {e}"),
                                }
                                let mut got = Vec::new();
                                match decrypt(&trailing, plan, size, &mut got) {
                                    Err(Ok(e)) => assert_eq!(e, trailing_err, "{what}"),
                                    Err(Err(_)) => assert!(permanent, "{what}"),
                                    Ok(()) => panic!("{what}: trailing bytes accepted"),
                                }
                                assert!(got.len() <= regular, "{what}: final frame released");
                                let mut got = Vec::new();
                                match decrypt(&ct[..ct.len() - 1], plan, size, &mut got) {
                                    Err(Ok(Error::Truncated { .. })) => {}
                                    Err(Err(_)) => assert!(permanent, "{what}"),
                                    other => panic!("{what}: {other:?}"),
                                }
                                assert!(got.len() <= regular, "{what}: final frame released");
                                dec_cases += 3;
                            }
                        }
                    }
                }
            }
        }
    }
    println!(
        "eio fault injection: {} cases passed (encrypting writer {enc_cases}, decrypting reader {dec_cases})",
        enc_cases + dec_cases
    );
    assert!(enc_cases > 500 && dec_cases > 2000);
}

fn is_interrupted(f: Fault) -> bool {
    matches!(f, Fault::Kind(k) if k == INTERRUPTED)
}
const INTERRUPTED: ErrorKind = ErrorKind::Interrupted;
