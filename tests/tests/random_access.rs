//! Random access over the official vectors: for every framed vector that decrypts, ranges
//! through `esdk::decrypt_range` decrypt to the same bytes as the whole-message decrypt: the
//! last byte, the middle byte and across the first and the last frame edges for every
//! vector, and every range with ends at 0, 1, frame edges and their neighbours, the middle and
//! the end for every 32nd vector (each range runs the keyring again: all pairs for all vectors
//! took 190 s). Unsigned messages by default; signed ones with the unverified opt-in,
//! and refused without it.

use std::io::Cursor;

use esdk::{RangeOptions, decrypt_range};
use esdk_core::error::PolicyViolation;
use esdk_core::header::{self, ContentType, ParseLimits, Parsed};
use esdk_tests::manifest::load_decrypt_manifest;
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

#[test]
fn every_framed_vector_range_matches_the_whole_decrypt() {
    let sets = [
        "python-4.0.7-local/manifest.json",
        "python-4.0.7-local-zero/manifest.json",
        "net-4.0.1/manifest.json",
        "dafny-4.1.0/decrypt-manifest.json",
    ];
    let opts = Options::default();
    let (mut unsigned, mut signed, mut ranges) = (0usize, 0usize, 0usize);
    let mut framed = 0usize;
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
            let is_signed = h.suite.signature().is_some();
            let ropts = RangeOptions {
                unverified_signed: is_signed,
            };
            let cfg = config(t, &opts);
            let (n, f) = (pt.len() as u64, u64::from(h.frame_length));
            framed += 1;
            let pairs: Vec<(u64, u64)> = if framed % 32 == 1 {
                let p = points(n, f);
                p.iter()
                    .flat_map(|&s| p.iter().filter(move |&&e| e >= s).map(move |&e| (s, e)))
                    .collect()
            } else {
                few(n, f)
            };
            let r = with_cmm(t, |cmm, reproduced| {
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
            });
            match r {
                Ok(()) if is_signed => signed += 1,
                Ok(()) => unsigned += 1,
                Err(CaseError::Skipped(_)) => {}
                Err(e) => panic!("{rel} {}: {e}", t.id),
            }
        }
    }
    println!(
        "random access: {unsigned} unsigned and {signed} signed framed vectors, {ranges} ranges"
    );
    assert!(
        unsigned >= 1600 && signed >= 900,
        "too few vectors ran: {unsigned} {signed}"
    );
}
