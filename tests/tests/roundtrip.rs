//! Messages we write decrypt with our own decryptor: every suite, frame lengths 1, 512,
//! 4096 and 1 MiB, plaintexts of 0, 1, frame-1, frame, frame+1 and 10 frames; the exact
//! size function agrees with what is written; tampering anywhere is detected.

use esdk_core::error::{AuthFailure, Error};
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, decrypt, encrypt, encrypted_len};
use esdk_raw::RawAesKeyring;
use esdk_test_support::config_for;

const KEY: [u8; 32] = [0x42; 32];

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn round_trip(suite: AlgorithmSuite, frame: u32, len: usize, keyring: &RawAesKeyring<'_>) {
    let cfg = config_for(suite);
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame);
    let pt = pattern(len, frame as u8);
    let mut ec = [("purpose", "round-trip"), ("ключ", "значение")];
    let exact = encrypted_len(&cfg, &opts, keyring, &ec, len).expect("size");
    let mut out = vec![0u8; exact];
    let n = encrypt(
        &cfg,
        &esdk::DEFAULT_PROVIDER,
        keyring,
        &opts,
        &mut ec,
        &pt,
        &mut out,
    )
    .unwrap_or_else(|e| panic!("encrypt {suite} frame {frame} len {len}: {e}"));
    assert_eq!(
        n, exact,
        "encrypted_len must be exact ({suite}, frame {frame}, len {len})"
    );
    let mut back = vec![0u8; n];
    let d = decrypt(
        &cfg,
        &esdk::DEFAULT_PROVIDER,
        keyring,
        &[],
        &out[..n],
        &mut back,
    )
    .unwrap_or_else(|e| panic!("decrypt {suite} frame {frame} len {len}: {e}"));
    assert_eq!(
        &back[..d.plaintext_len],
        &pt[..],
        "{suite} frame {frame} len {len}"
    );
    assert_eq!(d.header.suite, suite);
    assert_eq!(d.header.frame_length, frame);
    assert_eq!(
        d.header.encryption_context.get("purpose"),
        Some("round-trip")
    );
}

#[test]
fn every_suite_frame_length_and_boundary_size() {
    let keyring = RawAesKeyring::new("esdk-test", "key-1", &KEY).expect("keyring");
    let mut count = 0;
    for suite in AlgorithmSuite::ALL {
        for frame in [1u32, 512, 4096, 1 << 20] {
            let f = frame as usize;
            for len in [0, 1, f - 1, f, f + 1, 10 * f] {
                round_trip(suite, frame, len, &keyring);
                count += 1;
            }
        }
    }
    println!("round trips: {count} passed, 0 failed");
    assert_eq!(count, 11 * 4 * 6);
}

#[test]
fn output_buffer_too_small_reports_the_exact_size() {
    let keyring = RawAesKeyring::new("esdk-test", "key-1", &KEY).expect("keyring");
    let cfg = Config::new();
    let opts = EncryptOptions::new();
    let mut ec = [("a", "b")];
    let exact = encrypted_len(&cfg, &opts, &keyring, &ec, 100).expect("size");
    let mut out = vec![0u8; exact - 1];
    let e = encrypt(
        &cfg,
        &esdk::DEFAULT_PROVIDER,
        &keyring,
        &opts,
        &mut ec,
        &[1; 100],
        &mut out,
    )
    .unwrap_err();
    assert_eq!(e, Error::BufferTooSmall { required: exact });
}

#[test]
fn every_byte_flip_of_a_signed_message_is_detected() {
    let keyring = RawAesKeyring::new("esdk-test", "key-1", &KEY).expect("keyring");
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
    ] {
        let cfg = config_for(suite);
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(64);
        let pt = pattern(200, 9);
        let msg = esdk::encrypt(&cfg, &keyring, &opts, &[("k", "v")], &pt).expect("encrypt");
        let mut out = vec![0u8; msg.len()];
        for i in 0..msg.len() {
            let mut bad = msg.clone();
            bad[i] ^= 0x01;
            let r = decrypt(&cfg, &esdk::DEFAULT_PROVIDER, &keyring, &[], &bad, &mut out);
            assert!(r.is_err(), "{suite}: flipping byte {i} was not detected");
            assert!(
                out.iter().all(|b| *b == 0),
                "{suite}: plaintext released after flipping byte {i}"
            );
        }
        for cut in 0..msg.len() {
            let r = decrypt(
                &cfg,
                &esdk::DEFAULT_PROVIDER,
                &keyring,
                &[],
                &msg[..cut],
                &mut out,
            );
            assert!(
                matches!(r, Err(Error::Truncated { .. })),
                "{suite}: cut at {cut}: {r:?}"
            );
        }
        let mut long = msg.clone();
        long.push(0);
        let r = decrypt(
            &cfg,
            &esdk::DEFAULT_PROVIDER,
            &keyring,
            &[],
            &long,
            &mut out,
        );
        assert_eq!(r.unwrap_err(), Error::TrailingBytes { offset: msg.len() });
    }
}

#[test]
fn wrong_key_names_the_edk_and_reason() {
    let a = RawAesKeyring::new("esdk-test", "key-1", &KEY).expect("keyring");
    let b = RawAesKeyring::new("esdk-test", "key-1", &[0x43; 32]).expect("keyring");
    let msg =
        esdk::encrypt(&Config::new(), &a, &EncryptOptions::new(), &[], b"x").expect("encrypt");
    let e = esdk::decrypt(&Config::new(), &b, &[], &msg).unwrap_err();
    assert_eq!(unwrap_failures(&e), [0], "{e}");
}

