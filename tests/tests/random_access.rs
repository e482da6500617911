//! Random access over the official vectors: for every framed vector that decrypts, ranges
//! through `esdk::decrypt_range` decrypt to the same bytes as the whole-message decrypt: the
//! last byte, the middle byte and across the first and the last frame edges for every
//! vector, and every range with ends at 0, 1, frame edges and their neighbours, the middle and
//! the end for every 32nd vector (each range runs the keyring again: all pairs for all vectors
//! took 190 s). Unsigned messages by default; signed ones with the unverified opt-in,
//! and refused without it.
//!
//! The seekable reader `esdk::RangeReader` over every unsigned framed vector (seeks from the
//! start, the end and the current position, reads, past the end, before the start); a tamper
//! sweep (every byte of a small message flipped: refused where it is read); a failing source
//! (the error names the frame and its offset, and a retry after it reads); truncated and
//! extended messages refused before any plaintext.

use std::cell::Cell;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::rc::Rc;

use esdk::raw::RawAesKeyring;
use esdk::{AlgorithmSuite, EncryptOptions, RangeOptions, RangeReader, decrypt_range};
use esdk_core::error::{AuthFailure, PolicyViolation};
use esdk_core::header::{self, ContentType, ParseLimits, Parsed};
use esdk_tests::manifest::{DecryptTest, load_decrypt_manifest};
use esdk_tests::runner::{CaseError, Options, config, decrypt_bytes, with_cmm};

fn vectors_root() -> std::path::PathBuf {
    std::env::var_os("ESDK_TEST_VECTORS").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/test-vectors"),
        std::path::PathBuf::from,
    )
}

/// A few ranges of every vector: the last byte, the middle byte, and across the first and the
/// last frame edges.
fn few(n: u64, f: u64) -> Vec<(u64, u64)> {
    let last = n / f * f;
    let mut v = vec![
        (n.saturating_sub(1), n),
        (n / 2, (n / 2 + 1).min(n)),
        (f.min(n).saturating_sub(1), (f + 1).min(n)),
        (last.saturating_sub(1).min(n), (last + 1).min(n)),
    ];
    v.sort_unstable();
    v.dedup();
    v
}

/// Range ends: 0, the end, frame edges and their neighbours, the middle.
fn points(n: u64, f: u64) -> Vec<u64> {
    let mut p = vec![0, 1, n / 2, n.saturating_sub(1), n];
    for k in 1..=(n / f).min(3) {
        p.extend([k * f - 1, k * f, k * f + 1]);
    }
    let last = n / f * f;
    p.extend([last.saturating_sub(1), last, last + 1]);
    p.retain(|&x| x <= n);
    p.sort_unstable();
    p.dedup();
    p
}

/// A framed vector that decrypts: where it is from, the test, its plaintext, its frame
/// length, whether it is signed.
struct Framed<'t> {
    rel: &'static str,
    t: &'t DecryptTest,
    pt: Vec<u8>,
    frame_len: u64,
    signed: bool,
}

