//! The `esdk` CLI with PKCS#11 keys (`--pkcs11-module`, `--pkcs11-token` or `--pkcs11-slot`,
//! `--pkcs11-key` naming AES, RSA and EC keys, `--pkcs11-pin-file`) on the SoftHSM2 token that `scripts/pkcs11-test.sh` sets up (it exports the `TEST_PKCS11_*` /
//! `ESDK_TEST_PKCS11_*` variables). Never skips: without a token it fails, which is why a plain
//! `cargo test` leaves it out (`test = false`).

use std::process::{Command, Stdio};

mod common;
use common::{Out, data, setup, write};

/// One test at a time: SoftHSM2 keeps token objects in files, and another process listing
/// the tokens while this one creates key pairs may miss the token (seen: "no initialized
/// PKCS#11 token labelled ...").
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// PKCS#11 keys on a real token (SoftHSM2): `bash scripts/pkcs11-test.sh`, or
/// `eval "$(scripts/pkcs11-softhsm.sh)"` then `cargo test -p esdk-cli --test cli_pkcs11`.
/// Fails (never skips) without a configured token.
#[test]
fn pkcs11_keys_interoperate_with_raw_keys() {
    let _one = one_at_a_time();
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

/// Runs `esdk` in `dir` with `args`; stdin is not a terminal. `pin`: the ESDK_PKCS11_PIN
/// value, or none (the variable removed).
fn esdk_pin(dir: &std::path::Path, args: &[&str], pin: Option<&str>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_esdk"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    match pin {
        Some(pin) => cmd.env("ESDK_PKCS11_PIN", pin),
        None => cmd.env_remove("ESDK_PKCS11_PIN"),
    };
    let out = cmd.output().expect("run esdk");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} not set: run scripts/pkcs11-softhsm.sh"))
}

/// The test token, opened in this process (to make EC key pairs and read its slot id).
fn open_token() -> esdk_pkcs11::Token {
    let cfg =
        esdk_pkcs11::TokenConfig::new(var("TEST_PKCS11_MODULE"), var("ESDK_TEST_PKCS11_TOKEN"))
            .with_pin(var("ESDK_TEST_PKCS11_PIN"));
    esdk_pkcs11::Token::open(cfg).expect("open the test token")
}

/// A new EC key pair (token objects, the private key with CKA_DERIVE) labelled `label`.
fn generate_ec_key(token: &esdk_pkcs11::Token, curve: esdk_pkcs11::EcdhCurve, label: &str) {
    use esdk_pkcs11::cryptoki::mechanism::Mechanism;
    use esdk_pkcs11::cryptoki::object::Attribute;
    let l = || Attribute::Label(label.as_bytes().to_vec());
    token
        .with_rw_session(|s| {
            s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::EcParams(esdk_pkcs11::ec_params(curve).to_vec()),
                    l(),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Derive(true),
                    l(),
                ],
            )
        })
        .expect("a session")
        .expect("C_GenerateKeyPair (CKM_EC_KEY_PAIR_GEN)");
}

