//! Small-message costs of the aws-lc provider, against the pure-Rust one, and the SHA-384
//! speed of every message hasher within reach. Run with
//! `cargo bench -p esdk-aws-lc --bench small` (add `-- small`, `-- kdf` or `-- sha` for one
//! part, or
//! `-- profile signed` / `-- profile unsigned` for the aws-lc round trip alone, to profile).
//!
//! - the 100-byte round trip (encrypt + decrypt, raw AES keyring) in µs, unsigned (0x0478)
//!   and signed (0x0578), and its parts: ECDSA P-384 key generation, signing and
//!   verification, and `fill_random`;
//! - a committing suite's key derivation (content key + commitment key) per provider, from
//!   one HKDF extract and as two separate HKDFs, and SHA-512 over one block;
//! - SHA-384 (and SHA-256) in MB/s on 64 MiB in 1 MiB updates: the provider's
//!   `MessageHasher` (OpenSSL's with `--features openssl-sha`), aws-lc's digest, and the
//!   `sha2` crate.
//!
//! Each figure is the best of 5 runs, timed by the thread's CPU time where the platform has
//! it (other work on a shared machine then does not count), wall time otherwise.

use std::hint::black_box;
use std::time::{Duration, Instant};

use esdk_aws_lc::DEFAULT_PROVIDER;
use esdk_core::provider::{MessageHasher, RandomSource};
use esdk_core::suite::SignatureAlg;
use esdk_core::{AlgorithmSuite, Config, CryptoProvider, EncryptOptions, decrypt, encrypt};
use esdk_raw::RawAesKeyring;

const RUNS: usize = 5;

fn thread_cpu() -> Option<Duration> {
    cpu_time::ThreadTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

/// Best of [`RUNS`] timed calls of `f` after one warm-up call.
fn best(mut f: impl FnMut()) -> Duration {
    f();
    (0..RUNS)
        .map(|_| {
            let (t, c) = (Instant::now(), thread_cpu());
            f();
            match (c, thread_cpu()) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => t.elapsed(),
            }
        })
        .min()
        .unwrap_or_default()
}

fn micros(d: Duration, n: u32) -> f64 {
    d.as_secs_f64() * 1e6 / f64::from(n)
}

/// One 100-byte encrypt + decrypt, `n` times, in µs each.
fn round_trip<P: CryptoProvider>(p: &P, suite: AlgorithmSuite, n: u32) -> f64 {
    let cfg = Config::new();
    let key = [9u8; 32];
    let kr = RawAesKeyring::new("bench", "key", &key).expect("keyring");
    let opts = EncryptOptions::new().with_suite(suite);
    let msg = [0x5au8; 100];
    let (mut ct, mut out) = ([0u8; 1024], [0u8; 100]);
    let d = best(|| {
        for _ in 0..n {
            let mut ec = [("purpose", "bench")];
            let len = encrypt(&cfg, p, &kr, &opts, &mut ec, &msg, &mut ct).expect("encrypt");
            let d = decrypt(&cfg, p, &kr, &[], &ct[..len], &mut out).expect("decrypt");
            assert_eq!(out[..d.plaintext_len], msg);
        }
    });
    micros(d, n)
}

/// µs of key generation, signing and verification with P-384.
fn ecdsa_parts<P: CryptoProvider>(p: &P, n: u32) -> [f64; 3] {
    let alg = SignatureAlg::EcdsaP384Sha384;
    let (mut sk, mut pk, mut sig) = ([0u8; 48], [0u8; 49], [0u8; 103]);
    let digest = [0x42u8; 48];
    let keygen = best(|| {
        for _ in 0..n {
            p.generate_signing_key(alg, &mut sk, &mut pk)
                .expect("keygen");
        }
    });
    let sign = best(|| {
        for _ in 0..n {
            black_box(p.sign_digest(alg, &sk, &digest, &mut sig).expect("sign"));
        }
    });
    let verify = best(|| {
        for _ in 0..n {
            assert_eq!(p.verify_digest(alg, &pk, &digest, &sig), Ok(true));
        }
    });
    [micros(keygen, n), micros(sign, n), micros(verify, n)]
}

fn small() {
    let aws = DEFAULT_PROVIDER;
    let rc = esdk::RUSTCRYPTO_PROVIDER;
    let t = Instant::now();
    let mut seed = [0u8; 32];
    aws.fill_random(&mut seed).expect("rng");
    println!(
        "first fill_random of the process (wall): {:.1} µs",
        t.elapsed().as_secs_f64() * 1e6
    );
    let fill = best(|| {
        for _ in 0..1000 {
            aws.fill_random(&mut seed).expect("rng");
            black_box(seed);
        }
    });
    println!("fill_random(32 bytes): {:.2} µs", micros(fill, 1000));
    let n = 2000;
    println!(
        "100-byte round trip, µs: aws-lc 0x0478 {:.1}, 0x0578 {:.1} | rustcrypto 0x0478 {:.1}, 0x0578 {:.1}",
        round_trip(&aws, AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, n * 10),
        round_trip(
            &aws,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
            n
        ),
        round_trip(&rc, AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, n * 10),
        round_trip(
            &rc,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
            n
        ),
    );
    for (name, [k, s, v]) in [
        ("aws-lc provider", ecdsa_parts(&aws, n)),
        ("rustcrypto", ecdsa_parts(&rc, n)),
    ] {
        println!("P-384 µs, {name}: keygen {k:.1}, sign {s:.1}, verify {v:.1}");
    }
    p384_pieces(n);
}