/// Runs `f` over every framed vector that decrypts (in the four sets); returns how many ran
/// (unsigned, signed), skipping the ones that need AWS KMS.
fn for_each_framed(mut f: impl FnMut(&Framed<'_>) -> Result<(), CaseError>) -> (usize, usize) {
    let sets = [
        "python-4.0.7-local/manifest.json",
        "python-4.0.7-local-zero/manifest.json",
        "net-4.0.1/manifest.json",
        "dafny-4.1.0/decrypt-manifest.json",
    ];
    let opts = Options::default();
    let (mut unsigned, mut signed) = (0usize, 0usize);
    for rel in sets {
        let m = load_decrypt_manifest(&vectors_root().join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        for t in &m.tests {
            let Ok(pt) = decrypt_bytes(t, &opts, &t.ciphertext) else {
                continue;
            };
            let Ok(Parsed::Complete(h)) = header::parse(&t.ciphertext, ParseLimits::default())
            else {
                continue;
            };
            if h.content_type != ContentType::Framed {
                continue;
            }
            let case = Framed {
                rel,
                t,
                pt,
                frame_len: u64::from(h.frame_length),
                signed: h.suite.signature().is_some(),
            };
            match f(&case) {
                Ok(()) if case.signed => signed += 1,
                Ok(()) => unsigned += 1,
                Err(CaseError::Skipped(_)) => {}
                Err(e) => panic!("{rel} {}: {e}", t.id),
            }
        }
    }
    (unsigned, signed)
}

#[test]
fn every_framed_vector_range_matches_the_whole_decrypt() {
    let opts = Options::default();
    let mut ranges = 0usize;
    let mut framed = 0usize;
    let (unsigned, signed) = for_each_framed(|c| {
        let (rel, t, pt, is_signed) = (c.rel, c.t, &c.pt, c.signed);
        let ropts = RangeOptions {
            unverified_signed: is_signed,
        };
        let cfg = config(t, &opts);
        let (n, f) = (pt.len() as u64, c.frame_len);
        framed += 1;
        let pairs: Vec<(u64, u64)> = if framed % 32 == 1 {
            let p = points(n, f);
            p.iter()
                .flat_map(|&s| p.iter().filter(move |&&e| e >= s).map(move |&e| (s, e)))
                .collect()
        } else {
            few(n, f)
        };
        with_cmm(t, |cmm, reproduced| {
            let range = |r: std::ops::Range<u64>, o| {
                decrypt_range(&cfg, cmm, reproduced, &mut Cursor::new(&t.ciphertext), r, o)
            };
            for &(s, e) in &pairs {
                let got = range(s..e, ropts)
                    .unwrap_or_else(|err| panic!("{rel} {} {s}..{e}: {err}", t.id));
                assert_eq!(got, &pt[s as usize..e as usize], "{rel} {} {s}..{e}", t.id);
                ranges += 1;
            }
            if is_signed {
                let refused = range(0..0, RangeOptions::default());
                assert!(
                    matches!(
                        refused,
                        Err(esdk::Error::Core(esdk_core::Error::Policy(
                            PolicyViolation::RandomAccessSigned
                        )))
                    ),
                    "{rel} {}: {refused:?}",
                    t.id
                );
            }
            Ok(())
        })
    });
    println!(
        "random access: {unsigned} unsigned and {signed} signed framed vectors, {ranges} ranges"
    );
    assert!(
        unsigned >= 1600 && signed >= 900,
        "too few vectors ran: {unsigned} {signed}"
    );
}

/// xorshift64: the seek positions of the reader test.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn the_seekable_reader_reads_every_unsigned_framed_vector_like_the_whole_decrypt() {
    let opts = Options::default();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut reads = 0usize;
    let (unsigned, _) = for_each_framed(|c| {
        if c.signed {
            return Ok(());
        }
        let (t, pt) = (c.t, &c.pt);
        let n = pt.len() as u64;
        let cfg = config(t, &opts);
        let id = format!("{} {}", c.rel, t.id);
        with_cmm(t, |cmm, reproduced| {
            // One reader (one keyring run) for all the reads of the vector.
            let src = Cursor::new(&t.ciphertext);
            let mut r = RangeReader::new(&cfg, cmm, reproduced, src, RangeOptions::default())
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(r.plaintext_len(), n, "{id}");
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            assert_eq!(all, *pt, "{id}: read_to_end");
            for i in 0..12u64 {
                let len = next(&mut seed) % (2 * c.frame_len + 3);
                let at = next(&mut seed) % (n + 1);
                // Start, End and Current in turn, all to `at`.
                let to = match i % 3 {
                    0 => SeekFrom::Start(at),
                    1 => SeekFrom::End(at as i64 - n as i64),
                    _ => SeekFrom::Current(at as i64 - r.position() as i64),
                };
                assert_eq!(r.seek(to).unwrap(), at, "{id}: {to:?}");
                let mut got = vec![0u8; len as usize];
                let want = &pt[at as usize..(at + len).min(n) as usize];
                let mut filled = 0;
                while filled < got.len() {
                    match r.read(&mut got[filled..]).unwrap() {
                        0 => break,
                        k => filled += k,
                    }
                }
                assert_eq!(&got[..filled], want, "{id}: {len} bytes at {at}");
                assert_eq!(r.stream_position().unwrap(), at + filled as u64, "{id}");
                reads += 1;
            }
            // Past the end: allowed, and reads there give nothing.
            assert_eq!(r.seek(SeekFrom::End(5)).unwrap(), n + 5);
            assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0, "{id}: past the end");
            // Before the start: refused, the position stays.
            let e = r.seek(SeekFrom::Current(-(n as i64) - 6)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{id}");
            assert_eq!(r.position(), n + 5, "{id}");
            Ok(())
        })
    });
    println!("seekable reader: {unsigned} unsigned framed vectors, {reads} seeks and reads");
    assert!(unsigned >= 1600, "too few vectors ran: {unsigned}");
}

/// A small unsigned message: 0x0478, 64-byte frames, 200 bytes of plaintext (frames 1 to
/// 3 regular, frame 4 final with 8 bytes).
fn small() -> (RawAesKeyring<'static>, esdk::Config, Vec<u8>, Vec<u8>) {
    let k = RawAesKeyring::new("ra", "k", &[9u8; 32]).expect("keyring");
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let cfg = esdk_test_support::config_for(suite);
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(64);
    let pt: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
    let msg = esdk::encrypt(&cfg, &k, &opts, &[("a", "b")], &pt).expect("encrypt");
    (k, cfg, pt, msg)
}

#[test]
fn every_flipped_byte_is_refused_where_it_is_read() {
    let (k, cfg, pt, msg) = small();
    let r = RangeReader::new(&cfg, &k, &[], Cursor::new(&msg), RangeOptions::default()).unwrap();
    let map = *r.map();
    assert_eq!(map.frame_count(), 4);
    let header_len = map.header_len();
    let (mut at_open, mut at_read) = (0usize, 0usize);
    for i in 0..msg.len() {
        let mut bad = msg.clone();
        bad[i] ^= 0x01;
        let opened = RangeReader::new(&cfg, &k, &[], Cursor::new(&bad), RangeOptions::default());
        let pos = i as u64;
        let seq = (1..=map.frame_count())
            .find(|&s| map.frame_range(s).unwrap().contains(&pos))
            .unwrap_or(0);
        // The header and the final frame are read when the reader opens.
        if pos < header_len || seq == map.frame_count() {
            assert!(opened.is_err(), "byte {i}: opened");
            at_open += 1;
            continue;
        }
        let mut r = opened.unwrap_or_else(|e| panic!("byte {i} of frame {seq}: {e}"));
        // The frame's own bytes: refused, naming the frame; before it, the same plaintext.
        let start = u64::from(seq - 1) * 64;
        r.seek(SeekFrom::Start(start)).unwrap();
        let e = esdk::Error::from(r.read(&mut [0u8; 64]).unwrap_err());
        let named = match e.core() {
            Some(esdk_core::Error::Authentication(AuthFailure::FrameTag { sequence })) => {
                sequence == seq
            }
            Some(esdk_core::Error::Malformed { offset, .. }) => {
                map.frame_range(seq).unwrap().contains(&(offset as u64))
            }
            _ => false,
        };
        assert!(named, "byte {i} of frame {seq}: {e}");
        let mut before = vec![0u8; start as usize];
        r.seek(SeekFrom::Start(0)).unwrap();
        r.read_exact(&mut before).unwrap();
        assert_eq!(before, pt[..start as usize], "byte {i}");
        // The whole plaintext through the reader: refused.
        r.seek(SeekFrom::Start(0)).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err(), "byte {i}");
        at_read += 1;
    }
    assert_eq!(at_open + at_read, msg.len());
    assert_eq!(at_read, 3 * (64 + 32));
}

