//! The exhaustive tamper sweep (issue #8, part 2).
//!
//! For a small message of every suite, framed (written by the core through a raw AES
//! keyring: two regular frames and a short final frame) and non-framed (built here with real
//! keys, tags and signatures, since the core writes framed messages only), every truncation
//! and every single-bit flip is decrypted in every mode of `esdk_tests::modes`: one-shot,
//! incrementally (one byte at a time and random slices), through `DecryptingReader` and
//! through `DecryptingWriter` (its inner writer recorded). Each must fail, with the same error in every mode, of the kind the
//! tampered field calls for (`Truncated` at the cut for truncations); the one-shot output
//! buffer must stay all zero, and the streaming modes may release only plaintext of regular
//! frames that lie entirely before the tampered byte (so never a signed message's final
//! frame, nor any part of a non-framed body). The suites alternate between the two
//! providers (framed under one, non-framed under the other). The field map and the error each field may give are
//! `esdk_tests::layout`.
//!
//! The encrypt → decrypt round-trip property (part 5) is in `proptest_roundtrip.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use esdk_core::error::Error;
use esdk_core::provider::{AeadKey, CryptoProvider, HkdfOutput, MessageHasher};
use esdk_core::suite::{HashAlg, Kdf};
use esdk_core::{AlgorithmSuite, CommitmentPolicy, Config, EncryptOptions};
use esdk_raw::RawAesKeyring;
use esdk_test_support::config_for;
use esdk_tests::forge::{FIXED_ID, FIXED_KEY, FixedKeyring};
use esdk_tests::layout::Layout;
use esdk_tests::modes::{Mode, Outcome, Provider, ReleaseBound, check_release, decrypt_with};

const PROVIDER: esdk::DefaultProvider = esdk::DEFAULT_PROVIDER;
const WRAPPING_KEY: [u8; 32] = [0x42; 32];
const FRAME: u32 = 32;

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(29) ^ 0xA5).collect()
}

/// The sweep's decrypt configuration: no limits, so that a flipped bit in a length field
/// (a frame length near 2^32, a non-framed length near 2^36) meets the reader's own bounded
/// buffering, not a configured limit.
fn decrypt_cfg() -> Config {
    Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
}

// ---------------------------------------------------------------------------------------------
// Non-framed messages, built here
// ---------------------------------------------------------------------------------------------

fn field(out: &mut Vec<u8>, f: &[u8]) {
    out.extend_from_slice(&(f.len() as u16).to_be_bytes());
    out.extend_from_slice(f);
}

