//! Criterion benchmarks of the core paths: one-shot encrypt and decrypt of 1 MiB with
//! suites 0x0478 (unsigned) and 0x0578 (signed), frames of 4 KiB, 64 KiB and 1 MiB, with the
//! pure-Rust provider and the aws-lc provider; and a 100-byte round trip.
//!
//! `cargo bench -p esdk --bench core` (add `-- 0x0478` to filter). For the one-screen summary
//! with the goals, run `scripts/bench.sh` instead.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use esdk::core::rustcrypto::RustCrypto;
use esdk::core::{
    AlgorithmSuite, Config, CryptoProvider, EncryptOptions, decrypt, encrypt, encrypted_len,
};
use esdk::raw::RawAesKeyring;

const SIZE: usize = 1 << 20;
const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
];
const FRAMES: [(u32, &str); 3] = [(4096, "4KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + 17) as u8).collect()
}

fn keyring(key: &[u8; 32]) -> RawAesKeyring<'_> {
    match RawAesKeyring::new("bench", "key", key) {
        Ok(k) => k,
        Err(e) => panic!("keyring: {e}"),
    }
}

fn bench_provider<P: CryptoProvider>(c: &mut Criterion, name: &str, p: &P) {
    let cfg = Config::new();
    let key = [9u8; 32];
    let kr = keyring(&key);
    let pt = plaintext(SIZE);
    let ec_src = [("purpose", "bench")];
    let mut g = c.benchmark_group(format!("{name}/1MiB"));
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    g.sample_size(20);
    for suite in SUITES {
        for (frame, frame_name) in FRAMES {
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(frame);
            let len = encrypted_len(&cfg, &opts, &kr, &ec_src, pt.len()).expect("length");
            // The message the decrypt benchmark reads (also when a filter skips encrypt).
            let mut ct = vec![0u8; len];
            let mut ec = ec_src;
            encrypt(&cfg, p, &kr, &opts, &mut ec, &pt, &mut ct).expect("encrypt");
            let mut scratch = vec![0u8; len];
            let id = format!("{suite}/{frame_name}");
            g.bench_function(BenchmarkId::new("encrypt", &id), |b| {
                b.iter(|| {
                    let mut ec = ec_src;
                    black_box(
                        encrypt(&cfg, p, &kr, &opts, &mut ec, &pt, &mut scratch).expect("encrypt"),
                    )
                });
            });
            let mut out = vec![0u8; SIZE];
            g.bench_function(BenchmarkId::new("decrypt", &id), |b| {
                b.iter(|| {
                    black_box(
                        decrypt(&cfg, p, &kr, &[], &ct, &mut out)
                            .expect("decrypt")
                            .plaintext_len,
                    )
                });
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group(format!("{name}/100B-round-trip"));
    g.measurement_time(Duration::from_secs(2));
    let small = plaintext(100);
    for suite in SUITES {
        let opts = EncryptOptions::new().with_suite(suite);
        let mut ct = vec![0u8; 2048];
        let mut out = [0u8; 100];
        g.bench_function(format!("{suite}"), |b| {
            b.iter(|| {
                let mut ec = ec_src;
                let n = encrypt(&cfg, p, &kr, &opts, &mut ec, &small, &mut ct).expect("encrypt");
                black_box(
                    decrypt(&cfg, p, &kr, &[], &ct[..n], &mut out)
                        .expect("decrypt")
                        .plaintext_len,
                )
            });
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_provider(c, "aws-lc", &esdk_aws_lc::DEFAULT_PROVIDER);
    bench_provider(c, "rustcrypto", &RustCrypto::new(esdk::OsRng));
}

/// The criterion group (the macro's function carries no doc comment).
mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(core_paths, super::benches);
}

criterion_main!(group::core_paths);
