//! One buffer for a whole message (issue #16, part 5).
//!
//! - `esdk_core::decrypt_in_place` gives what the two-buffer `esdk_core::decrypt` gives, for
//!   suites 0x0014, 0x0078, 0x0346, 0x0478, 0x0578, frame lengths 1, 100 and 4096, plaintexts
//!   of 0, 1, a frame, a frame + 1 and many frames, non-framed messages (built here), and every
//!   official vector (written by the Python, .NET and Dafny ESDKs) under the aws-lc provider
//!   (the in-place code is above the provider; `vector_modes` runs every vector under both):
//!   the same plaintext and header facts, or the same error.
//! - A tamper sweep (every byte of small messages flipped, every truncation) gives the same
//!   error as the two-buffer decrypt and leaves no plaintext in the buffer (each byte is the
//!   tampered message's or zero).
//! - The scratch: a required encryption context asks for it with `BufferTooSmall`, naming the
//!   scratch's size, and leaves the buffer as it was; `inspect` sees the header first.
//! - The encrypt side: messages sealed with `Encryptor::seal_in_place` and
//!   `Encryptor::seal_detached` (+ `write_footer`) are byte-identical to `encrypt`'s under the
//!   same deterministic RNG, and decrypt in place; so is `encrypt_in_place`'s, which turns the
//!   plaintext at the start of a buffer into the message, and gives the plaintext back (or
//!   leaves the buffer as it was) when it fails before sealing.

use esdk_core::error::Error;
use esdk_core::header::ContentType;
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{
    AlgorithmSuite, CommitmentPolicy, Config, CryptoMaterialsManager, CryptoProvider,
    DecryptedInPlace, Decryptor, EncryptOptions, Encryptor, RequiredEncryptionContextCmm, decrypt,
    decrypt_in_place, encrypt, encrypt_in_place, encrypted_len,
};
use esdk_raw::RawAesKeyring;
use esdk_test_support::{XorShift, config_for};
use esdk_tests::forge::{FixedKeyring, Forge};
use esdk_tests::manifest::load_decrypt_manifest;
use esdk_tests::runner::{CaseError, Options, Provider, config, with_cmm};

const SUITES: [AlgorithmSuite; 5] = [
    AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
    AlgorithmSuite::Aes256GcmIv12Tag16NoKdf,
    AlgorithmSuite::Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
];

fn keyring() -> RawAesKeyring<'static> {
    RawAesKeyring::new("firmware", "device-key", &[7u8; 32]).expect("keyring")
}

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(29) ^ 0xA5).collect()
}

fn opts(suite: AlgorithmSuite, frame: u32) -> EncryptOptions {
    EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame)
}

/// A message of `suite` framed at `frame`, under a deterministic RNG seeded with `seed`.
fn message(suite: AlgorithmSuite, frame: u32, pt: &[u8], seed: u64) -> Vec<u8> {
    let provider = RustCrypto::new(XorShift::new(seed));
    let mut ec = [("device", "sensor-7"), ("fw", "1.2.3")];
    let mut out = vec![0u8; pt.len() + pt.len() / frame as usize * 32 + 2048];
    let n = encrypt(
        &config_for(suite),
        &provider,
        &keyring(),
        &opts(suite, frame),
        &mut ec,
        pt,
        &mut out,
    )
    .expect("encrypt");
    out.truncate(n);
    out
}

/// What a decryption gave: the plaintext and header facts, or the error.
#[derive(Debug, PartialEq)]
struct Facts {
    plaintext: Vec<u8>,
    suite: AlgorithmSuite,
    content_type: ContentType,
    frame_length: u32,
    header_len: usize,
    message_id: Vec<u8>,
    context_comparisons: u64,
}

fn two_buffer<P: CryptoProvider>(
    p: &P,
    cfg: &Config,
    cmm: &dyn CryptoMaterialsManager,
    reproduced: &[(&str, &str)],
    ct: &[u8],
) -> Result<Facts, Error> {
    let mut out = vec![0u8; ct.len()];
    let d = decrypt(cfg, p, cmm, reproduced, ct, &mut out)?;
    Ok(Facts {
        plaintext: out[..d.plaintext_len].to_vec(),
        suite: d.header.suite,
        content_type: d.header.content_type,
        frame_length: d.header.frame_length,
        header_len: d.header.bytes.len(),
        message_id: d.header.message_id.to_vec(),
        context_comparisons: d.context_comparisons,
    })
}

