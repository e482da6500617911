//! The aws-lc provider against the pure-Rust one (`esdk_core::rustcrypto::RustCrypto`): every
//! suite, several frame and plaintext lengths, both directions; tampering fails the same way
//! under both; and every raw-AES decrypt vector of the Python ESDK 4.0.7 set, with the same
//! verdict under both. The vectors are found at `ESDK_TEST_VECTORS` or
//! `../shared/test-vectors` next to the workspace; missing vectors fail the test.

use std::path::{Path, PathBuf};

use esdk_aws_lc::{AwsLc, DEFAULT_PROVIDER};
use esdk_core::error::{AuthFailure, Error};
use esdk_core::suite::SignatureAlg;
use esdk_core::{AlgorithmSuite, CryptoProvider, EncryptOptions, decrypt, encrypt, encrypted_len};
use esdk_raw::RawAesKeyring;
use esdk_test_support::config_for;
use esdk_tests::manifest::Expected;
use esdk_tests::runner::{CaseError, Options, Provider, decrypt_case};

const KEY: [u8; 32] = [
    0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xA9, 0xBA, 0xCB, 0xDC, 0xED, 0xFE, 0x0F,
    0x1E, 0x2D, 0x3C, 0x4B, 0x5A, 0x69, 0x78, 0x87, 0x96, 0xA5, 0xB4, 0xC3, 0xD2, 0xE1, 0xF0, 0x01,
];

fn keyring() -> RawAesKeyring<'static> {
    RawAesKeyring::new("conformance", "aws-lc-key", &KEY).expect("keyring")
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

fn seal<P: CryptoProvider>(
    p: &P,
    suite: AlgorithmSuite,
    frame: u32,
    pt: &[u8],
) -> Result<Vec<u8>, Error> {
    let cfg = config_for(suite);
    let kr = keyring();
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(frame);
    let ec_src = [("purpose", "conformance"), ("provider", "aws-lc")];
    let len = encrypted_len(&cfg, &opts, &kr, &ec_src, pt.len())?;
    let mut ec = ec_src;
    let mut out = vec![0u8; len];
    let n = encrypt(&cfg, p, &kr, &opts, &mut ec, pt, &mut out)?;
    // The size query is exact, so signatures have their fixed length.
    assert_eq!(n, len, "suite {suite} frame {frame} len {}", pt.len());
    out.truncate(n);
    Ok(out)
}

/// Decrypts and returns (plaintext, header length).
fn open<P: CryptoProvider>(
    p: &P,
    suite: AlgorithmSuite,
    msg: &[u8],
) -> Result<(Vec<u8>, usize), Error> {
    let cfg = config_for(suite);
    let kr = keyring();
    let mut out = vec![0u8; msg.len()];
    let d = decrypt(&cfg, p, &kr, &[], msg, &mut out)?;
    out.truncate(d.plaintext_len);
    Ok((out, d.header.bytes.len()))
}

/// The pure-Rust provider of the core (not `esdk::DEFAULT_PROVIDER`, which is aws-lc).
fn rust_crypto() -> esdk::RustCryptoProvider {
    esdk::RUSTCRYPTO_PROVIDER
}

#[test]
fn every_suite_both_directions() {
    let aws = DEFAULT_PROVIDER;
    let rc = rust_crypto();
    let mut cases = 0;
    for suite in AlgorithmSuite::ALL {
        for frame in [1u32, 512, 4096] {
            let f = frame as usize;
            for len in [0, 1, f - 1, f, f + 1, 3 * f + 7] {
                let pt = plaintext(len);
                let ctx = format!("suite {suite} frame {frame} len {len}");

                let msg = seal(&aws, suite, frame, &pt).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let (got, _) = open(&rc, suite, &msg).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(got, pt, "{ctx}: aws-lc -> rustcrypto");
                let (got, _) = open(&aws, suite, &msg).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(got, pt, "{ctx}: aws-lc -> aws-lc");

                let msg = seal(&rc, suite, frame, &pt).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let (got, _) = open(&aws, suite, &msg).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(got, pt, "{ctx}: rustcrypto -> aws-lc");
                cases += 1;
            }
        }
    }
    println!("{cases} cases x 2 directions passed");
    assert_eq!(cases, 11 * 3 * 6);
}

