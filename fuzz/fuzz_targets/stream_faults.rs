//! The std streaming adapters under fuzzer-chosen I/O faults: `DecryptingReader`,
//! `DecryptingWriter` and `EncryptingWriter` over an inner reader or writer that fails with
//! `Interrupted`, `WouldBlock` or `Other`, does short reads and writes, or accepts nothing
//! (`Ok(0)`), on a schedule the fuzzer picks, with intact, truncated, extended or bit-flipped
//! messages of every suite, signed plaintext held (default) or streamed (opt-in).
//!
//! Checks: an I/O error of the inner side is retryable and loses, duplicates or reorders
//! nothing (an intact message gives exactly its plaintext, a written one decrypts to exactly
//! what was written); `Interrupted` never reaches the caller; an `Ok(0)` write is `WriteZero`;
//! an ESDK error is sticky (never `Ok(0)` or success after it); what reached the caller of a
//! damaged message is a prefix of the plaintext without its final frame, and nothing at all of
//! a signed message unless the caller opted in.
//!
//! Input: suite byte, frame length byte (frames of 1-256 bytes), flags (bits 0-1: 0 reader,
//! 1 decrypting writer, 2-3 encrypting writer; bit 2: release unverified plaintext; bit 3:
//! one trailing byte; bit 4: drop the last byte; bit 5: flip the bit chosen next), flip
//! position (2 bytes), schedule length byte, the schedule (one byte per inner call), then the
//! plaintext.
#![no_main]

use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::rc::Rc;

use esdk::stream::esdk_error;
use esdk::{DecryptingReader, DecryptingWriter, EncryptingWriter};
use esdk_core::{AlgorithmSuite, CommitmentPolicy, Config, EncryptOptions};
use esdk_fuzz::{FuzzKeyring, FuzzProvider};
use libfuzzer_sys::fuzz_target;

/// What the inner side does at each call: the schedule's bytes in turn, then always "all".
struct Schedule<'a> {
    steps: &'a [u8],
    at: usize,
}

enum Step {
    Fail(ErrorKind),
    Short(usize),
    Zero,
    All,
}

impl Schedule<'_> {
    fn next(&mut self) -> Step {
        let Some(&b) = self.steps.get(self.at) else {
            return Step::All;
        };
        self.at += 1;
        match b % 6 {
            0 => Step::Fail(ErrorKind::Interrupted),
            1 => Step::Fail(ErrorKind::WouldBlock),
            2 => Step::Fail(ErrorKind::Other),
            3 => Step::Short(1 + usize::from(b / 6)),
            4 => Step::Zero,
            _ => Step::All,
        }
    }
}

struct FaultyReader<'a> {
    data: &'a [u8],
    schedule: Schedule<'a>,
}

impl Read for FaultyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.schedule.next() {
            Step::Fail(kind) => return Err(io::Error::new(kind, "injected")),
            // A reader's Ok(0) means the end: give a 1-byte read instead.
            Step::Short(n) => n,
            Step::Zero => 1,
            Step::All => usize::MAX,
        };
        let n = n.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

struct FaultyWriter<'a> {
    out: Rc<RefCell<Vec<u8>>>,
    schedule: Schedule<'a>,
}

impl Write for FaultyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.schedule.next() {
            Step::Fail(kind) => return Err(io::Error::new(kind, "injected")),
            Step::Short(n) => n.min(buf.len()),
            Step::Zero => 0,
            Step::All => buf.len(),
        };
        self.out.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Retries allowed after inner I/O errors (the schedule is finite, so progress resumes).
const MAX_RETRIES: usize = 100_000;