/// Decrypts `ct` in place, first with no scratch, then (when `BufferTooSmall` asks for it,
/// which must leave the buffer untouched) with the scratch named. Returns the outcome and the
/// buffer as the call left it.
fn in_place<P: CryptoProvider>(
    p: &P,
    cfg: &Config,
    cmm: &dyn CryptoMaterialsManager,
    reproduced: &[(&str, &str)],
    ct: &[u8],
) -> (Result<(Facts, DecryptedInPlace), Error>, Vec<u8>) {
    let mut buf = ct.to_vec();
    let mut r = decrypt_in_place(cfg, p, cmm, reproduced, &mut buf, &mut []);
    if let Err(Error::BufferTooSmall { required }) = r {
        assert_eq!(
            buf, ct,
            "BufferTooSmall (for the scratch) changed the buffer"
        );
        let mut scratch = vec![0u8; required];
        r = decrypt_in_place(cfg, p, cmm, reproduced, &mut buf, &mut scratch);
        assert!(
            !matches!(r, Err(Error::BufferTooSmall { .. })),
            "the scratch BufferTooSmall named ({required} bytes) was not enough: {r:?}"
        );
    }
    let r = r.map(|d| {
        let f = Facts {
            plaintext: buf[..d.plaintext_len].to_vec(),
            suite: d.suite,
            content_type: d.content_type,
            frame_length: d.frame_length,
            header_len: d.header_len,
            message_id: d.message_id().to_vec(),
            context_comparisons: d.context_comparisons,
        };
        (f, d)
    });
    (r, buf)
}

/// Bytes of `after` that are neither the message's byte at that place nor zero: plaintext
/// (or anything else) the in-place decrypt left behind.
fn foreign_bytes(after: &[u8], ct: &[u8]) -> usize {
    assert_eq!(after.len(), ct.len());
    after
        .iter()
        .zip(ct)
        .filter(|(a, c)| **a != **c && **a != 0)
        .count()
}

/// Units of a framed body of `len` bytes at `frame`.
fn frames_of(len: usize, frame: u32) -> u32 {
    (len.saturating_sub(1) / frame as usize + 1) as u32
}

