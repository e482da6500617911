//! Throughput of the aws-lc provider against the pure-Rust one on a 64 MiB in-memory
//! plaintext. Run with `cargo run --release -p esdk-aws-lc --example speed`.
//!
//! Each figure is the best of several runs, in MB/s (10^6 bytes per second) of plaintext.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::KeyInit;
use aes_gcm::aead::AeadInOut;
use esdk_core::{
    AlgorithmSuite, Config, CryptoProvider, EncryptOptions, decrypt, encrypt, encrypted_len,
};
use esdk_raw::RawAesKeyring;

const SIZE: usize = 64 << 20;
const RUNS: usize = 5;

fn best(mut f: impl FnMut()) -> Duration {
    f(); // warm up
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn raw_awslc(buf: &mut [u8], chunk: usize) -> Duration {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
    best(|| {
        for (i, c) in buf.chunks_mut(chunk).enumerate() {
            let mut iv = [0u8; 12];
            iv[8..].copy_from_slice(&(i as u32).to_be_bytes());
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(iv),
                    Aad::from(&[0u8; 48]),
                    c,
                )
                .expect("seal");
            let _ = black_box(tag);
        }
    })
}

fn raw_rustcrypto(buf: &mut [u8], chunk: usize) -> Duration {
    let key = aes_gcm::Aes256Gcm::new_from_slice(&[7u8; 32]).expect("key");
    best(|| {
        for (i, c) in buf.chunks_mut(chunk).enumerate() {
            let mut iv = [0u8; 12];
            iv[8..].copy_from_slice(&(i as u32).to_be_bytes());
            let tag = key
                .encrypt_inout_detached((&iv).into(), &[0u8; 48], c.into())
                .expect("seal");
            let _ = black_box(tag);
        }
    })
}

/// What the core's `seal_frame` / `body_step` do per frame today (copy into the output,
/// then seal / open in place), against aws-lc's out-of-place calls, on 64 MiB in `chunk`
/// frames from `src` into `dst`.
fn hot_path_models(src: &[u8], dst: &mut [u8], chunk: usize) -> [Duration; 4] {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
    let nonce = |i: usize| {
        let mut iv = [0u8; 12];
        iv[8..].copy_from_slice(&(i as u32).to_be_bytes());
        Nonce::assume_unique_for_key(iv)
    };
    let aad = [0u8; 48];
    let mut tags = vec![[0u8; 16]; src.len().div_ceil(chunk)];
    let copy_seal = best(|| {
        for (i, (s, d)) in src.chunks(chunk).zip(dst.chunks_mut(chunk)).enumerate() {
            d.copy_from_slice(s);
            let t = key
                .seal_in_place_separate_tag(nonce(i), Aad::from(&aad), d)
                .expect("seal");
            tags[i].copy_from_slice(t.as_ref());
        }
    });
    let oop_seal = best(|| {
        for (i, (s, d)) in src.chunks(chunk).zip(dst.chunks_mut(chunk)).enumerate() {
            key.seal_out_of_place_scatter(nonce(i), Aad::from(&aad), s, d, &[], &mut tags[i])
                .expect("seal");
        }
    });
    // dst now holds ciphertext; open it back into a second buffer.
    let mut back = vec![0u8; src.len()];
    let copy_open = best(|| {
        for (i, (c, p)) in dst.chunks(chunk).zip(back.chunks_mut(chunk)).enumerate() {
            p.copy_from_slice(c);
            key.open_in_place_separate_tag(nonce(i), Aad::from(&aad), &tags[i], p)
                .expect("open");
        }
    });
    let oop_open = best(|| {
        for (i, (c, p)) in dst.chunks(chunk).zip(back.chunks_mut(chunk)).enumerate() {
            key.open_separate_gather(nonce(i), Aad::from(&aad), c, &tags[i], p)
                .expect("open");
        }
    });
    assert_eq!(back, src);
    [copy_seal, oop_seal, copy_open, oop_open]
}

