//! Keyring operations per second on a PKCS#11 token, single-threaded and with 2 threads:
//! AES-GCM wrap and unwrap on the token, RSA-OAEP wrap and unwrap, and the whole-message cost
//! of a small message (encrypt + decrypt) through the token keyring versus the raw AES
//! keyring. Needs the environment of `scripts/pkcs11-softhsm.sh` (or another module's);
//! `scripts/pkcs11-bench.sh` sets it up. `ESDK_BENCH_SECS` sets the time per figure (default 2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use esdk_core::{AlgorithmSuite, Config, EncryptOptions, Keyring};
use esdk_pkcs11::{KeySelector, OaepHash, Pkcs11AesKeyring, Pkcs11RsaKeyring, Token, TokenConfig};
use esdk_raw::RawAesKeyring;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/pkcs11-bench.sh (or eval \"$(scripts/pkcs11-softhsm.sh)\")")
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Runs `op` on `threads` threads for `secs` and returns operations per second (all threads).
fn rate(threads: usize, secs: f64, op: Arc<dyn Fn() + Send + Sync>) -> f64 {
    for _ in 0..20 {
        op(); // warm up the session pool and caches
    }
    let dur = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = Arc::clone(&op);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed() < dur {
                    op();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn row(what: &str, secs: f64, op: Arc<dyn Fn() + Send + Sync>) {
    let one = rate(1, secs, Arc::clone(&op));
    let two = rate(2, secs, op);
    println!(
        "| {what:<58} | {one:>10.0} | {two:>10.0} | {:>5.2}x |",
        two / one
    );
}

fn message_op<K: Keyring + Send + Sync + 'static>(
    kr: Arc<K>,
    suite: AlgorithmSuite,
    pt: usize,
) -> Arc<dyn Fn() + Send + Sync> {
    let cfg = Config::new();
    let opts = EncryptOptions::new().with_suite(suite);
    let data = vec![0x5Au8; pt];
    Arc::new(move || {
        let msg = esdk::encrypt(&cfg, &*kr, &opts, &[("k", "v")], &data).unwrap();
        let out = esdk::decrypt(&cfg, &*kr, &[], &msg).unwrap();
        assert_eq!(out.plaintext.len(), pt);
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs: f64 = if quick {
        0.05
    } else {
        std::env::var("ESDK_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0)
    };
    let module = env("TEST_PKCS11_MODULE");
    let token = Token::open(
        TokenConfig::new(&module, env("ESDK_TEST_PKCS11_TOKEN"))
            .with_pin(env("ESDK_TEST_PKCS11_PIN")),
    )
    .expect("opening the token");
    let aes = Arc::new(
        Pkcs11AesKeyring::new(
            &token,
            KeySelector::label(env("ESDK_TEST_PKCS11_AES_LABEL")),
            "bench",
            "aes",
        )
        .expect("AES keyring"),
    );
    let hash = match std::env::var("ESDK_TEST_PKCS11_OAEP_HASHES").as_deref() {
        Ok(h) if h.contains("sha256") => OaepHash::Sha256,
        _ => OaepHash::Sha1,
    };
    let rsa = Arc::new(
        Pkcs11RsaKeyring::new(
            &token,
            KeySelector::label(env("ESDK_TEST_PKCS11_RSA_LABEL")),
            "bench",
            "rsa",
            hash,
        )
        .expect("RSA keyring"),
    );
    let raw = Arc::new(
        RawAesKeyring::new("bench", "aes", &hex(&env("ESDK_TEST_PKCS11_AES_KEY"))).unwrap(),
    );

    println!("module {module}, {secs} s per figure, ops/s summed over threads");
    println!(
        "| {:<58} | {:>10} | {:>10} | {:>6} |",
        "operation", "1 thread", "2 threads", "ratio"
    );
    println!("|{:-<60}|{:-<12}|{:-<12}|{:-<8}|", "", "", "", "");

    let iv = [7u8; 12];
    let aad = b"\x00\x01\x00\x01k\x00\x01v".to_vec();
    let dk = [0x11u8; 32];
    let wrapped = aes.encrypt_data_key(&iv, &aad, &dk).unwrap();
    {
        let (aes, aad) = (Arc::clone(&aes), aad.clone());
        row(
            "AES-256-GCM wrap (C_Encrypt, 32-byte data key)",
            secs,
            Arc::new(move || {
                aes.encrypt_data_key(&iv, &aad, &dk).unwrap();
            }),
        );
    }
    {
        let (aes, aad, wrapped) = (Arc::clone(&aes), aad.clone(), wrapped.clone());
        row(
            "AES-256-GCM unwrap (C_Decrypt)",
            secs,
            Arc::new(move || {
                aes.decrypt_data_key(&iv, &aad, &wrapped).unwrap();
            }),
        );
    }
    {
        let t = token.clone();
        row(
            "C_GenerateRandom, 12 bytes (the IV)",
            secs,
            Arc::new(move || {
                t.generate_random(&mut [0u8; 12]).unwrap();
            }),
        );
    }
    let rsa_wrapped = rsa.encrypt_data_key(&dk).unwrap();
    {
        let rsa = Arc::clone(&rsa);
        let label = format!("RSA-2048 OAEP-{hash:?} wrap (public key on token)");
        row(
            &label,
            secs,
            Arc::new(move || {
                rsa.encrypt_data_key(&dk).unwrap();
            }),
        );
    }
    {
        let rsa = Arc::clone(&rsa);
        let label = format!("RSA-2048 OAEP-{hash:?} unwrap (private key on token)");
        row(
            &label,
            secs,
            Arc::new(move || {
                rsa.decrypt_data_key(&rsa_wrapped).unwrap();
            }),
        );
    }
    for (suite, name) in [
        (AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, "0x0478"),
        (
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
            "0x0578",
        ),
    ] {
        row(
            &format!("100 B message enc+dec, {name}, token AES keyring"),
            secs,
            message_op(Arc::clone(&aes), suite, 100),
        );
        row(
            &format!("100 B message enc+dec, {name}, raw AES keyring (baseline)"),
            secs,
            message_op(Arc::clone(&raw), suite, 100),
        );
    }
    row(
        "100 B message enc+dec, 0x0478, token RSA keyring",
        secs,
        message_op(
            Arc::clone(&rsa),
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            100,
        ),
    );
}
