//! Interop with the official Python AWS Encryption SDK (aws-encryption-sdk 4.x with the MPL),
//! both ways, over the matrix
//! every suite × {raw AES-128/192/256, raw RSA-2048 with PKCS#1 v1.5 and OAEP-SHA1/256/384/512}
//! × frame lengths {512, 4096, 65536} × plaintexts {empty, 1 byte, 3 frames + 1 byte}
//! × encryption context {none, unicode}:
//!
//! * **Rust → Python**: we encrypt, the Python ESDK decrypts; the plaintext, its length and
//!   the header Python reports (suite, frame length, framing, encryption context, EDK provider
//!   id and key name) must be what we asked for.
//! * **Python → Rust**: the Python ESDK encrypts, we decrypt; the plaintext and the header we
//!   parse must be what Python was asked for.
//!
//! * **Python → Rust, non-framed**: also every suite × {AES-256, RSA OAEP-SHA256} ×
//!   {0, 1, 10 000 bytes} × both contexts as non-framed messages (frame length 0), which
//!   this implementation reads but does not write.
//!
//! Each case alternates between the Python SDK's two key APIs (legacy `RawMasterKey` and the
//! MPL raw keyrings), the other way round in the other direction, so every configuration is
//! covered by both. The Python side runs in two batch processes (`tests/peer/esdk_batch.py
//! cases`), one per core, instead of one process per message.
//!
//! The Python venv comes from `scripts/python-peer.sh` (or `ESDK_PEER_PYTHON`); if it cannot
//! be created this test fails, loudly: it is never skipped. The run ends with
//! `interop: N passed, M failed`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use esdk::core::header::ContentType;
use esdk::core::provider::RandomSource;
use esdk::raw::RawAesKeyring;
use esdk::raw::rsa::{RawRsaKeyring, RsaPadding, RsaPrivateKey, RsaPublicKey};
use esdk::{AlgorithmSuite, CommitmentPolicy, Config, EncryptOptions, Keyring};
use esdk_test_support::policy_for;
use serde_json::{Value, json};

const PROVIDER_ID: &str = "esdk-interop";
const FRAMES: [u32; 3] = [512, 4096, 65536];
const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Aes(usize),
    Rsa(RsaPadding),
}

const KEYS: [KeyKind; 8] = [
    KeyKind::Aes(16),
    KeyKind::Aes(24),
    KeyKind::Aes(32),
    KeyKind::Rsa(RsaPadding::Pkcs1V15),
    KeyKind::Rsa(RsaPadding::OaepSha1),
    KeyKind::Rsa(RsaPadding::OaepSha256),
    KeyKind::Rsa(RsaPadding::OaepSha384),
    KeyKind::Rsa(RsaPadding::OaepSha512),
];

impl KeyKind {
    fn name(self) -> String {
        match self {
            KeyKind::Aes(n) => format!("aes-{}", n * 8),
            KeyKind::Rsa(p) => format!("rsa-2048-{}", padding_name(p)),
        }
    }
}

fn padding_name(p: RsaPadding) -> &'static str {
    match p {
        RsaPadding::Pkcs1V15 => "pkcs1",
        RsaPadding::OaepSha1 => "oaep-sha1",
        RsaPadding::OaepSha256 => "oaep-sha256",
        RsaPadding::OaepSha384 => "oaep-sha384",
        RsaPadding::OaepSha512 => "oaep-sha512",
    }
}

/// The encryption contexts: none, and one with non-ASCII keys and values, including a
/// supplementary-plane key next to a high BMP key (UTF-8 and UTF-16 sort them differently).
fn contexts() -> [Vec<(&'static str, &'static str)>; 2] {
    [
        vec![],
        vec![
            ("purpose", "interop"),
            ("ключ", "значение ✓"),
            ("\u{FF21}-fullwidth", "ü ñ 中文"),
            ("\u{1F510}-lock", "\u{1F600}"),
        ],
    ]
}

fn aes_key(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(len as u8))
        .collect()
}

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peer")
}

/// The venv python with the official SDK (checked to import it), or a loud failure.
fn python() -> PathBuf {
    let py = find_python();
    let check = Command::new(&py)
        .args([
            "-c",
            "import aws_encryption_sdk, aws_cryptographic_material_providers",
        ])
        .status();
    assert!(
        matches!(check, Ok(s) if s.success()),
        "interop_python: {} cannot import aws_encryption_sdk and the MPL ({check:?}); \
         run scripts/python-peer.sh or fix ESDK_PEER_PYTHON. This test is never skipped.",
        py.display()
    );
    py
}