#[test]
fn in_place_equals_two_buffer_for_suites_frames_and_sizes() {
    let kr = keyring();
    let p = RustCrypto::new(XorShift::new(1));
    let mut runs = 0;
    for suite in SUITES {
        let cfg = config_for(suite);
        for frame in [1u32, 100, 4096] {
            let f = frame as usize;
            let many = if frame == 1 { 300 } else { 3 * f + 7 };
            for len in [0, 1, f, f + 1, many] {
                let pt = plaintext(len);
                let ct = message(suite, frame, &pt, len as u64 + 11);
                let want = two_buffer(&p, &cfg, &kr, &[], &ct).expect("two-buffer decrypt");
                let (got, after) = in_place(&p, &cfg, &kr, &[], &ct);
                let (got, d) = got.unwrap_or_else(|e| panic!("{suite} {frame} {len}: {e:?}"));
                assert_eq!(got, want, "{suite} frame {frame} len {len}");
                assert_eq!(got.plaintext, pt);
                assert_eq!(d.frames, frames_of(len, frame), "{suite} {frame} {len}");
                assert_eq!(d.content_type, ContentType::Framed);
                // Past the plaintext, nothing but zeros and the message's own bytes.
                assert_eq!(foreign_bytes(&after[len..], &ct[len..]), 0);
                // The check can fail: the plaintext itself is foreign to the message.
                if len > 16 {
                    assert!(foreign_bytes(&after, &ct) > len / 2);
                }
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 5 * 3 * 5);
}

/// Non-framed bodies (decrypt only), forged with real keys and tags.
fn non_framed(suite: AlgorithmSuite, pt: &[u8]) -> (Config, Vec<u8>) {
    let f = Forge::new(suite);
    let mut ct = f.simple_header(1, 0);
    ct.extend(f.non_framed(pt));
    (f.cfg(), ct)
}

#[test]
fn non_framed_messages_decrypt_in_place() {
    let p = RustCrypto::new(XorShift::new(1));
    for suite in [
        AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    ] {
        for len in [0usize, 1, 100, 5000] {
            let pt = plaintext(len);
            let (cfg, ct) = non_framed(suite, &pt);
            let want = two_buffer(&p, &cfg, &FixedKeyring, &[], &ct).expect("two-buffer");
            let (got, _) = in_place(&p, &cfg, &FixedKeyring, &[], &ct);
            let (got, d) = got.expect("in place");
            assert_eq!(got, want);
            assert_eq!(got.plaintext, pt);
            assert_eq!((d.content_type, d.frames), (ContentType::NonFramed, 1));
        }
    }
}

/// Every byte flipped (one bit, a different one per byte) and every truncation: the same
/// error as the two-buffer decrypt, and no plaintext left in the buffer.
fn sweep(cfg: &Config, cmm: &dyn CryptoMaterialsManager, ct: &[u8], pt: &[u8]) -> usize {
    let p = RustCrypto::new(XorShift::new(1));
    let mut cases = 0;
    let mut check = |bad: &[u8], what: &str| {
        let want = two_buffer(&p, cfg, cmm, &[], bad).map(|f| f.plaintext);
        let (got, after) = in_place(&p, cfg, cmm, &[], bad);
        let got = got.map(|(f, _)| f.plaintext);
        assert_eq!(got, want, "{what}: in place and two-buffer differ");
        assert!(got.is_err(), "{what}: a tampered message decrypted");
        assert_eq!(
            foreign_bytes(&after, bad),
            0,
            "{what}: plaintext left in the buffer after {got:?}"
        );
        cases += 1;
    };
    for i in 0..ct.len() {
        let mut bad = ct.to_vec();
        bad[i] ^= 1 << (i % 8);
        check(&bad, &format!("flip at {i}"));
    }
    for n in 0..ct.len() {
        check(&ct[..n], &format!("cut at {n}"));
    }
    let mut long = ct.to_vec();
    long.push(0);
    check(&long, "trailing byte");
    // The untampered message still decrypts (the sweep's baseline).
    let (ok, _) = in_place(&p, cfg, cmm, &[], ct);
    assert_eq!(ok.expect("baseline").0.plaintext, pt);
    cases
}

#[test]
fn tamper_sweep_same_error_and_no_plaintext_left() {
    let kr = keyring();
    let pt = plaintext(80);
    let mut cases = 0;
    for suite in [
        AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        // Two regular frames and a short final frame.
        let ct = message(suite, 32, &pt, 5);
        cases += sweep(&config_for(suite), &kr, &ct, &pt);
    }
    let (cfg, ct) = non_framed(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, &pt);
    cases += sweep(&cfg, &FixedKeyring, &ct, &pt);
    assert!(cases > 2000, "{cases} cases");
}

/// A signed message whose signature fails after its final frame was opened: the whole
/// plaintext had been moved into place, and is wiped.
#[test]
fn a_bad_signature_wipes_the_opened_plaintext() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let pt = plaintext(1000);
    let mut ct = message(suite, 100, &pt, 9);
    let last = ct.len() - 1;
    ct[last] ^= 0x40;
    let p = RustCrypto::new(XorShift::new(1));
    let (r, after) = in_place(&p, &config_for(suite), &keyring(), &[], &ct);
    assert_eq!(
        r.map(|_| ()),
        Err(Error::Authentication(
            esdk_core::error::AuthFailure::Signature
        ))
    );
    assert_eq!(&after[..pt.len()], &vec![0u8; pt.len()][..]);
    assert_eq!(foreign_bytes(&after, &ct), 0);
}

#[test]
fn required_context_asks_for_scratch_and_inspect_sees_the_header() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let kr = keyring();
    let cmm = RequiredEncryptionContextCmm::new(&kr, &["device"]);
    let provider = RustCrypto::new(XorShift::new(3));
    let cfg = config_for(suite);
    let pt = plaintext(500);
    let mut ec = [("device", "sensor-7"), ("fw", "1.2.3")];
    let mut ct = vec![0u8; 2048];
    let n = encrypt(
        &cfg,
        &provider,
        &cmm,
        &opts(suite, 64),
        &mut ec,
        &pt,
        &mut ct,
    )
    .expect("encrypt");
    ct.truncate(n);
    let reproduced = [("device", "sensor-7")];

    // No scratch: BufferTooSmall names the scratch's size, and the buffer is untouched.
    let mut buf = ct.clone();
    let e = decrypt_in_place(&cfg, &provider, &cmm, &reproduced, &mut buf, &mut [])
        .expect_err("the required pair needs scratch");
    let Error::BufferTooSmall { required } = e else {
        panic!("expected BufferTooSmall, got {e:?}");
    };
    assert_eq!(buf, ct);
    // The full context: 2 + (4 + 6 + 8) + (4 + 2 + 5) bytes.
    assert_eq!(required, 31);
    let mut small = vec![0u8; required - 1];
    assert_eq!(
        decrypt_in_place(&cfg, &provider, &cmm, &reproduced, &mut buf, &mut small),
        Err(Error::BufferTooSmall { required })
    );
    assert_eq!(buf, ct);

    // With it: `inspect` sees the stored context (without the required pair) first.
    let mut scratch = vec![0u8; required];
    let mut seen = Vec::new();
    let d = Decryptor::new(&cfg, &provider, &reproduced)
        .decrypt_all_in_place(&cmm, &mut buf, &mut scratch, |h| {
            for (k, v) in h.encryption_context.iter() {
                seen.push((k.to_string(), v.to_string()));
            }
            Ok(())
        })
        .expect("decrypt in place");
    assert_eq!(&buf[..d.plaintext_len], &pt[..]);
    assert_eq!(seen, vec![("fw".to_string(), "1.2.3".to_string())]);

    // An error from `inspect` ends the call before anything is written.
    let mut buf = ct.clone();
    let refuse = Error::Policy(esdk_core::error::PolicyViolation::SignedMessageRejected);
    let r = Decryptor::new(&cfg, &provider, &reproduced).decrypt_all_in_place(
        &cmm,
        &mut buf,
        &mut scratch,
        |_| Err(refuse),
    );
    assert_eq!(r, Err(refuse));
    assert_eq!(buf, ct);
}

