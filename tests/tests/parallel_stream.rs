//! The parallel streaming pipeline (issue #16) against the sequential path it must equal:
//!
//! - encryption on 1, 2 and 4 threads, from a reader and from a file, gives the same bytes
//!   under a deterministic RNG (for every suite kind and lengths around frame and batch
//!   boundaries), and decrypts on any thread count;
//! - decryption on 4 threads reports the same error as on 1 for a flipped byte anywhere in
//!   the body, a truncation anywhere and trailing bytes, and releases what the sequential
//!   path releases (nothing of a signed message, never a final frame, before it verified);
//! - failing readers and writers at many call positions end both directions with the
//!   injected error: no deadlock, no panic.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::sync::Mutex;

use esdk::stream::esdk_error;
use esdk::{DecryptingReader, EncryptingWriter, Plaintext};
use esdk_core::error::{CryptoError, PolicyViolation};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, RandomSource};
use esdk_tests::forge::FixedKeyring;

const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;

/// A deterministic, thread-safe RNG (xorshift64): the same seed gives the same message.
struct SeededRng(Mutex<u64>);

impl RandomSource for SeededRng {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        let mut x = self.0.lock().map_err(|_| CryptoError::Rng)?;
        for b in out {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            *b = (*x >> 24) as u8;
        }
        Ok(())
    }
}

fn provider() -> RustCrypto<SeededRng> {
    RustCrypto::new(SeededRng(Mutex::new(0x1234_5678_9abc_def1)))
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + i / 977) as u8).collect()
}

fn opts(suite: AlgorithmSuite, frame: u32) -> EncryptOptions {
    EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame)
}

/// Where [`encrypt`] reads the plaintext from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Reader,
    File,
    Bytes,
}

/// The message of `pt` with the deterministic provider on `threads` threads.
fn encrypt(suite: AlgorithmSuite, frame: u32, pt: &[u8], threads: usize, from: Source) -> Vec<u8> {
    let p = provider();
    let cfg = Config::new();
    let w = EncryptingWriter::new(
        &cfg,
        &p,
        &FixedKeyring,
        &opts(suite, frame),
        &[("k", "v")],
        Vec::new(),
    )
    .expect("header");
    let mut seen = 0u64;
    let out = if from == Source::Bytes {
        w.encrypt_from(Plaintext::<io::Empty>::Bytes(pt), threads, &mut |n| {
            seen += n
        })
        .expect("encrypt")
    } else if from == Source::File {
        let mut f = tempfile_with(pt);
        let out = w
            .encrypt_from(Plaintext::<io::Empty>::File(&f), threads, &mut |n| {
                seen += n
            })
            .expect("encrypt");
        // The file position is not moved.
        assert_eq!(io::Seek::stream_position(&mut f).expect("pos"), 0);
        out
    } else {
        w.encrypt_from(Plaintext::Reader(pt), threads, &mut |n| seen += n)
            .expect("encrypt")
    };
    assert_eq!(seen, pt.len() as u64, "progress counts the plaintext");
    out
}

fn tempfile_with(data: &[u8]) -> std::fs::File {
    let mut f = tempfile();
    f.write_all(data).expect("write");
    io::Seek::rewind(&mut f).expect("rewind");
    f
}

fn tempfile() -> std::fs::File {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "esdk-parallel-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("temp file");
    let _ = std::fs::remove_file(&path);
    f
}

/// What a decryption gave: the plaintext written, and the error (as its ESDK error, or its
/// kind and text).
#[derive(Debug, PartialEq)]
struct Outcome {
    written: Vec<u8>,
    error: Option<String>,
}

fn describe(e: &io::Error) -> String {
    match esdk_error(e) {
        Some(err) => format!("esdk: {err:?}"),
        None => format!("io {:?}: {e}", e.kind()),
    }
}

fn decrypt_with(ct: &[u8], threads: usize, unverified: bool, limit: Option<usize>) -> Outcome {
    // Decryption needs no deterministic RNG: the fast provider keeps the sweeps short.
    let cfg = Config::new();
    let mut r = DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &FixedKeyring, &[], ct)
        .release_unverified_plaintext(unverified);
    if let Some(l) = limit {
        r = r.with_signed_buffer_limit(l);
    }
    let mut written = Vec::new();
    let mut seen = 0u64;
    let r = r.decrypt_to(&mut written, threads, &mut |n| seen += n);
    if let Ok(n) = &r {
        assert_eq!(*n, written.len() as u64);
        assert_eq!(seen, ct.len() as u64, "progress counts the message");
    }
    Outcome {
        written,
        error: r.err().map(|e| describe(&e)),
    }
}

