//! The encrypt → decrypt round-trip property (issue #8, part 5), with `proptest`: random
//! suites, frame lengths, plaintexts and encryption contexts must round-trip
//!
//! - through the core: `encrypted_len` is exact, one-shot `encrypt`, then `decrypt` one-shot,
//!   fed one byte at a time and fed random slices;
//! - through the std adapter: `esdk::encrypt` / `esdk::decrypt` (which return the context),
//!   `EncryptingWriter` written in random pieces (byte-identical to the core), and the
//!   `DecryptingReader` / `DecryptingWriter` streams;
//! - through the CLI: the `esdk` binary encrypts what the library decrypts and decrypts what
//!   the core encrypted (the binary next to this test's, built by `cargo test --workspace`;
//!   a missing binary is a failure, not a skip).
//!
//! A failing case is shrunk and saved under `tests/proptest-regressions/` (replayed first on
//! the next run). `PROPTEST_CASES=<n>` runs more cases.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use esdk_core::{AlgorithmSuite, EncryptOptions};
use esdk_raw::RawAesKeyring;
use esdk_test_support::config_for;
use esdk_tests::modes::{Mode, Outcome, SplitRng, decrypt_in_mode};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, TestRunner};

const PROVIDER: esdk::DefaultProvider = esdk::DEFAULT_PROVIDER;
const WRAPPING_KEY: [u8; 32] = [0x42; 32];
const NAMESPACE: &str = "esdk-test";
const KEY_NAME: &str = "prop-key";

/// One generated case.
#[derive(Debug, Clone)]
struct Case {
    suite: AlgorithmSuite,
    frame: u32,
    plaintext: Vec<u8>,
    context: Vec<(String, String)>,
    /// Seeds the split sizes of the streaming modes.
    seed: u64,
}

/// Frame lengths: tiny (many frames), small, the default, and up to 70 000.
fn frame_length() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..=8, 9u32..=300, Just(4096u32), 301u32..=70_000]
}

/// Plaintexts sized against the frame: empty, within a few frames, exact multiples of the
/// frame (the final frame is then full), and up to 20 000 bytes.
fn plaintext(frame: u32) -> impl Strategy<Value = Vec<u8>> {
    let f = frame as usize;
    let within = (3 * f).min(20_000);
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 1..=within),
        (1usize..=3).prop_flat_map(move |k| {
            let n = (k * f).min(20_000 / f * f).max(f);
            prop::collection::vec(any::<u8>(), n..=n)
        }),
        prop::collection::vec(any::<u8>(), 0..=20_000),
    ]
}

/// Encryption contexts: up to 5 pairs; keys of printable text with non-ASCII letters (never
/// `=`, which the CLI's `k=v` syntax splits on, nor the reserved `aws-crypto-` prefix); values
/// of any non-control characters, empty included.
fn context() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map("[a-zA-Z0-9 _.:/é€ключ-]{1,12}", "\\PC{0,40}", 0..=5).prop_map(
        |m| {
            m.into_iter()
                .filter(|(k, _)| !k.starts_with("aws-crypto-"))
                .collect()
        },
    )
}

fn case() -> impl Strategy<Value = Case> {
    (0..AlgorithmSuite::ALL.len(), frame_length())
        .prop_flat_map(|(s, frame)| {
            (
                Just(AlgorithmSuite::ALL[s]),
                Just(frame),
                plaintext(frame),
                context(),
                any::<u64>(),
            )
        })
        .prop_map(|(suite, frame, plaintext, context, seed)| Case {
            suite,
            frame,
            plaintext,
            context,
            seed,
        })
}

fn keyring() -> RawAesKeyring<'static> {
    RawAesKeyring::new(NAMESPACE, KEY_NAME, &WRAPPING_KEY).expect("keyring")
}

