//! Hostile inputs and resource limits (issue #8, part 3).
//!
//! Headers that claim 65 535 EDKs, 65 535-byte fields, frame lengths near 2^32, a non-framed
//! length near 2^36, or frame numbers near 2^32 must fail fast, in bounded memory, naming the
//! configured limit when one is set. Decrypting with small `max_header_len` / `max_body_len`
//! settings is checked on real messages, and no step may do quadratic work in an input length
//! (a 60 000-pair encryption context, the largest stored contexts, a 65 535-EDK header fed in
//! small pieces).
//!
//! The hostile headers are built by hand ([`Forge`]): a test keyring with a known data key
//! lets the builder compute real commitment values and header tags, so a hostile field is
//! reached by the decryptor exactly as an attacker who holds a valid key would reach it.
//!
//! Memory is measured with a counting global allocator (current and peak bytes; requests
//! above [`ALLOC_CAP`] are refused, which aborts the process). Scenarios that could abort run
//! in a child process (see [`isolated`]) so that an abort is reported as a test failure.
//! Every test takes [`SERIAL`] so that the peak figures belong to one test at a time.

use std::io::Read;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use esdk_core::error::{ContextError, Error, Malformed, PolicyViolation};
use esdk_core::header::{self, ParseLimits, Parsed};
use esdk_core::{
    AlgorithmSuite, CommitmentPolicy, Config, Decryptor, EncryptOptions, Keyring, Status,
};
use esdk_test_support::alloc::{Counting, peak_during};

// ---------------------------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------------------------

/// Larger single requests are refused (the process then aborts with "memory allocation of N
/// bytes failed"): nothing in these tests legitimately needs that much.
const ALLOC_CAP: usize = 1 << 30;

#[global_allocator]
static GLOBAL: Counting = Counting::new().with_cap(ALLOC_CAP);

/// Serializes the tests of this binary so that the peak figures are their own.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` and returns its result with the peak heap growth (bytes above the level at the
/// start).
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    peak_during(f)
}

/// Runs `body` in a child process (this test binary, filtered to `name`) with a time limit,
/// so that an abort (a refused allocation) or a runaway computation is a test failure with a
/// message, not the end of the test run.
fn isolated(name: &str, limit: Duration, body: impl FnOnce()) {
    const VAR: &str = "ESDK_HOSTILE_CHILD";
    if std::env::var(VAR).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(VAR, name)
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child test");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break Some(status);
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout).ok();
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).ok();
    }
    // (libtest may print the child's first line after its own "test name ... ".)
    for line in stdout
        .lines()
        .filter_map(|l| l.find("hostile:").map(|i| &l[i..]))
    {
        println!("{line}");
    }
    match status {
        None => panic!(
            "{name}: still running after {limit:?} (killed)\n{}",
            tail(&stdout)
        ),
        Some(st) => assert!(
            st.success() && stdout.contains("1 passed"),
            "{name} failed in its child process ({st}):\n{}\n{}",
            tail(&stdout),
            tail(&stderr)
        ),
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// A keyring with a known data key, and a header/body builder that seals with it
// ---------------------------------------------------------------------------------------------

use esdk_tests::forge::{FIXED_ID, FixedKeyring, Forge, ec_section, edk};

type Provider = esdk::DefaultProvider;
const PROVIDER: Provider = esdk::DEFAULT_PROVIDER;

/// One-shot decrypt.
fn one_shot(cfg: &Config, reproduced: &[(&str, &str)], ct: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; ct.len()];
    let d = esdk_core::decrypt(cfg, &PROVIDER, &FixedKeyring, reproduced, ct, &mut out)?;
    out.truncate(d.plaintext_len);
    Ok(out)
}

/// The work of an [`incremental`] decryption, counted: deterministic, unlike its duration.
#[derive(Debug, Clone, Copy)]
struct Fed {
    /// `process` calls.
    calls: usize,
    /// Bytes handed to `process`, summed over the calls: linear in the input when the
    /// decryptor keeps what it parsed, quadratic when it asks again for bytes it has seen.
    offered: usize,
}

/// Incremental decrypt that feeds exactly the `min` the decryptor asks for, as a careful
/// caller with a slow source does (`step` bytes at least).
fn incremental(cfg: &Config, ct: &[u8], step: usize) -> (Result<Vec<u8>, Error>, Fed) {
    let mut dec = Decryptor::new(cfg, &PROVIDER, &[]);
    let mut start = 0usize;
    let mut end = step.min(ct.len());
    let mut out = vec![0u8; 1 << 16];
    let mut plain = Vec::new();
    let mut fed = Fed {
        calls: 0,
        offered: 0,
    };
    loop {
        fed.calls += 1;
        fed.offered += end - start;
        let p = match dec.process_with(&FixedKeyring, &ct[start..end], &mut out) {
            Ok(p) => p,
            Err(e) => return (Err(e), fed),
        };
        start += p.consumed;
        plain.extend_from_slice(&out[..p.written]);
        match p.status {
            Status::Done => {
                return if start == ct.len() {
                    (Ok(plain), fed)
                } else {
                    (Err(Error::TrailingBytes { offset: start }), fed)
                };
            }
            Status::NeedInput { min } => {
                if end == ct.len() {
                    return (Err(Error::Truncated { offset: ct.len() }), fed);
                }
                end = (start + min.max(end - start + step)).min(ct.len());
            }
            _ => {}
        }
    }
}

/// `DecryptingReader` over `ct`, reading into an 8 KiB buffer.
fn read_mode(cfg: &Config, ct: &[u8]) -> Result<Vec<u8>, Error> {
    let mut r = esdk::DecryptingReader::new(cfg, &PROVIDER, &FixedKeyring, &[], ct);
    let mut plain = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(plain),
            Ok(n) => plain.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Err(esdk::stream::esdk_error(&e)
                    .unwrap_or_else(|| panic!("not an ESDK error: {e}")));
            }
        }
    }
}

/// A decryption in one mode.
type Run<'a> = &'a dyn Fn() -> Result<Vec<u8>, Error>;