fn esdk_round<P: CryptoProvider>(
    p: &P,
    suite: AlgorithmSuite,
    frame: u32,
    pt: &[u8],
    ct: &mut Vec<u8>,
    out: &mut [u8],
) -> (Duration, Duration) {
    let cfg = Config::new();
    let key = [9u8; 32];
    let kr = RawAesKeyring::new("speed", "key", &key).expect("keyring");
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame);
    let ec_src = [("purpose", "speed")];
    let len = encrypted_len(&cfg, &opts, &kr, &ec_src, pt.len()).expect("len");
    ct.resize(len, 0);
    let enc = best(|| {
        let mut ec = ec_src;
        let n = encrypt(&cfg, p, &kr, &opts, &mut ec, pt, ct).expect("encrypt");
        black_box(n);
    });
    let dec = best(|| {
        let d = decrypt(&cfg, p, &kr, &[], ct, out).expect("decrypt");
        assert_eq!(d.plaintext_len, pt.len());
    });
    assert_eq!(&out[..pt.len()], pt);
    (enc, dec)
}

/// One encrypt and one decrypt of `pt` (frame 4 KiB), timed once each.
fn esdk_round_once<P: CryptoProvider>(
    p: &P,
    suite: AlgorithmSuite,
    pt: &[u8],
    ct: &mut Vec<u8>,
    out: &mut [u8],
) -> (Duration, Duration) {
    let cfg = Config::new();
    let key = [9u8; 32];
    let kr = RawAesKeyring::new("speed", "key", &key).expect("keyring");
    let opts = EncryptOptions::new().with_suite(suite);
    let ec_src = [("purpose", "speed")];
    let len = encrypted_len(&cfg, &opts, &kr, &ec_src, pt.len()).expect("len");
    ct.resize(len, 0);
    let mut ec = ec_src;
    let t = Instant::now();
    let n = encrypt(&cfg, p, &kr, &opts, &mut ec, pt, ct).expect("encrypt");
    let e = t.elapsed();
    let t = Instant::now();
    let d = decrypt(&cfg, p, &kr, &[], &ct[..n], out).expect("decrypt");
    let dt = t.elapsed();
    assert_eq!(d.plaintext_len, pt.len());
    (e, dt)
}