fn decrypt(ct: &[u8], threads: usize) -> Outcome {
    decrypt_with(ct, threads, false, None)
}

#[test]
fn any_thread_count_gives_the_same_message() {
    let mut cases = 0;
    for suite in [UNSIGNED, SIGNED] {
        for frame in [4096u32, 100_000, 1 << 20] {
            let f = frame as usize;
            let batch = (1usize << 20) / f * f;
            for len in [
                0,
                1,
                f - 1,
                f,
                f + 1,
                batch,
                batch + 1,
                2 * batch + f,
                3 * batch - 1,
            ] {
                let pt = plaintext(len);
                let one = encrypt(suite, frame, &pt, 1, Source::Reader);
                for (threads, from) in [
                    (2, Source::Reader),
                    (4, Source::Reader),
                    (3, Source::File),
                    (1, Source::File),
                    (2, Source::Bytes),
                    (1, Source::Bytes),
                ] {
                    let many = encrypt(suite, frame, &pt, threads, from);
                    assert!(
                        one == many,
                        "{suite:?} frame {frame} len {len}: {threads} threads ({from:?}) differ"
                    );
                }
                for threads in [1, 4] {
                    let out = decrypt(&one, threads);
                    assert_eq!(out.error, None, "{suite:?} frame {frame} len {len}");
                    assert!(out.written == pt, "{suite:?} frame {frame} len {len}");
                }
                cases += 1;
            }
        }
    }
    println!("{cases} messages identical on 1-4 threads");
}

/// A message of several batches with small frames, and one with big frames.
fn samples() -> Vec<(String, Vec<u8>, usize)> {
    let mut v = Vec::new();
    for suite in [UNSIGNED, SIGNED] {
        for (frame, len) in [(64u32, 40_000usize), (4096, (1 << 20) + 5000)] {
            let pt = plaintext(len);
            let ct = encrypt(suite, frame, &pt, 1, Source::Reader);
            v.push((
                format!("{suite:?} frame {frame} len {len}"),
                ct,
                frame as usize,
            ));
        }
    }
    v
}

/// Byte positions to try in a message of `len` bytes with frames of `frame` bytes: every
/// one of the first `head` and the last `tail`, and a stride of about one frame (small frames) or
/// `frames` frames (large ones) through the rest.
fn positions(len: usize, frame: usize, frames: usize, head: usize, tail: usize) -> Vec<usize> {
    let unit = frame + 32;
    let stride = if frame > 1000 {
        frames * unit + 7
    } else {
        unit / frames + 7
    };
    let mut v: Vec<usize> = (0..len.min(head)).collect();
    v.extend((0..len).step_by(stride));
    v.extend(len.saturating_sub(tail)..len);
    v.sort_unstable();
    v.dedup();
    v
}

/// How many bytes at the end to try one by one: `small` for small frames; with 4 KiB frames
/// (each try decrypts the whole message) 200, which holds the footer and the last frame's tag.
fn tail(frame: usize, small: usize) -> usize {
    if frame > 1000 { small.min(200) } else { small }
}

#[test]
fn tampering_anywhere_gives_the_sequential_error_and_release() {
    let mut checked = 0;
    for (name, ct, frame) in samples() {
        // Every byte of the header and the first frames and of the end; a stride through
        // the rest.
        let positions = positions(ct.len(), frame, 3, 600, tail(frame, 600));
        for at in positions {
            let mut bad = ct.clone();
            bad[at] ^= 0x40;
            let seq = decrypt(&bad, 1);
            let par = decrypt(&bad, 4);
            assert!(seq.error.is_some(), "{name}: flip at {at} accepted");
            assert_eq!(seq.error, par.error, "{name}: flip at {at}");
            assert!(
                seq.written == par.written,
                "{name}: flip at {at}: released differently"
            );
            checked += 1;
        }
    }
    println!("{checked} flipped bytes: same error and release on 1 and 4 threads");
}