/// Asserts that every mode fails with `want` in bounded memory. Failing fast is deterministic
/// here: `ct` ends right after the hostile claim, so a decryptor that waited for (or read)
/// the claimed bytes would report a truncation, not `want`.
fn all_modes_fail(what: &str, cfg: &Config, ct: &[u8], want: Error, max_mem: usize) {
    let checks: [(&str, Run<'_>); 3] = [
        ("one-shot", &|| one_shot(cfg, &[], ct)),
        ("incremental", &|| incremental(cfg, ct, 1).0),
        ("Read", &|| read_mode(cfg, ct)),
    ];
    for (mode, f) in checks {
        let (r, mem) = measure(f);
        assert_eq!(r, Err(want), "{what} ({mode})");
        println!("hostile: {what} ({mode}): {want}, peak heap {mem} B");
        assert!(
            mem <= max_mem,
            "{what} ({mode}): peak heap {mem} B > {max_mem} B"
        );
    }
    let text = want.to_string();
    if let Error::Policy(p) = want {
        let limit = match p {
            PolicyViolation::TooManyEncryptedDataKeys { max } => u64::from(max),
            PolicyViolation::HeaderTooLarge { max } => max as u64,
            PolicyViolation::BodyTooLarge { max } => max,
            _ => return,
        };
        assert!(
            text.contains(&limit.to_string()),
            "the error must name the limit: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

const V2: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const V1: AlgorithmSuite = AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256;
const MIB: usize = 1 << 20;
/// Peak heap allowed for a hostile input that must fail fast: the adapters' fixed buffers
/// (the `Read` adapter reads in 64 KiB chunks), nothing proportional to a claimed length.
const SMALL: usize = 256 * 1024;

/// A message with `n` EDKs: `n - 1` that the keyring skips, then the one it opens.
fn many_edks_message(f: &Forge, n: u16) -> Vec<u8> {
    let mut edks = Vec::with_capacity(usize::from(n) * 8);
    for i in 1..n {
        edks.extend(edk(b"x", &i.to_be_bytes(), b""));
    }
    edks.extend(edk(FIXED_ID.as_bytes(), b"", b"k"));
    let mut msg = f.header(&[], n, &edks, 2, 64);
    msg.extend(f.final_frame(1, b"hello"));
    msg
}

#[test]
fn edk_count_limit_is_enforced_as_soon_as_the_count_arrives() {
    let _g = serial();
    for f in [Forge::new(V1), Forge::new(V2)] {
        let mut cfg = f.cfg();
        cfg.max_encrypted_data_keys = Some(16);
        let want = Error::Policy(PolicyViolation::TooManyEncryptedDataKeys { max: 16 });
        // Only the prefix up to the count: the limit fails it before any EDK arrives.
        let full = many_edks_message(&f, u16::MAX);
        let prefix_len = {
            let fixed = if f.suite.message_format_version() == 1 {
                4 + 16
            } else {
                3 + 32
            };
            fixed + 2 + 2
        };
        all_modes_fail(
            "65 535 EDKs, count only",
            &cfg,
            &full[..prefix_len],
            want,
            SMALL,
        );
        all_modes_fail(
            "65 535 EDKs, whole message",
            &cfg,
            &full,
            want,
            4 * full.len(),
        );
        // 16 EDKs are accepted.
        let ok = many_edks_message(&f, 16);
        assert_eq!(one_shot(&cfg, &[], &ok).as_deref(), Ok(&b"hello"[..]));
    }
    println!("hostile: EDK count limit: 2 suites x 3 modes x 2 inputs passed, 0 failed");
}

#[test]
fn many_edks_without_a_limit_decrypt_in_linear_time_and_bounded_memory() {
    let _g = serial();
    let f = Forge::new(V2);
    let cfg = f.cfg();
    let msg = many_edks_message(&f, u16::MAX);
    let (r, mem) = measure(|| one_shot(&cfg, &[], &msg));
    println!(
        "hostile: 65 535 EDKs ({} B), one-shot: peak heap {mem} B",
        msg.len()
    );
    assert_eq!(r.as_deref(), Ok(&b"hello"[..]));
    assert!(mem <= 3 * msg.len());
}

#[test]
fn many_edks_read_in_linear_time() {
    let _g = serial();
    let name = "many_edks_read_in_linear_time";
    isolated(name, Duration::from_secs(20), || {
        let f = Forge::new(V2);
        let msg = many_edks_message(&f, u16::MAX);
        let (r, mem) = measure(|| read_mode(&f.cfg(), &msg));
        println!("hostile: 65 535 EDKs, Read: peak heap {mem} B");
        assert_eq!(r.as_deref(), Ok(&b"hello"[..]));
        assert!(mem <= 4 * msg.len() + MIB);
    });
}

#[test]
fn many_edks_fed_at_min_decrypt_in_linear_time() {
    let _g = serial();
    let name = "many_edks_fed_at_min_decrypt_in_linear_time";
    isolated(name, Duration::from_secs(20), || {
        let f = Forge::new(V2);
        let cfg = f.cfg();
        let msg = many_edks_message(&f, u16::MAX);
        let (r, fed) = incremental(&cfg, &msg, 1);
        println!(
            "hostile: 65 535 EDKs ({} B) fed at min: {} calls, {} B offered in all",
            msg.len(),
            fed.calls,
            fed.offered
        );
        assert_eq!(r.as_deref(), Ok(&b"hello"[..]));
        // One request per field (an EDK has three, each behind a 2-byte length: at most six
        // requests), never one per byte (about nine per EDK here). The bytes offered are
        // quadratic by the API's design (the header stays in the caller's buffer until it is
        // authenticated), so they are printed, not bounded.
        let edks = usize::from(u16::MAX);
        assert!(fed.calls <= 6 * edks + 64, "{fed:?} for {edks} EDKs");
    });
}

#[test]
fn fields_of_65535_bytes_fail_fast_under_a_header_limit_and_decrypt_without() {
    let _g = serial();
    let f = Forge::new(V2);
    let mut cfg = f.cfg();
    cfg.max_header_len = Some(4096);
    let want = Error::Policy(PolicyViolation::HeaderTooLarge { max: 4096 });
    // A context section that claims 65 535 bytes, of which none follow.
    let mut claim = vec![2, 0x04, 0x78];
    claim.extend_from_slice(&f.mid);
    claim.extend_from_slice(&[0xFF, 0xFF]);
    all_modes_fail("context length 65 535", &cfg, &claim, want, SMALL);
    // An EDK whose provider id, then whose provider info, claims 65 535 bytes.
    for field in 0..3 {
        let mut h = claim[..claim.len() - 2].to_vec();
        h.extend_from_slice(&[0, 0, 0, 1]);
        for i in 0..field {
            h.extend_from_slice(&[0, 1, b'a' + i as u8]);
        }
        h.extend_from_slice(&[0xFF, 0xFF, b'x']);
        all_modes_fail("EDK field length 65 535", &cfg, &h, want, SMALL);
    }
    // Without a limit: a 65 535-byte context and three 65 535-byte EDK fields decrypt.
    let value = vec![b'v'; 0xFFFF - 2 - 4 - 1];
    let ec = ec_section(&[(b"k", &value)]);
    assert_eq!(ec.len(), 0xFFFF);
    let big = vec![0x5A; 0xFFFF];
    let mut edks = edk(&vec![b'p'; 0xFFFF], &big, &big);
    edks.extend(edk(FIXED_ID.as_bytes(), b"", b"k"));
    let mut msg = f.header(&ec, 2, &edks, 2, 64);
    msg.extend(f.final_frame(1, b"big fields"));
    let cfg = f.cfg();
    for (mode, r) in [
        ("one-shot", measure(|| one_shot(&cfg, &[], &msg))),
        ("incremental", measure(|| incremental(&cfg, &msg, 4096).0)),
        ("Read", measure(|| read_mode(&cfg, &msg))),
    ] {
        let (r, mem) = r;
        println!(
            "hostile: 65 535-byte fields ({} B), {mode}: peak heap {mem} B",
            msg.len()
        );
        assert_eq!(r.as_deref(), Ok(&b"big fields"[..]), "{mode}");
        assert!(mem <= 4 * msg.len() + MIB, "{mode}");
    }
    // Fed at min, each 65 535-byte field is asked for whole (one request), not byte by byte.
    let (r, fed) = incremental(&cfg, &msg, 1);
    println!("hostile: 65 535-byte fields fed at min: {fed:?}");
    assert_eq!(r.as_deref(), Ok(&b"big fields"[..]));
    assert!(fed.calls <= 64, "{fed:?}");
}

#[test]
fn frame_length_near_2_32_fails_fast_under_a_body_limit() {
    let _g = serial();
    for f in [Forge::new(V1), Forge::new(V2)] {
        let mut cfg = f.cfg();
        cfg.max_body_len = Some(MIB as u64);
        let want = Error::Policy(PolicyViolation::BodyTooLarge { max: MIB as u64 });
        let mut msg = f.simple_header(2, u32::MAX);
        msg.extend_from_slice(&1u32.to_be_bytes());
        all_modes_fail("frame length 2^32 - 1", &cfg, &msg, want, SMALL);
        // Without a limit: one-shot and incremental see a truncated frame at once.
        let cfg = f.cfg();
        let trunc = Error::Truncated { offset: msg.len() };
        let (r, mem) = measure(|| one_shot(&cfg, &[], &msg));
        assert_eq!(r, Err(trunc));
        let (r2, mem2) = measure(|| incremental(&cfg, &msg, 1).0);
        assert_eq!(r2, Err(trunc));
        assert!(mem.max(mem2) <= SMALL);
        // A valid message with that frame length and a short final frame decrypts in every
        // mode without frame-sized buffers.
        let mut ok = f.simple_header(2, u32::MAX);
        ok.extend(f.final_frame(1, b"short"));
        for (mode, r) in [
            ("one-shot", measure(|| one_shot(&cfg, &[], &ok))),
            ("incremental", measure(|| incremental(&cfg, &ok, 1).0)),
            ("Read", measure(|| read_mode(&cfg, &ok))),
        ] {
            let (r, mem) = r;
            assert_eq!(r.as_deref(), Ok(&b"short"[..]), "{mode}");
            assert!(mem <= MIB, "{mode}: peak heap {mem} B");
        }
    }
}

#[test]
fn reader_memory_stays_bounded_for_a_claimed_frame_length_near_2_32() {
    let _g = serial();
    let name = "reader_memory_stays_bounded_for_a_claimed_frame_length_near_2_32";
    isolated(name, Duration::from_secs(60), || {
        let f = Forge::new(V2);
        let mut msg = f.simple_header(2, u32::MAX);
        msg.extend_from_slice(&1u32.to_be_bytes());
        let (r, mem) = measure(|| read_mode(&f.cfg(), &msg));
        println!("hostile: Read, frame length 2^32 - 1: {r:?}, peak heap {mem} B");
        assert_eq!(r, Err(Error::Truncated { offset: msg.len() }));
        assert!(
            mem <= 16 * MIB,
            "peak heap {mem} B for {} B of input",
            msg.len()
        );
    });
}

#[test]
fn non_framed_length_near_2_36_fails_fast() {
    let _g = serial();
    for f in [Forge::new(V1), Forge::new(V2)] {
        let h = f.simple_header(1, 0);
        let body = |len: u64| {
            let mut m = h.clone();
            m.extend_from_slice(&[0x33; 12]);
            m.extend_from_slice(&len.to_be_bytes());
            m
        };
        let max = esdk_core::body::MAX_NON_FRAMED_LEN;
        for len in [max + 1, u64::MAX] {
            let want = Error::Malformed {
                offset: h.len() + 12,
                kind: Malformed::NonFramedLength(len),
            };
            all_modes_fail(
                "non-framed length > 2^36 - 32",
                &f.cfg(),
                &body(len),
                want,
                SMALL,
            );
        }
        let mut cfg = f.cfg();
        cfg.max_body_len = Some(MIB as u64);
        let want = Error::Policy(PolicyViolation::BodyTooLarge { max: MIB as u64 });
        all_modes_fail("non-framed length 2^36 - 32", &cfg, &body(max), want, SMALL);
        // Without a limit, one-shot and incremental see the truncation at once.
        let m = body(max);
        let trunc = Err(Error::Truncated { offset: m.len() });
        assert_eq!(one_shot(&f.cfg(), &[], &m), trunc);
        assert_eq!(incremental(&f.cfg(), &m, 1).0, trunc);
        // A real non-framed message decrypts in every mode.
        let mut ok = h.clone();
        ok.extend(f.non_framed(b"single block"));
        assert_eq!(
            one_shot(&f.cfg(), &[], &ok).as_deref(),
            Ok(&b"single block"[..])
        );
        assert_eq!(
            incremental(&f.cfg(), &ok, 1).0.as_deref(),
            Ok(&b"single block"[..])
        );
        assert_eq!(
            read_mode(&f.cfg(), &ok).as_deref(),
            Ok(&b"single block"[..])
        );
    }
}

#[test]
fn reader_memory_stays_bounded_for_a_claimed_non_framed_length_near_2_36() {
    let _g = serial();
    let name = "reader_memory_stays_bounded_for_a_claimed_non_framed_length_near_2_36";
    isolated(name, Duration::from_secs(60), || {
        let f = Forge::new(V2);
        let mut msg = f.simple_header(1, 0);
        msg.extend_from_slice(&[0x33; 12]);
        msg.extend_from_slice(&esdk_core::body::MAX_NON_FRAMED_LEN.to_be_bytes());
        let (r, mem) = measure(|| read_mode(&f.cfg(), &msg));
        println!("hostile: Read, non-framed 2^36 - 32: {r:?}, peak heap {mem} B");
        assert_eq!(r, Err(Error::Truncated { offset: msg.len() }));
        assert!(
            mem <= 16 * MIB,
            "peak heap {mem} B for {} B of input",
            msg.len()
        );
    });
}

#[test]
fn frame_numbers_near_2_32_fail_fast() {
    let _g = serial();
    let f = Forge::new(V2);
    let cfg = f.cfg();
    let h = f.simple_header(2, 16);
    for seq in [0u32, 2, 0xFFFF_FFFE] {
        let mut m = h.clone();
        m.extend(f.regular(seq, &[7; 16]));
        let want = Error::Malformed {
            offset: h.len(),
            kind: Malformed::FrameSequence {
                expected: 1,
                found: seq,
            },
        };
        all_modes_fail("regular frame number", &cfg, &m, want, SMALL);
        let mut m = h.clone();
        m.extend(f.final_frame(seq, &[7; 5]));
        let want = Error::Malformed {
            offset: h.len() + 4,
            kind: Malformed::FrameSequence {
                expected: 1,
                found: seq,
            },
        };
        all_modes_fail("final frame number", &cfg, &m, want, SMALL);
    }
    // Encrypting more than 2^32 - 1 frames is refused before any work.
    let opts = EncryptOptions::new().with_suite(V2).with_frame_length(1);
    let max_frames = u64::from(u32::MAX);
    assert!(esdk_core::body::framed_body_len(1, max_frames).is_some());
    assert_eq!(esdk_core::body::framed_body_len(1, max_frames + 1), None);
    let too_many = esdk_core::encrypted_len(&cfg, &opts, &FixedKeyring, &[], 1 << 32);
    assert_eq!(
        too_many,
        Err(Error::Malformed {
            offset: 0,
            kind: Malformed::TooManyFrames
        })
    );
}

/// A real message (raw AES keyring, 0x0578 and 0x0178, 64-byte frames) under small limits.
#[test]
fn small_max_header_and_max_body_settings() {
    let _g = serial();
    let key = [0x42u8; 32];
    let a = esdk_raw::RawAesKeyring::new("ns", "key-a", &key).expect("keyring");
    let b = esdk_raw::RawAesKeyring::new("ns", "key-b", &key).expect("keyring");
    let children: [&dyn Keyring; 1] = [&b];
    let multi = esdk_core::MultiKeyring::new(&a, &children);
    let pt: Vec<u8> = (0..200u8).collect();
    let mut checked = 0;
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
    ] {
        let base =
            Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt);
        let enc_cfg = esdk_test_support::config_for(suite);
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(64);
        let msg = esdk::encrypt(&enc_cfg, &multi, &opts, &[("k", "v")], &pt).expect("encrypt");
        let Ok(Parsed::Complete(h)) = header::parse(&msg, ParseLimits::default()) else {
            panic!("header");
        };
        let hl = h.bytes.len();
        let run = |cfg: &Config| -> [Result<Vec<u8>, Error>; 3] {
            let mut out = vec![0u8; msg.len()];
            let one = esdk_core::decrypt(cfg, &PROVIDER, &multi, &[], &msg, &mut out)
                .map(|d| out[..d.plaintext_len].to_vec());
            let modes = esdk_tests::modes::Mode::all(7);
            let inc = match esdk_tests::modes::decrypt_in_mode(modes[2], cfg, &multi, &[], &msg) {
                esdk_tests::modes::Outcome::Ok(v) => Ok(v),
                esdk_tests::modes::Outcome::Err { error, .. } => Err(error),
            };
            let read = match esdk_tests::modes::decrypt_in_mode(modes[3], cfg, &multi, &[], &msg) {
                esdk_tests::modes::Outcome::Ok(v) => Ok(v),
                esdk_tests::modes::Outcome::Err { error, .. } => Err(error),
            };
            [one, inc, read]
        };
        let cases: [(Config, Result<Vec<u8>, Error>); 6] = [
            (
                Config {
                    max_header_len: Some(hl - 1),
                    ..base
                },
                Err(PolicyViolation::HeaderTooLarge { max: hl - 1 }.into()),
            ),
            (
                Config {
                    max_header_len: Some(hl),
                    ..base
                },
                Ok(pt.clone()),
            ),
            (
                Config {
                    max_body_len: Some(63),
                    ..base
                },
                Err(PolicyViolation::BodyTooLarge { max: 63 }.into()),
            ),
            (
                Config {
                    max_body_len: Some(64),
                    ..base
                },
                Ok(pt.clone()),
            ),
            (
                Config {
                    max_encrypted_data_keys: Some(1),
                    ..base
                },
                Err(PolicyViolation::TooManyEncryptedDataKeys { max: 1 }.into()),
            ),
            (
                Config {
                    max_encrypted_data_keys: Some(2),
                    ..base
                },
                Ok(pt.clone()),
            ),
        ];
        for (cfg, want) in cases {
            for r in run(&cfg) {
                assert_eq!(r, want, "{suite}: {cfg:?}");
                checked += 1;
            }
            if let Err(e) = &want {
                let text = e.to_string();
                assert!(text.contains("maximum"), "{text}");
            }
        }
        // The EDK limit applies on encrypt too.
        let one = Config {
            max_encrypted_data_keys: Some(1),
            ..enc_cfg
        };
        assert_eq!(
            esdk::encrypt(&one, &multi, &opts, &[], &pt).map_err(|e| e.core()),
            Err(Some(
                PolicyViolation::TooManyEncryptedDataKeys { max: 1 }.into()
            ))
        );
    }
    // A non-framed body under a body limit.
    let f = Forge::new(V2);
    let mut nf = f.simple_header(1, 0);
    nf.extend(f.non_framed(&[9; 100]));
    let cfg = Config {
        max_body_len: Some(99),
        ..f.cfg()
    };
    let want = Error::Policy(PolicyViolation::BodyTooLarge { max: 99 });
    all_modes_fail("non-framed body over max_body_len", &cfg, &nf, want, SMALL);
    let cfg = Config {
        max_body_len: Some(100),
        ..f.cfg()
    };
    assert_eq!(one_shot(&cfg, &[], &nf), Ok(vec![9; 100]));
    println!("hostile: small limits: {checked} decryptions passed, 0 failed");
}

fn sixty_thousand_pairs(keys: &mut Vec<String>) -> Vec<(&str, &str)> {
    *keys = (0..60_000u32).map(|i| format!("key-{i:05}")).collect();
    keys.iter().rev().map(|k| (k.as_str(), "v")).collect()
}

#[test]
fn sixty_thousand_pair_context_is_refused_fast_on_encrypt() {
    let _g = serial();
    let mut keys = Vec::new();
    let mut pairs = sixty_thousand_pairs(&mut keys);
    let cfg = Config::new();
    let opts = EncryptOptions::new().with_suite(V2);
    let too_large = Error::Malformed {
        offset: 0,
        kind: Malformed::EncryptionContext(ContextError::TooLarge),
    };
    let (r, mem) = measure(|| esdk::encrypt(&cfg, &FixedKeyring, &opts, &pairs, b"x"));
    println!("hostile: encrypt with 60 000 pairs: peak heap {mem} B");
    assert_eq!(r.map_err(|e| e.core()), Err(Some(too_large)));
    assert!(mem <= 4 * MIB, "peak heap {mem} B");
    // The core's encrypt exposes no work count (its sort is a heapsort, O(n log n)): the exact
    // error is what is checked; it allocates nothing.
    let mut out = vec![0u8; 4096];
    let (r, _) = measure(|| {
        esdk_core::encrypt(
            &cfg,
            &PROVIDER,
            &FixedKeyring,
            &opts,
            &mut pairs,
            b"x",
            &mut out,
        )
    });
    assert_eq!(r, Err(too_large));
}

#[test]
fn sixty_thousand_pair_reproduced_context_is_handled_fast_on_decrypt() {
    let _g = serial();
    let name = "sixty_thousand_pair_reproduced_context_is_handled_fast_on_decrypt";
    isolated(name, Duration::from_secs(30), || {
        let mut keys = Vec::new();
        let pairs = sixty_thousand_pairs(&mut keys);
        let f = Forge::new(V2);
        let mut msg = f.simple_header(2, 64);
        msg.extend(f.final_frame(1, b"x"));
        let cfg = f.cfg();
        let mut dec = Decryptor::new(&cfg, &PROVIDER, &pairs);
        let mut out = vec![0u8; msg.len()];
        let r = dec.process_with(&FixedKeyring, &msg, &mut out).map(|_| ());
        let work = dec.context_comparisons();
        println!(
            "hostile: decrypt with a 60 000-pair reproduced context: {r:?} after {work} key \
             comparisons"
        );
        // The pairs not stored in the message cannot fit in one serialized context.
        let too_large = Error::Malformed {
            offset: 0,
            kind: Malformed::EncryptionContext(ContextError::TooLarge),
        };
        assert_eq!(r, Err(too_large));
        assert!(work <= 4 * n_log_n(pairs.len()), "{work} comparisons");
    });
}

/// The largest stored contexts: 10 922 pairs in 65 534 bytes, sorted or not.
fn max_pairs_context(sorted: bool) -> Vec<u8> {
    // Two-byte keys of ASCII 0x01..=0x7F (control characters are valid UTF-8): 127² keys,
    // so 10 922 distinct ones, in sorted order.
    let keys: Vec<[u8; 2]> = (0..10_922u16)
        .map(|i| [1 + (i / 127) as u8, 1 + (i % 127) as u8])
        .collect();
    let mut pairs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &b""[..])).collect();
    if !sorted {
        pairs.reverse();
    }
    ec_section(&pairs)
}

