//! Encrypt → decrypt round trips (the property test in fuzzing form), with the fuzzing
//! provider in strict mode: every suite, fuzzer-chosen frame lengths, encryption contexts and
//! plaintexts; core one-shot, core incremental and the std `EncryptingWriter` must write the
//! same bytes; decryption in every mode must give the plaintext back; a truncation must fail
//! with `Truncated` at the cut; a flipped bit must fail without releasing plaintext of the
//! frame it touched or of any later frame.
//!
//! Input: suite byte, frame length (2 bytes), flags (bit 0: frame length x 64; bits 1-4:
//! number of context pairs; bit 5: skip the tamper checks), tamper position (2 bytes), bit
//! byte, then for each pair a key length byte, a value length byte and their bytes, then the
//! plaintext.
#![no_main]

use std::io::Write;

use esdk_core::error::{ContextError, Error, Malformed};
use esdk_core::{AlgorithmSuite, CommitmentPolicy, Config, EncryptOptions};
use esdk_fuzz::{FuzzKeyring, FuzzProvider, Splits, incremental, one_shot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let suite = AlgorithmSuite::ALL[usize::from(data[0]) % 11];
    let mut frame = u32::from(u16::from_be_bytes([data[1], data[2]])) + 1;
    let flags = data[3];
    if flags & 1 != 0 {
        // Up to 4 MiB: the std writer holds two frames, and the fuzzer should stay fast.
        frame = frame.saturating_mul(64);
    }
    let tamper_at = usize::from(u16::from_be_bytes([data[4], data[5]]));
    let bit = data[6] % 8;
    let mut rest = &data[7..];
    let mut fields = Vec::new();
    for _ in 0..(flags >> 1) & 15 {
        let mut pair = [String::new(), String::new()];
        for f in &mut pair {
            let Some((&n, r)) = rest.split_first() else {
                return;
            };
            let n = usize::from(n).min(r.len());
            *f = String::from_utf8_lossy(&r[..n]).into_owned();
            rest = &r[n..];
        }
        fields.push(pair);
    }
    let plaintext = rest;
    let ec: Vec<(&str, &str)> = fields
        .iter()
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();

    let cfg = Config::new().with_commitment_policy(if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    });
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame);
    let p = FuzzProvider::new(false, false);

    // Core one-shot, sized exactly.
    let mut sorted = ec.clone();
    let len = esdk_core::encrypted_len(&cfg, &opts, &FuzzKeyring, &sorted, plaintext.len());
    let mut msg = vec![0u8; len.as_ref().map_or(plaintext.len() + 4096, |n| *n)];
    let r = esdk_core::encrypt(
        &cfg,
        &p,
        &FuzzKeyring,
        &opts,
        &mut sorted,
        plaintext,
        &mut msg,
    );
    let n = match (r, len) {
        (Ok(n), Ok(l)) => {
            assert_eq!(n, l, "encrypted_len is not exact");
            n
        }
        (Err(e), _) => {
            // Only the caller's context can make encryption fail here.
            let mut keys: Vec<&str> = ec.iter().map(|p| p.0).collect();
            keys.sort_unstable();
            let bad = keys.windows(2).any(|w| w[0] == w[1])
                || keys.iter().any(|k| k.starts_with("aws-crypto-"))
                || matches!(
                    e,
                    Error::Malformed {
                        kind: Malformed::EncryptionContext(ContextError::TooLarge),
                        ..
                    }
                );
            assert!(bad, "encrypt failed: {e:?}");
            return;
        }
        (Ok(_), Err(e)) => panic!("encrypt worked but encrypted_len failed: {e:?}"),
    };
    let msg = &msg[..n];

    // The std writer (same deterministic provider) writes the same bytes.
    if frame <= 1 << 16 {
        let p2 = FuzzProvider::new(false, false);
        let mut w = esdk::EncryptingWriter::new(&cfg, &p2, &FuzzKeyring, &opts, &ec, Vec::new())
            .expect("writer");
        for chunk in plaintext.chunks(97) {
            w.write_all(chunk).expect("write");
        }
        assert_eq!(
            w.finish().expect("finish"),
            msg,
            "EncryptingWriter differs from encrypt"
        );
    }

    // Decrypt in every mode.
    assert_eq!(
        one_shot(&cfg, &p, &FuzzKeyring, msg).as_deref(),
        Ok(plaintext)
    );
    let inc = incremental(
        &cfg,
        &p,
        &FuzzKeyring,
        msg,
        Splits::scaled(&data[..7], 1 + frame as usize / 64),
        true,
    );
    assert_eq!(inc.result.as_deref(), Ok(plaintext));
    let capped = Config {
        max_body_len: Some(1 << 20),
        ..cfg
    };
    if frame <= 1 << 16 {
        let r = esdk_fuzz::std_read(
            &capped,
            &p,
            &FuzzKeyring,
            msg,
            Splits::scaled(&data[1..3], 1 + frame as usize / 64),
        );
        assert_eq!(r.as_deref(), Ok(plaintext));
    }
    if flags & 32 != 0 {
        return;
    }

    // Truncation: exactly `Truncated` at the cut, in every mode.
    let cut = tamper_at % n;
    let t = &msg[..cut];
    assert_eq!(
        one_shot(&cfg, &p, &FuzzKeyring, t),
        Err(Error::Truncated { offset: cut })
    );
    let inc = incremental(
        &cfg,
        &p,
        &FuzzKeyring,
        t,
        Splits::scaled(&data[..3], 1 + frame as usize / 64),
        false,
    );
    assert_eq!(inc.result, Err(Error::Truncated { offset: cut }));

    // A flipped bit: an error, and no plaintext from the touched frame or later.
    let mut bad = msg.to_vec();
    bad[cut] ^= 1 << bit;
    let r = one_shot(&cfg, &p, &FuzzKeyring, &bad);
    assert!(
        r.is_err(),
        "{suite}: flipping bit {bit} of byte {cut} went unnoticed"
    );
    let inc = incremental(
        &cfg,
        &p,
        &FuzzKeyring,
        &bad,
        Splits::scaled(&data[..3], 1 + frame as usize / 64),
        false,
    );
    assert_eq!(inc.result, r);
    let header_len = match esdk_core::header::parse(msg, Default::default()) {
        Ok(esdk_core::header::Parsed::Complete(h)) => h.bytes.len(),
        other => panic!("own header: {other:?}"),
    };
    let unit = frame as usize + 32;
    let intact_frames = cut.saturating_sub(header_len) / unit;
    let allowed = (intact_frames * frame as usize).min(plaintext.len());
    assert!(
        inc.released.len() <= allowed && plaintext.starts_with(&inc.released),
        "{suite}: {} bytes released after tampering with byte {cut} (at most {allowed})",
        inc.released.len()
    );
});