/// EC key pairs on the token as ECDH keys of the CLI: the token key as static sender to a raw
/// recipient and as recipient in discovery (device -> token), on each curve; the errors.
#[test]
fn pkcs11_ec_keys_are_ecdh_keys() {
    let _one = one_at_a_time();
    use esdk::raw::ecdh::{EcdhPublicKey, RawEcdhKeyring};
    use esdk_pkcs11::{EcdhCurve, KeySelector, Pkcs11EcdhKeyring};
    let (module, token_label, pin) = (
        var("TEST_PKCS11_MODULE"),
        var("ESDK_TEST_PKCS11_TOKEN"),
        var("ESDK_TEST_PKCS11_PIN"),
    );
    let token = open_token();
    let d = setup();
    let p = d.path();
    let pt = data(25_000, 21);
    write(p, "pt", &pt);
    let raw_data =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../backends/raw/tests/data");
    let tok = [
        "--pkcs11-module",
        module.as_str(),
        "--pkcs11-token",
        token_label.as_str(),
    ];
    let run = |mode: &str, i: &str, o: &str, keys: &[&str]| -> Out {
        let mut a: Vec<&str> = vec![mode, "-i", i, "-o", o];
        if keys.contains(&"--pkcs11-key") {
            a.extend_from_slice(&tok);
        }
        a.extend_from_slice(keys);
        esdk_pin(p, &a, Some(&pin))
    };
    for (curve, c) in [
        (EcdhCurve::P256, "p256"),
        (EcdhCurve::P384, "p384"),
        (EcdhCurve::P521, "p521"),
    ] {
        let label = format!("cli-ecdh-{c}-{}", std::process::id());
        generate_ec_key(&token, curve, &label);
        let public = Pkcs11EcdhKeyring::public_key_discovery(&token, KeySelector::label(&label))
            .expect("the new key pair")
            .public_key();
        std::fs::write(p.join("tok.pub"), public.to_spki_der().as_bytes()).expect("write");
        std::fs::copy(
            raw_data.join(format!("ecc-{c}-recipient-pkcs8.pem")),
            p.join("r.pem"),
        )
        .expect("copy");
        std::fs::copy(
            raw_data.join(format!("ecc-{c}-recipient-spki.der")),
            p.join("r.pub"),
        )
        .expect("copy");
        let key = format!("label:{label}");
        let sender = [
            "--pkcs11-key",
            key.as_str(),
            "--recipient-public-key",
            "r.pub",
        ];
        let discovery = ["--pkcs11-key", key.as_str(), "--ecdh-discovery"];

        // Token key as the static sender -> a raw recipient (discovery and mirrored static),
        // and the token key itself.
        run("encrypt", "pt", "t.esdk", &sender).ok();
        let raw_recipient = ["--raw-ecdh-key", "r.pem", "--ecdh-discovery"];
        assert_eq!(
            run("decrypt", "t.esdk", "-", &raw_recipient).ok().stdout,
            pt,
            "{c}"
        );
        let mirrored = [
            "--raw-ecdh-key",
            "r.pem",
            "--recipient-public-key",
            "tok.pub",
        ];
        assert_eq!(
            run("decrypt", "t.esdk", "-", &mirrored).ok().stdout,
            pt,
            "{c}"
        );
        assert_eq!(
            run("decrypt", "t.esdk", "-", &sender).ok().stdout,
            pt,
            "{c}"
        );
        // The token key is the sender here, not a recipient: discovery does not open it.
        run("decrypt", "t.esdk", "-", &discovery).fails(1, "");

        // Device -> token: the raw ephemeral sender (the no_std keyring) encrypts to the token
        // key's public key; the token key in discovery opens it. Through the CLI, too.
        let device = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
            curve,
            EcdhPublicKey::from_spki_der(public.to_spki_der().as_bytes()).expect("spki"),
        )
        .expect("device keyring");
        let msg = esdk::encrypt(
            &esdk::Config::new(),
            &device,
            &esdk::EncryptOptions::new(),
            &[("dev", "1")],
            &pt,
        )
        .expect("device encrypts");
        write(p, "dev.esdk", &msg);
        assert_eq!(
            run("decrypt", "dev.esdk", "-", &discovery).ok().stdout,
            pt,
            "{c}"
        );
        run(
            "encrypt",
            "pt",
            "eph.esdk",
            &["--recipient-public-key", "tok.pub"],
        )
        .ok();
        assert_eq!(
            run("decrypt", "eph.esdk", "-", &discovery).ok().stdout,
            pt,
            "{c}"
        );
        // A raw static sender to the token key.
        run("encrypt", "pt", "rs.esdk", &mirrored).ok();
        assert_eq!(
            run("decrypt", "rs.esdk", "-", &discovery).ok().stdout,
            pt,
            "{c}"
        );
        assert_eq!(
            run("decrypt", "rs.esdk", "-", &sender).ok().stdout,
            pt,
            "{c}"
        );

        // Usage errors.
        run("encrypt", "pt", "x", &["--pkcs11-key", key.as_str()]).fails(2, "is an EC key pair");
        run("encrypt", "pt", "x", &discovery).fails(2, "decrypts only");
        let other = if c == "p256" {
            "ecc-p384-recipient-spki.der"
        } else {
            "ecc-p256-recipient-spki.der"
        };
        std::fs::copy(raw_data.join(other), p.join("other.pub")).expect("copy");
        run(
            "encrypt",
            "pt",
            "x",
            &[
                "--pkcs11-key",
                key.as_str(),
                "--recipient-public-key",
                "other.pub",
            ],
        )
        .fails(2, "the public key given is on");
        assert!(!p.join("x").exists());
    }
    let aes = format!("label:{}", var("ESDK_TEST_PKCS11_AES_LABEL"));
    run(
        "decrypt",
        "t.esdk",
        "-",
        &["--pkcs11-key", aes.as_str(), "--ecdh-discovery"],
    )
    .fails(2, "no EC key pair");
}

