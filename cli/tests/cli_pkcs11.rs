//! The `esdk` CLI with PKCS#11 keys (`--pkcs11-module`, `--pkcs11-token`, `--pkcs11-key`) on
//! the SoftHSM2 token that `scripts/pkcs11-test.sh` sets up (it exports the `TEST_PKCS11_*` /
//! `ESDK_TEST_PKCS11_*` variables). Never skips: without a token it fails, which is why a plain
//! `cargo test` leaves it out (`test = false`).

use std::process::{Command, Stdio};

mod common;
use common::{Out, data, setup, write};

/// PKCS#11 keys on a real token (SoftHSM2): `bash scripts/pkcs11-test.sh`, or
/// `eval "$(scripts/pkcs11-softhsm.sh)"` then `cargo test -p esdk-cli --test cli_pkcs11`.
/// Fails (never skips) without a configured token.
#[test]
fn pkcs11_keys_interoperate_with_raw_keys() {
    let env = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} not set: run scripts/pkcs11-softhsm.sh"))
    };
    let module = env("TEST_PKCS11_MODULE");
    let token = env("ESDK_TEST_PKCS11_TOKEN");
    let pin = env("ESDK_TEST_PKCS11_PIN");
    let aes_label = env("ESDK_TEST_PKCS11_AES_LABEL");
    let aes_hex = env("ESDK_TEST_PKCS11_AES_KEY");
    let rsa_label = env("ESDK_TEST_PKCS11_RSA_LABEL");
    let rsa_pem = env("ESDK_TEST_PKCS11_RSA_PEM");
    let d = setup();
    let p = d.path();
    write(p, "token.hex", format!("{aes_hex}\n").as_bytes());
    let pt = data(40_000, 11);
    write(p, "pt", &pt);
    let go = |args: Vec<String>, with_pin: bool| -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_esdk"));
        cmd.args(&args).current_dir(p).stdin(Stdio::null());
        if with_pin {
            cmd.env("ESDK_PKCS11_PIN", &pin);
        } else {
            cmd.env_remove("ESDK_PKCS11_PIN");
        }
        let out = cmd.output().expect("run esdk");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let tok = [
        "--pkcs11-module",
        module.as_str(),
        "--pkcs11-token",
        token.as_str(),
    ];
    let with = |mode: &str, key: &[&str], i: &str, o: &str| -> Vec<String> {
        let mut v: Vec<String> = vec![mode.into(), "--key-namespace".into(), "hsm".into()];
        if key.contains(&"--pkcs11-key") {
            v.extend(tok.iter().map(|s| (*s).to_owned()));
        }
        v.extend(key.iter().map(|s| (*s).to_owned()));
        v.extend(["-i", i, "-o", o].iter().map(|s| (*s).to_owned()));
        v
    };
    // AES on the token <-> the same key as a raw key file.
    go(
        with("encrypt", &["--pkcs11-key", &aes_label], "pt", "ct"),
        true,
    )
    .ok();
    let raw = ["--raw-aes-key", "token.hex"];
    assert_eq!(go(with("decrypt", &raw, "ct", "-"), false).ok().stdout, pt);
    go(with("encrypt", &raw, "pt", "ct2"), false).ok();
    assert_eq!(
        go(
            with("decrypt", &["--pkcs11-key", &aes_label], "ct2", "-"),
            true
        )
        .ok()
        .stdout,
        pt
    );
    // RSA-OAEP (SHA-1: SoftHSM2's only OAEP hash) on the token <-> the PEM.
    let rsa_tok = [
        "--pkcs11-key",
        rsa_label.as_str(),
        "--rsa-padding",
        "oaep-sha1",
    ];
    let rsa_raw = [
        "--raw-rsa-key",
        rsa_pem.as_str(),
        "--rsa-padding",
        "oaep-sha1",
    ];
    go(with("encrypt", &rsa_tok, "pt", "ct3"), true).ok();
    assert_eq!(
        go(with("decrypt", &rsa_raw, "ct3", "-"), false).ok().stdout,
        pt
    );
    go(with("encrypt", &rsa_raw, "pt", "ct4"), false).ok();
    assert_eq!(
        go(with("decrypt", &rsa_tok, "ct4", "-"), true).ok().stdout,
        pt
    );
    // Token key as generator, raw key as child.
    let both = [
        "--pkcs11-key",
        aes_label.as_str(),
        "--raw-aes-key",
        "k.bin",
        "--key-name",
        "raw",
    ];
    go(with("encrypt", &both, "pt", "ct5"), true).ok();
    let child = ["--raw-aes-key", "k.bin", "--key-name", "raw"];
    assert_eq!(
        go(with("decrypt", &child, "ct5", "-"), false).ok().stdout,
        pt
    );
    // The same AES key by CKA_ID (id:HEX) and by explicit label (label:NAME).
    let by_id = format!("id:{}", env("ESDK_TEST_PKCS11_AES_ID"));
    let by_label = format!("label:{aes_label}");
    go(
        with("encrypt", &["--pkcs11-key", &by_id], "pt", "ct7"),
        true,
    )
    .ok();
    assert_eq!(
        go(
            with("decrypt", &["--pkcs11-key", &by_label], "ct7", "-"),
            true
        )
        .ok()
        .stdout,
        pt
    );
    assert_eq!(go(with("decrypt", &raw, "ct7", "-"), false).ok().stdout, pt);
    go(
        with("encrypt", &["--pkcs11-key", "id:0z"], "pt", "ct6"),
        true,
    )
    .fails(2, "not a hex CKA_ID");
    go(
        with("encrypt", &["--pkcs11-key", "id:7777"], "pt", "ct6"),
        true,
    )
    .fails(2, "7777");
    // An unknown label, and PKCS#1 padding, are usage errors.
    go(
        with("encrypt", &["--pkcs11-key", "no-such-key"], "pt", "ct6"),
        true,
    )
    .fails(2, "no-such-key");
    go(
        with(
            "encrypt",
            &["--pkcs11-key", &rsa_label, "--rsa-padding", "pkcs1"],
            "pt",
            "ct6",
        ),
        true,
    )
    .fails(2, "PKCS#1");
    assert!(!p.join("ct6").exists());
}