/// (frame length, plaintext length) of the encrypt-side tests: single-byte frames, an empty
/// and a one-byte final frame, exactly one frame, several, and large frames.
const ENCRYPT_CASES: [(u32, usize); 6] = [
    (1, 5),
    (100, 0),
    (100, 1),
    (100, 100),
    (100, 350),
    (4096, 9000),
];

/// The encrypt side in one buffer: each frame laid out in the message buffer and sealed in
/// place, or sealed where its content lies with the header and tag detached; both are
/// byte-identical to `encrypt`'s message under the same RNG.
#[test]
fn sealed_in_place_and_detached_equal_encrypt() {
    let kr = keyring();
    for suite in SUITES {
        let cfg = config_for(suite);
        for (frame, len) in ENCRYPT_CASES {
            let pt = plaintext(len);
            let seed = 77 + len as u64;
            let want = message(suite, frame, &pt, seed);
            let f = frame as usize;
            let regular = len.saturating_sub(1) / f;
            let new = || {
                let o = opts(suite, frame).with_plaintext_len(len as u64);
                let p = RustCrypto::new(XorShift::new(seed));
                (p, o)
            };

            // seal_in_place: one buffer, the frames laid out in it.
            let (p, o) = new();
            let mut enc = Encryptor::new(&cfg, &p, &o).expect("encryptor");
            let mut ec = [("device", "sensor-7"), ("fw", "1.2.3")];
            let mut buf = vec![0u8; want.len()];
            let mut at = enc.write_header(&kr, &mut ec, &mut buf).expect("header");
            for i in 0..=regular {
                let last = i == regular;
                let chunk = &pt[i * f..if last { len } else { (i + 1) * f }];
                let (prefix, overhead) = if last { (24, 40) } else { (16, 32) };
                let frame_bytes = &mut buf[at..at + chunk.len() + overhead];
                frame_bytes[prefix..prefix + chunk.len()].copy_from_slice(chunk);
                let slot = enc.seal_in_place(frame_bytes, last).expect("seal_in_place");
                assert_eq!((slot.sequence() as usize, slot.is_final()), (i + 1, last));
                at += slot.frame_len();
            }
            at += enc.write_footer(&mut buf[at..]).expect("footer");
            assert_eq!(at, want.len());
            assert_eq!(buf, want, "{suite} {frame} {len}: seal_in_place");

            // seal_detached: the content sealed where it is, the pieces sent in order.
            let (p, o) = new();
            let mut enc = Encryptor::new(&cfg, &p, &o).expect("encryptor");
            let mut ec = [("device", "sensor-7"), ("fw", "1.2.3")];
            let mut msg = vec![0u8; 4096];
            let h = enc.write_header(&kr, &mut ec, &mut msg).expect("header");
            msg.truncate(h);
            let mut content = pt.clone();
            for i in 0..=regular {
                let last = i == regular;
                let c = &mut content[i * f..if last { len } else { (i + 1) * f }];
                let sealed = enc.seal_detached(c, last).expect("seal_detached");
                msg.extend_from_slice(sealed.prefix());
                msg.extend_from_slice(c);
                msg.extend_from_slice(sealed.tag());
            }
            let mut footer = vec![0u8; enc.footer_len()];
            let k = enc.write_footer(&mut footer).expect("footer");
            msg.extend_from_slice(&footer[..k]);
            assert_eq!(msg, want, "{suite} {frame} {len}: seal_detached");

            // And back, in place.
            let (r, _) = in_place(&p, &cfg, &kr, &[], &msg);
            assert_eq!(r.expect("decrypt in place").0.plaintext, pt);
        }
    }
}