#[test]
fn largest_sorted_stored_context_decrypts_fast() {
    let _g = serial();
    let f = Forge::new(V2);
    let ec = max_pairs_context(true);
    let mut msg = f.header(&ec, 1, &edk(FIXED_ID.as_bytes(), b"", b"k"), 2, 64);
    msg.extend(f.final_frame(1, b"x"));
    let mut out = vec![0u8; msg.len()];
    let (r, mem) = measure(|| {
        esdk_core::decrypt(&f.cfg(), &PROVIDER, &FixedKeyring, &[], &msg, &mut out)
            .map(|d| (d.plaintext_len, d.context_comparisons))
    });
    let (len, work) = r.expect("decrypts");
    println!(
        "hostile: sorted {}-byte stored context: {work} key comparisons, peak heap {mem} B",
        ec.len()
    );
    assert_eq!(&out[..len], b"x");
    // Sorted and free of duplicates is seen in one linear pass: no sort, no comparisons.
    assert_eq!(work, 0);
}

#[test]
fn largest_unsorted_stored_context_decrypts_in_n_log_n_comparisons() {
    let _g = serial();
    let f = Forge::new(V2);
    let ec = max_pairs_context(false);
    let n = u64::from(u16::from_be_bytes([ec[0], ec[1]]));
    let mut msg = f.header(&ec, 1, &edk(FIXED_ID.as_bytes(), b"", b"k"), 2, 64);
    msg.extend(f.final_frame(1, b"x"));
    let mut out = vec![0u8; msg.len()];
    let (r, _) = measure(|| {
        esdk_core::decrypt(&f.cfg(), &PROVIDER, &FixedKeyring, &[], &msg, &mut out)
            .map(|d| (d.plaintext_len, d.context_comparisons))
    });
    let (len, work) = r.expect("decrypts");
    assert_eq!(&out[..len], b"x");
    println!(
        "hostile: unsorted {}-byte stored context ({n} pairs), one-shot: {work} key \
         comparisons ({:.1} n log2 n)",
        ec.len(),
        work as f64 / (n as f64 * (n as f64).log2())
    );
    assert!(work <= 4 * n * 14, "{work} comparisons for {n} pairs");
    // The largest section sorted, reverse-sorted and shuffled, in every mode.
    let sorted = max_pairs_context(true);
    let mut shuffled: Vec<&[u8]> = {
        let mut v = Vec::new();
        let mut at = 2;
        while at < sorted.len() {
            let l = 4 + usize::from(u16::from_be_bytes([sorted[at], sorted[at + 1]]));
            let l = l + usize::from(u16::from_be_bytes([sorted[at + l - 2], sorted[at + l - 1]]));
            v.push(&sorted[at..at + l]);
            at += l;
        }
        v
    };
    esdk_tests::forge::shuffle(&mut shuffled, 5);
    let mut shuffled_ec = sorted[..2].to_vec();
    shuffled_ec.extend(shuffled.concat());
    for (what, ec) in [
        ("sorted", sorted.clone()),
        ("reverse", ec),
        ("shuffled", shuffled_ec),
    ] {
        assert_eq!(ec.len(), 65_534);
        let mut msg = f.header(&ec, 1, &edk(FIXED_ID.as_bytes(), b"", b"k"), 2, 64);
        msg.extend(f.final_frame(1, b"x"));
        let runs = work_in_modes(&f.cfg(), &[], &msg);
        let counts: Vec<u64> = runs.iter().map(|r| r.2).collect();
        println!("hostile: largest context ({n} pairs), {what}: comparisons per mode {counts:?}");
        for (mode, r, work) in runs {
            assert_eq!(r.as_deref(), Ok(&b"x"[..]), "{what}: {mode}");
            assert!(work <= 4 * n_log_n(n as usize), "{what}: {mode}: {work}");
        }
    }
}

