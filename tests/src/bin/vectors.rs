//! `vectors`: run the official AWS Encryption SDK test vectors against this implementation.
//!
//! ```text
//! vectors decrypt <manifest.json> [--provider rustcrypto|aws-lc] [--net-v4-0-0-retry]
//!                 [--expect-error] [--verbose]
//! vectors encrypt <encrypt-manifest.json> --output DIR [--verbose]
//! ```
//!
//! `decrypt` loads the manifest, decrypts every test with
//! [`esdk_tests::runner::decrypt_case`] under the chosen provider, checks the plaintext or
//! the exact expected error ([`esdk_tests::expect`]: a negative vector passes only with the
//! error its description calls for, never with a harness error or another failure), prints
//! `FAIL <id>: <why>` for each failure, a `skipped <n>: <reason>` line per skip reason, a
//! `provider <name>: N passed, M failed, K skipped` line, and ends with exactly
//! `N passed, M failed, K skipped`. The exit code is 0 iff no test failed.
//! It also reads the Python ESDK's key-commitment vectors (`commitment-test-vectors.json`,
//! a format of their own: see [`esdk_tests::manifest::load_decrypt_manifest`]).
//!
//! * `--provider rustcrypto|aws-lc`: the crypto provider (default aws-lc, the std default;
//!   rustcrypto is the pure-Rust `no_std` one firmware ships).
//! * `--net-v4-0-0-retry`: accept messages written by ESDK-.NET 4.0.0 (passed to the runner).
//! * `--expect-error`: every test must fail header authentication, whatever the manifest
//!   says (for `net-4.0.0-invalid` without the retry policy).
//! * `--verbose` / `-v`: also print passing tests, with the error of expected errors.
//!
//! `encrypt` loads an `awses-encrypt` manifest (v1, v2 or v5), encrypts every scenario it
//! can with [`esdk_tests::encrypt_manifest`], and writes `keys.json`, `plaintexts/`,
//! `ciphertexts/` and a decrypt manifest `manifest.json` (v2 for v1/v2 input, v5 for v5
//! input) into DIR, readable by the official vector runners and by `vectors decrypt`. It
//! prints `FAIL <id>: <why>` per failed scenario, `skipped <n>: <reason>` per skip reason
//! (KMS keys, non-framed messages), the manifest path, and ends with
//! `N passed, M failed, K skipped` (passed = ciphertexts written). Exit code 0 iff none failed.

use core::panic::AssertUnwindSafe;
use std::collections::BTreeMap;
use std::panic::catch_unwind;
use std::path::PathBuf;
use std::process::ExitCode;

use esdk_tests::encrypt_manifest::{ScenarioError, load_encrypt_manifest, write_vectors};
use esdk_tests::expect::{Expectation, expectation};
use esdk_tests::manifest::{DecryptTest, load_decrypt_manifest};
use esdk_tests::runner::{CaseError, Options, Provider, decrypt_bytes, decrypt_case};

