//! Streaming release rules: a multi-frame signed message truncated at every byte fails in
//! every mode (one-shot, incremental, std `Read`, std `Write` with what its inner writer
//! received recorded), under both providers, and releases at most the intact regular frames
//! before the cut (never the final frame's plaintext; one-shot nothing); signed regular frames are
//! flagged unverified; unsigned-only mode refuses signed messages after the header;
//! BufferTooSmall leaves the decryptor unchanged; errors poison it.

use std::io::Read;

use esdk_core::error::{Error, PolicyViolation};
use esdk_core::{AlgorithmSuite, Config, Decryptor, EncryptOptions, Status};
use esdk_raw::RawAesKeyring;
use esdk_tests::layout::Layout;
use esdk_tests::modes::{
    Mode, Outcome, Provider, ReleaseBound, check_release, decrypt_in_mode, decrypt_with,
};

const FRAME: usize = 64;

fn message(suite: AlgorithmSuite, len: usize) -> (Vec<u8>, Vec<u8>) {
    let k = RawAesKeyring::new("t", "k", &[9u8; 32]).expect("keyring");
    let pt: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME as u32);
    let msg = esdk::encrypt(&Config::new(), &k, &opts, &[("a", "b")], &pt).expect("encrypt");
    (pt, msg)
}

#[test]
fn truncation_at_every_byte_never_releases_the_final_frame() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    // 3 full regular frames and a 10-byte final frame.
    let (pt, msg) = message(suite, 3 * FRAME + 10);
    let layout = Layout::of(&msg).expect("layout");
    assert_eq!(layout.intact_plaintext(msg.len()), 3 * FRAME, "layout");
    let k = RawAesKeyring::new("t", "k", &[9u8; 32]).expect("keyring");
    let cfg = Config::new();
    let mut checked = 0;
    for provider in Provider::BOTH {
        for cut in 0..msg.len() {
            let bound = ReleaseBound {
                intact: layout.intact_plaintext(cut),
                plaintext: Some(&pt),
            };
            for mode in Mode::all(cut as u64 + 1) {
                match decrypt_with(provider, mode, &cfg, &k, &[], &msg[..cut]) {
                    Outcome::Ok(_) => {
                        panic!("{provider:?} {mode:?}: truncation at {cut} decrypted")
                    }
                    Outcome::Err { error, released } => {
                        assert_eq!(
                            error,
                            Error::Truncated { offset: cut },
                            "{provider:?} {mode:?} cut {cut}"
                        );
                        if let Err(e) = check_release(mode, &released, &bound) {
                            panic!("{provider:?} cut {cut}: {e}");
                        }
                    }
                }
                checked += 1;
            }
        }
    }
    let modes = Mode::all(0).len();
    println!("truncations: {checked} passed, 0 failed (2 providers x {modes} modes)");
    assert_eq!(checked, 2 * modes * msg.len());
}

#[test]
fn signed_regular_frames_are_flagged_unverified_and_the_final_frame_comes_with_done() {
    let (pt, msg) = message(
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        2 * FRAME + 1,
    );
    let k = RawAesKeyring::new("t", "k", &[9u8; 32]).expect("keyring");
    let cfg = Config::new();
    let mut dec = Decryptor::new(&cfg, &esdk::DEFAULT_PROVIDER, &[]);
    let mut at = 0;
    let mut out = [0u8; FRAME];
    let mut statuses = Vec::new();
    let mut got = Vec::new();
    loop {
        let p = dec.process_with(&k, &msg[at..], &mut out).expect("process");
        at += p.consumed;
        got.extend_from_slice(&out[..p.written]);
        statuses.push(p.status);
        if p.status == Status::Done {
            break;
        }
    }
    assert_eq!(
        statuses,
        [
            Status::Header,
            Status::Plaintext { verified: false },
            Status::Plaintext { verified: false },
            Status::Done
        ]
    );
    assert_eq!(got, pt);
    assert_eq!(at, msg.len());
}

