//! The parallel one-shot engine against the sequential one, with a seeded random source so
//! that messages can be compared byte for byte. The engine functions run here without the
//! size threshold of the public calls, so small messages take the parallel path too.

use esdk_core::error::{AuthFailure, Malformed};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Decryptor, EncryptOptions, Encryptor, Error};
use esdk_raw::RawAesKeyring;
use esdk_test_support::{XorShift, config_for};

const KEY: [u8; 32] = [0x42; 32];
const EC: [(&str, &str); 1] = [("purpose", "parallel test")];
const THREADS: [usize; 4] = [1, 2, 3, 8];

fn suite(id: u16) -> AlgorithmSuite {
    AlgorithmSuite::from_id(id).expect("suite")
}

fn keyring() -> RawAesKeyring<'static> {
    RawAesKeyring::new("ns", "key", &KEY).expect("keyring")
}

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// The encryptor of a message of `pt` (random source seeded by `seed`) after its header,
/// given to `seal` with the header.
fn sealed_with(
    id: u16,
    frame: u32,
    pt: &[u8],
    seed: u64,
    seal: impl FnOnce(&mut Encryptor<'_, RustCrypto<XorShift>>, Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    let provider = RustCrypto::new(XorShift::new(seed));
    let cfg = config_for(suite(id));
    let opts = EncryptOptions {
        plaintext_len: Some(pt.len() as u64),
        ..EncryptOptions::new()
            .with_suite(suite(id))
            .with_frame_length(frame)
    };
    let mut enc = Encryptor::new(&cfg, &provider, &opts).expect("encryptor");
    let mut out = Vec::new();
    crate::header::write_header(&mut enc, &keyring(), &EC, &mut out).expect("header");
    seal(&mut enc, out)
}

/// The message of `pt` sealed on `threads` threads, with the random source seeded by `seed`.
fn encrypt(id: u16, frame: u32, pt: &[u8], threads: usize, seed: u64) -> Vec<u8> {
    sealed_with(id, frame, pt, seed, |enc, header| {
        crate::seal_into(enc, frame, pt, header, threads).expect("seal")
    })
}

/// Decrypts `ct` on `threads` threads; on failure also checks that nothing was left in the
/// output (the parallel path wipes all of it; the sequential one what it wrote).
fn decrypt(id: u16, ct: &[u8], threads: usize) -> Result<Vec<u8>, Error> {
    let provider = RustCrypto::new(XorShift::new(7));
    let cfg = config_for(suite(id));
    let mut out = vec![0u8; ct.len() + 2];
    let dec = Decryptor::new(&cfg, &provider, &[]);
    match super::decrypt_all(dec, &keyring(), ct, &mut out, threads) {
        Ok(d) => {
            assert_eq!(d.header.suite, suite(id));
            assert_eq!(
                d.header.encryption_context.get("purpose"),
                Some("parallel test")
            );
            out.truncate(d.plaintext_len);
            Ok(out)
        }
        Err(e) => {
            if threads > 1 {
                assert!(out.iter().all(|&b| b == 0), "plaintext left after {e:?}");
            }
            Err(e)
        }
    }
}

const SUITES: [u16; 4] = [0x0478, 0x0578, 0x0014, 0x0346];

fn sizes(frame: usize) -> Vec<usize> {
    let big = if frame == 1 { 100 * 1024 } else { 3 << 20 };
    vec![0, 1, frame - 1, frame, frame + 1, 7 * frame + 5, big]
}

#[test]
fn messages_are_identical_for_any_thread_count_and_round_trip() {
    for id in SUITES {
        for frame in [1usize, 4096, 65536] {
            for n in sizes(frame) {
                let pt = plaintext(n);
                let one = encrypt(id, frame as u32, &pt, 1, n as u64 + 1);
                for threads in THREADS {
                    let ct = encrypt(id, frame as u32, &pt, threads, n as u64 + 1);
                    assert!(
                        ct == one,
                        "suite {id:#06x}, frame {frame}, {n} bytes: {threads} threads differ"
                    );
                }
                for threads in [1, 2, 8] {
                    let back = decrypt(id, &one, threads).unwrap_or_else(|e| {
                        panic!("suite {id:#06x}, frame {frame}, {n} bytes, {threads}: {e:?}")
                    });
                    assert!(back == pt, "suite {id:#06x}, frame {frame}, {n} bytes");
                }
            }
        }
    }
}

/// Where things are in a message of 4 KiB frames.
struct Layout {
    body: usize,
    regular: usize,
    frame: usize,
    len: usize,
}

impl Layout {
    fn new(id: u16, frame: usize, pt_len: usize, ct_len: usize) -> Self {
        let body = esdk_core::ciphertext_len(suite(id), frame as u32, 0, pt_len as u64)
            .expect("length") as usize;
        Self {
            body: ct_len - body,
            regular: pt_len.saturating_sub(1) / frame,
            frame,
            len: ct_len,
        }
    }

    /// Where frame `seq` (1-based) starts.
    fn frame_at(&self, seq: usize) -> usize {
        self.body + (seq - 1) * (self.frame + 32)
    }

    /// Where the final frame starts, and where its content-length field is.
    fn final_at(&self) -> usize {
        self.frame_at(self.regular + 1)
    }

    /// Where the footer starts (signed suites), given the final content length.
    fn footer_at(&self, last: usize) -> usize {
        self.final_at() + 24 + last + 16
    }
}

/// Every damaged message of `ct` decrypts to the same error on any thread count.
fn same_error_on_any_thread_count(id: u16, ct: &[u8], what: &str) -> Error {
    let want = decrypt(id, ct, 1).expect_err(what);
    for threads in [2, 3, 8] {
        assert_eq!(
            decrypt(id, ct, threads),
            Err(want),
            "{what}, {threads} threads"
        );
    }
    want
}

/// A message of `pt` in frames of `frame` bytes (sealed on 2 threads) and its layout.
fn message(id: u16, frame: usize, pt: &[u8]) -> (Vec<u8>, Layout) {
    let ct = encrypt(id, frame as u32, pt, 2, 99);
    let at = Layout::new(id, frame, pt.len(), ct.len());
    (ct, at)
}

/// `ct` with a bit flipped at each of `positions`.
fn flipped(ct: &[u8], positions: &[usize]) -> Vec<u8> {
    let mut bad = ct.to_vec();
    for &p in positions {
        bad[p] ^= 0x01;
    }
    bad
}

#[test]
fn damaged_messages_fail_as_on_one_thread_and_release_nothing() {
    let frame = 4096;
    let pt = plaintext(300 * frame + 123);
    for id in SUITES {
        let (ct, at) = message(id, frame, &pt);
        let last = pt.len() - at.regular * frame;
        let signed = suite(id).signature().is_some();
        let flip = |positions: &[usize]| flipped(&ct, positions);
        // Each frame's content, tag, IV and sequence number, in a few frames spread over
        // the batches, and the final frame.
        for seq in [1, 2, 77, 150, 299, 300] {
            let f = at.frame_at(seq);
            for (part, p) in [
                ("sequence", f + 3),
                ("iv", f + 15),
                ("content", f + 16 + 100),
                ("tag", f + 16 + frame + 5),
            ] {
                let e = same_error_on_any_thread_count(id, &flip(&[p]), part);
                if part == "content" || part == "tag" {
                    assert_eq!(
                        e,
                        Error::Authentication(AuthFailure::FrameTag {
                            sequence: seq as u32
                        })
                    );
                }
            }
        }
        let fin = at.final_at();
        for p in [
            fin + 3,
            fin + 7,
            fin + 19,
            fin + 23,
            fin + 24,
            fin + 24 + last + 3,
        ] {
            same_error_on_any_thread_count(id, &flip(&[p]), "final frame");
        }
        // The final frame's length field, longer and shorter.
        for delta in [1u32, 0xffff_ffff] {
            let mut bad = ct.clone();
            let field = &mut bad[fin + 20..fin + 24];
            let n = u32::from_be_bytes(field.try_into().expect("4 bytes")).wrapping_add(delta);
            field.copy_from_slice(&n.to_be_bytes());
            same_error_on_any_thread_count(id, &bad, "final length");
        }
        // Two bad frames: the first in message order is reported.
        let e = same_error_on_any_thread_count(
            id,
            &flip(&[at.frame_at(250) + 40, at.frame_at(7) + 40]),
            "two frames",
        );
        assert_eq!(
            e,
            Error::Authentication(AuthFailure::FrameTag { sequence: 7 })
        );
        // A bad frame and a bad footer or a bad last-frame header: the frame first.
        let late = if signed {
            at.footer_at(last) + 10
        } else {
            fin + 3
        };
        let e = same_error_on_any_thread_count(
            id,
            &flip(&[late, at.frame_at(200) + 40]),
            "frame and footer",
        );
        assert_eq!(
            e,
            Error::Authentication(AuthFailure::FrameTag { sequence: 200 })
        );
        if signed {
            let foot = at.footer_at(last);
            for p in [foot, foot + 1, foot + 2, foot + 20, ct.len() - 1] {
                same_error_on_any_thread_count(id, &flip(&[p]), "footer");
            }
            let e = same_error_on_any_thread_count(id, &flip(&[foot + 30]), "signature");
            assert_eq!(e, Error::Authentication(AuthFailure::Signature));
        }
        // Truncation anywhere in the body, trailing bytes.
        for cut in [
            at.body,
            at.body + 1,
            at.frame_at(2),
            at.frame_at(100) + 17,
            fin,
            fin + 24 + last,
            at.len - 1,
        ] {
            let e = same_error_on_any_thread_count(id, &ct[..cut], "truncated");
            assert!(matches!(e, Error::Truncated { .. }), "{e:?}");
        }
        for extra in [&[0u8][..], &[1, 2, 3]] {
            let mut long = ct.clone();
            long.extend_from_slice(extra);
            let e = same_error_on_any_thread_count(id, &long, "trailing");
            assert_eq!(e, Error::TrailingBytes { offset: ct.len() });
        }
        // Frames swapped: the sequence numbers no longer match.
        let mut swapped = ct.clone();
        let (a, b) = (at.frame_at(3), at.frame_at(4));
        let f3 = ct[a..b].to_vec();
        swapped.copy_within(b..b + (b - a), a);
        swapped[b..b + f3.len()].copy_from_slice(&f3);
        let e = same_error_on_any_thread_count(id, &swapped, "swapped");
        assert!(
            matches!(
                e,
                Error::Malformed {
                    kind: Malformed::FrameSequence {
                        expected: 3,
                        found: 4
                    },
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn every_frame_damaged_fails_as_on_one_thread() {
    let frame = 256;
    let pt = plaintext(40 * frame + 77);
    for id in SUITES {
        let ct = encrypt(id, frame as u32, &pt, 3, 5);
        let at = Layout::new(id, frame, pt.len(), ct.len());
        for seq in 1..=at.regular {
            let f = at.frame_at(seq);
            for p in [
                f,
                f + 3,
                f + 4,
                f + 15,
                f + 16,
                f + 16 + frame - 1,
                f + 16 + frame + 15,
            ] {
                let mut bad = ct.clone();
                bad[p] ^= 0x40;
                same_error_on_any_thread_count(id, &bad, "frame");
            }
        }
        // Every byte of the final frame's header, content and tag, and of the footer.
        for p in at.final_at()..ct.len() {
            let mut bad = ct.clone();
            bad[p] ^= 0x40;
            same_error_on_any_thread_count(id, &bad, "final frame or footer");
        }
    }
}

/// Batches of exactly `frames` frames of `frame` bytes (`min == max`), or, with `guided`,
/// from one frame up to `frames` (shrinking towards the end), on `threads` threads.
fn batching(frame: usize, frames: usize, guided: bool, threads: usize) -> super::Batching {
    let unit = frame + 32;
    super::Batching {
        min: if guided { unit } else { frames * unit },
        max: frames * unit,
        threads,
    }
}

/// The message of `pt` sealed in the batches of `b`, with the random source seeded by
/// `seed`.
fn encrypt_in(id: u16, frame: u32, pt: &[u8], b: &super::Batching, seed: u64) -> Vec<u8> {
    sealed_with(id, frame, pt, seed, |enc, mut out| {
        let at = out.len();
        let body = esdk_core::ciphertext_len(suite(id), frame, 0, pt.len() as u64).expect("length")
            as usize;
        out.resize(at + body, 0);
        let n = super::seal_body_in(enc, pt, &mut out[at..], b).expect("seal");
        assert_eq!(n, body, "the whole body and footer");
        out.truncate(at + n);
        out
    })
}

/// Decrypts `ct` in the batches of `b`; on failure checks that the whole output was wiped.
fn decrypt_in(id: u16, ct: &[u8], b: &super::Batching) -> Result<Vec<u8>, Error> {
    let provider = RustCrypto::new(XorShift::new(7));
    let cfg = config_for(suite(id));
    let mut out = vec![0xA5u8; ct.len() + 2];
    let dec = Decryptor::new(&cfg, &provider, &[]);
    match super::decrypt_all_in(dec, &keyring(), ct, &mut out, b) {
        Ok(d) => {
            out.truncate(d.plaintext_len);
            Ok(out)
        }
        Err(e) => {
            if b.threads > 1 {
                assert!(out.iter().all(|&x| x == 0), "plaintext left after {e:?}");
            }
            Err(e)
        }
    }
}

#[test]
fn any_thread_count_over_frame_counts_around_the_batch_boundaries() {
    // Frames of 64 bytes in batches of 3 frames (and guided batches of 1 to 3 frames):
    // 1 to 13 frames, the final frame full or short, on 1 to 8 threads.
    let frame = 64;
    for id in [0x0478, 0x0578, 0x0014] {
        let signed = suite(id).signature().is_some();
        for frames in 1..=13usize {
            for last in [1, frame] {
                let n = if frames == 1 && last == 1 {
                    0
                } else {
                    (frames - 1) * frame + last
                };
                let pt = plaintext(n);
                let seed = (frames * 100 + last) as u64;
                let one = encrypt_in(id, frame as u32, &pt, &batching(frame, 3, false, 1), seed);
                for threads in 1..=8 {
                    // The signed suite (an ECDSA signature per message) on fewer counts.
                    if signed && !matches!(threads, 1 | 2 | 5) {
                        continue;
                    }
                    for guided in [false, true] {
                        let b = batching(frame, 3, guided, threads);
                        let what = format!(
                            "{id:#06x}, {frames} frames, last {last}, {threads} threads, guided {guided}"
                        );
                        let ct = encrypt_in(id, frame as u32, &pt, &b, seed);
                        assert!(ct == one, "{what}: the message differs from one thread's");
                        let back =
                            decrypt_in(id, &one, &b).unwrap_or_else(|e| panic!("{what}: {e:?}"));
                        assert!(back == pt, "{what}: plaintext");
                    }
                }
            }
        }
    }
}

#[test]
fn damage_in_each_batch_fails_as_on_one_thread_and_wipes() {
    // 20 frames of 64 bytes in batches of 3: 7 batches.
    let frame = 64;
    let pt = plaintext(19 * frame + 10);
    for id in [0x0478, 0x0578] {
        let signed = suite(id).signature().is_some();
        let b1 = batching(frame, 3, false, 1);
        let ct = encrypt_in(id, frame as u32, &pt, &b1, 3);
        let at = Layout::new(id, frame, pt.len(), ct.len());
        let same = |bad: &[u8], what: &str| -> Error {
            let want = decrypt_in(id, bad, &b1).expect_err(what);
            let counts: &[usize] = if signed {
                &[2, 3]
            } else {
                &[2, 3, 4, 5, 6, 7, 8]
            };
            for &threads in counts {
                for guided in [false, true] {
                    let b = batching(frame, 3, guided, threads);
                    assert_eq!(
                        decrypt_in(id, bad, &b),
                        Err(want),
                        "{what}, {threads} threads"
                    );
                }
            }
            want
        };
        // The first and the last frame of every batch: its content, then its sequence
        // number (a frame header the locator rejects).
        for batch in 0..7 {
            for seq in [batch * 3 + 1, batch * 3 + 3] {
                if seq > at.regular {
                    continue;
                }
                let f = at.frame_at(seq);
                let e = same(&flipped(&ct, &[f + 20]), "content");
                assert_eq!(
                    e,
                    Error::Authentication(AuthFailure::FrameTag {
                        sequence: seq as u32
                    })
                );
                let e = same(&flipped(&ct, &[f + 3]), "sequence");
                assert!(
                    matches!(
                        e,
                        Error::Malformed {
                            kind: Malformed::FrameSequence { .. },
                            ..
                        }
                    ),
                    "{e:?}"
                );
            }
        }
        // A bad tag, then a bad header in the next frame (the same batch, not yet handed
        // out when the locator fails) or in a later batch: the tag comes first.
        for (tag, header) in [(5, 6), (4, 5), (2, 11), (3, 4)] {
            let bad = flipped(&ct, &[at.frame_at(tag) + 20, at.frame_at(header) + 3]);
            let e = same(&bad, "tag then header");
            assert_eq!(
                e,
                Error::Authentication(AuthFailure::FrameTag {
                    sequence: tag as u32
                })
            );
        }
        // A bad header, then a bad tag after it: the header comes first.
        let bad = flipped(&ct, &[at.frame_at(4) + 3, at.frame_at(9) + 20]);
        let e = same(&bad, "header then tag");
        assert!(matches!(e, Error::Malformed { .. }), "{e:?}");
        // Bad tags in several batches: the first.
        let bad = flipped(
            &ct,
            &[
                at.frame_at(17) + 20,
                at.frame_at(8) + 20,
                at.frame_at(13) + 20,
            ],
        );
        assert_eq!(
            same(&bad, "three tags"),
            Error::Authentication(AuthFailure::FrameTag { sequence: 8 })
        );
        // The final frame, and (signed) the signature.
        let last = pt.len() - at.regular * frame;
        same(&flipped(&ct, &[at.final_at() + 24]), "final frame");
        if signed {
            let e = same(&flipped(&ct, &[at.footer_at(last) + 30]), "signature");
            assert_eq!(e, Error::Authentication(AuthFailure::Signature));
            // A bad tag and a bad signature: the tag.
            let bad = flipped(&ct, &[at.footer_at(last) + 30, at.frame_at(19) + 20]);
            assert_eq!(
                same(&bad, "tag and signature"),
                Error::Authentication(AuthFailure::FrameTag { sequence: 19 })
            );
        }
    }
}

#[test]
fn batches_shrink_towards_the_end_within_their_bounds() {
    let b = super::Batching {
        min: 100,
        max: 1000,
        threads: 2,
    };
    assert_eq!(b.bytes(1 << 20), 1000);
    assert_eq!(b.bytes(2000), 500);
    assert_eq!(b.bytes(400), 100);
    assert_eq!(b.bytes(0), 100);
    // The public calls' bounds: 1 MiB batches of a 64 MiB message on 2 threads, then
    // smaller ones, never under 128 KiB.
    let p = super::Batching::new(2);
    assert_eq!(p.bytes(64 << 20), 1 << 20);
    assert_eq!(p.bytes(1 << 20), 256 << 10);
    assert_eq!(p.bytes(1000), 128 << 10);
}