#[test]
fn explicit_provider_construction_matches_default() {
    assert_eq!(AwsLc::new(), DEFAULT_PROVIDER);
    let rc = esdk_core::rustcrypto::RustCrypto::new(esdk::OsRng);
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let msg = seal(&AwsLc::new(), suite, 512, &plaintext(1000)).expect("seal");
    assert_eq!(open(&rc, suite, &msg).expect("open").0, plaintext(1000));
}

/// Flips one bit at `at` and returns the error of each provider.
fn tampered(suite: AlgorithmSuite, msg: &[u8], at: usize) -> (Error, Error) {
    let mut bad = msg.to_vec();
    bad[at] ^= 0x01;
    refused_by_both(suite, &bad, &format!("a message with byte {at} tampered"))
}

/// The error of each provider on `msg`, which both must refuse (`what` names it; on success
/// only the plaintext length is shown).
fn refused_by_both(suite: AlgorithmSuite, msg: &[u8], what: &str) -> (Error, Error) {
    let a = open(&DEFAULT_PROVIDER, suite, msg)
        .map(|(p, _)| p.len())
        .expect_err(&format!("aws-lc accepted {what}"));
    let r = open(&rust_crypto(), suite, msg)
        .map(|(p, _)| p.len())
        .expect_err(&format!("rustcrypto accepted {what}"));
    (a, r)
}

#[test]
fn tampering_fails_the_same_way() {
    let frame = 512u32;
    let f = frame as usize;
    for suite in AlgorithmSuite::ALL {
        for writer in ["aws-lc", "rustcrypto"] {
            let pt = plaintext(3 * f + 7);
            let msg = match writer {
                "aws-lc" => seal(&DEFAULT_PROVIDER, suite, frame, &pt),
                _ => seal(&rust_crypto(), suite, frame, &pt),
            }
            .expect("seal");
            let (_, header_len) = open(&DEFAULT_PROVIDER, suite, &msg).expect("open");
            let footer_len = suite.signature().map_or(0, |s| 2 + s.fixed_signature_len());
            let ctx = format!("suite {suite}, written by {writer}");

            // Header: the last byte of the header tag.
            let (a, r) = tampered(suite, &msg, header_len - 1);
            assert_eq!(a, r, "{ctx}: header");
            assert_eq!(
                a,
                Error::Authentication(AuthFailure::HeaderTag),
                "{ctx}: header"
            );

            // Frame: a ciphertext byte of frame 2 (after seq 4 + iv 12 of frame 2).
            let frame2 = header_len + (f + 32) + 16 + 10;
            let (a, r) = tampered(suite, &msg, frame2);
            assert_eq!(a, r, "{ctx}: frame");
            assert_eq!(
                a,
                Error::Authentication(AuthFailure::FrameTag { sequence: 2 }),
                "{ctx}: frame"
            );

            // Final frame tag.
            let final_tag = msg.len() - footer_len - 1;
            let (a, r) = tampered(suite, &msg, final_tag);
            assert_eq!(a, r, "{ctx}: final frame");
            assert_eq!(
                a,
                Error::Authentication(AuthFailure::FrameTag { sequence: 4 }),
                "{ctx}: final frame"
            );

            // Footer: a byte inside the signature (the s value near the end).
            if footer_len > 0 {
                let (a, r) = tampered(suite, &msg, msg.len() - 5);
                assert_eq!(a, r, "{ctx}: footer");
                assert_eq!(
                    a,
                    Error::Authentication(AuthFailure::Signature),
                    "{ctx}: footer"
                );
            }
        }
    }
}

/// The message with its footer (u16 length, signature) replaced by one holding `sig`.
fn with_signature(msg: &[u8], footer_len: usize, sig: &[u8]) -> Vec<u8> {
    let mut out = msg[..msg.len() - footer_len].to_vec();
    let len = u16::try_from(sig.len()).expect("signature length");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(sig);
    out
}

/// A valid DER signature over `signed` (the header and body) by a new key of `alg`'s curve:
/// well-formed in every way, only made by the wrong key.
fn signature_by_another_key(alg: SignatureAlg, signed: &[u8]) -> Vec<u8> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    };
    let signing = match alg {
        SignatureAlg::EcdsaP256Sha256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
        SignatureAlg::EcdsaP384Sha384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
    };
    let other = EcdsaKeyPair::generate(signing).expect("key");
    let sig = other.sign(&SystemRandom::new(), signed).expect("sign");
    sig.as_ref().to_vec()
}