#[test]
fn buffer_too_small_leaves_the_decryptor_unchanged_and_errors_poison_it() {
    let (pt, msg) = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, FRAME + 5);
    let k = RawAesKeyring::new("t", "k", &[9u8; 32]).expect("keyring");
    let cfg = Config::new();
    let mut dec = Decryptor::new(&cfg, &esdk::DEFAULT_PROVIDER, &[]);
    let mut big = [0u8; FRAME];
    let p = dec.process_with(&k, &msg, &mut big).expect("header");
    let mut at = p.consumed;
    let mut small = [0u8; 8];
    assert_eq!(
        dec.process_with(&k, &msg[at..], &mut small).unwrap_err(),
        Error::BufferTooSmall { required: FRAME }
    );
    let p = dec
        .process_with(&k, &msg[at..], &mut big)
        .expect("retry works");
    assert_eq!(&big[..p.written], &pt[..FRAME]);
    at += p.consumed;
    let mut bad = msg[at..].to_vec();
    bad[30] ^= 1;
    let e = dec.process_with(&k, &bad, &mut big).unwrap_err();
    assert!(matches!(e, Error::Authentication(_)), "{e}");
    // Poisoned: the good bytes no longer help.
    assert_eq!(dec.process_with(&k, &msg[at..], &mut big).unwrap_err(), e);
}

#[test]
fn unsigned_only_mode_refuses_signed_messages_after_the_header_in_every_mode() {
    let (_, msg) = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, 10);
    let k = RawAesKeyring::new("t", "k", &[9u8; 32]).expect("keyring");
    let mut cfg = Config::new();
    cfg.unsigned_only = true;
    for mode in Mode::all(5) {
        match decrypt_in_mode(mode, &cfg, &k, &[], &msg) {
            Outcome::Err { error, released } => {
                assert_eq!(
                    error,
                    Error::Policy(PolicyViolation::SignedMessageRejected),
                    "{mode:?}"
                );
                assert!(released.is_empty());
            }
            Outcome::Ok(_) => panic!("{mode:?}: signed message accepted in unsigned-only mode"),
        }
    }
    let (pt, msg) = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 10);
    let mut r = esdk::DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &k, &[], &msg[..]);
    let mut got = Vec::new();
    r.read_to_end(&mut got)
        .expect("unsigned message decrypts in unsigned-only mode");
    assert_eq!(got, pt);
}

#[test]
fn max_body_and_header_limits_name_the_limit() {
    let (_, msg) = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 10);
    let k = RawAesKeyring::new("t", "k", &[9u8; 32]).expect("keyring");
    let mut cfg = Config::new();
    cfg.max_body_len = Some(32);
    let e = esdk::decrypt(&cfg, &k, &[], &msg).unwrap_err();
    assert_eq!(e, Error::Policy(PolicyViolation::BodyTooLarge { max: 32 }));
    let mut cfg = Config::new();
    cfg.max_header_len = Some(40);
    let e = esdk::decrypt(&cfg, &k, &[], &msg).unwrap_err();
    assert_eq!(
        e,
        Error::Policy(PolicyViolation::HeaderTooLarge { max: 40 })
    );
}

/// The recording of every mode is live: an unsigned message whose third frame is tampered
/// releases the two intact frames in the incremental and std modes (what the `Write` mode's
/// inner writer received included), nothing in one-shot, and each release is within the bound.
#[test]
fn every_mode_records_what_reached_the_caller() {
    let (pt, msg) = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 4 * FRAME);
    let layout = Layout::of(&msg).expect("layout");
    // A byte of frame 3's content.
    let at = layout.regular_ends[1].0 + 20;
    let mut bad = msg.clone();
    bad[at] ^= 1;
    let k = RawAesKeyring::new("t", "k", &[9u8; 32]).expect("keyring");
    let bound = ReleaseBound {
        intact: layout.intact_plaintext(at),
        plaintext: Some(&pt),
    };
    assert_eq!(bound.intact, 2 * FRAME);
    let mut checked = 0;
    for provider in Provider::BOTH {
        for mode in Mode::all(3) {
            let Outcome::Err { error, released } =
                decrypt_with(provider, mode, &Config::new(), &k, &[], &bad)
            else {
                panic!("{provider:?} {mode:?}: tampered message decrypted");
            };
            assert_eq!(
                error,
                Error::Authentication(esdk_core::error::AuthFailure::FrameTag { sequence: 3 }),
                "{provider:?} {mode:?}"
            );
            check_release(mode, &released, &bound).unwrap_or_else(|e| panic!("{provider:?}: {e}"));
            let want = if mode == Mode::OneShot { 0 } else { 2 * FRAME };
            assert_eq!(
                released.len(),
                want,
                "{provider:?} {mode:?}: the intact unsigned frames before the damage reach the \
                 caller (recorded)"
            );
            checked += 1;
        }
    }
    let modes = Mode::all(0).len();
    println!("recorded releases: {checked} passed, 0 failed (2 providers x {modes} modes)");
    assert_eq!(checked, 2 * modes);
}