#[test]
fn truncation_trailing_bytes_and_limits_match_the_sequential_path() {
    let mut checked = 0;
    for (name, ct, frame) in samples() {
        let unit = frame + 32;
        let cuts = positions(ct.len(), frame, 2, 400, tail(frame, 400));
        for cut in cuts {
            let seq = decrypt(&ct[..cut], 1);
            let par = decrypt(&ct[..cut], 4);
            assert!(seq.error.is_some(), "{name}: cut at {cut} accepted");
            assert_eq!(seq, par, "{name}: cut at {cut}");
            checked += 1;
        }
        for extra in [&[0u8][..], b"trailing", &vec![7u8; 3 * unit]] {
            let mut long = ct.clone();
            long.extend_from_slice(extra);
            let seq = decrypt(&long, 1);
            let par = decrypt(&long, 4);
            assert!(
                seq.error
                    .as_deref()
                    .is_some_and(|e| e.contains("TrailingBytes")),
                "{name}: {seq:?}"
            );
            assert_eq!(seq, par, "{name}: {} trailing bytes", extra.len());
            checked += 1;
        }
        // Release of unverified frames, and the signed buffer limit.
        for (unverified, limit) in [(true, None), (false, Some(1000)), (false, Some(frame * 3))] {
            let seq = decrypt_with(&ct, 1, unverified, limit);
            let par = decrypt_with(&ct, 4, unverified, limit);
            assert_eq!(seq, par, "{name}: unverified {unverified} limit {limit:?}");
            checked += 1;
        }
    }
    println!("{checked} truncated, extended or limited messages alike on 1 and 4 threads");
}

#[test]
fn the_signed_buffer_limit_is_the_sequential_one() {
    let pt = plaintext(10_000);
    let ct = encrypt(SIGNED, 1000, &pt, 1, Source::Reader);
    let out = decrypt_with(&ct, 4, false, Some(5000));
    let want = format!(
        "esdk: {:?}",
        esdk_core::Error::from(PolicyViolation::SignedBufferLimit { limit: 5000 })
    );
    assert_eq!(out.error.as_deref(), Some(want.as_str()));
    assert!(
        out.written.is_empty(),
        "nothing of a signed message before its signature"
    );
    // The final frame does not count.
    let out = decrypt_with(&ct, 4, false, Some(9000));
    assert_eq!(out.error, None);
    assert!(out.written == pt);
}

/// Fails (for good) at read call `at`; reads at most `max` bytes per call.
struct FailingReader<'a> {
    data: &'a [u8],
    pos: usize,
    calls: usize,
    at: usize,
    max: usize,
    failed: &'a Cell<bool>,
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls > self.at {
            self.failed.set(true);
            return Err(io::Error::other("injected read fault"));
        }
        let n = buf.len().min(self.max).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Fails (for good) at write call `at` (plain or vectored), or accepts nothing there.
struct FailingWriter<'a> {
    calls: usize,
    at: usize,
    zero: bool,
    failed: &'a Cell<bool>,
}

impl FailingWriter<'_> {
    fn call(&mut self, n: usize) -> io::Result<usize> {
        self.calls += 1;
        if self.calls > self.at {
            self.failed.set(true);
            return if self.zero {
                Ok(0)
            } else {
                Err(io::Error::other("injected write fault"))
            };
        }
        Ok(n)
    }
}