fn find_python() -> PathBuf {
    if let Some(p) = std::env::var_os("ESDK_PEER_PYTHON") {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-peer.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("interop_python: cannot run {}: {e}", script.display()));
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && !path.is_empty() && Path::new(&path).exists(),
        "interop_python: the Python peer venv could not be created ({} exited with {}). \
         This test needs the official Python ESDK (pip install 'aws-encryption-sdk[MPL]>=4,<5' \
         into {}/.venv-peer, which needs python3-venv and access to PyPI), or \
         ESDK_PEER_PYTHON pointing at a python that has it. It is never skipped.",
        script.display(),
        out.status,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").display(),
    );
    PathBuf::from(path)
}

enum TestKeyring<'a> {
    Aes(Box<RawAesKeyring<'a>>),
    Rsa(RawRsaKeyring),
}

impl TestKeyring<'_> {
    fn as_keyring(&self) -> &dyn Keyring {
        match self {
            TestKeyring::Aes(k) => k.as_ref(),
            TestKeyring::Rsa(k) => k,
        }
    }
}

struct Keys {
    names: Vec<String>,
    aes: BTreeMap<usize, Vec<u8>>,
    rsa_private_pem: PathBuf,
    rsa_public_pem: PathBuf,
}

impl Keys {
    fn new() -> Self {
        Keys {
            names: KEYS.iter().map(|k| k.name()).collect(),
            aes: [16, 24, 32].into_iter().map(|n| (n, aes_key(n))).collect(),
            rsa_private_pem: peer_dir().join("keys/rsa2048-private.pem"),
            rsa_public_pem: peer_dir().join("keys/rsa2048-public.pem"),
        }
    }

    fn keyring(&self, idx: usize) -> TestKeyring<'_> {
        match KEYS[idx] {
            KeyKind::Aes(n) => TestKeyring::Aes(Box::new(
                RawAesKeyring::new(PROVIDER_ID, &self.names[idx], &self.aes[&n])
                    .unwrap_or_else(|e| panic!("AES keyring: {e}")),
            )),
            KeyKind::Rsa(p) => {
                let read = |path: &Path| {
                    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                };
                let public = RsaPublicKey::from_pem(read(&self.rsa_public_pem))
                    .unwrap_or_else(|e| panic!("RSA public key: {e}"));
                let private = RsaPrivateKey::from_pem(read(&self.rsa_private_pem))
                    .unwrap_or_else(|e| panic!("RSA private key: {e}"));
                TestKeyring::Rsa(
                    RawRsaKeyring::new(
                        PROVIDER_ID,
                        &self.names[idx],
                        p,
                        Some(public),
                        Some(private),
                    )
                    .unwrap_or_else(|e| panic!("RSA keyring: {e}")),
                )
            }
        }
    }

    fn peer_json(&self, idx: usize) -> Value {
        match KEYS[idx] {
            KeyKind::Aes(n) => json!({"type": "aes", "hex": hex::encode(&self.aes[&n])}),
            KeyKind::Rsa(p) => json!({
                "type": "rsa",
                "padding": padding_name(p),
                "private_pem": self.rsa_private_pem,
                "public_pem": self.rsa_public_pem,
            }),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    id: String,
    suite: AlgorithmSuite,
    key: usize,
    frame: u32,
    pt_len: usize,
    ec: usize,
    /// The Python API for Rust → Python; Python → Rust uses the other one.
    api_r2p: &'static str,
}

fn matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for suite in AlgorithmSuite::ALL {
        for (key, kind) in KEYS.iter().enumerate() {
            for frame in FRAMES {
                let sizes = [0, 1, 3 * frame as usize + 1];
                for (pi, pt_len) in sizes.into_iter().enumerate() {
                    for ec in 0..2 {
                        cases.push(Case {
                            id: format!(
                                "{:04x}-{}-f{frame}-p{pt_len}-ec{ec}",
                                suite.id(),
                                kind.name()
                            ),
                            suite,
                            key,
                            frame,
                            pt_len,
                            ec,
                            api_r2p: if (pi + ec) % 2 == 0 {
                                "legacy"
                            } else {
                                "keyring"
                            },
                        });
                    }
                }
            }
        }
    }
    cases
}