/// The shared test vectors (`ESDK_TEST_VECTORS`, else `shared/test-vectors` beside the repo).
fn vectors_root() -> std::path::PathBuf {
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/test-vectors");
    let root: std::path::PathBuf = std::env::var_os("ESDK_TEST_VECTORS")
        .unwrap_or_else(|| default.into())
        .into();
    assert!(root.is_dir(), "no test vectors at {}", root.display());
    root
}

fn vector<P: CryptoProvider>(
    p: &P,
    t: &esdk_tests::manifest::DecryptTest,
    opts: &Options,
) -> Result<(), CaseError> {
    let cfg = config(t, opts);
    with_cmm(t, |cmm, reproduced| {
        let ct = &t.ciphertext;
        let want = two_buffer(p, &cfg, cmm, reproduced, ct);
        let (got, after) = in_place(p, &cfg, cmm, reproduced, ct);
        let got = got.map(|(f, _)| f);
        if got != want {
            return Err(CaseError::Harness(format!(
                "in place {:?} vs two-buffer {:?}",
                got.as_ref().map(|f| f.plaintext.len()),
                want.as_ref().map(|f| f.plaintext.len())
            )));
        }
        let n = got.as_ref().map_or(0, |f| f.plaintext.len());
        if foreign_bytes(&after[n..], &ct[n..]) != 0 {
            return Err(CaseError::Harness("plaintext left in the buffer".into()));
        }
        Ok(got.is_ok())
    })
    .map(|_| ())
}

/// Every official vector under the default (aws-lc) provider: the in-place code sits above the
/// provider, and `vector_modes` already decrypts every vector under both. Messages written by the Python ESDK (4.0.7), .NET
/// (4.0.1, and 4.0.0's non-conforming ones with and without the retry) and Dafny (4.1.0),
/// framed and non-framed, positive and negative.
#[test]
fn official_vectors_in_place_equal_two_buffer() {
    let sets = [
        ("python-4.0.7-local/manifest.json", false, 3560),
        ("python-4.0.7-local-zero/manifest.json", false, 715),
        ("net-4.0.1/manifest.json", false, 99),
        ("dafny-4.1.0/decrypt-manifest.json", false, 185),
        ("net-4.0.0-invalid/manifest.json", false, 28),
        ("net-4.0.0-invalid/manifest.json", true, 28),
    ];
    let root = vectors_root();
    let mut failed = Vec::new();
    let mut total = 0;
    for provider in [Provider::AwsLc] {
        for (rel, retry, min) in sets {
            let m = load_decrypt_manifest(&root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
            let opts = Options {
                net_v4_0_0_retry: retry,
                provider,
                ..Options::default()
            };
            let mut pass = 0;
            for t in &m.tests {
                let r = match provider {
                    Provider::RustCrypto => vector(&esdk::RUSTCRYPTO_PROVIDER, t, &opts),
                    Provider::AwsLc => vector(&esdk::DEFAULT_PROVIDER, t, &opts),
                };
                match r {
                    Ok(()) => pass += 1,
                    Err(CaseError::Skipped(_)) => {}
                    Err(e) => failed.push(format!("{rel} {} [{}]: {e}", t.id, provider.name())),
                }
            }
            println!(
                "{rel} [{}] retry={retry}: {pass} in place = two-buffer",
                provider.name()
            );
            assert!(pass >= min, "{rel}: only {pass} vectors ran");
            total += pass;
        }
    }
    println!("{total} vectors in place = two-buffer");
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
}

/// The configuration's commitment policy is enforced before any key: a non-committing
/// message under the default policy fails the same way in place, buffer untouched.
#[test]
fn policy_errors_leave_the_buffer() {
    let suite = AlgorithmSuite::Aes256GcmIv12Tag16NoKdf;
    let ct = message(suite, 100, &plaintext(300), 4);
    let cfg = Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptRequireDecrypt);
    let p = RustCrypto::new(XorShift::new(1));
    let want = two_buffer(&p, &cfg, &keyring(), &[], &ct).map(|f| f.plaintext);
    let (got, after) = in_place(&p, &cfg, &keyring(), &[], &ct);
    assert!(want.is_err());
    assert_eq!(got.map(|(f, _)| f.plaintext), want);
    assert_eq!(after, ct);
}