/// µs of the aws-lc pieces of P-384 signing and verification.
fn p384_pieces(n: u32) {
    use aws_lc_rs::agreement::{ECDH_P384, PrivateKey};
    use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, ParsedPublicKey};
    let k = [0x42u8; 48];
    let base = best(|| {
        for _ in 0..n {
            let pk = PrivateKey::from_private_key(&ECDH_P384, &k).expect("key");
            black_box(pk.compute_public_key().expect("point"));
        }
    });
    let parse_k = best(|| {
        for _ in 0..n {
            black_box(PrivateKey::from_private_key(&ECDH_P384, &k).expect("key"));
        }
    });
    let aws_keygen = best(|| {
        for _ in 0..n {
            black_box(
                aws_lc_rs::signature::EcdsaKeyPair::generate(
                    &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                )
                .expect("keygen"),
            );
        }
    });
    // The provider's signing before it avoided aws-lc's DRBG: parse the key (RFC 5915 DER,
    // with aws-lc's key check), then aws-lc's randomized signature until one has the fixed
    // length (r with its top bit set).
    let old_sign = {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair};
        let kp = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING).expect("keygen");
        let der = kp.private_key().as_der().expect("der");
        let d =
            aws_lc_rs::digest::Digest::import_less_safe(&[0x42u8; 48], &aws_lc_rs::digest::SHA384)
                .expect("digest");
        best(|| {
            for _ in 0..n {
                let kp = EcdsaKeyPair::from_private_key_der(
                    &ECDSA_P384_SHA384_ASN1_SIGNING,
                    der.as_ref(),
                )
                .expect("key");
                while kp.sign_digest(&d).expect("sign").as_ref()[3] != 49 {}
            }
        })
    };
    let point = PrivateKey::from_private_key(&ECDH_P384, &k)
        .and_then(|p| p.compute_public_key().map_err(|_| unreachable!()))
        .expect("point");
    let compress = best(|| {
        for _ in 0..n {
            let c: EcPublicKeyCompressedBin<'static> = point.as_be_bytes().expect("compress");
            black_box(c);
        }
    });
    let c: EcPublicKeyCompressedBin<'static> = point.as_be_bytes().expect("compress");
    let parse_c = best(|| {
        for _ in 0..n {
            black_box(ParsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, c.as_ref()).expect("parse"));
        }
    });
    let parse_u = best(|| {
        for _ in 0..n {
            black_box(
                ParsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, point.as_ref()).expect("parse"),
            );
        }
    });
    let rc_decompress = best(|| {
        for _ in 0..n {
            black_box(p384::PublicKey::from_sec1_bytes(c.as_ref()).expect("decompress"));
        }
    });
    println!(
        "P-384 pieces µs: aws-lc EcdsaKeyPair::generate {:.1}, DER key + aws-lc sign to fixed length {:.1}, agreement from_private_key {:.1}",
        micros(aws_keygen, n),
        micros(old_sign, n),
        micros(parse_k, n)
    );
    let rc_base = best(|| {
        use p384::elliptic_curve::group::Group as _;
        let k = p384::Scalar::from(0x4242_4242_4242u64);
        for _ in 0..n {
            black_box(p384::ProjectivePoint::mul_by_generator(&k).to_affine());
        }
    });
    println!(
        "P-384 pieces µs: p384 k·G to affine {:.1}",
        micros(rc_base, n)
    );
    println!(
        "P-384 pieces µs: aws-lc k·G {:.1}, compress {:.1}, parse compressed {:.1}, parse uncompressed {:.1}; p384 decompress {:.1}",
        micros(base, n),
        micros(compress, n),
        micros(parse_c, n),
        micros(parse_u, n),
        micros(rc_decompress, n)
    );
}

const SHA_TOTAL: usize = 64 << 20;
const SHA_CHUNK: usize = 1 << 20;

fn mbps(d: Duration) -> f64 {
    SHA_TOTAL as f64 / d.as_secs_f64() / 1e6
}

