//! Header parse → serialize round trip, field consistency, prefix and extension behaviour.
//!
//! Input: 4 control bytes (limits, prefix choice), then the header bytes.
#![no_main]

use esdk_core::error::Error;
use esdk_core::header::{self, ContentType, ParseLimits, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (ctl, input) = data.split_at(4);
    let limits = ParseLimits {
        max_edks: (ctl[0] & 1 != 0).then_some(u16::from(ctl[1])),
        max_header_len: (ctl[0] & 2 != 0).then_some(usize::from(ctl[2]) * 16),
    };
    let whole = header::parse(input, limits);
    // The resumable parse (what `Decryptor` uses) fed growing prefixes, each exactly the
    // length the previous call asked for or a fuzzer-chosen step more, gives the same
    // verdict as one parse of the whole input.
    let mut progress = header::ParseProgress::default();
    let mut len = 0usize;
    let resumed = loop {
        let r = header::parse_from(&input[..len], limits, &mut progress);
        match r {
            Ok(Parsed::Need(n)) if len < input.len() => {
                assert!(n > len, "resumed parse of {len} bytes: need {n}");
                len = (n + usize::from(ctl[3] & 7)).min(input.len());
            }
            other => break other,
        }
    };
    match (&whole, &resumed) {
        (Ok(Parsed::Complete(a)), Ok(Parsed::Complete(b))) => {
            assert_eq!(a.bytes, b.bytes);
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        (Ok(Parsed::Need(a)), Ok(Parsed::Need(b))) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("whole parse {a:?} vs resumed parse {b:?}"),
    }
    match whole {
        Ok(Parsed::Complete(h)) => {
            let len = h.bytes.len();
            assert_eq!(h.bytes, &input[..len]);
            // Round trip: the fields re-serialize to exactly the bytes parsed.
            assert_eq!(esdk_fuzz::serialize_header(&h), h.bytes);
            let v1 = h.version == 1;
            assert_eq!(h.suite.message_format_version(), h.version);
            assert_eq!(h.body_len + if v1 { 12 } else { 0 } + 16, len);
            assert_eq!(h.message_id.len(), h.suite.message_id_len());
            assert_eq!(
                h.suite_data.len(),
                if v1 { 0 } else { h.suite.suite_data_len() }
            );
            let ec = h.encryption_context.as_bytes();
            assert_eq!(&h.bytes[h.encryption_context_offset..][..ec.len()], ec);
            assert!(!h.edks.is_empty());
            assert_eq!(h.edks.iter().count(), h.edks.len());
            assert_eq!(
                h.encryption_context.iter_raw().count(),
                h.encryption_context.len()
            );
            match h.content_type {
                ContentType::Framed => assert_ne!(h.frame_length, 0),
                ContentType::NonFramed => assert_eq!(h.frame_length, 0),
            }
            if let Some(m) = limits.max_edks {
                assert!(h.edks.len() <= usize::from(m));
            }
            if let Some(m) = limits.max_header_len {
                assert!(
                    len <= m,
                    "header of {len} bytes accepted under a {m}-byte limit"
                );
            }
            // Parsing the header alone gives the same header.
            let Ok(Parsed::Complete(again)) = header::parse(h.bytes, limits) else {
                panic!("the header alone does not parse");
            };
            assert_eq!(again.bytes, h.bytes);
            // Every prefix (a sample of them for long headers) asks for more, never beyond
            // the header, and never fails.
            let step = (len / 64).max(1);
            let mut p = usize::from(ctl[3]) % step;
            while p < len {
                match header::parse(&h.bytes[..p], limits) {
                    Ok(Parsed::Need(n)) => assert!(n > p && n <= len, "prefix {p}: need {n}"),
                    other => panic!("prefix {p} of a {len}-byte header: {other:?}"),
                }
                p += step;
            }
        }
        Ok(Parsed::Need(n)) => assert!(n > input.len(), "need {n} with {} given", input.len()),
        Err(e) => {
            assert!(
                !matches!(e, Error::ApiMisuse(_) | Error::BufferTooSmall { .. }),
                "{e:?}"
            );
            // The verdict is decided by the bytes present: more input does not change it
            // (otherwise one-shot and incremental decryption disagree).
            let mut longer = input.to_vec();
            longer.extend_from_slice(&[0u8; 64]);
            let after = header::parse(&longer, limits).err();
            // (Regression: `max_header_len` vs an EDK field crossing it, see
            // regressions/header/.)
            assert!(
                after == Some(e),
                "the error changed when bytes were appended: {e:?} then {after:?}"
            );
        }
    }
});