const USAGE: &str = "usage: vectors decrypt <manifest.json> [--provider rustcrypto|aws-lc] [--net-v4-0-0-retry] [--expect-error] [--verbose]\n       vectors encrypt <encrypt-manifest.json> --output DIR [--verbose]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("decrypt") => run_decrypt(&args[1..]),
        Some("encrypt") => run_encrypt(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_encrypt(args: &[String]) -> ExitCode {
    let mut verbose = false;
    let mut manifest_path: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--verbose" | "-v" => verbose = true,
            "--output" | "-o" => match it.next() {
                Some(dir) => output = Some(PathBuf::from(dir)),
                None => {
                    eprintln!("--output needs a directory\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            flag if flag.starts_with('-') => {
                eprintln!("unknown option {flag}\n{USAGE}");
                return ExitCode::from(2);
            }
            path if manifest_path.is_none() => manifest_path = Some(PathBuf::from(path)),
            extra => {
                eprintln!("unexpected argument {extra}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(manifest_path), Some(output)) = (manifest_path, output) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let manifest = match load_encrypt_manifest(&manifest_path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if verbose {
        println!(
            "{}: awses-encrypt v{}, {} scenarios",
            manifest_path.display(),
            manifest.version,
            manifest.tests.len()
        );
    }
    let mut progress = |id: &str, r: &Result<usize, ScenarioError>| match r {
        Ok(n) if verbose => println!("ok {id}: {n} bytes"),
        Err(ScenarioError::Skipped(why)) if verbose => println!("skip {id}: {why}"),
        Err(ScenarioError::Failed(why)) => println!("FAIL {id}: {why}"),
        _ => {}
    };
    let summary = match write_vectors(&manifest, &output, &mut progress) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut reasons: Vec<(&String, usize)> = summary
        .skipped
        .iter()
        .map(|(r, ids)| (r, ids.len()))
        .collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    for (reason, n) in &reasons {
        println!("skipped {n}: {reason}");
    }
    let skipped: usize = reasons.iter().map(|(_, n)| n).sum();
    println!(
        "wrote {} (awses-decrypt v{})",
        summary.manifest_path.display(),
        summary.decrypt_version
    );
    println!(
        "{} passed, {} failed, {skipped} skipped",
        summary.written.len(),
        summary.failed.len()
    );
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The outcome of one test.
enum Outcome {
    Pass(Option<String>),
    Fail(String),
    Skip(String),
}

fn run_decrypt(args: &[String]) -> ExitCode {
    let mut opts = Options::default();
    let mut expect_error = false;
    let mut manifest_path: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--provider" => match it.next().map(String::as_str).and_then(Provider::parse) {
                Some(p) => opts.provider = p,
                None => {
                    eprintln!("--provider needs rustcrypto or aws-lc\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--net-v4-0-0-retry" => opts.net_v4_0_0_retry = true,
            "--expect-error" => expect_error = true,
            "--verbose" | "-v" => opts.verbose = true,
            flag if flag.starts_with('-') => {
                eprintln!("unknown option {flag}\n{USAGE}");
                return ExitCode::from(2);
            }
            path if manifest_path.is_none() => manifest_path = Some(PathBuf::from(path)),
            extra => {
                eprintln!("unexpected argument {extra}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(manifest_path) = manifest_path else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let manifest = match load_decrypt_manifest(&manifest_path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.verbose {
        println!(
            "{}: awses-decrypt v{} from {}, {} tests",
            manifest_path.display(),
            manifest.version,
            manifest.client,
            manifest.tests.len()
        );
    }

    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut skip_reasons: BTreeMap<String, usize> = BTreeMap::new();
    for test in &manifest.tests {
        match run_one(test, &opts, expect_error) {
            Outcome::Pass(note) => {
                passed += 1;
                if opts.verbose {
                    match note {
                        Some(note) => println!("ok {}: {note}", test.id),
                        None => println!("ok {}", test.id),
                    }
                }
            }
            Outcome::Fail(why) => {
                failed += 1;
                println!("FAIL {}: {why}", test.id);
            }
            Outcome::Skip(reason) => {
                skipped += 1;
                if opts.verbose {
                    println!("skip {}: {reason}", test.id);
                }
                *skip_reasons.entry(reason).or_insert(0) += 1;
            }
        }
    }
    let mut reasons: Vec<(String, usize)> = skip_reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (reason, n) in reasons {
        println!("skipped {n}: {reason}");
    }
    println!(
        "provider {}: {passed} passed, {failed} failed, {skipped} skipped",
        opts.provider.name()
    );
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_one(test: &DecryptTest, opts: &Options, expect_error: bool) -> Outcome {
    let result = match catch_unwind(AssertUnwindSafe(|| decrypt_case(test, opts))) {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            return Outcome::Fail(format!("runner panicked: {msg}"));
        }
    };
    let result = match result {
        Err(CaseError::Skipped(reason)) => return Outcome::Skip(reason),
        Err(CaseError::Harness(why)) => return Outcome::Fail(format!("harness error: {why}")),
        Err(CaseError::Decrypt(e)) => Err(e),
        Ok(pt) => Ok(pt),
    };
    let want = match expectation(test, expect_error, |ct| decrypt_bytes(test, opts, ct)) {
        Ok(w) => w,
        Err(why) => return Outcome::Fail(why),
    };
    match (want, result) {
        (Expectation::Plaintext(want), Ok(got)) if got == want => Outcome::Pass(None),
        (Expectation::Plaintext(want), Ok(got)) => Outcome::Fail(mismatch(&got, &want)),
        (Expectation::Plaintext(_), Err(e)) => Outcome::Fail(format!("{e} ({e:?})")),
        (Expectation::Error(x), Ok(_)) => Outcome::Fail(format!(
            "decrypt succeeded, but an error was expected ({:?}: {})",
            x.description,
            x.want()
        )),
        (Expectation::Error(x), Err(e)) => match x.check(&e) {
            Ok(()) => Outcome::Pass(Some(format!("failed as expected: {e:?}"))),
            Err(why) => Outcome::Fail(why),
        },
    }
}

fn mismatch(got: &[u8], want: &[u8]) -> String {
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    format!(
        "plaintext mismatch: got {} bytes, expected {}, first difference at byte {first}",
        got.len(),
        want.len()
    )
}