/// Only the signature is wrong: every frame is intact and authenticates, so a provider whose
/// verify says "valid" to anything accepts these messages. Both providers must refuse each one
/// with the signature error: a message re-signed by another key (a well-formed signature of
/// the usual shape), and every single-bit flip of the footer (length and DER signature).
#[test]
fn a_wrong_signature_alone_fails_the_same_way() {
    let frame = 512u32;
    let pt = plaintext(3 * frame as usize + 7);
    let mut checked = 0usize;
    for suite in AlgorithmSuite::ALL {
        let Some(alg) = suite.signature() else {
            continue;
        };
        let footer_len = 2 + alg.fixed_signature_len();
        for writer in ["aws-lc", "rustcrypto"] {
            let msg = match writer {
                "aws-lc" => seal(&DEFAULT_PROVIDER, suite, frame, &pt),
                _ => seal(&rust_crypto(), suite, frame, &pt),
            }
            .expect("seal");
            let ctx = format!("suite {suite}, written by {writer}");
            // The untouched message verifies under both: the refusals below are the
            // signature's.
            assert_eq!(
                open(&DEFAULT_PROVIDER, suite, &msg).expect("aws-lc open").0,
                pt
            );
            assert_eq!(open(&rust_crypto(), suite, &msg).expect("rc open").0, pt);

            let resigned = with_signature(
                &msg,
                footer_len,
                &signature_by_another_key(alg, &msg[..msg.len() - footer_len]),
            );
            let (a, r) = refused_by_both(
                suite,
                &resigned,
                &format!("{ctx}: a message signed by another key"),
            );
            let want = Error::Authentication(AuthFailure::Signature);
            assert_eq!((a, r), (want, want), "{ctx}: signed by another key");
            checked += 1;

            for at in msg.len() - footer_len..msg.len() {
                let (a, r) = tampered(suite, &msg, at);
                assert_eq!(a, r, "{ctx}: footer byte {at}");
                checked += 1;
            }
        }
    }
    println!("{checked} messages with only a wrong signature refused by both providers");
    // 4 signed suites (one P-256, three P-384) x 2 writers x (1 re-signed + each footer byte).
    assert_eq!(checked, 2 * ((1 + 73) + 3 * (1 + 105)));
}

/// `ESDK_TEST_VECTORS`, or `../shared/test-vectors` next to the workspace; panics when absent.
fn vectors_root() -> PathBuf {
    let root = std::env::var_os("ESDK_TEST_VECTORS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/test-vectors"),
        PathBuf::from,
    );
    assert!(
        root.is_dir(),
        "test vectors not found at {} (set ESDK_TEST_VECTORS)",
        root.display()
    );
    root
}

#[test]
fn python_4_0_7_raw_aes_vectors() {
    let path = vectors_root().join("python-4.0.7-local/manifest.json");
    let manifest = esdk_tests::manifest::load_decrypt_manifest(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let aws_opts = Options {
        provider: Provider::AwsLc,
        ..Options::default()
    };
    let rc_opts = Options {
        provider: Provider::RustCrypto,
        ..Options::default()
    };
    let (mut ok_pos, mut ok_neg, mut skipped) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for test in &manifest.tests {
        if test.keyring.needs_rsa() || test.keyring.needs_ecdh() || test.keyring.needs_kms() {
            skipped += 1;
            continue;
        }
        let aws = decrypt_case(test, &aws_opts);
        let rc = decrypt_case(test, &rc_opts);
        match (&test.expected, aws, rc) {
            (Expected::Plaintext(want), Ok(a), Ok(r)) if *want == a && *want == r => {
                ok_pos += 1;
            }
            // The same failure, for the same reason, under both providers.
            (Expected::Error(_), Err(CaseError::Decrypt(a)), Err(CaseError::Decrypt(r)))
                if a == r =>
            {
                ok_neg += 1;
            }
            (exp, a, r) => failures.push(format!(
                "{}: expected {}, aws-lc gave {:?}, rustcrypto gave {:?}",
                test.id,
                match exp {
                    Expected::Plaintext(_) => "plaintext",
                    Expected::Error(_) => "an error",
                },
                a.map(|p| p.len()),
                r.map(|p| p.len())
            )),
        }
    }
    println!(
        "python-4.0.7 raw-AES vectors, aws-lc vs rustcrypto: {ok_pos} positive passed, \
         {ok_neg} negative failed the same way, {} wrong, {skipped} skipped (RSA/ECDH/KMS)",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ok_pos > 0 && ok_neg > 0, "no raw-AES vectors ran");
}