fn sha() {
    let data: Vec<u8> = (0..SHA_TOTAL).map(|i| (i * 131 + 17) as u8).collect();
    let aws = DEFAULT_PROVIDER;
    for (alg, name) in [
        (SignatureAlg::EcdsaP384Sha384, "SHA-384"),
        (SignatureAlg::EcdsaP256Sha256, "SHA-256"),
    ] {
        let provider = best(|| {
            let mut h = aws.hasher(alg).expect("hasher");
            for c in data.chunks(SHA_CHUNK) {
                h.update(c);
            }
            let mut out = [0u8; 64];
            black_box(h.finalize_into(&mut out));
        });
        let awslc = best(|| {
            let d = match alg {
                SignatureAlg::EcdsaP256Sha256 => &aws_lc_rs::digest::SHA256,
                SignatureAlg::EcdsaP384Sha384 => &aws_lc_rs::digest::SHA384,
            };
            let mut h = aws_lc_rs::digest::Context::new(d);
            for c in data.chunks(SHA_CHUNK) {
                h.update(c);
            }
            black_box(h.finish());
        });
        let rust = best(|| {
            use sha2::Digest;
            match alg {
                SignatureAlg::EcdsaP256Sha256 => {
                    let mut h = sha2::Sha256::new();
                    for c in data.chunks(SHA_CHUNK) {
                        h.update(c);
                    }
                    black_box(h.finalize());
                }
                SignatureAlg::EcdsaP384Sha384 => {
                    let mut h = sha2::Sha384::new();
                    for c in data.chunks(SHA_CHUNK) {
                        h.update(c);
                    }
                    black_box(h.finalize());
                }
            }
        });
        println!(
            "{name} MB/s (64 MiB in 1 MiB updates): provider hasher ({}) {:.0}, aws-lc digest {:.0}, sha2 crate {:.0}",
            if cfg!(feature = "openssl-sha") {
                "OpenSSL"
            } else {
                "aws-lc"
            },
            mbps(provider),
            mbps(awslc),
            mbps(rust),
        );
    }
}

/// µs of a committing suite's key derivation per provider: the content key and the
/// commitment key from one extract (what the engine runs), and as two separate HKDFs (the
/// spec's literal form, the engine's before); and of SHA-512 over one block in aws-lc and in
/// the `sha2` crate.
fn kdf(n: u32) {
    use esdk_core::provider::HkdfOutput;
    use esdk_core::suite::HashAlg;
    const DERIVE: &[&[u8]] = &[b"\x04\x78", b"DERIVEKEY"];
    const COMMIT: &[&[u8]] = &[b"COMMITKEY"];
    fn derive<P: CryptoProvider>(p: &P, n: u32, separate: bool) -> f64 {
        let (mid, dk) = ([7u8; 32], [9u8; 32]);
        let (mut key, mut commit) = ([0u8; 32], [0u8; 32]);
        let d = best(|| {
            for _ in 0..n {
                if separate {
                    for (info, okm) in [(DERIVE, &mut key), (COMMIT, &mut commit)] {
                        p.hkdf(
                            HashAlg::Sha512,
                            &mid,
                            &dk,
                            &mut [HkdfOutput::new(info, okm)],
                        )
                        .expect("hkdf");
                    }
                } else {
                    p.hkdf(
                        HashAlg::Sha512,
                        &mid,
                        &dk,
                        &mut [
                            HkdfOutput::new(DERIVE, &mut key),
                            HkdfOutput::new(COMMIT, &mut commit),
                        ],
                    )
                    .expect("hkdf");
                }
                black_box((key, commit));
            }
        });
        micros(d, n)
    }
    let block = [0x5au8; 100];
    let aws_block = best(|| {
        for _ in 0..n {
            black_box(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA512,
                &block,
            ));
        }
    });
    let rc_block = best(|| {
        use sha2::Digest;
        for _ in 0..n {
            black_box(sha2::Sha512::digest(block));
        }
    });
    let (aws, rc) = (DEFAULT_PROVIDER, esdk::RUSTCRYPTO_PROVIDER);
    println!(
        "committing key derivation µs, one extract / two HKDFs: aws-lc provider {:.2} / {:.2}, rustcrypto {:.2} / {:.2}",
        derive(&aws, n, false),
        derive(&aws, n, true),
        derive(&rc, n, false),
        derive(&rc, n, true),
    );
    println!(
        "SHA-512 of 100 bytes (one block) µs: aws-lc {:.3}, sha2 crate {:.3}",
        micros(aws_block, n),
        micros(rc_block, n),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `profile signed|unsigned`: only the aws-lc round trip, for `perf record`.
    if args.first().map(String::as_str) == Some("basemul") {
        let k = [0x42u8; 48];
        for _ in 0..20000 {
            let pk = aws_lc_rs::agreement::PrivateKey::from_private_key(
                &aws_lc_rs::agreement::ECDH_P384,
                &k,
            )
            .expect("key");
            black_box(pk.compute_public_key().expect("point"));
        }
        return;
    }
    if args.first().map(String::as_str) == Some("profile") {
        let suite = match args.get(1).map(String::as_str) {
            Some("unsigned") => AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            _ => AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        };
        println!("{:.1} µs", round_trip(&DEFAULT_PROVIDER, suite, 2000));
        return;
    }
    let want = |part: &str| {
        !args
            .iter()
            .any(|a| ["small", "kdf", "sha"].contains(&a.as_str()))
            || args.iter().any(|a| a == part)
    };
    if want("small") {
        small();
    }
    if want("kdf") {
        kdf(20000);
    }
    if want("sha") {
        sha();
    }
}
