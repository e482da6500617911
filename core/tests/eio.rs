//! The embedded-io adapters: round trips through fixed buffers for every suite, and
//! truncation and trailing-byte errors.
#![cfg(feature = "embedded-io")]

use embedded_io::{Read, Write};
use esdk_core::eio::{DecryptingReader, EncryptingWriter, StreamError};
use esdk_core::error::Error;
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions};
use esdk_raw::RawAesKeyring;
use esdk_test_support::XorShift;

fn encrypt_to(suite: AlgorithmSuite, cfg: &Config, pt: &[u8], out: &mut [u8]) -> usize {
    let provider = RustCrypto::new(XorShift::new(77));
    let k = RawAesKeyring::new("eio", "k", &[3u8; 32]).expect("keyring");
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(100);
    let mut frame = [0u8; 100];
    let mut obuf = [0u8; 1024];
    let mut ec = [("site", "a")];
    let sink: &mut [u8] = out;
    let total = sink.len();
    let mut w = EncryptingWriter::new(
        cfg, &provider, &k, &opts, &mut ec, sink, &mut frame, &mut obuf,
    )
    .expect("writer");
    // Odd-sized writes.
    for chunk in pt.chunks(37) {
        w.write_all(chunk).expect("write");
    }
    let rest = w.finish().expect("finish");
    total - rest.len()
}

#[test]
fn round_trip_every_suite_through_fixed_buffers() {
    let pt: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
    for suite in AlgorithmSuite::ALL {
        let cfg = esdk_test_support::config_for(suite);
        let mut msg = [0u8; 4096];
        let n = encrypt_to(suite, &cfg, &pt, &mut msg);
        let provider = RustCrypto::new(XorShift::new(5));
        let k = RawAesKeyring::new("eio", "k", &[3u8; 32]).expect("keyring");
        let mut inbuf = [0u8; 1024];
        let mut outbuf = [0u8; 100];
        let mut r =
            DecryptingReader::new(&cfg, &provider, &k, &[], &msg[..n], &mut inbuf, &mut outbuf);
        let mut got = [0u8; 1000];
        let mut at = 0;
        loop {
            let m = r.read(&mut got[at..]).expect("read");
            if m == 0 {
                break;
            }
            at += m;
        }
        assert_eq!(&got[..at], &pt[..], "{suite}");

        // Truncated input is an error, never a short plaintext.
        let mut r = DecryptingReader::new(
            &cfg,
            &provider,
            &k,
            &[],
            &msg[..n - 1],
            &mut inbuf,
            &mut outbuf,
        );
        let mut sink = [0u8; 1000];
        let err = loop {
            match r.read(&mut sink) {
                Ok(0) => panic!("{suite}: truncated message accepted"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, StreamError::Esdk(Error::Truncated { .. })),
            "{suite}: {err:?}"
        );
    }
}

#[test]
fn too_small_buffers_say_how_much_is_needed() {
    let cfg = Config::new();
    let provider = RustCrypto::new(XorShift::new(9));
    let k = RawAesKeyring::new("eio", "k", &[3u8; 32]).expect("keyring");
    let opts = EncryptOptions::new().with_frame_length(100);
    let mut frame = [0u8; 50];
    let mut obuf = [0u8; 1024];
    let mut sink = [0u8; 64];
    let r = EncryptingWriter::new(
        &cfg,
        &provider,
        &k,
        &opts,
        &mut [],
        &mut sink[..],
        &mut frame,
        &mut obuf,
    );
    assert!(matches!(
        r,
        Err(StreamError::Esdk(Error::BufferTooSmall { required: 100 }))
    ));
}

/// `EncryptingWriter::new_in` writes exactly the message `new` does (same random source),
/// for a signed and an unsigned suite; a failure before the header, in it, or in sending it
/// leaves the slot empty.
#[test]
fn new_in_writes_what_new_writes_and_leaves_no_writer_on_error() {
    let pt: Vec<u8> = (0..700u32).map(|i| (i * 7) as u8).collect();
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let cfg = esdk_test_support::config_for(suite);
        let mut want = [0u8; 4096];
        let n = encrypt_to(suite, &cfg, &pt, &mut want);

        let provider = RustCrypto::new(XorShift::new(77));
        let k = RawAesKeyring::new("eio", "k", &[3u8; 32]).expect("keyring");
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(100);
        let mut frame = [0u8; 100];
        let mut obuf = [0u8; 1024];
        let mut ec = [("site", "a")];
        let mut got = [0u8; 4096];
        let mut sink: &mut [u8] = &mut got;
        let total = sink.len();
        {
            let mut slot = None;
            let w = EncryptingWriter::new_in(
                &mut slot, &cfg, &provider, &k, &opts, &mut ec, &mut sink, &mut frame, &mut obuf,
            )
            .expect("writer");
            for chunk in pt.chunks(37) {
                w.write_all(chunk).expect("write");
            }
            w.try_finish().expect("finish");
        }
        let m = total - sink.len();
        assert_eq!(&got[..m], &want[..n], "{suite}");

        // Refused before the header (frame buffer too small) and in it (reserved key).
        let mut small = [0u8; 10];
        let mut slot = None;
        let sink: &mut [u8] = &mut got;
        let r = EncryptingWriter::new_in(
            &mut slot, &cfg, &provider, &k, &opts, &mut ec, sink, &mut small, &mut obuf,
        );
        assert!(matches!(
            r,
            Err(StreamError::Esdk(Error::BufferTooSmall { .. }))
        ));
        assert!(slot.is_none());
        let mut bad = [("aws-crypto-x", "a")];
        let mut slot2 = None;
        let sink: &mut [u8] = &mut got;
        let r = EncryptingWriter::new_in(
            &mut slot2, &cfg, &provider, &k, &opts, &mut bad, sink, &mut frame, &mut obuf,
        );
        assert!(matches!(r, Err(StreamError::Esdk(_))), "{suite}");
        assert!(slot2.is_none());
        // The header cannot be sent (a full sink): no writer is left either.
        let mut tiny = [0u8; 10];
        let mut slot3 = None;
        let sink: &mut [u8] = &mut tiny;
        let r = EncryptingWriter::new_in(
            &mut slot3, &cfg, &provider, &k, &opts, &mut ec, sink, &mut frame, &mut obuf,
        );
        assert!(
            matches!(r, Err(StreamError::Io(_) | StreamError::WriteZero)),
            "{suite}"
        );
        assert!(slot3.is_none());
    }
}
