//! What the KMS keyring tests against the local server share (`kms_rsa`, `kms_ecdh`): the
//! server's endpoint, clients, a runtime, the MPL peer, and readers of a message's EDKs and
//! of a decryption's attempts. `scripts/kms-test.sh` starts the server and exports
//! `ESDK_KMS_ENDPOINT` and `ESDK_PY`; without them the tests fail and say so.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::sync::OnceLock;

use esdk::kms::{self, DefaultClientSupplier, Error, KmsRuntime};

/// The region the tests' keys live in.
pub const W: &str = "us-west-2";

/// The local KMS server's endpoint, which must answer.
pub fn endpoint() -> String {
    let ep = std::env::var("ESDK_KMS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "ESDK_KMS_ENDPOINT is not set: the KMS keyring tests need the local KMS server. \
             Run `bash scripts/kms-test.sh` (it starts ../shared/peers/kms_server.py on a \
             free port and runs these tests; a test name filter may follow)."
        )
    });
    let addr = ep.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        TcpStream::connect(addr).is_ok(),
        "the KMS server at {ep} does not answer: start it with scripts/kms-test.sh"
    );
    ep
}

/// A client for `region` on the local server, with static test credentials.
pub fn client(region: &str) -> aws_sdk_kms::Client {
    DefaultClientSupplier::new()
        .with_endpoint_url(&endpoint())
        .with_credentials(aws_sdk_kms::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .with_default_region(W)
        .client_for(region)
}

/// One runtime for the blocking calls of a test binary.
pub fn rt() -> &'static KmsRuntime {
    static RT: OnceLock<KmsRuntime> = OnceLock::new();
    RT.get_or_init(|| KmsRuntime::new().unwrap())
}

/// The attempts of a failed decryption, which must be `NoDataKeyDecrypted`.
pub fn attempts(e: &Error) -> &[kms::Attempt] {
    match e {
        Error::NoDataKeyDecrypted { attempts } => attempts,
        other => panic!("expected NoDataKeyDecrypted, got {other:?}: {other}"),
    }
}

/// The EDKs of a message: (provider id, provider info, ciphertext length).
pub fn edks(msg: &[u8]) -> Vec<(String, Vec<u8>, usize)> {
    let parsed = esdk::core::header::parse(msg, esdk::core::header::ParseLimits::default());
    let Ok(esdk::core::header::Parsed::Complete(h)) = parsed else {
        panic!("not a complete header: {parsed:?}");
    };
    h.edks
        .iter()
        .map(|(_, e)| {
            (
                e.provider_id.to_owned(),
                e.provider_info.to_vec(),
                e.ciphertext.len(),
            )
        })
        .collect()
}

/// A fresh scratch directory for an interop test (`name` and the process id) and a
/// function that gives the path of a file in it.
pub fn scratch(name: &str) -> (std::path::PathBuf, impl Fn(&str) -> String) {
    let dir = std::env::temp_dir().join(format!("esdk-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.clone();
    (dir, move |n: &str| {
        base.join(n).to_string_lossy().into_owned()
    })
}

/// Runs `mpl_peer.py` (the Python ESDK with the MPL) and returns its output.
pub fn mpl_peer_run(args: &[&str]) -> std::process::Output {
    let py = std::env::var("ESDK_PY").unwrap_or_else(|_| {
        panic!(
            "ESDK_PY is not set: the MPL interop tests need the Python ESDK with the MPL. Run \
             `bash scripts/kms-test.sh` (it sets ESDK_PY from scripts/python-peer.sh)."
        )
    });
    let shared = std::env::var("ESDK_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared").to_owned());
    std::process::Command::new(py)
        .arg(format!("{shared}/peers/mpl_peer.py"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `mpl_peer.py`, which must succeed.
pub fn mpl_peer(args: &[&str]) {
    let out = mpl_peer_run(args);
    assert!(
        out.status.success(),
        "mpl_peer.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `mpl_peer.py` and says whether it succeeded (a failure must be its own error line).
pub fn mpl_peer_ok(args: &[&str]) -> bool {
    let out = mpl_peer_run(args);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("mpl_peer: error:"), "{err}");
        eprintln!("mpl_peer (expected failure): {}", err.trim());
    }
    out.status.success()
}
