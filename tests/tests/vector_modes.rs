//! Every official vector through every decrypt mode (one-shot, incremental 1-byte,
//! incremental random slices, std Read, std Write, tokio AsyncRead, embedded-io-async
//! Read), under both crypto providers (the pure-Rust
//! `no_std` one firmware ships, and aws-lc): the expected plaintext where there is one; where
//! the vector must fail, exactly the error its description calls for ([`esdk_tests::expect`]),
//! the same full error in every mode, and no more released than the release bound allows
//! ([`esdk_tests::modes::check_release`]: one-shot nothing, the others a prefix of the true
//! plaintext made of intact regular frames only).
//!
//! The modes report identical errors, offsets included, with no normalisation: a truncated
//! message is reported `Truncated` at the end of the input in every mode (the incremental
//! harness reports the end of what it was given, which is the message's end), so a
//! difference is a bug.

use esdk_tests::expect::{Expectation, expectation};
use esdk_tests::manifest::load_decrypt_manifest;
use esdk_tests::modes::{Mode, Outcome, Provider, check_release, decrypt_with};
use esdk_tests::runner::{CaseError, Options, config, decrypt_bytes, with_cmm};

fn brief(o: &Outcome) -> String {
    match o {
        Outcome::Ok(p) => format!("ok ({} bytes)", p.len()),
        Outcome::Err { error, released } => {
            format!("error {error:?} ({} bytes released)", released.len())
        }
    }
}

fn vectors_root() -> std::path::PathBuf {
    let root = std::env::var_os("ESDK_TEST_VECTORS").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/test-vectors"),
        std::path::PathBuf::from,
    );
    assert!(
        root.is_dir(),
        "test vectors not found at {} (set ESDK_TEST_VECTORS)",
        root.display()
    );
    root
}