/// `--pkcs11-slot` instead of `--pkcs11-token`; the PIN from `--pkcs11-pin-file`, from the
/// environment, from a terminal (through `script`, which gives the process a pty), or missing.
#[test]
fn pkcs11_slots_and_pins() {
    let _one = one_at_a_time();
    let (module, pin) = (var("TEST_PKCS11_MODULE"), var("ESDK_TEST_PKCS11_PIN"));
    let aes = var("ESDK_TEST_PKCS11_AES_LABEL");
    let slot = open_token().slot_id();
    let d = setup();
    let p = d.path();
    write(
        p,
        "aes.hex",
        format!("{}\n", var("ESDK_TEST_PKCS11_AES_KEY")).as_bytes(),
    );
    let pt = data(3000, 22);
    write(p, "pt", &pt);
    let slot_dec = slot.to_string();
    let slot_hex = format!("0x{slot:x}");
    let by_slot = |slot: &str, extra: &[&str], pin_env: Option<&str>, o: &str| -> Out {
        let mut a = vec![
            "encrypt",
            "-i",
            "pt",
            "-o",
            o,
            "--pkcs11-module",
            module.as_str(),
            "--pkcs11-slot",
            slot,
        ];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--pkcs11-key", aes.as_str()]);
        esdk_pin(p, &a, pin_env)
    };
    let check = |ct: &str| {
        let out = esdk_pin(
            p,
            &["decrypt", "-i", ct, "-o", "-", "--raw-aes-key", "aes.hex"],
            None,
        )
        .ok();
        assert_eq!(out.stdout, pt, "{ct}");
    };
    by_slot(&slot_dec, &[], Some(&pin), "c1").ok();
    check("c1");
    by_slot(&slot_hex, &[], Some(&pin), "c2").ok();
    check("c2");
    by_slot("4242424242", &[], Some(&pin), "x").fails(2, "no slot with a token has this id");
    by_slot("slot-one", &[], Some(&pin), "x").fails(2, "not a slot id");
    let both = ["--pkcs11-token", "esdk-test"];
    by_slot(&slot_dec, &both, Some(&pin), "x").fails(2, "cannot be used with");

    // The PIN file: one trailing newline dropped; it wins over the environment (a wrong PIN
    // there is never tried); a file others may read is warned about.
    write(p, "pin.txt", format!("{pin}\n").as_bytes());
    let pin_file = ["--pkcs11-pin-file", "pin.txt"];
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p.join("pin.txt"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let out = by_slot(&slot_dec, &pin_file, Some("not-the-pin"), "c3").ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    check("c3");
    std::fs::set_permissions(p.join("pin.txt"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let out = by_slot(&slot_dec, &pin_file, None, "c4").ok();
    assert!(
        out.stderr
            .contains("warning: PIN file 'pin.txt' can be read by every user"),
        "{}",
        out.stderr
    );
    check("c4");
    write(p, "empty.txt", b"\n");
    by_slot(&slot_dec, &["--pkcs11-pin-file", "empty.txt"], None, "x").fails(2, "empty (no PIN)");
    by_slot(&slot_dec, &["--pkcs11-pin-file", "nope.txt"], None, "x").fails(3, "nope.txt");
    // No PIN anywhere, stdin not a terminal: a usage error that says where a PIN comes from.
    by_slot(&slot_dec, &[], None, "x").fails(
        2,
        "needs the user PIN: set ESDK_PKCS11_PIN, give --pkcs11-pin-file FILE",
    );
    assert!(!p.join("x").exists());

    // A terminal: `script` runs esdk on a pty and feeds it our stdin; the PIN is asked for.
    let esdk_bin = env!("CARGO_BIN_EXE_esdk");
    let cmdline = format!(
        "{esdk_bin} encrypt -i pt -o c5 --pkcs11-module {module} --pkcs11-slot {slot} --pkcs11-key {aes}"
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmdline, "/dev/null"])
        .current_dir(p)
        .env_remove("ESDK_PKCS11_PIN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script (util-linux)");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        // Give esdk time to turn echo off and ask, then type the PIN.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        stdin
            .write_all(format!("{pin}\n").as_bytes())
            .expect("type the PIN");
    }
    let out = child.wait_with_output().expect("wait for script");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "esdk on a terminal: {shown} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prompt = format!(
        "PKCS#11 user PIN for token '{}'",
        var("ESDK_TEST_PKCS11_TOKEN")
    );
    assert!(shown.contains(&prompt), "{shown}");
    assert!(!shown.contains(&pin), "the PIN was echoed: {shown}");
    check("c5");
}