fn pairs(c: &Case) -> Vec<(&str, &str)> {
    c.context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// `esdk::decrypt` gives the plaintext, the suite and every pair of the context back.
fn check_library_decrypt(c: &Case, msg: &[u8]) -> Result<(), TestCaseError> {
    let k = keyring();
    let ec = pairs(c);
    let d = esdk::decrypt(&config_for(c.suite), &k, &ec, msg)
        .map_err(|e| TestCaseError::fail(format!("esdk::decrypt: {e}")))?;
    prop_assert_eq!(&d.plaintext, &c.plaintext);
    prop_assert_eq!(d.suite, c.suite);
    for (key, v) in &c.context {
        prop_assert!(
            d.encryption_context.contains(&(key.clone(), v.clone())),
            "pair {:?} missing",
            key
        );
    }
    Ok(())
}

/// The core's one-shot encryption, sized exactly with `encrypted_len`.
fn core_encrypt(c: &Case) -> Result<Vec<u8>, TestCaseError> {
    let k = keyring();
    let cfg = config_for(c.suite);
    let opts = EncryptOptions::new()
        .with_suite(c.suite)
        .with_frame_length(c.frame);
    let mut ec = pairs(c);
    let n = esdk_core::encrypted_len(&cfg, &opts, &k, &ec, c.plaintext.len())
        .map_err(|e| TestCaseError::fail(format!("encrypted_len: {e}")))?;
    let mut msg = vec![0u8; n];
    let written = esdk_core::encrypt(&cfg, &PROVIDER, &k, &opts, &mut ec, &c.plaintext, &mut msg)
        .map_err(|e| TestCaseError::fail(format!("encrypt: {e}")))?;
    prop_assert_eq!(written, n, "encrypted_len is not exact");
    Ok(msg)
}

fn core_and_std(c: &Case) -> Result<(), TestCaseError> {
    let k = keyring();
    let cfg = config_for(c.suite);
    let opts = EncryptOptions::new()
        .with_suite(c.suite)
        .with_frame_length(c.frame);
    let ec = pairs(c);

    // Core: one-shot encrypt, decrypt in every mode (one-shot, byte by byte, random slices,
    // std Read and std Write).
    let msg = core_encrypt(c)?;
    check_library_decrypt(c, &msg)?;
    for mode in Mode::all(c.seed) {
        prop_assert_eq!(
            decrypt_in_mode(mode, &cfg, &k, &[], &msg),
            Outcome::Ok(c.plaintext.clone()),
            "mode {:?}",
            mode
        );
    }

    // Std adapter: the Vec API, and the writer in random pieces, byte-identical in length
    // to the core's message (message ids and keys differ between encryptions).
    let v = esdk::encrypt(&cfg, &k, &opts, &ec, &c.plaintext)
        .map_err(|e| TestCaseError::fail(format!("esdk::encrypt: {e}")))?;
    prop_assert_eq!(v.len(), msg.len());
    check_library_decrypt(c, &v)?;
    let mut w = esdk::EncryptingWriter::new(&cfg, &PROVIDER, &k, &opts, &ec, Vec::new())
        .map_err(|e| TestCaseError::fail(format!("EncryptingWriter: {e}")))?;
    let mut rng = SplitRng::new(c.seed ^ 0x77);
    let mut at = 0;
    while at < c.plaintext.len() {
        let n = rng.size(5000).min(c.plaintext.len() - at);
        w.write_all(&c.plaintext[at..at + n])
            .map_err(|e| TestCaseError::fail(format!("write: {e}")))?;
        at += n;
    }
    let streamed = w
        .finish()
        .map_err(|e| TestCaseError::fail(format!("finish: {e}")))?;
    prop_assert_eq!(streamed.len(), msg.len(), "writer length");
    let mut r = esdk::DecryptingReader::new(&cfg, &PROVIDER, &k, &ec, &streamed[..]);
    let mut back = Vec::new();
    r.read_to_end(&mut back)
        .map_err(|e| TestCaseError::fail(format!("DecryptingReader: {e}")))?;
    prop_assert_eq!(&back, &c.plaintext, "reader");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

/// The `esdk` binary of this test's profile: `target/<profile>/esdk`, which `cargo test
/// --workspace` builds (esdk-cli's own tests need it) before any test runs. A missing
/// binary fails the test (it is not a skip). Building it from here would be slower than
/// useful: `cargo build -p esdk-cli` alone resolves other features than the workspace's test
/// build and recompiles much of the dependency tree.
fn esdk_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<this test> → target/<profile>/esdk
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let bin = profile_dir.join(format!("esdk{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.is_file(),
            "no esdk binary at {}: run the workspace tests (cargo test --workspace) or \
             `cargo build -p esdk-cli --bin esdk` first",
            bin.display()
        );
        bin
    })
}

