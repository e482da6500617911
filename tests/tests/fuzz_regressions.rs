//! Regression tests for what the long fuzz run found (issue #8; the inputs are in
//! `fuzz/regressions/<target>/`, replayed by `scripts/fuzz-smoke.sh`). The header-limit and
//! context-scratch regressions found earlier are in `hostile.rs`.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use esdk_core::error::Error;
use esdk_core::materials::{DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::{AlgorithmSuite, EncryptOptions, Keyring};
use esdk_raw::RawAesKeyring;

/// Counts the encryptions of a raw AES keyring.
struct Counting<'a> {
    inner: RawAesKeyring<'a>,
    on_encrypt: AtomicUsize,
}

impl Keyring for Counting<'_> {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        self.on_encrypt.fetch_add(1, Ordering::SeqCst);
        self.inner.on_encrypt(m)
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        self.inner.on_decrypt(m, edks)
    }

    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        self.inner.encrypted_data_keys_len(suite)
    }
}

/// fuzz/regressions/roundtrip/writer-header-retry-redraws-message-id: with a header larger
/// than its first 4 KiB buffer, `EncryptingWriter::new` retried the header after
/// `BufferTooSmall`, drawing a second message id (so its message differed from the core's
/// for the same random source) and, when the context fit but the EDKs did not, running the
/// keyring a second time (a second data key; with KMS a second call). It must size the
/// header first and run the keyring once. Contexts from 3 600 to 4 400 bytes cover the
/// sizes where the context fits in 4 KiB and the EDKs do not.
#[test]
fn encrypting_writer_runs_the_keyring_once_for_a_large_header() {
    let k = Counting {
        inner: RawAesKeyring::new("ns", "key", &[7u8; 32]).expect("keyring"),
        on_encrypt: AtomicUsize::new(0),
    };
    let mut cases = 0;
    for suite in [
        AlgorithmSuite::ALL[0],
        AlgorithmSuite::ALL[AlgorithmSuite::ALL.len() - 1],
    ] {
        let cfg = esdk_test_support::config_for(suite);
        let opts = EncryptOptions::new().with_suite(suite).with_frame_length(1);
        for len in (3600..4400).step_by(16) {
            let value = "v".repeat(len);
            let ec = [("key", value.as_str())];
            k.on_encrypt.store(0, Ordering::SeqCst);
            let mut w = esdk::EncryptingWriter::new(
                &cfg,
                &esdk::DEFAULT_PROVIDER,
                &k,
                &opts,
                &ec,
                Vec::new(),
            )
            .expect("writer");
            assert_eq!(
                k.on_encrypt.load(Ordering::SeqCst),
                1,
                "{suite:?}, a {len}-byte value"
            );
            w.write_all(b"large header").expect("write");
            let msg = w.finish().expect("finish");
            let mut back = Vec::new();
            esdk::DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &k, &ec, &msg[..])
                .read_to_end(&mut back)
                .expect("decrypt");
            assert_eq!(back, b"large header");
            cases += 1;
        }
    }
    println!("fuzz regressions: EncryptingWriter header sizing, {cases} passed, 0 failed");
}