/// Checks one test in every mode; `Err(why)` lines on failure.
fn check_test(
    t: &esdk_tests::manifest::DecryptTest,
    opts: &Options,
    expect_error: bool,
    seed: u64,
) -> Result<(), CaseError> {
    let cfg = config(t, opts);
    let want = expectation(t, expect_error, |ct| decrypt_bytes(t, opts, ct))
        .map_err(CaseError::Harness)?;
    let outcomes = with_cmm(t, |cmm, reproduced| {
        Ok(Mode::all(seed).map(|mode| {
            let o = decrypt_with(opts.provider, mode, &cfg, cmm, reproduced, &t.ciphertext);
            (mode, o)
        }))
    })?;
    let mut why = Vec::new();
    for (mode, o) in &outcomes {
        match (&want, o) {
            (Expectation::Plaintext(p), Outcome::Ok(got)) if got == p => {}
            (Expectation::Error(x), Outcome::Err { error, released }) => {
                if let Err(e) = x.check(error) {
                    why.push(format!("{mode:?}: {e}"));
                }
                if let Err(e) = check_release(*mode, released, &x.bound()) {
                    why.push(format!("release bound: {e}"));
                }
            }
            (_, o) => why.push(format!("{mode:?}: unexpected outcome {}", brief(o))),
        }
    }
    // The same full error in every mode.
    let first = &outcomes[0].1;
    for (mode, o) in &outcomes[1..] {
        let same = match (first, o) {
            (Outcome::Ok(_), Outcome::Ok(_)) => true,
            (Outcome::Err { error: a, .. }, Outcome::Err { error: b, .. }) => a == b,
            _ => false,
        };
        if !same {
            why.push(format!(
                "{mode:?} and OneShot differ: {} vs {}",
                brief(o),
                brief(first)
            ));
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(CaseError::Harness(why.join("; ")))
    }
}

fn run_manifest(rel: &str, opts: Options, expect_error: bool) -> (usize, usize, usize) {
    let root = vectors_root();
    let m = load_decrypt_manifest(&root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for (i, t) in m.tests.iter().enumerate() {
        match check_test(t, &opts, expect_error, i as u64 + 1) {
            Ok(()) => pass += 1,
            Err(CaseError::Skipped(_)) => skip += 1,
            Err(e) => {
                eprintln!("FAIL {rel} {} [{}]: {e}", t.id, opts.provider.name());
                fail += 1;
            }
        }
    }
    println!(
        "{rel} [{}{}]: {pass} passed, {fail} failed, {skip} skipped (x{} modes)",
        opts.provider.name(),
        if expect_error {
            ", expect header-tag error"
        } else {
            ""
        },
        Mode::all(0).len()
    );
    (pass, fail, skip)
}

#[test]
fn all_vectors_all_modes_both_providers() {
    // (manifest, retry, expect header-tag error, minimum passes per provider)
    let sets = [
        ("python-4.0.7-local/manifest.json", false, false, 3560),
        ("python-4.0.7-local-zero/manifest.json", false, false, 715),
        ("net-4.0.1/manifest.json", false, false, 99),
        ("dafny-4.1.0/decrypt-manifest.json", false, false, 185),
        ("net-4.0.0-invalid/manifest.json", false, true, 28),
        ("net-4.0.0-invalid/manifest.json", true, false, 28),
    ];
    // One thread per provider: the two share nothing, and the run takes half the time on
    // two cores (it is the longest of the suite's binaries after secrets_heap).
    let runs: Vec<(&str, Provider, usize, usize, usize, usize)> = std::thread::scope(|scope| {
        let threads: Vec<_> = Provider::BOTH
            .into_iter()
            .map(|provider| {
                scope.spawn(move || {
                    sets.map(|(rel, retry, expect_error, min)| {
                        let opts = Options {
                            net_v4_0_0_retry: retry,
                            provider,
                            ..Options::default()
                        };
                        let (a, b, c) = run_manifest(rel, opts, expect_error);
                        (rel, provider, a, b, c, min)
                    })
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a provider's run panicked"))
            .collect()
    });
    let (mut p, mut f, mut s) = (0, 0, 0);
    let mut short = Vec::new();
    for (rel, provider, a, b, c, min) in runs {
        if a < min {
            short.push(format!("{rel} [{}]: {a} passed < {min}", provider.name()));
        }
        p += a;
        f += b;
        s += c;
    }
    println!("all modes, both providers: {p} passed, {f} failed, {s} skipped");
    assert_eq!(f, 0, "{f} vectors failed in some mode");
    assert!(short.is_empty(), "too few vectors ran: {short:?}");
}

/// The expectations of the negative python-4.0.7 vectors accept the error each calls for and
/// reject near misses: `Truncated` at another offset, a frame-tag failure of another frame, a
/// header-tag failure for a frame flip, a keyring failure for a signature flip.
#[test]
fn negative_vector_expectations_reject_the_wrong_error() {
    use esdk_core::error::{AuthFailure, Error, KeyringError};
    use esdk_tests::layout::Region;
    let m = load_decrypt_manifest(&vectors_root().join("python-4.0.7-local/manifest.json"))
        .expect("manifest");
    let opts = Options::default();
    let (mut accepted, mut rejected) = (0usize, 0usize);
    let mut regions = std::collections::BTreeSet::new();
    for t in &m.tests {
        let Expectation::Error(x) = expectation(t, false, |ct| decrypt_bytes(t, &opts, ct))
            .unwrap_or_else(|e| panic!("{}: {e}", t.id))
        else {
            continue;
        };
        let got = match decrypt_bytes(t, &opts, &t.ciphertext) {
            Err(CaseError::Decrypt(e)) => e,
            other => panic!("{}: expected a decrypt error, got {other:?}", t.id),
        };
        x.check(&got)
            .unwrap_or_else(|e| panic!("{}: the right error rejected: {e}", t.id));
        accepted += 1;
        let keyring = Error::Keyring(KeyringError::InvalidConfiguration);
        let header_tag = Error::Authentication(AuthFailure::HeaderTag);
        let signature = Error::Authentication(AuthFailure::Signature);
        let tag = |sequence| Error::Authentication(AuthFailure::FrameTag { sequence });
        let wrong = match (x.region(), got) {
            (None, Error::Truncated { offset }) => vec![
                Error::Truncated { offset: offset - 1 },
                Error::Truncated { offset: offset + 1 },
                keyring,
                tag(1),
            ],
            (None, _) => vec![header_tag, keyring, tag(1), signature],
            // Header fields: never a body or footer check.
            (Some(Region::Header(_)), _) => vec![
                tag(1),
                Error::Authentication(AuthFailure::NonFramedTag),
                signature,
            ],
            (Some(Region::FrameBody(s)), _) => {
                vec![tag(s + 1), tag(s - 1), header_tag, signature, keyring]
            }
            (Some(Region::Signature), _) => vec![tag(1), header_tag, keyring],
            (Some(_), _) => vec![header_tag, keyring],
        };
        for w in wrong {
            assert!(
                x.check(&w).is_err(),
                "{} ({}): accepted the wrong error {w:?}",
                t.id,
                x.description
            );
            rejected += 1;
        }
        if let Some(r) = x.want().split_once('(').map(|(_, r)| r.to_owned()) {
            regions.insert(r);
        }
    }
    println!(
        "negative-vector expectations: {accepted} right errors accepted, {rejected} wrong ones \
         rejected ({} distinct expectations)",
        regions.len()
    );
    assert_eq!(accepted, 942 + 470 + 2);
}