/// Python → Rust only: non-framed messages (frame length 0), which this implementation
/// decrypts but does not write, for every suite with AES-256 and the RSA OAEP-SHA256 key,
/// from both Python APIs.
fn nonframed_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for suite in AlgorithmSuite::ALL {
        for key in [2, 5] {
            for (pi, pt_len) in [0, 1, 10_000].into_iter().enumerate() {
                for ec in 0..2 {
                    cases.push(Case {
                        id: format!(
                            "{:04x}-{}-nonframed-p{pt_len}-ec{ec}",
                            suite.id(),
                            KEYS[key].name()
                        ),
                        suite,
                        key,
                        frame: 0,
                        pt_len,
                        ec,
                        // Only Python → Rust runs, with the other API.
                        api_r2p: if (pi + ec) % 2 == 0 {
                            "legacy"
                        } else {
                            "keyring"
                        },
                    });
                }
            }
        }
    }
    cases
}

fn other_api(api: &str) -> &'static str {
    if api == "legacy" { "keyring" } else { "legacy" }
}

fn decrypt_policy(suite: AlgorithmSuite) -> CommitmentPolicy {
    if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::RequireEncryptAllowDecrypt
    }
}

fn policy_code(p: CommitmentPolicy) -> &'static str {
    match p {
        CommitmentPolicy::RequireEncryptRequireDecrypt => "rr",
        CommitmentPolicy::RequireEncryptAllowDecrypt => "ra",
        CommitmentPolicy::ForbidEncryptAllowDecrypt => "fa",
    }
}

/// The context the header must hold: the requested pairs plus, for signing suites, the
/// public key (whose value we cannot predict).
fn check_context(
    suite: AlgorithmSuite,
    got: &BTreeMap<String, String>,
    want: &[(&str, &str)],
) -> Result<(), String> {
    let mut got = got.clone();
    let signed = suite.signature().is_some();
    if got.remove(PUBLIC_KEY_CONTEXT_KEY).is_some() != signed {
        return Err(format!(
            "{PUBLIC_KEY_CONTEXT_KEY} present = {}, expected {signed}",
            !signed
        ));
    }
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if got != want {
        return Err(format!("encryption context {got:?}, expected {want:?}"));
    }
    Ok(())
}

/// Checks one EDK's provider id and key name (the raw AES provider info starts with the
/// key name and has 20 more bytes; the raw RSA provider info is the key name).
fn check_edk(key: usize, names: &[String], provider_id: &str, info: &[u8]) -> Result<(), String> {
    let name = names[key].as_bytes();
    let info_ok = match KEYS[key] {
        KeyKind::Aes(_) => info.len() == name.len() + 20 && info.starts_with(name),
        KeyKind::Rsa(_) => info == name,
    };
    if provider_id != PROVIDER_ID || !info_ok {
        return Err(format!(
            "EDK provider {provider_id:?} info {:?}, expected {PROVIDER_ID:?} / {:?}",
            String::from_utf8_lossy(info),
            names[key]
        ));
    }
    Ok(())
}