/// A complete non-framed message of `suite` under [`FIXED_KEY`]: header with the context
/// `k=v` (and the public key for signing suites), single-block body, footer.
fn non_framed(suite: AlgorithmSuite, pt: &[u8]) -> Vec<u8> {
    let v1 = suite.message_format_version() == 1;
    let mid: Vec<u8> = (0..suite.message_id_len())
        .map(|i| i as u8 ^ 0x3C)
        .collect();
    let n = suite.key_len();
    let dk = &FIXED_KEY[..n];
    let id = suite.id().to_be_bytes();
    let mut key = [0u8; 32];
    let mut commit = [0u8; 32];
    match suite.kdf() {
        Kdf::Identity => key[..n].copy_from_slice(dk),
        Kdf::Hkdf(HashAlg::Sha512) => {
            PROVIDER
                .hkdf(
                    HashAlg::Sha512,
                    &mid,
                    dk,
                    &mut [HkdfOutput::new(&[&id, b"DERIVEKEY"], &mut key[..n])],
                )
                .expect("hkdf");
            PROVIDER
                .hkdf(
                    HashAlg::Sha512,
                    &mid,
                    dk,
                    &mut [HkdfOutput::new(&[b"COMMITKEY"], &mut commit)],
                )
                .expect("hkdf");
        }
        Kdf::Hkdf(h) => PROVIDER
            .hkdf(
                h,
                &[],
                dk,
                &mut [HkdfOutput::new(&[&id, &mid], &mut key[..n])],
            )
            .expect("hkdf"),
    }
    let aead = PROVIDER.aead_key(&key[..n]).expect("key");

    // Signing key, its public half in the context (sorted: "aws-crypto-public-key" < "k").
    let mut private = [0u8; 48];
    let mut public = [0u8; 49];
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if let Some(alg) = suite.signature() {
        PROVIDER
            .generate_signing_key(
                alg,
                &mut private[..alg.scalar_len()],
                &mut public[..alg.public_key_len()],
            )
            .expect("signing key");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&public[..alg.public_key_len()]);
        pairs.push((b"aws-crypto-public-key".to_vec(), b64.into_bytes()));
    }
    pairs.push((b"k".to_vec(), b"v".to_vec()));
    let mut ec = (pairs.len() as u16).to_be_bytes().to_vec();
    for (k, v) in &pairs {
        field(&mut ec, k);
        field(&mut ec, v);
    }

    let mut m = vec![suite.message_format_version()];
    if v1 {
        m.push(0x80);
    }
    m.extend_from_slice(&id);
    m.extend_from_slice(&mid);
    field(&mut m, &ec);
    m.extend_from_slice(&1u16.to_be_bytes());
    field(&mut m, FIXED_ID.as_bytes());
    field(&mut m, b"");
    field(&mut m, b"k");
    m.push(1);
    if v1 {
        m.extend_from_slice(&[0, 0, 0, 0, 12]);
    }
    m.extend_from_slice(&0u32.to_be_bytes());
    if suite.is_committing() {
        m.extend_from_slice(&commit);
    }
    let iv = [0u8; 12];
    let tag = aead.gmac(&iv, &mut |s| s(&m)).expect("gmac");
    if v1 {
        m.extend_from_slice(&iv);
    }
    m.extend_from_slice(&tag);

    let body_iv = [0x5Eu8; 12];
    m.extend_from_slice(&body_iv);
    m.extend_from_slice(&(pt.len() as u64).to_be_bytes());
    let mut aad = mid.clone();
    aad.extend_from_slice(b"AWSKMSEncryptionClient Single Block");
    aad.extend_from_slice(&1u32.to_be_bytes());
    aad.extend_from_slice(&(pt.len() as u64).to_be_bytes());
    let mut ct = vec![0u8; pt.len()];
    let tag = aead.seal_to(&body_iv, &aad, pt, &mut ct).expect("seal");
    m.extend_from_slice(&ct);
    m.extend_from_slice(&tag);

    if let Some(alg) = suite.signature() {
        let mut h = PROVIDER.hasher(alg).expect("hasher");
        h.update(&m);
        let mut digest = [0u8; 64];
        let dl = h.finalize_into(&mut digest);
        let mut sig = [0u8; 104];
        let sl = PROVIDER
            .sign_digest(alg, &private[..alg.scalar_len()], &digest[..dl], &mut sig)
            .expect("sign");
        m.extend_from_slice(&(sl as u16).to_be_bytes());
        m.extend_from_slice(&sig[..sl]);
    }
    m
}

// ---------------------------------------------------------------------------------------------
// The sweep
// ---------------------------------------------------------------------------------------------

/// One message under test: how to decrypt it and what it holds.
struct Target<'a> {
    cmm: &'a dyn esdk_core::CryptoMaterialsManager,
    layout: &'a Layout,
    pt: &'a [u8],
    provider: Provider,
    passed: &'a AtomicUsize,
}

impl Target<'_> {
    /// Decrypts `bad` (tampered at `at`) in every mode; checks the error, that every mode
    /// gives the same one, and what each released (one-shot: nothing left in its output
    /// buffer; the others: a prefix of the plaintext of the intact regular frames before
    /// `at`, so never a signed message's final frame nor any of a non-framed body).
    fn check(&self, what: &str, bad: &[u8], at: usize, want: &dyn Fn(&Error) -> bool) {
        let cfg = decrypt_cfg();
        let seed = at as u64 * 0x9E37 + 1;
        let bound = ReleaseBound {
            intact: self.layout.intact_plaintext(at).min(self.pt.len()),
            plaintext: Some(self.pt),
        };
        let mut first: Option<Error> = None;
        for mode in Mode::all(seed) {
            match decrypt_with(self.provider, mode, &cfg, self.cmm, &[], bad) {
                Outcome::Ok(_) => panic!("{what}: {mode:?} decrypted without error"),
                Outcome::Err { error, released } => {
                    match first {
                        None => {
                            assert!(
                                want(&error),
                                "{what}: {mode:?} gave the unexpected error {error:?}"
                            );
                            first = Some(error);
                        }
                        Some(f) => assert_eq!(error, f, "{what}: {mode:?} and one-shot disagree"),
                    }
                    if let Err(e) = check_release(mode, &released, &bound) {
                        panic!("{what}: {e}");
                    }
                }
            }
        }
        self.passed.fetch_add(MODES, Ordering::Relaxed);
    }
}

