//! What the `esdk` CLI test binaries share: the outcome of a run, deterministic data and a
//! temporary directory with a raw key.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

/// What a run of `esdk` produced.
#[derive(Debug)]
pub struct Out {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// What it wrote to stdout.
    pub stdout: Vec<u8>,
    /// What it wrote to stderr.
    pub stderr: String,
}

impl Out {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "esdk failed: {}", self.stderr);
        self
    }

    /// Asserts exit code `code` and an error message that contains `needle`.
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code; stderr: {}",
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {}",
            self.stderr
        );
        self
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A temp dir with a 32-byte raw key in `k.bin`.
pub fn setup() -> TempDir {
    let d = TempDir::new().expect("tempdir");
    fs::write(d.path().join("k.bin"), data(32, 200)).expect("key");
    d
}

/// Writes `content` to `dir/name`, making the parent directories.
pub fn write(dir: &Path, name: &str, content: &[u8]) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(p, content).expect("write");
}