fn run_python(py: &Path, dir: &Path, shards: Vec<Vec<Value>>) -> BTreeMap<String, Value> {
    let script = peer_dir().join("esdk_batch.py");
    let mut children = Vec::new();
    for (i, cases) in shards.into_iter().enumerate() {
        let cases_path = dir.join(format!("cases-{i}.json"));
        let results_path = dir.join(format!("results-{i}.json"));
        fs::write(
            &cases_path,
            serde_json::to_vec(&json!({ "cases": cases })).expect("JSON"),
        )
        .expect("write cases");
        let child = Command::new(py)
            .arg(&script)
            .arg("cases")
            .arg(&cases_path)
            .arg(&results_path)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", py.display()));
        children.push((child, results_path));
    }
    let mut results = BTreeMap::new();
    for (mut child, path) in children {
        let status = child.wait().expect("wait for python");
        assert!(status.success(), "esdk_batch.py exited with {status}");
        let text = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let list: Vec<Value> = serde_json::from_slice(&text).expect("results JSON");
        for r in list {
            let id = r["id"].as_str().expect("result id").to_owned();
            results.insert(id, r);
        }
    }
    results
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Rust → Python: the Python result of decrypting our message.
fn check_r2p(c: &Case, keys: &Keys, plaintext: &[u8], r: &Value, out: &Path) -> Result<(), String> {
    if r["ok"] != json!(true) {
        return Err(format!("Python decrypt failed: {}", r["error"]));
    }
    let got = fs::read(out).map_err(|e| format!("{}: {e}", out.display()))?;
    if r["output_len"].as_u64() != Some(plaintext.len() as u64) || got != plaintext {
        return Err(format!(
            "plaintext mismatch: Python returned {} bytes, expected {}",
            got.len(),
            plaintext.len()
        ));
    }
    if r["suite"].as_u64() != Some(u64::from(c.suite.id()))
        || r["frame_length"].as_u64() != Some(u64::from(c.frame))
        || r["content_type"] != json!("FRAMED_DATA")
    {
        return Err(format!(
            "header: suite {}, frame length {}, content type {}",
            r["suite"], r["frame_length"], r["content_type"]
        ));
    }
    check_context(c.suite, &str_map(&r["ec"]), &contexts()[c.ec])?;
    let edks = r["edks"].as_array().cloned().unwrap_or_default();
    if edks.len() != 1 {
        return Err(format!("{} EDKs, expected 1", edks.len()));
    }
    let info = hex::decode(edks[0]["key_info"].as_str().unwrap_or_default())
        .map_err(|e| format!("key_info: {e}"))?;
    check_edk(
        c.key,
        &keys.names,
        edks[0]["provider_id"].as_str().unwrap_or_default(),
        &info,
    )
}

/// Python → Rust: decrypt Python's message and check it.
fn check_p2r(
    c: &Case,
    keys: &Keys,
    plaintext: &[u8],
    r: &Value,
    ct_path: &Path,
) -> Result<(), String> {
    if r["ok"] != json!(true) {
        return Err(format!("Python encrypt failed: {}", r["error"]));
    }
    let ct = fs::read(ct_path).map_err(|e| format!("{}: {e}", ct_path.display()))?;
    let kr = keys.keyring(c.key);
    let cfg = Config::new().with_commitment_policy(decrypt_policy(c.suite));
    let mut out = vec![0u8; ct.len()];
    let d = esdk::core::decrypt(
        &cfg,
        &esdk::DEFAULT_PROVIDER,
        kr.as_keyring(),
        &[],
        &ct,
        &mut out,
    )
    .map_err(|e| format!("Rust decrypt failed: {e}"))?;
    if &out[..d.plaintext_len] != plaintext {
        return Err(format!(
            "plaintext mismatch: got {} bytes, expected {}",
            d.plaintext_len,
            plaintext.len()
        ));
    }
    let h = d.header;
    let framing = if c.frame == 0 {
        ContentType::NonFramed
    } else {
        ContentType::Framed
    };
    if h.suite != c.suite || h.frame_length != c.frame || h.content_type != framing {
        return Err(format!(
            "header: suite {:?}, frame length {}, {:?}",
            h.suite, h.frame_length, h.content_type
        ));
    }
    let ec: BTreeMap<String, String> = h
        .encryption_context
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    check_context(c.suite, &ec, &contexts()[c.ec])?;
    let edks: Vec<_> = h.edks.iter().collect();
    if edks.len() != 1 {
        return Err(format!("{} EDKs, expected 1", edks.len()));
    }
    check_edk(
        c.key,
        &keys.names,
        edks[0].1.provider_id,
        edks[0].1.provider_info,
    )
}

#[test]
fn matrix_has_every_combination() {
    let cases = matrix();
    assert_eq!(cases.len(), 11 * 8 * 3 * 3 * 2);
    let ids: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases.len(), "case ids are unique");
    let keyring = cases.iter().filter(|c| c.api_r2p == "keyring").count();
    assert_eq!(
        keyring * 2,
        cases.len(),
        "half the cases use each Python API"
    );
    let nonframed = nonframed_cases();
    assert_eq!(nonframed.len(), 11 * 2 * 3 * 2);
    assert!(
        nonframed
            .iter()
            .all(|c| c.frame == 0 && !ids.contains(c.id.as_str()))
    );
}