fn run_esdk(args: &[String]) -> Result<(), TestCaseError> {
    let out = Command::new(esdk_binary())
        .args(args)
        .output()
        .map_err(|e| TestCaseError::fail(format!("run esdk: {e}")))?;
    prop_assert!(
        out.status.success(),
        "esdk {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn cli(c: &Case, dir: &Path, key_file: &Path) -> Result<(), TestCaseError> {
    let (pt, ct, back) = (dir.join("pt"), dir.join("ct"), dir.join("back"));
    std::fs::write(&pt, &c.plaintext).expect("write plaintext");
    let policy = if c.suite.is_committing() {
        "require-encrypt-require-decrypt"
    } else {
        "forbid-encrypt-allow-decrypt"
    };
    let common = |verb: &str, input: &Path, output: &Path| -> Vec<String> {
        let mut a: Vec<String> = vec![
            verb.into(),
            "-q".into(),
            "--raw-aes-key".into(),
            key_file.display().to_string(),
            "--key-namespace".into(),
            NAMESPACE.into(),
            "--key-name".into(),
            KEY_NAME.into(),
            "--commitment-policy".into(),
            policy.into(),
            "-i".into(),
            input.display().to_string(),
            "-o".into(),
            output.display().to_string(),
        ];
        for (k, v) in &c.context {
            a.push(format!("--encryption-context={k}={v}"));
        }
        a
    };

    // The CLI encrypts, the library decrypts.
    let mut args = common("encrypt", &pt, &ct);
    args.extend([
        "--suite".into(),
        format!("0x{:04X}", c.suite.id()),
        "--frame-length".into(),
        c.frame.to_string(),
    ]);
    run_esdk(&args)?;
    check_library_decrypt(c, &std::fs::read(&ct).expect("read ciphertext"))?;

    // The core encrypts, the CLI decrypts (checking the context it is given).
    std::fs::write(&ct, core_encrypt(c)?).expect("write ciphertext");
    run_esdk(&common("decrypt", &ct, &back))?;
    prop_assert_eq!(
        &std::fs::read(&back).expect("read plaintext"),
        &c.plaintext,
        "CLI decrypt"
    );
    Ok(())
}

/// `cases` cases (unless `PROPTEST_CASES` says otherwise); shrunk failures are saved next to
/// this crate and replayed first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_roundtrip.txt"
        )))),
        source_file: Some(file!()),
        ..ProptestConfig::with_cases(cases_or_env(cases))
    }
}

fn cases_or_env(n: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n)
}

/// The number of replayed failures persisted in the regressions file (they run first, on top
/// of the configured cases).
fn persisted_failures() -> u32 {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proptest-regressions/proptest_roundtrip.txt"
    );
    std::fs::read_to_string(path).map_or(0, |s| {
        s.lines().filter(|l| l.starts_with("cc ")).count() as u32
    })
}

/// Runs `check` on `configured` generated cases (or `PROPTEST_CASES`), counting the cases
/// that actually ran; prints the count and fails unless it is what was configured (plus the
/// replayed persisted failures).
fn run_property(name: &str, configured: u32, check: impl Fn(&Case) -> Result<(), TestCaseError>) {
    let want = cases_or_env(configured);
    let ran = AtomicU32::new(0);
    let mut runner = TestRunner::new(config(configured));
    let result = runner.run(&case(), |c| {
        ran.fetch_add(1, Ordering::Relaxed);
        check(&c)
    });
    if let Err(e) = result {
        panic!("round-trip property ({name}): {e}");
    }
    let ran = ran.load(Ordering::Relaxed);
    let replayed = persisted_failures();
    println!(
        "round-trip property ({name}): {ran} cases passed, 0 failed ({want} configured, \
         {replayed} persisted failures replayed; random suites, frame lengths, plaintexts, \
         contexts)"
    );
    assert!(
        (want..=want + replayed).contains(&ran),
        "{name}: {ran} cases ran, {want} configured (+{replayed} replayed)"
    );
}

#[test]
fn round_trip_core_and_std() {
    run_property("core/std", 128, core_and_std);
}

#[test]
fn round_trip_cli() {
    // Two process starts per case.
    run_property("CLI", 32, |c| {
        let dir =
            std::env::temp_dir().join(format!("esdk-proptest-{}-{:x}", std::process::id(), c.seed));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let key_file = dir.join("key.hex");
        std::fs::write(&key_file, hex::encode(WRAPPING_KEY)).expect("key file");
        let r = cli(c, &dir, &key_file);
        std::fs::remove_dir_all(&dir).ok();
        r
    });
}