fn main() {
    // aws-lc seeds its DRBG on first use (CPU jitter entropy): a one-off per process.
    let t = Instant::now();
    let mut seed = [0u8; 32];
    esdk_core::RandomSource::fill_random(&esdk_aws_lc::DEFAULT_PROVIDER, &mut seed).expect("rng");
    let first_rng = t.elapsed();
    let other_thread = std::thread::spawn(|| {
        let t = Instant::now();
        let mut seed = [0u8; 32];
        esdk_core::RandomSource::fill_random(&esdk_aws_lc::DEFAULT_PROVIDER, &mut seed)
            .expect("rng");
        t.elapsed()
    })
    .join()
    .unwrap_or_default();

    let mut pt = vec![0u8; SIZE];
    for (i, b) in pt.iter_mut().enumerate() {
        *b = (i * 131 + 17) as u8;
    }
    let mut scratch = pt.clone();
    let mut out = vec![0u8; SIZE + (1 << 20)];
    let mut ct = Vec::new();
    let aws = esdk_aws_lc::DEFAULT_PROVIDER;
    let rc = esdk::DEFAULT_PROVIDER;

    // `speed profile <frame bytes>`: only 0x0478 with aws-lc at that frame length, for perf.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("profile") {
        let frame = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4096);
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let (e, d) = esdk_round(&aws, suite, frame, &pt, &mut ct, &mut out);
        println!(
            "0x0478 @ {frame}: enc {:.0} dec {:.0}",
            mbps(SIZE, e),
            mbps(SIZE, d)
        );
        return;
    }

    println!("64 MiB plaintext, best of {RUNS}, MB/s (1 MB = 10^6 B)\n");
    let memcpy = best(|| {
        scratch.copy_from_slice(&pt);
        black_box(&scratch);
    });
    println!(
        "{:<44} {:>9.0}",
        "memcpy 64 MiB (reference)",
        mbps(SIZE, memcpy)
    );

    let mut raw_1m = 0.0;
    for (chunk, name) in [(4096, "4 KiB"), (64 << 10, "64 KiB"), (1 << 20, "1 MiB")] {
        let a = mbps(SIZE, raw_awslc(&mut scratch, chunk));
        let r = mbps(SIZE, raw_rustcrypto(&mut scratch, chunk));
        println!(
            "{:<44} {:>9.0}   rustcrypto {:>7.0}   ({:.2}x)",
            format!("raw AES-256-GCM seal, {name} chunks: aws-lc"),
            a,
            r,
            a / r
        );
        if chunk == 1 << 20 {
            raw_1m = a;
        }
    }

    for (chunk, name) in [(4096, "4 KiB"), (1 << 20, "1 MiB")] {
        let [cs, os, co, oo] = hot_path_models(&pt, &mut scratch, chunk);
        println!(
            "{:<44} {:>9.0}   out-of-place {:>5.0}",
            format!("aws-lc copy+seal in place, {name} frames"),
            mbps(SIZE, cs),
            mbps(SIZE, os)
        );
        println!(
            "{:<44} {:>9.0}   out-of-place {:>5.0}",
            format!("aws-lc copy+open in place, {name} frames"),
            mbps(SIZE, co),
            mbps(SIZE, oo)
        );
    }

    let sha_a = best(|| {
        black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, &pt));
    });
    let sha_r = best(|| {
        use sha2::Digest;
        black_box(sha2::Sha384::digest(&pt));
    });
    let (a, r) = (mbps(SIZE, sha_a), mbps(SIZE, sha_r));
    println!(
        "{:<44} {:>9.0}   rustcrypto {:>7.0}   ({:.2}x)",
        "SHA-384: aws-lc",
        a,
        r,
        a / r
    );
    println!();
    println!(
        "{:<14} {:>7} | {:>10} {:>10} | {:>10} {:>10}",
        "suite", "frame", "aws-lc enc", "aws-lc dec", "rc enc", "rc dec"
    );
    let mut esdk_0478_1m = 0.0;
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        for (frame, name) in [(4096u32, "4 KiB"), (64 << 10, "64 KiB"), (1 << 20, "1 MiB")] {
            let (ae, ad) = esdk_round(&aws, suite, frame, &pt, &mut ct, &mut out);
            let (re, rd) = esdk_round(&rc, suite, frame, &pt, &mut ct, &mut out);
            let (ae, ad, re, rd) = (
                mbps(SIZE, ae),
                mbps(SIZE, ad),
                mbps(SIZE, re),
                mbps(SIZE, rd),
            );
            println!(
                "{:<14} {:>7} | {:>10.0} {:>10.0} | {:>10.0} {:>10.0}",
                format!("{suite}"),
                name,
                ae,
                ad,
                re,
                rd
            );
            if suite == AlgorithmSuite::Aes256GcmHkdfSha512CommitKey && frame == 1 << 20 {
                esdk_0478_1m = ae;
            }
        }
    }
    println!();
    println!(
        "first aws-lc random call in the process (DRBG seeding): {:.1} ms",
        first_rng.as_secs_f64() * 1e3
    );
    println!(
        "first aws-lc random call in a second thread: {:.1} ms",
        other_thread.as_secs_f64() * 1e3
    );
    println!("1 KiB messages, µs per call (best of {RUNS} x 200):");
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let small = &pt[..1024];
        let mut row = Vec::new();
        for p in 0..2 {
            // Best of RUNS batches of 200 messages, in µs per message.
            let (mut be, mut bd) = (f64::MAX, f64::MAX);
            for _ in 0..RUNS {
                let (mut e, mut d) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..200 {
                    let (a, b) = if p == 0 {
                        esdk_round_once(&aws, suite, small, &mut ct, &mut out)
                    } else {
                        esdk_round_once(&rc, suite, small, &mut ct, &mut out)
                    };
                    e += a;
                    d += b;
                }
                be = be.min(e.as_secs_f64() * 1e6 / 200.0);
                bd = bd.min(d.as_secs_f64() * 1e6 / 200.0);
            }
            row.push((be, bd));
        }
        println!(
            "  {suite}: aws-lc enc {:.0} dec {:.0} | rustcrypto enc {:.0} dec {:.0}",
            row[0].0, row[0].1, row[1].0, row[1].1
        );
    }
    println!();
    println!(
        "ESDK 0x0478 @ 1 MiB encrypt / raw aws-lc AES-256-GCM seal @ 1 MiB: {:.2}",
        esdk_0478_1m / raw_1m
    );
}
