//! The encryption-context and EDK codecs: parse → serialize round trips, the sorted views,
//! canonical re-serialization, lookups, and the caller-side sort / check / write path.
//!
//! Input: a selector byte, then the codec input.
#![no_main]

use esdk_core::encryption_context::{self, ContextView};
use esdk_core::error::{ContextError, Error, Malformed};
use esdk_core::materials::Edks;
use libfuzzer_sys::fuzz_target;

fn ec_view(bytes: &[u8]) {
    let Ok(v) = ContextView::parse(bytes) else {
        return;
    };
    assert_eq!(v.as_bytes(), bytes);
    assert_eq!(v.iter_raw().count(), v.len());
    assert_eq!(v.iter().count(), v.len());
    let legacy = bytes == [0, 0];
    if legacy {
        assert!(v.is_empty() && !v.is_canonical());
    } else {
        assert_eq!(esdk_fuzz::serialize_pairs(v.iter_raw()), bytes);
        assert_eq!(
            encryption_context::serialized_len(v.iter_raw()),
            Ok(bytes.len())
        );
    }
    // The sorted view: every pair once, keys strictly increasing.
    let sorted: Vec<_> = v.iter_sorted().collect();
    assert_eq!(sorted.len(), v.len());
    assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0));
    let in_order = v
        .iter_raw()
        .zip(v.iter_raw().skip(1))
        .all(|(a, b)| a.0 < b.0);
    assert_eq!(v.is_canonical(), in_order && !legacy);
    // Lookups find every pair (keys are unique and UTF-8).
    for (k, val) in v.iter() {
        assert_eq!(v.get(k), Some(val));
    }
    // Canonical re-serialization parses back to the same pairs, canonical.
    let mut buf = vec![0u8; bytes.len() + 2];
    let n = encryption_context::write(v.iter_sorted(), &mut buf).expect("canonical write");
    let c = ContextView::parse(&buf[..n]).expect("canonical form parses");
    assert!(c.is_canonical());
    assert!(c.iter_raw().eq(v.iter_sorted()));
    if v.is_canonical() {
        assert_eq!(&buf[..n], bytes);
    }
    // Merging a context with itself keeps one copy of each pair.
    assert!(encryption_context::Merge::new(v.iter_sorted(), c.iter_raw()).eq(v.iter_sorted()));
}

fn edks(input: &[u8]) {
    if input.len() < 2 {
        return;
    }
    let count = u16::from_be_bytes([input[0], input[1]]);
    let bytes = &input[2..];
    match Edks::parse(bytes, count) {
        Ok((e, used)) => {
            assert!(used <= bytes.len());
            assert_eq!(e.len(), usize::from(count));
            let idx: Vec<u16> = e.iter().map(|(i, _)| i).collect();
            assert!(idx.iter().copied().eq(0..count), "indices {idx:?}");
            assert_eq!(esdk_fuzz::serialize_edks(&e), &bytes[..used]);
        }
        Err(Error::Truncated { offset }) => assert!(offset > bytes.len()),
        Err(Error::Malformed {
            offset,
            kind: Malformed::EdkProviderId { index },
        }) => {
            assert!(index < count && offset < bytes.len());
        }
        Err(e) => panic!("unexpected EDK error {e:?}"),
    }
}

fn caller_context(input: &[u8]) {
    // Pairs from the input: fields separated by 0xFF, made UTF-8.
    let fields: Vec<String> = input
        .split(|b| *b == 0xFF)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let mut pairs: Vec<(&str, &str)> = fields
        .chunks_exact(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    let original = pairs.clone();
    match encryption_context::sort_and_check(&mut pairs) {
        Ok(()) => {
            assert!(
                pairs
                    .windows(2)
                    .all(|w| w[0].0.as_bytes() < w[1].0.as_bytes())
            );
            match encryption_context::serialized_len(encryption_context::raw_pairs(&pairs)) {
                Ok(n) => {
                    let mut buf = vec![0u8; n];
                    assert_eq!(
                        encryption_context::write(encryption_context::raw_pairs(&pairs), &mut buf),
                        Ok(n)
                    );
                    let v = ContextView::parse(&buf).expect("written context parses");
                    assert!(v.is_canonical());
                    assert_eq!(v.len(), pairs.len());
                    for (k, val) in &pairs {
                        assert_eq!(v.get(k), Some(*val));
                    }
                    if n > 0 {
                        let mut short = vec![0u8; n - 1];
                        assert_eq!(
                            encryption_context::write(
                                encryption_context::raw_pairs(&pairs),
                                &mut short
                            ),
                            Err(Error::BufferTooSmall { required: n })
                        );
                    }
                }
                Err(e) => assert_eq!(e, ContextError::TooLarge),
            }
        }
        Err(_) => {
            let dup = {
                let mut k: Vec<&str> = original.iter().map(|p| p.0).collect();
                k.sort_unstable();
                k.windows(2).any(|w| w[0] == w[1])
            };
            let reserved = original
                .iter()
                .any(|p| p.0.starts_with(encryption_context::RESERVED_PREFIX));
            assert!(dup || reserved);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 4 {
        0 | 1 => ec_view(rest),
        2 => edks(rest),
        _ => caller_context(rest),
    }
});