#[test]
// Regression: fuzz/regressions/header/split-inconsistency-edk-provider-id-vs-header-limit
// (fixed in core/src/header.rs: EDKs are parsed from the first `max_header_len` bytes only).
fn header_limit_verdict_does_not_depend_on_input_splits() {
    let _g = serial();
    let f = Forge::new(V2);
    let mut cfg = f.cfg();
    cfg.max_header_len = Some(64);
    let mut h = vec![2, 0x04, 0x78];
    h.extend_from_slice(&f.mid);
    h.extend_from_slice(&[0, 0, 0, 1]);
    h.extend(edk(&[0xFF; 100], b"", b"k"));
    let whole = one_shot(&cfg, &[], &h);
    let pieces = incremental(&cfg, &h, 1).0;
    assert_eq!(whole, pieces, "one-shot vs incremental");
    assert_eq!(
        whole,
        Err(PolicyViolation::HeaderTooLarge { max: 64 }.into())
    );
}

#[test]
fn required_context_larger_than_the_message_still_decrypts() {
    let _g = serial();
    let k = esdk_raw::RawAesKeyring::new("ns", "key", &[7u8; 32]).expect("keyring");
    let keys = ["tenant"];
    let cmm = esdk_core::RequiredEncryptionContextCmm::new(&k, &keys);
    let long = "t".repeat(4000);
    let pairs = [("tenant", long.as_str())];
    let opts = EncryptOptions::new().with_suite(V2);
    let msg = esdk::encrypt(&Config::new(), &cmm, &opts, &pairs, b"x").expect("encrypt");
    assert!(msg.len() < 1000, "the required value is not stored");
    let r = esdk::decrypt(&Config::new(), &cmm, &pairs, &msg).expect("decrypt");
    assert_eq!(r.plaintext, b"x");
}

