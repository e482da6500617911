//! Interop with the official Python ESDK (`shared/peers/pyesdk_peer.py`) holding the same key
//! material as the token: messages wrapped on the token decrypt there, and its messages
//! decrypt on the token. `ESDK_TEST_PYTHON` names a python with `aws-encryption-sdk` installed
//! (`scripts/python-peer.sh` makes one); the test fails if it is not set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use esdk_core::{AlgorithmSuite, CommitmentPolicy, Config, EncryptOptions};
use esdk_pkcs11::OaepHash;
use esdk_test_support::config_for;

fn peer_script() -> PathBuf {
    match std::env::var("ESDK_TEST_PYESDK_PEER") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers/pyesdk_peer.py"),
    }
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("esdk-pkcs11-peer-{}-{name}", std::process::id()))
}

/// Runs the peer; `args` after the mode.
fn peer(mode: &str, input: &[u8], args: &[&str]) -> Vec<u8> {
    let script = peer_script();
    assert!(
        script.exists(),
        "peer script {} not found (set ESDK_TEST_PYESDK_PEER)",
        script.display()
    );
    let tag = format!("{mode}-{}", args.join("_").replace(['/', '='], "-"));
    let (i, o) = (tmp(&format!("{tag}.in")), tmp(&format!("{tag}.out")));
    std::fs::write(&i, input).unwrap();
    let out = Command::new(env("ESDK_TEST_PYTHON"))
        .arg(&script)
        .arg(mode)
        .arg("-i")
        .arg(&i)
        .arg("-o")
        .arg(&o)
        .args(args)
        .output()
        .expect("running the Python peer");
    let _ = std::fs::remove_file(&i);
    assert!(
        out.status.success(),
        "pyesdk_peer {mode} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(&o).unwrap();
    let _ = std::fs::remove_file(&o);
    data
}

fn policy_flag(suite: AlgorithmSuite) -> &'static str {
    if suite.is_committing() { "rr" } else { "fa" }
}

#[test]
fn token_aes_messages_decrypt_in_the_python_esdk() {
    let kr = aes_keyring();
    let key = env("ESDK_TEST_PKCS11_AES_KEY");
    for (suite, api) in [
        (
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
            "legacy",
        ),
        (AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, "keyring"),
        (AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256, "legacy"),
        (AlgorithmSuite::Aes192GcmIv12Tag16NoKdf, "legacy"),
    ] {
        let pt = plaintext(5000);
        let msg = esdk::encrypt(
            &config_for(suite),
            &kr,
            &EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(1024),
            &[("purpose", "python-peer")],
            &pt,
        )
        .unwrap();
        let got = peer(
            "decrypt",
            &msg,
            &[
                "--aes-key",
                &key,
                "--provider-id",
                NS,
                "--key-name",
                AES_NAME,
                "--policy",
                policy_flag(suite),
                "--api",
                api,
                "--ec",
                "purpose=python-peer",
            ],
        );
        assert_eq!(got, pt, "{suite:?} via the {api} API");
    }
}

#[test]
fn python_aes_messages_decrypt_on_the_token() {
    let kr = aes_keyring();
    let key = env("ESDK_TEST_PKCS11_AES_KEY");
    for suite in ["0x0578", "0x0178"] {
        let pt = plaintext(3000);
        let policy = if suite == "0x0578" { "rr" } else { "fa" };
        let msg = peer(
            "encrypt",
            &pt,
            &[
                "--aes-key",
                &key,
                "--provider-id",
                NS,
                "--key-name",
                AES_NAME,
                "--suite",
                suite,
                "--policy",
                policy,
                "--ec",
                "from=python",
            ],
        );
        let cfg =
            Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt);
        let out = esdk::decrypt(&cfg, &kr, &[], &msg).unwrap();
        assert_eq!(out.plaintext, pt, "{suite}");
        assert!(
            out.encryption_context
                .contains(&("from".into(), "python".into()))
        );
    }
}

#[test]
fn token_rsa_messages_interoperate_with_the_python_esdk() {
    let private_pem = env("ESDK_TEST_PKCS11_RSA_PEM");
    let public_pem = env("ESDK_TEST_PKCS11_RSA_PUB_PEM");
    for hash in supported_hashes() {
        let padding = match hash {
            OaepHash::Sha1 => "oaep-sha1",
            OaepHash::Sha256 => "oaep-sha256",
            OaepHash::Sha384 => "oaep-sha384",
            OaepHash::Sha512 => "oaep-sha512",
            _ => unreachable!(),
        };
        let kr = rsa_keyring(hash);
        let pt = plaintext(2000);
        let msg = esdk::encrypt(&Config::new(), &kr, &EncryptOptions::new(), &[], &pt).unwrap();
        let got = peer(
            "decrypt",
            &msg,
            &[
                "--rsa-pem",
                &private_pem,
                "--rsa-padding",
                padding,
                "--provider-id",
                NS,
                "--key-name",
                RSA_NAME,
            ],
        );
        assert_eq!(got, pt, "token → Python, {hash:?}");
        let msg = peer(
            "encrypt",
            &pt,
            &[
                "--rsa-pem",
                &public_pem,
                "--rsa-padding",
                padding,
                "--provider-id",
                NS,
                "--key-name",
                RSA_NAME,
            ],
        );
        let out = esdk::decrypt(&Config::new(), &kr, &[], &msg).unwrap();
        assert_eq!(out.plaintext, pt, "Python → token, {hash:?}");
    }
}