impl Write for FailingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.call(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.call(bufs.iter().map(|b| b.len()).sum())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The run failed with `want` exactly when the fault fired.
fn check_fault<T>(
    what: &str,
    r: io::Result<T>,
    fired: &Cell<bool>,
    want: impl Fn(&io::Error) -> bool,
) {
    match (r, fired.get()) {
        (Err(e), true) => assert!(want(&e), "{what}: {e}"),
        (Ok(_), false) => {}
        (Err(e), false) => panic!("{what}: failed without a fault: {e}"),
        (Ok(_), true) => panic!("{what}: succeeded through a fault"),
    }
}

#[test]
fn failing_readers_and_writers_end_the_pipeline_with_their_error() {
    let cfg = Config::new();
    let p = provider();
    let mut runs = 0;
    let mut fired = 0;
    for suite in [UNSIGNED, SIGNED] {
        let pt = plaintext((2 << 20) + 12345);
        let ct = encrypt(suite, 4096, &pt, 1, Source::Reader);
        for at in 0..40 {
            for max in [100_000usize, 1 << 20] {
                let read_fault = |e: &io::Error| e.to_string() == "injected read fault";
                // Encryption, failing reader.
                let failed = Cell::new(false);
                let w = EncryptingWriter::new(
                    &cfg,
                    &p,
                    &FixedKeyring,
                    &opts(suite, 4096),
                    &[],
                    Vec::new(),
                )
                .expect("header");
                let r = FailingReader {
                    data: &pt,
                    pos: 0,
                    calls: 0,
                    at,
                    max,
                    failed: &failed,
                };
                let res = w.encrypt_from(Plaintext::Reader(r), 4, &mut |_| {});
                check_fault(
                    &format!("encrypt, read fault at {at}"),
                    res,
                    &failed,
                    read_fault,
                );
                fired += usize::from(failed.get());
                // Decryption, failing reader.
                let failed = Cell::new(false);
                let r = FailingReader {
                    data: &ct,
                    pos: 0,
                    calls: 0,
                    at,
                    max,
                    failed: &failed,
                };
                let res = DecryptingReader::new(&cfg, &p, &FixedKeyring, &[], r)
                    .release_unverified_plaintext(true)
                    .decrypt_to(io::sink(), 4, &mut |_| {});
                check_fault(
                    &format!("decrypt, read fault at {at}"),
                    res,
                    &failed,
                    read_fault,
                );
                fired += usize::from(failed.get());
                runs += 2;
            }
            for zero in [false, true] {
                let want = if zero {
                    io::ErrorKind::WriteZero
                } else {
                    io::ErrorKind::Other
                };
                let kind = |e: &io::Error| e.kind() == want;
                // Encryption, failing writer (the header is written by `new`).
                let failed = Cell::new(false);
                let fw = FailingWriter {
                    calls: 0,
                    at,
                    zero,
                    failed: &failed,
                };
                let what = format!("encrypt, write fault at {at}");
                match EncryptingWriter::new(&cfg, &p, &FixedKeyring, &opts(suite, 4096), &[], fw) {
                    Err(e) => assert!(kind(&e), "{what}: {e}"),
                    Ok(w) => {
                        let res = w.encrypt_from(Plaintext::Reader(&pt[..]), 4, &mut |_| {});
                        check_fault(&what, res, &failed, kind);
                    }
                }
                fired += usize::from(failed.get());
                // Decryption, failing writer (frames go out as they verify).
                let failed = Cell::new(false);
                let fw = FailingWriter {
                    calls: 0,
                    at,
                    zero,
                    failed: &failed,
                };
                let res = DecryptingReader::new(&cfg, &p, &FixedKeyring, &[], &ct[..])
                    .release_unverified_plaintext(true)
                    .decrypt_to(fw, 4, &mut |_| {});
                check_fault(&format!("decrypt, write fault at {at}"), res, &failed, kind);
                fired += usize::from(failed.get());
                runs += 2;
            }
        }
    }
    assert!(fired > runs / 5, "{fired} of {runs} runs met their fault");
    println!("{runs} faulty runs ({fired} met the fault) ended with their error");
}

#[test]
fn the_std_stream_functions_use_the_configured_threads() {
    let keyring = FixedKeyring;
    let pt = plaintext(3 << 20);
    for suite in [UNSIGNED, SIGNED] {
        let o = opts(suite, 65536);
        let mut msgs = Vec::new();
        for threads in [1, 2, 0] {
            let cfg = Config::new().with_threads(threads);
            let mut ct = Vec::new();
            let n = esdk::encrypt_stream(&cfg, &keyring, &o, &[], &pt[..], &mut ct).expect("enc");
            assert_eq!(n, ct.len() as u64);
            let mut f = tempfile_with(&pt);
            let mut ct2 = Vec::new();
            let n2 = esdk::encrypt_file(&cfg, &keyring, &o, &[], &f, &mut ct2).expect("enc");
            assert_eq!(n2, ct2.len() as u64);
            assert_eq!(io::Seek::stream_position(&mut f).expect("pos"), 0);
            msgs.push(ct);
            msgs.push(ct2);
        }
        for ct in &msgs {
            for threads in [1, 2, 0] {
                let cfg = Config::new().with_threads(threads);
                let mut out = Vec::new();
                let n = esdk::decrypt_stream(&cfg, &keyring, &[], &ct[..], &mut out).expect("dec");
                assert_eq!(n, pt.len() as u64);
                assert!(out == pt);
            }
        }
    }
}