/// The number of decrypt modes each tampered message goes through.
const MODES: usize = 5;

fn sweep(
    name: &str,
    provider: Provider,
    cmm: &dyn esdk_core::CryptoMaterialsManager,
    msg: &[u8],
    pt: &[u8],
    passed: &AtomicUsize,
) {
    // The intact message decrypts in every mode.
    for mode in Mode::all(1) {
        assert_eq!(
            decrypt_with(provider, mode, &decrypt_cfg(), cmm, &[], msg),
            Outcome::Ok(pt.to_vec()),
            "{name}: intact message, {mode:?}"
        );
    }
    let layout = Layout::of(msg).expect("own message has a layout");
    let t = Target {
        cmm,
        layout: &layout,
        pt,
        provider,
        passed,
    };
    for cut in 0..msg.len() {
        let want = Error::Truncated { offset: cut };
        let what = format!("{name}: truncated at {cut}");
        t.check(&what, &msg[..cut], cut, &|e| *e == want);
    }
    let mut bad = msg.to_vec();
    for at in 0..msg.len() {
        let region = layout.region(at).expect("every byte has a region");
        for bit in 0..8 {
            bad[at] ^= 1 << bit;
            let what = format!("{name}: bit {bit} of byte {at} ({region:?}) flipped");
            t.check(&what, &bad, at, &|e| {
                layout.flip_error_ok(region, e, msg.len())
            });
            bad[at] ^= 1 << bit;
        }
    }
}

#[test]
fn every_truncation_and_bit_flip_fails_in_every_mode() {
    let keyring = RawAesKeyring::new("esdk-test", "sweep-key", &WRAPPING_KEY).expect("keyring");
    // Framed: two regular frames and a 6-byte final frame. Non-framed: 20 bytes.
    let framed_pt = plaintext(2 * FRAME as usize + 6);
    let nf_pt = plaintext(20);
    let passed = AtomicUsize::new(0);
    let messages: Vec<(String, Vec<u8>, bool)> = AlgorithmSuite::ALL
        .iter()
        .flat_map(|&suite| {
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(FRAME);
            let framed = esdk::encrypt(
                &config_for(suite),
                &keyring,
                &opts,
                &[("k", "v")],
                &framed_pt,
            )
            .expect("encrypt");
            [
                (format!("{suite} framed"), framed, true),
                (
                    format!("{suite} non-framed"),
                    non_framed(suite, &nf_pt),
                    false,
                ),
            ]
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, msg, framed)) = messages.get(i) else {
                        break;
                    };
                    // Alternate the providers: each suite meets both, framed under one and
                    // non-framed under the other.
                    let provider = Provider::BOTH[(i + i / 2) % 2];
                    if *framed {
                        sweep(name, provider, &keyring, msg, &framed_pt, &passed);
                    } else {
                        sweep(name, provider, &FixedKeyring, msg, &nf_pt, &passed);
                    }
                }
            });
        }
    });
    let passed = passed.load(Ordering::Relaxed);
    let expected: usize = messages.iter().map(|(_, m, _)| MODES * 9 * m.len()).sum();
    println!(
        "tamper sweep: {passed} passed, 0 failed ({} messages, {} bytes; every truncation and \
         bit flip in {MODES} modes, providers alternating)",
        messages.len(),
        messages.iter().map(|m| m.1.len()).sum::<usize>()
    );
    assert_eq!(passed, expected);
}