/// The EDKs whose unwrap failed, from a decryption no keyring could do.
fn unwrap_failures(e: &esdk::Error) -> Vec<u16> {
    match e.core() {
        Some(Error::Keyring(esdk::core::error::KeyringError::NoDataKeyDecrypted(a))) => a
            .iter()
            .filter(|a| a.reason == esdk::core::error::AttemptFailure::UnwrapFailed)
            .map(|a| a.edk)
            .collect(),
        _ => panic!("expected NoDataKeyDecrypted, got {e:?}"),
    }
}

#[test]
fn commitment_and_policy_checks() {
    let k = RawAesKeyring::new("esdk-test", "key-1", &KEY).expect("keyring");
    // A non-committing message is refused under the default policy before any key is used.
    let old = AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384;
    let msg = esdk::encrypt(
        &config_for(old),
        &k,
        &EncryptOptions::new().with_suite(old),
        &[],
        b"x",
    )
    .expect("encrypt");
    let e = esdk::decrypt(&Config::new(), &k, &[], &msg).unwrap_err();
    assert_eq!(
        e,
        Error::Policy(esdk_core::error::PolicyViolation::SuiteNotAllowed { suite: 0x0378 })
    );
    // Changing the commitment key in the header fails the commitment check.
    let msg =
        esdk::encrypt(&Config::new(), &k, &EncryptOptions::new(), &[], b"x").expect("encrypt");
    let h = esdk_core::header::parse(&msg, Default::default()).expect("parse");
    let esdk_core::header::Parsed::Complete(h) = h else {
        panic!("incomplete")
    };
    let commit_at = h.body_len - 32;
    let mut bad = msg.clone();
    bad[commit_at] ^= 0x80;
    let e = esdk::decrypt(&Config::new(), &k, &[], &bad).unwrap_err();
    assert_eq!(e, Error::Authentication(AuthFailure::Commitment));
    // Unsigned-only mode refuses a signed message right after the header.
    let mut cfg = Config::new();
    cfg.unsigned_only = true;
    let e = esdk::decrypt(&cfg, &k, &[], &msg).unwrap_err();
    assert_eq!(
        e,
        Error::Policy(esdk_core::error::PolicyViolation::SignedMessageRejected)
    );
}

#[test]
fn required_encryption_context_is_authenticated_but_not_stored() {
    let k = RawAesKeyring::new("esdk-test", "key-1", &KEY).expect("keyring");
    let keys = ["tenant"];
    let cmm = esdk_core::RequiredEncryptionContextCmm::new(&k, &keys);
    let msg = esdk::encrypt(
        &Config::new(),
        &cmm,
        &EncryptOptions::new(),
        &[("tenant", "t1"), ("kind", "log")],
        b"data",
    )
    .expect("encrypt");
    assert!(
        !msg.windows(6).any(|w| w == b"tenant"),
        "required key must not be stored"
    );
    let ok = esdk::decrypt(&Config::new(), &cmm, &[("tenant", "t1")], &msg).expect("decrypt");
    assert_eq!(ok.plaintext, b"data");
    // A wrong value: the raw AES keyring binds the full context, so unwrapping fails first.
    let e = esdk::decrypt(&Config::new(), &cmm, &[("tenant", "t2")], &msg).unwrap_err();
    assert_eq!(unwrap_failures(&e), [0], "{e}");
    let e = esdk::decrypt(&Config::new(), &cmm, &[], &msg).unwrap_err();
    assert_eq!(
        e,
        Error::Policy(esdk_core::error::PolicyViolation::MissingRequiredEncryptionContextKey)
    );
    // A stored pair contradicted by the reproduced context.
    let e = esdk::decrypt(
        &Config::new(),
        &cmm,
        &[("tenant", "t1"), ("kind", "other")],
        &msg,
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::Policy(esdk_core::error::PolicyViolation::EncryptionContextMismatch)
    );
}

#[test]
fn detailed_failure_lists_every_attempt_beyond_the_core_bound() {
    // 12 EDKs from 12 different keys; a 13th key decrypts none of them.
    let keys: Vec<[u8; 32]> = (0..12u8).map(|i| [i; 32]).collect();
    let names: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    let rings: Vec<RawAesKeyring<'_>> = keys
        .iter()
        .zip(&names)
        .map(|(k, n)| RawAesKeyring::new("ns", n, k).expect("keyring"))
        .collect();
    let children: Vec<&dyn esdk_core::Keyring> = rings[1..]
        .iter()
        .map(|k| k as &dyn esdk_core::Keyring)
        .collect();
    let multi = esdk_core::MultiKeyring::new(&rings[0], &children);
    let msg =
        esdk::encrypt(&Config::new(), &multi, &EncryptOptions::new(), &[], b"x").expect("encrypt");
    let stranger = RawAesKeyring::new("ns", "stranger", &[99; 32]).expect("keyring");
    let attempts = match esdk::decrypt_detailed(&Config::new(), &stranger, &[], &msg) {
        Err(esdk::Error::NoKeyringDecrypted { attempts }) => attempts,
        other => panic!("expected NoKeyringDecrypted, got {other:?}"),
    };
    assert_eq!(attempts.len(), 12);
    assert!(attempts.iter().enumerate().all(|(i, a)| a.edk == i as u16
        && a.reason == esdk::core::error::AttemptFailure::KeyNameMismatch));
    // The right key among the children still works through the detailed path.
    let ok = esdk::decrypt_detailed(&Config::new(), &rings[7], &[], &msg).expect("decrypt");
    assert_eq!(ok.plaintext, b"x");
}