/// Regression: fuzz/regressions/decrypt_*/non-canonical-context-needs-scratch. The header
/// step assembles the full context in `out` (the core has no heap): with a frame-sized `out`
/// too small for it, it must say how much it needs, consume nothing, and go on with a buffer
/// of that size; the frames then decrypt into the frame-sized `out`.
#[test]
fn header_step_reports_the_context_scratch_it_needs() {
    let _g = serial();
    let k = esdk_raw::RawAesKeyring::new("ns", "key", &[7u8; 32]).expect("keyring");
    let keys = ["tenant"];
    let cmm = esdk_core::RequiredEncryptionContextCmm::new(&k, &keys);
    let long = "t".repeat(200);
    let pairs = [("tenant", long.as_str())];
    let opts = EncryptOptions::new().with_suite(V2).with_frame_length(64);
    let msg = esdk::encrypt(&Config::new(), &cmm, &opts, &pairs, &[5; 100]).expect("encrypt");
    let cfg = Config::new();
    let mut dec = Decryptor::new(&cfg, &PROVIDER, &pairs);
    let mut out = [0u8; 64];
    let required = match dec.process_with(&cmm, &msg, &mut out) {
        Err(Error::BufferTooSmall { required }) => required,
        other => panic!("a 64-byte out for a 200-byte required context: {other:?}"),
    };
    // Count, key length, key, value length, value.
    assert_eq!(required, 2 + 2 + "tenant".len() + 2 + 200);
    let mut scratch = vec![0u8; required];
    let p = dec
        .process_with(&cmm, &msg, &mut scratch)
        .expect("header step");
    assert_eq!(p.status, Status::Header);
    let mut at = p.consumed;
    let mut plain = Vec::new();
    while !dec.is_done() {
        let p = dec
            .process(&msg[at..], &mut out)
            .unwrap_or_else(|e| panic!("at {at} with a 64-byte out: {e:?}"));
        at += p.consumed;
        plain.extend_from_slice(&out[..p.written]);
    }
    assert_eq!(plain, [5; 100]);
    println!("hostile: required context scratch: {required} B asked for and enough");
}