#[test]
fn interop_with_the_official_python_esdk() {
    let started = Instant::now();
    let py = python();
    let dir = std::env::temp_dir().join(format!("esdk-interop-python-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for sub in ["pt", "r2p", "p2r"] {
        fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let keys = Keys::new();
    let cases = matrix();
    let nonframed = nonframed_cases();
    let ecs = contexts();

    // Plaintexts, one per size.
    let mut plaintexts: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for c in cases.iter().chain(&nonframed) {
        plaintexts.entry(c.pt_len).or_insert_with(|| {
            let mut p = vec![0u8; c.pt_len];
            esdk::OsRng.fill_random(&mut p).expect("OS RNG");
            fs::write(dir.join("pt").join(c.pt_len.to_string()), &p).expect("write plaintext");
            p
        });
    }

    // Rust encrypts (Rust → Python), and both directions' Python cases are listed.
    let mut encrypted_bytes = 0usize;
    let mut r2p_errors: BTreeMap<String, String> = BTreeMap::new();
    let mut shards: Vec<Vec<Value>> = vec![Vec::new(), Vec::new()];
    for (i, c) in cases.iter().chain(&nonframed).enumerate() {
        let ec: serde_json::Map<String, Value> = ecs[c.ec]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        shards[(i + 1) % 2].push(json!({
            "id": format!("p2r/{}", c.id),
            "op": "encrypt",
            "input": dir.join("pt").join(c.pt_len.to_string()),
            "output": dir.join("p2r").join(format!("{}.ct", c.id)),
            "api": other_api(c.api_r2p),
            "key": keys.peer_json(c.key),
            "provider_id": PROVIDER_ID,
            "key_name": keys.names[c.key],
            "suite": format!("0x{:04X}", c.suite.id()),
            "frame_length": c.frame,
            "ec": ec,
            "policy": policy_code(policy_for(c.suite)),
        }));
        if c.frame == 0 {
            continue; // non-framed: Python -> Rust only
        }
        let kr = keys.keyring(c.key);
        let cfg = Config::new().with_commitment_policy(policy_for(c.suite));
        let opts = EncryptOptions::new()
            .with_suite(c.suite)
            .with_frame_length(c.frame);
        match esdk::encrypt(
            &cfg,
            kr.as_keyring(),
            &opts,
            &ecs[c.ec],
            &plaintexts[&c.pt_len],
        ) {
            Ok(ct) => {
                encrypted_bytes += ct.len();
                fs::write(dir.join("r2p").join(format!("{}.ct", c.id)), &ct).expect("write");
                shards[i % 2].push(json!({
                    "id": format!("r2p/{}", c.id),
                    "op": "decrypt",
                    "input": dir.join("r2p").join(format!("{}.ct", c.id)),
                    "output": dir.join("r2p").join(format!("{}.pt", c.id)),
                    "api": c.api_r2p,
                    "key": keys.peer_json(c.key),
                    "provider_id": PROVIDER_ID,
                    "key_name": keys.names[c.key],
                    "ec": {},
                    "policy": policy_code(decrypt_policy(c.suite)),
                }));
            }
            Err(e) => {
                r2p_errors.insert(c.id.clone(), format!("Rust encrypt failed: {e}"));
            }
        }
    }

    let rust_encrypt = started.elapsed();

    let py_started = Instant::now();
    let results = run_python(&py, &dir, shards);
    let python_time = py_started.elapsed();

    let mut failures: Vec<String> = Vec::new();
    let (mut r2p_pass, mut p2r_pass) = (0usize, 0usize);
    for c in cases.iter().chain(&nonframed) {
        let pt = &plaintexts[&c.pt_len];
        let r2p = match r2p_errors.get(&c.id) {
            _ if c.frame == 0 => None,
            Some(e) => Some(Err(e.clone())),
            None => Some(match results.get(&format!("r2p/{}", c.id)) {
                None => Err("no Python result".to_owned()),
                Some(r) => check_r2p(
                    c,
                    &keys,
                    pt,
                    r,
                    &dir.join("r2p").join(format!("{}.pt", c.id)),
                ),
            }),
        };
        match r2p {
            None => {}
            Some(Ok(())) => r2p_pass += 1,
            Some(Err(e)) => {
                failures.push(format!("FAIL rust->python {} [{}]: {e}", c.id, c.api_r2p))
            }
        }
        let p2r = match results.get(&format!("p2r/{}", c.id)) {
            None => Err("no Python result".to_owned()),
            Some(r) => check_p2r(
                c,
                &keys,
                pt,
                r,
                &dir.join("p2r").join(format!("{}.ct", c.id)),
            ),
        };
        match p2r {
            Ok(()) => p2r_pass += 1,
            Err(e) => failures.push(format!(
                "FAIL python->rust {} [{}]: {e}",
                c.id,
                other_api(c.api_r2p)
            )),
        }
    }

    for f in failures.iter().take(50) {
        println!("{f}");
    }
    if failures.len() > 50 {
        println!("... and {} more failures", failures.len() - 50);
    }
    let n = cases.len();
    let n_p2r = n + nonframed.len();
    println!(
        "rust->python: {r2p_pass}/{n} passed; python->rust: {p2r_pass}/{n_p2r} passed \
         ({} MiB of ciphertext from Rust; Rust encrypt {:.1} s, Python {:.1} s, total {:.1} s)",
        encrypted_bytes >> 20,
        rust_encrypt.as_secs_f64(),
        python_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "interop: {} passed, {} failed",
        r2p_pass + p2r_pass,
        failures.len()
    );
    if failures.is_empty() {
        let _ = fs::remove_dir_all(&dir);
    } else {
        println!("files kept in {}", dir.display());
    }
    assert!(
        failures.is_empty(),
        "{} of {} interop cases failed (first: {})",
        failures.len(),
        n + n_p2r,
        failures[0]
    );
    assert_eq!((r2p_pass, p2r_pass), (n, n_p2r));
}