/// A source that fails (or ends) from a byte on, once armed; `armed` is shared so that the
/// test arms it after the reader opened.
struct Failing {
    inner: Cursor<Vec<u8>>,
    from: Rc<Cell<u64>>,
    eof: bool,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.inner.position();
        let from = self.from.get();
        if at >= from {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::Error::new(io::ErrorKind::TimedOut, "disk gone"))
            };
        }
        let n = buf.len().min((from - at) as usize);
        self.inner.read(&mut buf[..n])
    }
}

impl Seek for Failing {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

#[test]
fn a_failing_source_is_reported_with_the_frame_and_a_retry_reads() {
    let (k, cfg, pt, msg) = small();
    for eof in [false, true] {
        let from = Rc::new(Cell::new(u64::MAX));
        let src = Failing {
            inner: Cursor::new(msg.clone()),
            from: Rc::clone(&from),
            eof,
        };
        let mut r = RangeReader::new(&cfg, &k, &[], src, RangeOptions::default()).unwrap();
        let map = *r.map();
        for seq in 1..=3u32 {
            let frame = map.frame_range(seq).unwrap();
            // Fails in the middle of frame `seq`.
            from.set(frame.start + 20);
            r.seek(SeekFrom::Start(u64::from(seq - 1) * 64 + 5))
                .unwrap();
            let e = r.read(&mut [0u8; 10]).unwrap_err();
            let kind = if eof {
                io::ErrorKind::UnexpectedEof
            } else {
                io::ErrorKind::TimedOut
            };
            assert_eq!(e.kind(), kind);
            let msg_text = e.to_string();
            match esdk::Error::from(e) {
                esdk::Error::FrameRead {
                    sequence, offset, ..
                } => {
                    assert_eq!((sequence, offset), (seq, frame.start), "{msg_text}");
                    assert!(
                        msg_text.contains(&format!("frame {seq} at message byte {}", frame.start)),
                        "{msg_text}"
                    );
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(r.position(), u64::from(seq - 1) * 64 + 5);
            // Not sticky: the source back, the same read succeeds.
            from.set(u64::MAX);
            let mut got = [0u8; 10];
            r.read_exact(&mut got).unwrap();
            let at = (seq as usize - 1) * 64 + 5;
            assert_eq!(got, pt[at..at + 10]);
        }
        // The final frame is read when opening: its failure names it.
        let fin = map.frame_range(4).unwrap();
        let src = Failing {
            inner: Cursor::new(msg.clone()),
            from: Rc::new(Cell::new(fin.start + 1)),
            eof,
        };
        match RangeReader::new(&cfg, &k, &[], src, RangeOptions::default()) {
            Err(esdk::Error::FrameRead {
                sequence, offset, ..
            }) => assert_eq!((sequence, offset), (4, fin.start)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn truncated_and_extended_messages_are_refused_when_opening() {
    let (k, cfg, _, msg) = small();
    let open = |m: &[u8]| {
        RangeReader::new(
            &cfg,
            &k,
            &[],
            Cursor::new(m.to_vec()),
            RangeOptions::default(),
        )
        .map(drop)
    };
    // Every truncation, from the empty source to one byte short.
    for n in 0..msg.len() {
        assert!(open(&msg[..n]).is_err(), "truncated to {n} bytes");
    }
    // Extended by 1 to 100 bytes (zeros, or the message's own frames again).
    for extra in 1..=100usize {
        let mut zeros = msg.clone();
        zeros.resize(msg.len() + extra, 0);
        assert!(open(&zeros).is_err(), "+{extra} zeros");
        let mut again = msg.clone();
        let tail = msg[msg.len() - extra..].to_vec();
        again.extend_from_slice(&tail);
        assert!(open(&again).is_err(), "+{extra} bytes of the tail");
    }
    assert!(open(&msg).is_ok());
}