// ---------------------------------------------------------------------------------------------
// Issue #14: the work of hostile headers, counted (key comparisons), in every mode
// ---------------------------------------------------------------------------------------------

/// Orders of a stored context.
#[derive(Clone, Copy, Debug)]
enum Order {
    Sorted,
    Reverse,
    Shuffled,
}

/// A context of `n` (≤ 8 836) pairs with distinct two-byte printable keys and one-byte
/// values, in `order`.
fn hostile_context(n: usize, order: Order) -> Vec<u8> {
    let keys = esdk_tests::forge::printable_keys(n);
    let mut pairs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &b"v"[..])).collect();
    match order {
        Order::Sorted => {}
        Order::Reverse => pairs.reverse(),
        Order::Shuffled => esdk_tests::forge::shuffle(&mut pairs, n as u64),
    }
    ec_section(&pairs)
}

/// The comparisons a `Debug` rendering of a decryptor (or an adapter around one) reports.
fn comparisons_in_debug(s: &str) -> u64 {
    let at = s
        .find("context_comparisons: ")
        .unwrap_or_else(|| panic!("no comparison count in {s}"));
    s[at + 21..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a count")
}

/// A reader that yields at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A mode's name, result and key comparisons.
type ModeRun = (&'static str, Result<Vec<u8>, Error>, u64);

/// Decrypts `msg` in five modes and returns each mode's name, result and key comparisons:
/// the core one-shot, the `Decryptor` fed 1-byte and 61-byte pieces with a 64-byte `out`
/// grown only on `BufferTooSmall`, `DecryptingReader` (13-byte reads from its source into a
/// 7-byte buffer) and `DecryptingWriter` (5-byte writes).
fn work_in_modes(cfg: &Config, reproduced: &[(&str, &str)], msg: &[u8]) -> Vec<ModeRun> {
    let mut runs = Vec::new();
    let mut out = vec![0u8; msg.len()];
    let (r, w) = match esdk_core::decrypt(cfg, &PROVIDER, &FixedKeyring, reproduced, msg, &mut out)
    {
        Ok(d) => (Ok(out[..d.plaintext_len].to_vec()), d.context_comparisons),
        Err(e) => (Err(e), u64::MAX),
    };
    runs.push(("one-shot", r, w));
    for (mode, step) in [
        ("Decryptor, 1-byte pieces", 1),
        ("Decryptor, 61-byte pieces", 61),
    ] {
        let mut dec = Decryptor::new(cfg, &PROVIDER, reproduced);
        let (mut start, mut end) = (0usize, step.min(msg.len()));
        let mut out = vec![0u8; 64];
        let mut plain = Vec::new();
        let r = loop {
            match dec.process_with(&FixedKeyring, &msg[start..end], &mut out) {
                Ok(p) => {
                    start += p.consumed;
                    plain.extend_from_slice(&out[..p.written]);
                    match p.status {
                        Status::Done => break Ok(plain),
                        Status::NeedInput { .. } if end == msg.len() => {
                            break Err(Error::Truncated { offset: end });
                        }
                        Status::NeedInput { .. } => end = (end + step).min(msg.len()),
                        _ => {}
                    }
                }
                Err(Error::BufferTooSmall { required }) => out.resize(required, 0),
                Err(e) => break Err(e),
            }
        };
        runs.push((mode, r, dec.context_comparisons()));
    }
    let src = Trickle {
        data: msg,
        step: 13,
    };
    let mut reader = esdk::DecryptingReader::new(cfg, &PROVIDER, &FixedKeyring, reproduced, src);
    let mut plain = Vec::new();
    let mut buf = [0u8; 7];
    let r = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(plain),
            Ok(n) => plain.extend_from_slice(&buf[..n]),
            Err(e) => break Err(esdk::stream::esdk_error(&e).expect("an ESDK error")),
        }
    };
    runs.push((
        "DecryptingReader",
        r,
        comparisons_in_debug(&format!("{reader:?}")),
    ));
    let mut writer =
        esdk::DecryptingWriter::new(cfg, &PROVIDER, &FixedKeyring, reproduced, Vec::new());
    let mut r = Ok(());
    for chunk in msg.chunks(5) {
        if let Err(e) = std::io::Write::write_all(&mut writer, chunk) {
            r = Err(esdk::stream::esdk_error(&e).expect("an ESDK error"));
            break;
        }
    }
    let w = comparisons_in_debug(&format!("{writer:?}"));
    let r = r.and_then(|()| {
        writer
            .finish()
            .map_err(|e| esdk::stream::esdk_error(&e).expect("an ESDK error"))
    });
    runs.push(("DecryptingWriter", r, w));
    runs
}