/// An error of the adapter: `None` for an inner I/O error the caller may retry.
fn classify(e: &io::Error) -> Option<esdk_core::Error> {
    assert_ne!(
        e.kind(),
        ErrorKind::Interrupted,
        "Interrupted reached the caller"
    );
    esdk_error(e)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let suite = AlgorithmSuite::ALL[usize::from(data[0]) % 11];
    let frame = usize::from(data[1]) + 1;
    let flags = data[2];
    let flip = usize::from(u16::from_be_bytes([data[3], data[4]]));
    let steps_len = usize::from(data[5]);
    let Some(steps) = data.get(6..6 + steps_len) else {
        return;
    };
    let pt = &data[6 + steps_len..];
    let schedule = || Schedule { steps, at: 0 };
    let cfg = Config::new().with_commitment_policy(if suite.is_committing() {
        CommitmentPolicy::RequireEncryptAllowDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    });
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame as u32);
    let p = FuzzProvider::new(false, false);
    let release = flags & 4 != 0;
    let signed = suite.signature().is_some();

    if flags & 3 >= 2 {
        // EncryptingWriter: what it writes must decrypt to exactly what was written.
        let out = Rc::new(RefCell::new(Vec::new()));
        let inner = FaultyWriter {
            out: Rc::clone(&out),
            schedule: schedule(),
        };
        let Ok(mut w) = EncryptingWriter::new(&cfg, &p, &FuzzKeyring, &opts, &[("k", "v")], inner)
        else {
            // The header could not be written: there is no writer to retry with.
            return;
        };
        let mut retries = 0;
        for chunk in pt.chunks(frame / 2 + 3) {
            let mut rest = chunk;
            while !rest.is_empty() {
                match w.write(rest) {
                    Ok(0) => panic!("EncryptingWriter accepted nothing without an error"),
                    Ok(n) => rest = &rest[n..],
                    Err(e) => {
                        assert!(classify(&e).is_none(), "ESDK error while encrypting: {e}");
                        retries += 1;
                        assert!(retries < MAX_RETRIES);
                    }
                }
            }
        }
        loop {
            match w.try_finish() {
                Ok(()) => break,
                Err(e) => {
                    assert!(classify(&e).is_none(), "ESDK error while finishing: {e}");
                    retries += 1;
                    assert!(retries < MAX_RETRIES);
                }
            }
        }
        drop(w);
        let msg = out.borrow().clone();
        let back = esdk_fuzz::one_shot(&cfg, &p, &FuzzKeyring, &msg)
            .unwrap_or_else(|e| panic!("the written message does not decrypt: {e}"));
        assert_eq!(back, pt, "the written message decrypts to something else");
        return;
    }

    // Decrypting: a message, intact or damaged.
    let mut msg = {
        let mut ec = [("k", "v")];
        let len = esdk_core::encrypted_len(&cfg, &opts, &FuzzKeyring, &ec, pt.len())
            .expect("message length");
        let mut out = vec![0u8; len];
        let n = esdk_core::encrypt(&cfg, &p, &FuzzKeyring, &opts, &mut ec, pt, &mut out)
            .expect("encrypt");
        out.truncate(n);
        out
    };
    let mut damaged = false;
    if flags & 8 != 0 {
        msg.push(0);
        damaged = true;
    }
    if flags & 16 != 0 && !msg.is_empty() {
        msg.pop();
        damaged = true;
    }
    if flags & 32 != 0 && !msg.is_empty() {
        let at = flip % msg.len();
        msg[at] ^= 1 << (flip % 8);
        damaged = true;
    }
    // The final frame: the last (possibly full) chunk of the plaintext.
    let final_len = if pt.is_empty() {
        0
    } else {
        pt.len() - (pt.len() - 1) / frame * frame
    };

    let (released, result): (Vec<u8>, Result<(), esdk_core::Error>) = if flags & 3 == 0 {
        let inner = FaultyReader {
            data: &msg,
            schedule: schedule(),
        };
        let mut r = DecryptingReader::new(&cfg, &p, &FuzzKeyring, &[], inner)
            .release_unverified_plaintext(release);
        let mut got = Vec::new();
        let mut buf = [0u8; 300];
        let mut retries = 0;
        let mut size = 1usize;
        let result = loop {
            size = (size * 7 + 37) % buf.len() + 1;
            match r.read(&mut buf[..size]) {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => match classify(&e) {
                    Some(err) => {
                        // Sticky: the same error again, never Ok(0).
                        let again = r.read(&mut buf).expect_err("an ESDK error did not stick");
                        assert_eq!(esdk_error(&again), Some(err), "the error changed");
                        break Err(err);
                    }
                    None => {
                        retries += 1;
                        assert!(retries < MAX_RETRIES);
                    }
                },
            }
        };
        (got, result)
    } else {
        let out = Rc::new(RefCell::new(Vec::new()));
        let inner = FaultyWriter {
            out: Rc::clone(&out),
            schedule: schedule(),
        };
        let mut w = DecryptingWriter::new(&cfg, &p, &FuzzKeyring, &[], inner)
            .release_unverified_plaintext(release);
        let mut retries = 0;
        let mut result = Ok(());
        'feed: for chunk in msg.chunks(frame + 40) {
            let mut rest = chunk;
            while !rest.is_empty() {
                match w.write(rest) {
                    Ok(0) => panic!("DecryptingWriter accepted nothing without an error"),
                    Ok(n) => rest = &rest[n..],
                    Err(e) => match classify(&e) {
                        Some(err) => {
                            let again = w.write(b"x").expect_err("an ESDK error did not stick");
                            assert_eq!(esdk_error(&again), Some(err), "the error changed");
                            result = Err(err);
                            break 'feed;
                        }
                        None => {
                            retries += 1;
                            assert!(retries < MAX_RETRIES);
                        }
                    },
                }
            }
        }
        if result.is_ok() {
            result = loop {
                match w.try_finish() {
                    Ok(()) => break Ok(()),
                    Err(e) => match classify(&e) {
                        Some(err) => break Err(err),
                        None => {
                            retries += 1;
                            assert!(retries < MAX_RETRIES);
                        }
                    },
                }
            };
        }
        drop(w);
        let got = out.borrow().clone();
        (got, result)
    };

    match result {
        Ok(()) => assert_eq!(released, pt, "a verified stream gave other plaintext"),
        Err(e) => {
            assert!(damaged, "an intact message failed: {e}");
            assert!(
                pt.starts_with(&released),
                "released bytes are not a prefix of the plaintext"
            );
            if final_len > 0 {
                assert!(
                    released.len() <= pt.len() - final_len,
                    "the final frame was released on error {e}"
                );
            }
            if signed && !release {
                assert!(
                    released.is_empty(),
                    "signed plaintext released without the opt-in before {e}"
                );
            }
        }
    }
});
