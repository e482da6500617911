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

/// The Python MPL peer (`shared/peers/mpl_peer.py`, raw ECDH keyring).
fn mpl_script() -> PathBuf {
    match std::env::var("ESDK_TEST_MPL_PEER") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => peer_script().with_file_name("mpl_peer.py"),
    }
}

/// Runs the Python ESDK peer; `args` after the mode.
fn peer(mode: &str, input: &[u8], args: &[&str]) -> Vec<u8> {
    run_peer(peer_script(), mode, input, args)
}

/// Runs `script` (a peer taking `MODE -i IN -o OUT ARGS`).
fn run_peer(script: PathBuf, mode: &str, input: &[u8], args: &[&str]) -> Vec<u8> {
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
        "{} {mode} {args:?} failed:\n{}",
        script.display(),
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

/// ECDH interop with the Python MPL's raw ECDH keyring, on each curve, with the key pair on
/// the token: the MPL (`EphemeralPrivateKeyToStaticPublicKey`) encrypts to the token key's
/// public key and the token's discovery keyring decrypts; the token's static keyring
/// encrypts to a raw recipient and the MPL (`PublicKeyDiscovery` with the recipient's
/// private key) decrypts.
#[test]
fn ecdh_interoperates_with_the_python_mpl_raw_ecdh_keyring() {
    use esdk_pkcs11::{EcdhCurve, Pkcs11EcdhKeyring};
    use esdk_raw::ecdh::EcdhPrivateKey;
    let cfg = Config::new();
    for (curve, name) in [
        (EcdhCurve::P256, "P-256"),
        (EcdhCurve::P384, "P-384"),
        (EcdhCurve::P521, "P-521"),
    ] {
        let label = format!("mpl-ecdh-{name}-{}", std::process::id());
        let key = generate_ec_key(token(), curve, &label, true);
        let server = Pkcs11EcdhKeyring::public_key_discovery(token(), key.clone()).unwrap();
        let token_pub = tmp(&format!("{label}.spki.der"));
        std::fs::write(&token_pub, server.public_key().to_spki_der().as_bytes()).unwrap();
        let pt = plaintext(2000);
        let msg = run_peer(
            mpl_script(),
            "encrypt",
            &pt,
            &[
                "--raw-ecdh-recipient-public-key",
                token_pub.to_str().unwrap(),
                "-c",
                "from=mpl",
            ],
        );
        let out = esdk::decrypt(&cfg, &server, &[], &msg).unwrap();
        assert_eq!(out.plaintext, pt, "MPL -> token, {name}");

        // The token as the static sender, to a raw recipient key the MPL holds.
        let keygen = Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
            .arg(format!("ec_paramgen_curve:{name}"))
            .output()
            .unwrap();
        assert!(keygen.status.success(), "openssl genpkey: {keygen:?}");
        let recipient = EcdhPrivateKey::from_pkcs8_pem(&keygen.stdout).unwrap();
        let recipient_pem = tmp(&format!("{label}.recipient.pem"));
        std::fs::write(&recipient_pem, &keygen.stdout).unwrap();
        let sender = Pkcs11EcdhKeyring::private_key_to_static_public_key(
            token(),
            key,
            recipient.public_key(),
        )
        .unwrap();
        let msg =
            esdk::encrypt(&cfg, &sender, &EncryptOptions::new(), &[("to", "mpl")], &pt).unwrap();
        let back = run_peer(
            mpl_script(),
            "decrypt",
            &msg,
            &["--raw-ecdh-private-key", recipient_pem.to_str().unwrap()],
        );
        assert_eq!(back, pt, "token -> MPL, {name}");
        let _ = std::fs::remove_file(&token_pub);
        let _ = std::fs::remove_file(&recipient_pem);
    }
}