fn n_log_n(n: usize) -> u64 {
    (n as f64 * (n as f64).log2()).ceil() as u64
}

/// The stored context sorted, reverse-sorted and shuffled, at 1 105 to 8 836 pairs (the
/// largest with distinct two-byte printable keys), in five modes: the comparisons stay under
/// 4 n log2 n and grow by less than 2.6x when n doubles (n² would be 4x).
#[test]
fn context_work_grows_as_n_log_n_in_every_mode() {
    let _g = serial();
    let f = Forge::new(V2);
    let cfg = f.cfg();
    let mut checked = 0;
    for order in [Order::Sorted, Order::Reverse, Order::Shuffled] {
        let mut prev: Option<Vec<u64>> = None;
        for n in [1105usize, 2209, 4418, 8836] {
            let ec = hostile_context(n, order);
            let mut msg = f.header(&ec, 1, &edk(FIXED_ID.as_bytes(), b"", b"k"), 2, 64);
            msg.extend(f.final_frame(1, b"ok"));
            let runs = work_in_modes(&cfg, &[], &msg);
            let counts: Vec<u64> = runs.iter().map(|r| r.2).collect();
            for (mode, r, work) in &runs {
                assert_eq!(r.as_deref(), Ok(&b"ok"[..]), "{order:?} {n} {mode}");
                assert!(
                    *work <= 4 * n_log_n(n),
                    "{order:?} {n} {mode}: {work} comparisons > 4 n log2 n"
                );
                checked += 1;
            }
            println!(
                "hostile: work: {order:?} context of {n} pairs: comparisons per mode {counts:?}"
            );
            if let Some(p) = &prev {
                for (c, q) in counts.iter().zip(p) {
                    assert!(
                        *c as f64 <= 2.6 * (*q).max(1) as f64,
                        "{order:?}: {q} -> {c} comparisons when n doubled to {n}"
                    );
                }
            }
            prev = Some(counts);
        }
    }
    println!("hostile: work: {checked} decryptions checked, 0 failed");
}

