//! Random access (`esdk_core::random_access`): every frame and range of messages of several
//! frame and plaintext lengths decrypts to the whole-message plaintext; truncated, extended,
//! reordered and tampered messages are refused with the error that names the place; signed
//! and non-framed messages are refused without the opt-in.

use std::ops::Range;

use esdk_core::error::{AuthFailure, Malformed, PolicyViolation};
use esdk_core::random_access::{Layout, RandomAccess, RandomAccessOptions, SIGNED_TAIL_LEN};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{
    AlgorithmSuite, CryptoProvider, Decryptor, EncryptOptions, Error, Status, decrypt, encrypt,
    encrypted_len,
};
use esdk_raw::RawAesKeyring;
use esdk_test_support::{XorShift, config_for};

type Provider = RustCrypto<XorShift>;
type Key = <Provider as CryptoProvider>::Aead;

const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;

fn keyring() -> RawAesKeyring<'static> {
    RawAesKeyring::new("ra", "k", &[4u8; 32]).expect("keyring")
}

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
}

fn seal(suite: AlgorithmSuite, frame_len: u32, pt: &[u8]) -> Vec<u8> {
    let cfg = config_for(suite);
    let provider = RustCrypto::new(XorShift::new(9));
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame_len);
    let k = keyring();
    let mut ec = [("purpose", "random access")];
    let n = encrypted_len(&cfg, &opts, &k, &ec, pt.len()).expect("length");
    let mut out = vec![0u8; n];
    let m = encrypt(&cfg, &provider, &k, &opts, &mut ec, pt, &mut out).expect("encrypt");
    out.truncate(m);
    out
}

/// Processes the header of `msg` and lays out a message of `len` bytes.
fn layout(msg: &[u8], len: u64, opts: RandomAccessOptions<'_>) -> Result<Layout<Key>, Error> {
    let suite = suite_of(msg);
    let cfg = config_for(suite);
    let provider = RustCrypto::new(XorShift::new(1));
    let k = keyring();
    let mut d = Decryptor::new(&cfg, &provider, &[]);
    let mut out = [0u8; 256];
    let mut at = 0;
    loop {
        let p = d.process_with(&k, &msg[at..], &mut out)?;
        at += p.consumed;
        if p.status == Status::Header {
            break;
        }
    }
    d.random_access(len, opts)
}

/// The suite id of a message: after the version (2) or the version and type (1).
fn suite_of(msg: &[u8]) -> AlgorithmSuite {
    let at = if msg[0] == 1 { 2 } else { 1 };
    AlgorithmSuite::from_id(u16::from_be_bytes([msg[at], msg[at + 1]])).expect("suite")
}

fn bytes(msg: &[u8], r: Range<u64>) -> Vec<u8> {
    msg[r.start as usize..r.end as usize].to_vec()
}

/// Lays out `msg`, verifies its final frame and returns the random access.
fn open(msg: &[u8], opts: RandomAccessOptions<'_>) -> Result<RandomAccess<Key>, Error> {
    let l = layout(msg, msg.len() as u64, opts)?;
    let mut fin = msg
        .get(l.final_frame().start as usize..l.final_frame().end as usize)
        .ok_or(Error::Truncated { offset: msg.len() })?
        .to_vec();
    l.verify_final(&mut fin)
}

/// The plaintext bytes `range` of `msg`, from the frames that hold them only.
fn read_range(ra: &RandomAccess<Key>, msg: &[u8], range: Range<u64>) -> Result<Vec<u8>, Error> {
    let mut got = Vec::new();
    let mut out = vec![0u8; ra.map().frame_len() as usize];
    for span in ra.map().frames_for(range)? {
        let frame = bytes(msg, span.offset..span.offset + span.slot.frame_len() as u64);
        let n = ra.open_frame(span.slot.sequence(), &frame, &mut out)?;
        assert_eq!(n, span.slot.content_len());
        got.extend_from_slice(&out[span.within]);
    }
    Ok(got)
}