#[test]
fn encrypt_in_place_equals_encrypt_and_round_trips_in_one_buffer() {
    let kr = keyring();
    for suite in SUITES {
        let cfg = config_for(suite);
        for (frame, len) in ENCRYPT_CASES {
            let pt = plaintext(len);
            let seed = 91 + len as u64;
            let want = message(suite, frame, &pt, seed);
            let p = RustCrypto::new(XorShift::new(seed));
            let mut ec = [("fw", "1.2.3"), ("device", "sensor-7")];
            // A buffer longer than the message: the message is its prefix, the rest untouched.
            let mut buf = pt.clone();
            buf.resize(want.len() + 3, 0xEE);
            let o = opts(suite, frame);
            let n = encrypt_in_place(&cfg, &p, &kr, &o, &mut ec, &mut buf, len)
                .unwrap_or_else(|e| panic!("{suite} {frame} {len}: {e:?}"));
            assert_eq!(&buf[..n], &want[..], "{suite} frame {frame} len {len}");
            assert_eq!(&buf[n..], &[0xEE; 3]);
            let (got, _) = in_place(&p, &cfg, &kr, &[], &buf[..n]);
            assert_eq!(got.expect("decrypt in place").0.plaintext, pt);
        }
    }
}

#[test]
fn encrypt_in_place_failures_keep_the_plaintext() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let cfg = config_for(suite);
    let kr = keyring();
    let p = RustCrypto::new(XorShift::new(5));
    let pt = plaintext(700);
    let o = opts(suite, 128);
    let mut ec = [("device", "sensor-7")];
    let total = encrypted_len(&cfg, &o, &kr, &ec, pt.len()).expect("len");

    // One byte short: BufferTooSmall with the message's length, nothing changed.
    let mut buf = pt.clone();
    buf.resize(total - 1, 0x11);
    let before = buf.clone();
    assert_eq!(
        encrypt_in_place(&cfg, &p, &kr, &o, &mut ec, &mut buf, pt.len()),
        Err(Error::BufferTooSmall { required: total })
    );
    assert_eq!(buf, before);
    // A plaintext length past the buffer is the same error, not a panic.
    assert!(matches!(
        encrypt_in_place(&cfg, &p, &kr, &o, &mut ec, &mut buf, total + 5),
        Err(Error::BufferTooSmall { .. })
    ));

    // A header-step failure (a reserved context key): the plaintext is back at the start and
    // the rest of the message's place is zero.
    let mut bad_ec = [("aws-crypto-x", "y")];
    let mut buf = pt.clone();
    buf.resize(total + 100, 0);
    let e = encrypt_in_place(&cfg, &p, &kr, &o, &mut bad_ec, &mut buf, pt.len())
        .expect_err("reserved key");
    assert_eq!(
        two_buffer_encrypt_error(&cfg, &p, &kr, &o, &mut bad_ec, &pt),
        e
    );
    assert_eq!(&buf[..pt.len()], &pt[..]);
    assert!(buf[pt.len()..].iter().all(|b| *b == 0));
}

fn two_buffer_encrypt_error<P: CryptoProvider>(
    cfg: &Config,
    p: &P,
    cmm: &dyn CryptoMaterialsManager,
    o: &EncryptOptions,
    ec: &mut [(&str, &str)],
    pt: &[u8],
) -> Error {
    let mut out = vec![0u8; pt.len() + 4096];
    encrypt(cfg, p, cmm, o, ec, pt, &mut out).expect_err("encrypt must fail")
}