/// The 8 836-pair unsorted context with 65 535 EDKs whose provider ids are long (the issue's
/// 6.4 MB header), the last one opened by the keyring; and the same with a reproduced context
/// of all stored pairs in another order. Every mode decrypts it in O(n log n) comparisons.
#[test]
fn huge_unsorted_context_with_65535_edks_in_tiny_pieces() {
    let _g = serial();
    let name = "huge_unsorted_context_with_65535_edks_in_tiny_pieces";
    isolated(name, Duration::from_secs(300), || {
        let f = Forge::new(V2);
        let cfg = f.cfg();
        let n = 8836;
        let ec = hostile_context(n, Order::Shuffled);
        let edks = esdk_tests::forge::long_edks(u16::MAX - 1, 90);
        let mut all = edks.clone();
        all.extend(edk(FIXED_ID.as_bytes(), b"", b"k"));
        let mut msg = f.header(&ec, u16::MAX, &all, 2, 64);
        msg.extend(f.final_frame(1, b"ok"));
        let keys = esdk_tests::forge::printable_keys(n);
        let strs: Vec<String> = keys
            .iter()
            .map(|k| String::from_utf8(k.to_vec()).expect("ascii"))
            .collect();
        let mut repro: Vec<(&str, &str)> = strs.iter().map(|k| (k.as_str(), "v")).collect();
        repro.reverse();
        let mut checked = 0;
        for (what, reproduced) in [
            ("no reproduced context", &[][..]),
            ("reproduced context", &repro[..]),
        ] {
            let (runs, _) = measure(|| work_in_modes(&cfg, reproduced, &msg));
            for (mode, r, work) in &runs {
                println!(
                    "hostile: {} B header, {n}-pair unsorted context, 65 535 EDKs, {what}, \
                     {mode}: {work} key comparisons",
                    msg.len()
                );
                assert_eq!(r.as_deref(), Ok(&b"ok"[..]), "{what}: {mode}");
                assert!(
                    *work <= 6 * n_log_n(n),
                    "{what}: {mode}: {work} comparisons"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 10);
    });
}

/// A reproduced context with a duplicate key is `ApiMisuse` whether or not the key is
/// stored, with or without scratch, in every mode; found in O(n log n) with scratch.
#[test]
fn duplicate_reproduced_keys_are_api_misuse() {
    let _g = serial();
    let f = Forge::new(V2);
    let cfg = f.cfg();
    let stored = ec_section(&[(b"t", b"good"), (b"u", b"1")]);
    let mut msg = f.header(&stored, 1, &edk(FIXED_ID.as_bytes(), b"", b"k"), 2, 64);
    msg.extend(f.final_frame(1, b"ok"));
    let plain = {
        let mut m = f.header(&[], 1, &edk(FIXED_ID.as_bytes(), b"", b"k"), 2, 64);
        m.extend(f.final_frame(1, b"ok"));
        m
    };
    let want = Error::ApiMisuse(esdk_core::error::ApiMisuse::DuplicateEncryptionContextKey);
    type Case<'a> = (&'a str, &'a [u8], &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 4] = [
        ("key not stored", &plain, &[("t", "good"), ("t", "evil")]),
        (
            "stored key, second value differs",
            &msg,
            &[("t", "good"), ("t", "evil")],
        ),
        (
            "stored key, same value twice",
            &msg,
            &[("t", "good"), ("t", "good")],
        ),
        (
            "key not stored, apart",
            &msg,
            &[("x", "1"), ("u", "1"), ("x", "2")],
        ),
    ];
    let mut checked = 0;
    for (what, m, repro) in cases {
        for (mode, r, _) in work_in_modes(&cfg, repro, m) {
            assert_eq!(r, Err(want), "{what}: {mode}");
            checked += 1;
        }
        assert_eq!(
            esdk::decrypt(&cfg, &FixedKeyring, repro, m)
                .map(|d| d.plaintext)
                .map_err(|e| e.core()),
            Err(Some(want)),
            "{what}: esdk::decrypt"
        );
        // Without scratch (a 1-byte `out`): the bounded path finds it too.
        let mut dec = Decryptor::new(&cfg, &PROVIDER, repro);
        assert_eq!(
            dec.process_with(&FixedKeyring, m, &mut [0u8; 1]),
            Err(want),
            "{what}: no scratch"
        );
        checked += 2;
    }
    // 5 000 distinct pairs and one repeat (55 kB: it fits in one context), not stored:
    // n log n comparisons with scratch.
    let keys: Vec<String> = (0..5000).map(|i| format!("k{i:05}")).collect();
    let mut repro: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    repro.push(("k04321", "w"));
    esdk_tests::forge::shuffle(&mut repro, 3);
    let mut dec = Decryptor::new(&cfg, &PROVIDER, &repro);
    let mut out = vec![0u8; 1 << 17];
    assert_eq!(dec.process_with(&FixedKeyring, &plain, &mut out), Err(want));
    let work = dec.context_comparisons();
    println!("hostile: duplicate among 5 001 reproduced pairs: {work} key comparisons");
    assert!(work <= 4 * n_log_n(5001), "{work}");
    println!("hostile: duplicate reproduced keys: {checked} checks passed, 0 failed");
}