fn whole(msg: &[u8]) -> Vec<u8> {
    let suite = suite_of(msg);
    let cfg = config_for(suite);
    let provider = RustCrypto::new(XorShift::new(2));
    let mut out = vec![0u8; msg.len()];
    let d = decrypt(&cfg, &provider, &keyring(), &[], msg, &mut out).expect("decrypt");
    out.truncate(d.plaintext_len);
    out
}

/// Range ends worth checking for `n` bytes in frames of `f`: frame edges and their
/// neighbours, the middle, the ends.
fn points(n: u64, f: u64) -> Vec<u64> {
    let mut p = vec![0, 1, n / 2, n.saturating_sub(1), n];
    for k in 1..=n / f + 1 {
        p.extend([k * f - 1, k * f, k * f + 1]);
    }
    p.retain(|&x| x <= n);
    p.sort_unstable();
    p.dedup();
    p
}

fn lengths(f: usize) -> Vec<usize> {
    let mut v = vec![0, 1, f - 1, f, f + 1, 3 * f + 7];
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn every_frame_and_range_matches_the_whole_decrypt() {
    let mut ranges = 0;
    for suite in [UNSIGNED, AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256] {
        for f in [1u32, 100, 4096] {
            for n in lengths(f as usize) {
                let pt = plaintext(n);
                let msg = seal(suite, f, &pt);
                assert_eq!(whole(&msg), pt);
                let ra = open(&msg, RandomAccessOptions::new()).expect("random access");
                let map = ra.map();
                assert_eq!(map.plaintext_len(), n as u64, "{suite} f={f} n={n}");
                assert_eq!(map.message_len(), msg.len() as u64);
                // Every frame, into a buffer and in place.
                let mut out = vec![0u8; f as usize];
                for seq in 1..=map.frame_count() {
                    let r = map.frame_range(seq).unwrap();
                    let frame = bytes(&msg, r.clone());
                    let len = ra.open_frame(seq, &frame, &mut out).expect("open");
                    let from = (seq as usize - 1) * f as usize;
                    assert_eq!(&out[..len], &pt[from..from + len], "frame {seq}");
                    let mut inplace = frame.clone();
                    let c = ra.open_frame_in_place(seq, &mut inplace).expect("in place");
                    assert_eq!(&inplace[c], &pt[from..from + len]);
                }
                // Ranges: aligned, unaligned, empty, whole, last byte.
                let p = points(n as u64, u64::from(f));
                for &s in &p {
                    for &e in p.iter().filter(|&&e| e >= s) {
                        let got = read_range(&ra, &msg, s..e).expect("range");
                        assert_eq!(
                            got,
                            &pt[s as usize..e as usize],
                            "{suite} f={f} n={n} {s}..{e}"
                        );
                        ranges += 1;
                    }
                }
            }
        }
    }
    assert!(ranges > 500, "{ranges}");
}

#[test]
fn ranges_map_to_the_frames_that_hold_them() {
    let msg = seal(UNSIGNED, 100, &plaintext(250));
    let ra = open(&msg, RandomAccessOptions::new()).unwrap();
    let map = ra.map();
    assert_eq!(map.frame_count(), 3);
    let spans = |r: Range<u64>| {
        map.frames_for(r)
            .unwrap()
            .map(|s| {
                (
                    s.slot.sequence(),
                    s.within,
                    s.plaintext_offset,
                    s.slot.is_final(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(spans(0..0), vec![]);
    assert_eq!(spans(250..250), vec![]);
    assert_eq!(
        spans(0..250),
        vec![
            (1, 0..100, 0, false),
            (2, 0..100, 100, false),
            (3, 0..50, 200, true)
        ]
    );
    assert_eq!(
        spans(99..101),
        vec![(1, 99..100, 99, false), (2, 0..1, 100, false)]
    );
    assert_eq!(spans(100..200), vec![(2, 0..100, 100, false)]);
    assert_eq!(spans(249..250), vec![(3, 49..50, 249, true)]);
    assert_eq!(map.frames_for(0..250).unwrap().len(), 3);
    // Frame offsets: header, then 132-byte regular frames.
    let h = map.header_len();
    assert_eq!(map.frame_offset(2).unwrap(), h + 132);
    assert_eq!(map.frame_range(3).unwrap(), h + 264..h + 264 + 40 + 50);
    assert_eq!(map.frame_range(3).unwrap().end, msg.len() as u64);
    for bad in [Range { start: 10, end: 5 }, 0..251, 251..251] {
        assert_eq!(
            map.frames_for(bad.clone()).err(),
            Some(Error::RangeOutOfBounds {
                start: bad.start,
                end: bad.end,
                plaintext_len: 250
            })
        );
    }
    for seq in [0, 4, u32::MAX] {
        let e = Error::FrameOutOfRange {
            sequence: seq,
            frames: 3,
        };
        assert_eq!(map.slot(seq).err(), Some(e));
        assert_eq!(ra.open_frame(seq, &[0; 132], &mut [0; 100]).err(), Some(e));
    }
    // Frames of another length than their slot's.
    let f1 = bytes(&msg, map.frame_range(1).unwrap());
    assert_eq!(
        ra.open_frame(1, &f1[..131], &mut [0; 100]),
        Err(Error::BufferTooSmall { required: 132 })
    );
    assert_eq!(
        ra.open_frame(1, &f1, &mut [0; 99]),
        Err(Error::BufferTooSmall { required: 100 })
    );
    // An empty plaintext: one empty final frame, only empty ranges.
    let msg = seal(UNSIGNED, 100, &[]);
    let ra = open(&msg, RandomAccessOptions::new()).unwrap();
    assert_eq!(ra.map().frame_count(), 1);
    assert_eq!(ra.map().frames_for(0..0).unwrap().count(), 0);
    assert!(ra.map().frames_for(0..1).is_err());
}

/// The error of laying out and verifying the message `msg` (cut or extended).
fn refusal(msg: &[u8]) -> Error {
    match open(msg, RandomAccessOptions::new()) {
        Ok(ra) => panic!("accepted a message of {} bytes: {:?}", msg.len(), ra.map()),
        Err(e) => e,
    }
}

fn is_end_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Malformed {
            kind: Malformed::MessageLength(_)
                | Malformed::FinalFrameMarker { .. }
                | Malformed::FrameSequence { .. }
                | Malformed::FrameIv { .. },
            ..
        } | Error::Authentication(AuthFailure::FrameTag { .. })
    )
}

#[test]
fn truncated_and_extended_messages_are_refused_even_for_a_range_at_the_start() {
    for (f, n) in [(100u32, 250usize), (100, 300), (1, 5), (4096, 10_000)] {
        let pt = plaintext(n);
        let msg = seal(UNSIGNED, f, &pt);
        let unit = f as usize + 32;
        let header = open(&msg, RandomAccessOptions::new())
            .unwrap()
            .map()
            .header_len() as usize;
        for t in 1..=(msg.len() - header).min(2 * unit + 50) {
            let e = refusal(&msg[..msg.len() - t]);
            assert!(is_end_error(&e), "f={f} n={n} cut {t}: {e:?}");
            if t == 1 {
                assert!(
                    matches!(e, Error::Malformed { kind: Malformed::MessageLength(l), .. } if l == (msg.len() - 1) as u64),
                    "cut 1: {e:?}"
                );
            }
        }
        // Cut by exactly one regular frame: a regular frame where the final one should be.
        if n > f as usize {
            let e = refusal(&msg[..msg.len() - unit]);
            let seq = ((n - 1) / f as usize) as u32;
            assert!(
                matches!(e, Error::Malformed { kind: Malformed::FinalFrameMarker { sequence }, .. } if sequence == seq),
                "{e:?}"
            );
        }
        // Extended: by zeros, by copies of its own end, by a whole copy of the final frame.
        let fin = open(&msg, RandomAccessOptions::new())
            .unwrap()
            .map()
            .frame_range(((n.max(1) - 1) / f as usize + 1) as u32)
            .unwrap();
        let fin = bytes(&msg, fin);
        for b in 1..=2 * unit + 50 {
            let mut m = msg.clone();
            m.extend(std::iter::repeat_n(0u8, b));
            let e = refusal(&m);
            assert!(is_end_error(&e), "f={f} n={n} +{b} zeros: {e:?}");
            let mut m = msg.clone();
            m.extend_from_slice(&msg[msg.len() - b.min(msg.len() - header)..]);
            assert!(is_end_error(&refusal(&m)), "f={f} n={n} +{b} own bytes");
        }
        let mut m = msg.clone();
        m.extend_from_slice(&fin);
        assert!(is_end_error(&refusal(&m)));
    }
}

#[test]
fn reordered_and_relabelled_frames_are_refused_and_name_the_frame() {
    let pt = plaintext(350);
    let msg = seal(UNSIGNED, 100, &pt);
    let ra = open(&msg, RandomAccessOptions::new()).unwrap();
    let map = *ra.map();
    let frame = |seq| bytes(&msg, map.frame_range(seq).unwrap());
    let mut out = [0u8; 100];
    // Frame 2's bytes read as frame 1 (the frames swapped in the message).
    assert_eq!(
        ra.open_frame(1, &frame(2), &mut out).err(),
        Some(Error::Malformed {
            offset: map.frame_offset(1).unwrap() as usize,
            kind: Malformed::FrameSequence {
                expected: 1,
                found: 2
            }
        })
    );
    // Frame 2 relabelled as frame 1 (sequence number and IV rewritten): the tag says no.
    let mut relabelled = frame(2);
    relabelled[..4].copy_from_slice(&1u32.to_be_bytes());
    relabelled[4..16].copy_from_slice(&esdk_core::body::frame_iv(1));
    out.fill(0xAA);
    assert_eq!(
        ra.open_frame(1, &relabelled, &mut out).err(),
        Some(Error::Authentication(AuthFailure::FrameTag { sequence: 1 }))
    );
    assert_eq!(out, [0; 100]);
    // A whole message with frames 1 and 2 swapped: the final frame verifies (it is in
    // place), the swapped frames do not open.
    let (a, b) = (map.frame_range(1).unwrap(), map.frame_range(2).unwrap());
    let mut swapped = msg.clone();
    swapped[a.start as usize..a.end as usize].copy_from_slice(&frame(2));
    swapped[b.start as usize..b.end as usize].copy_from_slice(&frame(1));
    let ra2 = open(&swapped, RandomAccessOptions::new()).unwrap();
    assert!(matches!(
        read_range(&ra2, &swapped, 50..150),
        Err(Error::Malformed {
            kind: Malformed::FrameSequence {
                expected: 1,
                found: 2
            },
            ..
        })
    ));
    assert_eq!(read_range(&ra2, &swapped, 200..350).unwrap(), &pt[200..]);
    // A regular frame given as the final one, and the final one as a regular frame.
    assert!(matches!(
        ra.open_frame(4, &frame(3)[..90], &mut out),
        Err(Error::Malformed {
            kind: Malformed::FinalFrameMarker { sequence: 4 },
            ..
        })
    ));
    let mut fin_as_3 = frame(4);
    fin_as_3.resize(132, 0);
    assert!(matches!(
        ra.open_frame(3, &fin_as_3, &mut out),
        Err(Error::Malformed {
            kind: Malformed::FrameSequence {
                expected: 3,
                found: u32::MAX
            },
            ..
        })
    ));
}

#[test]
fn a_flipped_byte_in_any_frame_is_refused() {
    let msg = seal(UNSIGNED, 40, &plaintext(100));
    let ra = open(&msg, RandomAccessOptions::new()).unwrap();
    let map = *ra.map();
    for seq in 1..=map.frame_count() {
        let good = bytes(&msg, map.frame_range(seq).unwrap());
        let slot = map.slot(seq).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let mut out = [0xAAu8; 40];
            let e = ra.open_frame(seq, &bad, &mut out).unwrap_err();
            let off = map.frame_offset(seq).unwrap() as usize;
            let want = if i < slot.prefix_len() {
                let header_field = matches!(
                    e,
                    Error::Malformed {
                        kind: Malformed::FrameSequence { .. }
                            | Malformed::FinalFrameMarker { .. }
                            | Malformed::FrameIv { .. }
                            | Malformed::MessageLength(_),
                        offset,
                    } if offset >= off && offset < off + slot.prefix_len() && offset <= off + i
                );
                assert!(header_field, "frame {seq} byte {i}: {e:?}");
                continue;
            } else {
                Error::Authentication(AuthFailure::FrameTag { sequence: seq })
            };
            assert_eq!(e, want, "frame {seq} byte {i}");
            let n = slot.content_len();
            assert_eq!(
                &out[..n],
                &[0; 40][..n],
                "frame {seq} byte {i}: output not wiped"
            );
            // The final frame is also refused by the layout step.
            if seq == map.frame_count() {
                let l = layout(&msg, msg.len() as u64, RandomAccessOptions::new()).unwrap();
                let mut bad = bad.clone();
                assert_eq!(l.verify_final(&mut bad).err(), Some(want));
                assert_eq!(&bad[slot.content_range()], &[0u8; 20][..slot.content_len()]);
            }
        }
    }
}

#[test]
fn signed_messages_need_the_explicit_opt_in() {
    let pt = plaintext(1000);
    for suite in [
        SIGNED,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
    ] {
        let msg = seal(suite, 128, &pt);
        assert_eq!(
            layout(&msg, msg.len() as u64, RandomAccessOptions::new()).err(),
            Some(PolicyViolation::RandomAccessSigned.into())
        );
        let tail = &msg[msg.len() - SIGNED_TAIL_LEN..];
        let ra = open(&msg, RandomAccessOptions::new().unverified_signed(tail)).expect("opt-in");
        assert_eq!(ra.map().plaintext_len(), 1000);
        assert!(ra.map().final_slot().footer_len() > 0);
        for r in [0..1, 127..129, 0..1000, 999..1000, 300..700] {
            assert_eq!(
                read_range(&ra, &msg, r.clone()).unwrap(),
                &pt[r.start as usize..r.end as usize]
            );
        }
        // A tail too short to hold the footer.
        let short = &msg[msg.len() - 20..];
        assert!(matches!(
            layout(
                &msg,
                msg.len() as u64,
                RandomAccessOptions::new().unverified_signed(short)
            ),
            Err(Error::Malformed {
                kind: Malformed::Footer,
                ..
            })
        ));
        // Truncated by one byte: the footer is gone.
        let cut = &msg[..msg.len() - 1];
        let tail = &cut[cut.len() - SIGNED_TAIL_LEN..];
        assert!(open(cut, RandomAccessOptions::new().unverified_signed(tail)).is_err());
    }
}

#[test]
fn before_the_header_there_is_no_layout() {
    let msg = seal(UNSIGNED, 100, &plaintext(10));
    let cfg = config_for(UNSIGNED);
    let provider = RustCrypto::new(XorShift::new(1));
    let d = Decryptor::new(&cfg, &provider, &[]);
    assert_eq!(
        d.random_access(msg.len() as u64, RandomAccessOptions::new())
            .err(),
        Some(esdk_core::error::ApiMisuse::WrongState.into())
    );
    // Lengths that fit no layout of this header.
    let h = open(&msg, RandomAccessOptions::new())
        .unwrap()
        .map()
        .header_len();
    for len in [0, h, h + 39] {
        assert!(matches!(
            layout(&msg, len, RandomAccessOptions::new()),
            Err(Error::Malformed {
                kind: Malformed::MessageLength(l),
                ..
            }) if l == len
        ));
    }
}

#[test]
fn the_decryptor_tells_the_frame_length_once_the_header_is_authenticated() {
    for (suite, frame) in [
        (AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 4096u32),
        (AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, 1000),
    ] {
        let msg = seal(suite, frame, &plaintext(2500));
        let cfg = config_for(suite);
        let provider = RustCrypto::new(XorShift::new(1));
        let k = keyring();
        let mut d = Decryptor::new(&cfg, &provider, &[]);
        assert_eq!(d.frame_length(), None, "before the header");
        let mut out = vec![0u8; 4096];
        let mut at = 0;
        loop {
            let p = d.process_with(&k, &msg[at..], &mut out).expect("decrypt");
            at += p.consumed;
            if p.status == Status::Header {
                assert_eq!(d.frame_length(), Some(frame), "{suite:?}");
            }
            if p.status == Status::Done {
                break;
            }
        }
        assert_eq!(d.frame_length(), None, "after the message");
    }
}
