//! The test-vector manifest loader (`esdk_tests::manifest`): keys manifests (v1-v4) and
//! decrypt manifests (v1-v5).
//!
//! Input: a selector byte, the keys-manifest bytes, then optionally a NUL and the
//! decrypt-manifest bytes (without them a fixed v2 manifest that names the usual keys is
//! used). Both are written to a scratch directory holding two more files, `ct` and `pt`, that
//! `file://` URIs may name; decrypt manifests that reach outside it (`..`, absolute paths) are
//! skipped, since the loader trusts its manifests' paths. Checks: no panic; a loaded manifest
//! has its tests sorted by id with the contents of the named files.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const DEFAULT_MANIFEST: &str = r#"{"manifest": {"type": "awses-decrypt", "version": 2},
 "client": {"name": "fuzz", "version": "1"}, "keys": "file://keys.json",
 "tests": {
  "a": {"ciphertext": "file://ct", "result": {"output": {"plaintext": "file://pt"}},
        "master-keys": [{"type": "raw", "key": "aes-256", "provider-id": "p",
                         "encryption-algorithm": "aes"}]},
  "b": {"ciphertext": "file://ct", "result": {"error": {"error-description": "x"}},
        "master-keys": [{"type": "raw", "key": "rsa-4096-public", "provider-id": "p",
                         "encryption-algorithm": "rsa", "padding-algorithm": "oaep-mgf1",
                         "padding-hash": "sha256"},
                        {"type": "aws-kms", "key": "us-west-2-decryptable"}]}
 }}"#;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("esdk-fuzz-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        std::fs::write(d.join("ct"), b"\x02\x05\x78ciphertext").expect("ct");
        std::fs::write(d.join("pt"), b"plaintext").expect("pt");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((_, rest)) = data.split_first() else {
        return;
    };
    let (keys, manifest) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, DEFAULT_MANIFEST.as_bytes()),
    };
    let text = String::from_utf8_lossy(manifest);
    // JSON escapes (`\/`, `\u002f`) could hide a path from this check: skip them too.
    if text.contains("..") || text.contains("file:///") || text.contains('\\') {
        return;
    }
    let d = scratch();
    std::fs::write(d.join("keys.json"), keys).expect("write keys");
    std::fs::write(d.join("manifest.json"), manifest).expect("write manifest");
    if let Ok(m) = esdk_tests::manifest::load_decrypt_manifest(&d.join("manifest.json")) {
        assert!(m.tests.windows(2).all(|w| w[0].id <= w[1].id));
        let files: [&[u8]; 4] = [b"\x02\x05\x78ciphertext", b"plaintext", keys, manifest];
        for t in &m.tests {
            assert!(
                files.contains(&t.ciphertext.as_slice()),
                "test {}: ciphertext",
                t.id
            );
        }
    }
});
