//! Keyring operations per second on a PKCS#11 token, on 1 thread and on N threads sharing one
//! keyring (and so the token's session pool): the pool alone (a lease with no PKCS#11 call),
//! AES-GCM wrap and unwrap on the token (key a token object, and the same key as a session
//! object), RSA-OAEP wrap and unwrap, the ECDH derivation, and whole small messages (encrypt +
//! decrypt) through the token keyrings versus the raw AES keyring. Needs the environment of
//! `scripts/pkcs11-softhsm.sh` or `scripts/pkcs11-kryoptic.sh`; `scripts/pkcs11-bench.sh` sets
//! it up. `ESDK_BENCH_SECS` sets the time per figure (default 2), `ESDK_BENCH_THREADS` N
//! (default: the number of CPUs, at least 2), `ESDK_BENCH_ONLY` a text that the rows to run
//! contain. The last column counts the voluntary context switches per operation with N
//! threads (a thread blocked on a lock, a condvar or I/O), which unlike the rates does not
//! depend on what else the machine runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use esdk_core::{AlgorithmSuite, Config, EncryptOptions, Keyring};
use esdk_pkcs11::cryptoki::mechanism::Mechanism;
use esdk_pkcs11::cryptoki::object::{Attribute, KeyType, ObjectClass};
use esdk_pkcs11::{
    EcdhCurve, KeySelector, OaepHash, Pkcs11AesKeyring, Pkcs11EcdhKeyring, Pkcs11RsaKeyring, Token,
    TokenConfig, ec_params,
};
use esdk_raw::RawAesKeyring;
use esdk_raw::ecdh::RawEcdhKeyring;

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

/// This thread's voluntary context switches so far (it blocked: on a lock, a condvar, I/O).
/// Unlike the rates, this does not depend on what else the machine runs.
fn voluntary_switches() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `op` on `threads` threads for `secs`; returns operations per second (all threads)
/// and the voluntary context switches per operation.
fn rate(threads: usize, secs: f64, op: Arc<dyn Fn() + Send + Sync>) -> (f64, f64) {
    for _ in 0..20 {
        op(); // warm up the session pool and caches
    }
    let dur = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = Arc::clone(&op);
            std::thread::spawn(move || {
                let switches = voluntary_switches();
                let mut n = 0u64;
                while start.elapsed() < dur {
                    op();
                    n += 1;
                }
                (n, voluntary_switches() - switches)
            })
        })
        .collect();
    let (total, switches) = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(a, b), (n, s)| (a + n, b + s));
    (
        total as f64 / start.elapsed().as_secs_f64(),
        switches as f64 / total.max(1) as f64,
    )
}

/// Threads of the second column.
fn threads() -> usize {
    std::env::var("ESDK_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(2)
}

fn row(what: &str, secs: f64, op: Arc<dyn Fn() + Send + Sync>) {
    // ESDK_BENCH_ONLY=TEXT runs only the rows whose name contains TEXT (e.g. to trace one).
    if std::env::var("ESDK_BENCH_ONLY").is_ok_and(|only| !what.contains(only.as_str())) {
        return;
    }
    let (one, _) = rate(1, secs, Arc::clone(&op));
    let (n, blocked) = rate(threads(), secs, op);
    println!(
        "| {what:<62} | {one:>10.0} | {n:>10.0} | {:>5.2}x | {blocked:>8.3} |",
        n / one
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

    let n = threads();
    println!(
        "module {module}, {secs} s per figure, ops/s summed over threads, load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    println!(
        "| {:<62} | {:>10} | {:>10} | {:>6} | {:>8} |",
        "operation",
        "1 thread",
        format!("{n} threads"),
        "ratio",
        "blocks/op"
    );
    println!(
        "|{:-<64}|{:-<12}|{:-<12}|{:-<8}|{:-<10}|",
        "", "", "", "", ""
    );
    {
        let t = token.clone();
        row(
            "session pool only: lease + return, no PKCS#11 call",
            secs,
            Arc::new(move || {
                t.with_session(|_| ()).unwrap();
            }),
        );
    }

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
        // The same key as a session object (CKA_TOKEN false, created through a pooled
        // session, which stays open): no object store behind it.
        let value = hex(&env("ESDK_TEST_PKCS11_AES_KEY"));
        token
            .with_session(|s| {
                s.create_object(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(false),
                    Attribute::Label(b"bench-session-aes".to_vec()),
                    Attribute::Value(value),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ])
            })
            .unwrap()
            .expect("creating the session-object AES key");
        let session_aes = Pkcs11AesKeyring::new(
            &token,
            KeySelector::label("bench-session-aes"),
            "bench",
            "aes",
        )
        .expect("AES keyring on the session object");
        let (aad, wrapped) = (aad.clone(), wrapped.clone());
        row(
            "AES-256-GCM unwrap, key a session object (C_Decrypt)",
            secs,
            Arc::new(move || {
                session_aes.decrypt_data_key(&iv, &aad, &wrapped).unwrap();
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
    // ECDH P-256: a key pair generated on the token (private key sensitive, CKA_DERIVE).
    // Labelled per process: a rerun on the same token makes a key pair of its own.
    let ecdh_label = format!("bench-ecdh-{}", std::process::id());
    let ecdh_label = ecdh_label.as_str();
    token
        .with_rw_session(|s| {
            let label = || Attribute::Label(ecdh_label.as_bytes().to_vec());
            s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::EcParams(ec_params(EcdhCurve::P256).to_vec()),
                    label(),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Derive(true),
                    label(),
                ],
            )
        })
        .unwrap()
        .expect("generating the ECDH key pair");
    let ecdh = Arc::new(
        Pkcs11EcdhKeyring::public_key_discovery(&token, KeySelector::label(ecdh_label))
            .expect("ECDH keyring"),
    );
    let device = Arc::new(
        RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
            EcdhCurve::P256,
            ecdh.public_key(),
        )
        .unwrap(),
    );
    {
        let (ecdh, peer) = (Arc::clone(&ecdh), ecdh.public_key());
        row(
            "ECDH P-256 derive (C_DeriveKey + read + destroy), wrap or unwrap",
            secs,
            Arc::new(move || {
                ecdh.shared_secret(&peer).unwrap();
            }),
        );
    }
    {
        let cfg = Config::new();
        let opts = EncryptOptions::new().with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
        let msg = esdk::encrypt(&cfg, &*device, &opts, &[("k", "v")], &[0x5A; 100]).unwrap();
        let ecdh = Arc::clone(&ecdh);
        row(
            "100 B message dec, 0x0478, device -> token ECDH keyring",
            secs,
            Arc::new(move || {
                esdk::decrypt(&cfg, &*ecdh, &[], &msg).unwrap();
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
