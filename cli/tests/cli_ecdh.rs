//! The `esdk` CLI with raw ECDH keys: `--raw-ecdh-key PRIV` followed by
//! `--recipient-public-key PUB` (RawPrivateKeyToStaticPublicKey) or `--ecdh-discovery`
//! (PublicKeyDiscovery), and `--recipient-public-key PUB` on its own (the ephemeral sender),
//! on P-256, P-384 and P-521; a device's message (the no_std raw ECDH keyring) opened by
//! `esdk decrypt`; interop both ways with the Python MPL's raw ECDH keyring
//! (`shared/peers/mpl_peer.py`; never skipped: it fails when the peer cannot be set up); the
//! usage errors. No server needed.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use esdk::raw::ecdh::{EcdhCurve, EcdhPublicKey, RawEcdhKeyring};
use tempfile::TempDir;

// `setup` (a raw AES key) is not needed here.
#[allow(dead_code)]
mod common;
use common::{Out, data, write};

/// The curves, with the file name part of their test keys.
const CURVES: [(EcdhCurve, &str); 3] = [
    (EcdhCurve::P256, "p256"),
    (EcdhCurve::P384, "p384"),
    (EcdhCurve::P521, "p521"),
];

/// A key file of esdk-raw's test data (`backends/raw/tests/data`).
fn key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../backends/raw/tests/data")
        .join(name)
}

/// The sender and recipient key pairs of `curve` copied into `dir` as `s.pem`, `s.pub`,
/// `r.pem`, `r.pub` (private keys PKCS#8 PEM, public keys DER SubjectPublicKeyInfo).
fn keys_in(dir: &Path, c: &str) {
    for (role, short) in [("sender", "s"), ("recipient", "r")] {
        fs::copy(
            key(&format!("ecc-{c}-{role}-pkcs8.pem")),
            dir.join(format!("{short}.pem")),
        )
        .expect("copy private key");
        fs::copy(
            key(&format!("ecc-{c}-{role}-spki.der")),
            dir.join(format!("{short}.pub")),
        )
        .expect("copy public key");
    }
}

fn esdk<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run esdk");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `esdk MODE -i IN -o OUT KEYS...`.
fn run(dir: &Path, mode: &str, input: &str, output: &str, keys: &[&str]) -> Out {
    let mut a = vec![mode, "-i", input, "-o", output];
    a.extend_from_slice(keys);
    esdk(dir, &a)
}

/// Decrypts `ct` to stdout with `keys` and returns the plaintext (asserting success).
#[track_caller]
fn open(dir: &Path, ct: &str, keys: &[&str]) -> Vec<u8> {
    run(dir, "decrypt", ct, "-", keys).ok().stdout
}

/// The EDK provider ids of the message in `path` (from the metadata line of a decryption).
fn providers(dir: &Path, ct: &str, keys: &[&str]) -> Vec<String> {
    let mut a = vec![
        "decrypt",
        "-i",
        ct,
        "-o",
        "/dev/null",
        "--metadata-output",
        "-",
    ];
    a.extend_from_slice(keys);
    let out = esdk(dir, &a).ok();
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let text = line.to_string();
    ["raw-ecdh", "esdk", "aws-kms-ecdh"]
        .into_iter()
        .filter(|p| text.contains(&format!("\"{p}\"")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn each_raw_ecdh_schema_round_trips_on_each_curve() {
    for (_, c) in CURVES {
        let d = TempDir::new().expect("tempdir");
        let p = d.path();
        keys_in(p, c);
        let pt = data(30_000, 7);
        write(p, "pt", &pt);
        let sender = ["--raw-ecdh-key", "s.pem", "--recipient-public-key", "r.pub"];
        let mirrored = ["--raw-ecdh-key", "r.pem", "--recipient-public-key", "s.pub"];
        let recipient = ["--raw-ecdh-key", "r.pem", "--ecdh-discovery"];

        // RawPrivateKeyToStaticPublicKey: both sides and the recipient's discovery open it.
        run(p, "encrypt", "pt", "static.esdk", &sender).ok();
        assert_eq!(open(p, "static.esdk", &sender), pt, "{c}: sender");
        assert_eq!(open(p, "static.esdk", &mirrored), pt, "{c}: mirrored");
        assert_eq!(open(p, "static.esdk", &recipient), pt, "{c}: discovery");
        assert_eq!(providers(p, "static.esdk", &recipient), ["raw-ecdh"], "{c}");
        // The sender's key is no recipient of its own message.
        run(
            p,
            "decrypt",
            "static.esdk",
            "-",
            &["--raw-ecdh-key", "s.pem", "--ecdh-discovery"],
        )
        .fails(1, "");

        // EphemeralPrivateKeyToStaticPublicKey: only the recipient's private key opens it,
        // the old spelling of the discovery flag too.
        run(
            p,
            "encrypt",
            "pt",
            "eph.esdk",
            &["--recipient-public-key", "r.pub"],
        )
        .ok();
        assert_eq!(open(p, "eph.esdk", &recipient), pt, "{c}: ephemeral");
        let alias = ["--raw-ecdh-key", "r.pem", "--kms-ecdh-discovery"];
        assert_eq!(open(p, "eph.esdk", &alias), pt, "{c}: alias");
        run(p, "decrypt", "eph.esdk", "-", &sender).fails(1, "");
        run(p, "decrypt", "eph.esdk", "-", &mirrored).fails(1, "");
        // A fresh sender key each time: two encryptions differ in their EDK.
        run(
            p,
            "encrypt",
            "pt",
            "eph2.esdk",
            &["--recipient-public-key", "r.pub"],
        )
        .ok();
        let (a, b) = (fs::read(p.join("eph.esdk")), fs::read(p.join("eph2.esdk")));
        assert_ne!(a.ok(), b.ok(), "{c}");
    }
}

#[test]
fn ecdh_keys_mix_with_other_keys_in_a_multi_keyring() {
    let d = TempDir::new().expect("tempdir");
    let p = d.path();
    keys_in(p, "p384");
    fs::write(p.join("k.bin"), data(32, 200)).expect("aes key");
    let pt = data(5000, 3);
    write(p, "pt", &pt);
    // An AES generator, then an ephemeral recipient (a --recipient-public-key after a key that
    // takes no peer is a key of its own), then a static sender to the same recipient.
    let keys = [
        "--raw-aes-key",
        "k.bin",
        "--recipient-public-key",
        "r.pub",
        "--raw-ecdh-key",
        "s.pem",
        "--recipient-public-key",
        "r.pub",
    ];
    run(p, "encrypt", "pt", "ct", &keys).ok();
    assert_eq!(open(p, "ct", &["--raw-aes-key", "k.bin"]), pt);
    assert_eq!(
        open(p, "ct", &["--raw-ecdh-key", "r.pem", "--ecdh-discovery"]),
        pt
    );
    assert_eq!(
        open(
            p,
            "ct",
            &["--raw-ecdh-key", "s.pem", "--recipient-public-key", "r.pub"]
        ),
        pt
    );
    let meta = esdk(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "/dev/null",
            "--metadata-output",
            "-",
            "--raw-aes-key",
            "k.bin",
        ],
    )
    .ok();
    let text = String::from_utf8_lossy(&meta.stdout);
    assert_eq!(text.matches("\"raw-ecdh\"").count(), 2, "{text}");
}

/// A device's telemetry: the no_std raw ECDH keyring (esdk-raw) with nothing but the
/// server's public key encrypts; `esdk decrypt` with the server's private key opens it.
#[test]
fn device_messages_open_with_the_recipients_key_in_discovery() {
    for (curve, c) in CURVES {
        let d = TempDir::new().expect("tempdir");
        let p = d.path();
        keys_in(p, c);
        let server = EcdhPublicKey::from_spki_der(&fs::read(p.join("r.pub")).expect("read"))
            .expect("server public key");
        let device = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(curve, server)
            .expect("device keyring");
        let pt = data(10_000, 9);
        let opts = esdk::EncryptOptions::new().with_frame_length(1024);
        let msg = esdk::encrypt(
            &esdk::Config::new(),
            &device,
            &opts,
            &[("device", "d1")],
            &pt,
        )
        .expect("device encrypts");
        write(p, "t.esdk", &msg);
        let keys = [
            "--raw-ecdh-key",
            "r.pem",
            "--ecdh-discovery",
            "-c",
            "device=d1",
        ];
        assert_eq!(open(p, "t.esdk", &keys), pt, "{c}");
        // Another curve's key, or the wrong context, does not open it.
        run(
            p,
            "decrypt",
            "t.esdk",
            "-",
            &["--raw-ecdh-key", "s.pem", "--ecdh-discovery"],
        )
        .fails(1, "");
        run(
            p,
            "decrypt",
            "t.esdk",
            "-",
            &[
                "--raw-ecdh-key",
                "r.pem",
                "--ecdh-discovery",
                "-c",
                "device=d2",
            ],
        )
        .fails(1, "device");
    }
}

/// The Python interpreter with the official ESDK and the MPL: `ESDK_TEST_PYTHON` or
/// `ESDK_PEER_PYTHON`, else the venv of `scripts/python-peer.sh`. Panics (never skips) when
/// none works.
fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        for var in ["ESDK_TEST_PYTHON", "ESDK_PEER_PYTHON"] {
            if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
                return PathBuf::from(p);
            }
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-peer.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("run python-peer.sh");
        assert!(
            out.status.success(),
            "scripts/python-peer.sh failed (set ESDK_TEST_PYTHON to a python with \
             aws-encryption-sdk[MPL]): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// `mpl_peer.py`: `$ESDK_SHARED_DIR/peers`, else beside `$ESDK_TEST_PYESDK_PEER`, else the
/// shared folder next to the checkout.
fn mpl_script() -> PathBuf {
    if let Some(dir) = std::env::var_os("ESDK_SHARED_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(dir).join("peers/mpl_peer.py");
    }
    if let Some(peer) = std::env::var_os("ESDK_TEST_PYESDK_PEER").filter(|p| !p.is_empty()) {
        return PathBuf::from(peer).with_file_name("mpl_peer.py");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/mpl_peer.py")
}

#[track_caller]
fn mpl(dir: &Path, args: &[&str]) {
    let script = mpl_script();
    assert!(
        script.exists(),
        "{} not found (set ESDK_SHARED_DIR)",
        script.display()
    );
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run mpl_peer.py");
    assert!(
        out.status.success(),
        "mpl_peer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Interop with the Python MPL's raw ECDH keyring, both ways, each schema, each curve.
#[test]
fn raw_ecdh_interoperates_with_the_python_mpl() {
    for (_, c) in CURVES {
        let d = TempDir::new().expect("tempdir");
        let p = d.path();
        keys_in(p, c);
        let pt = data(20_000, 5);
        write(p, "pt", &pt);
        let recipient = ["--raw-ecdh-key", "r.pem", "--ecdh-discovery"];
        let ctx = ["-c", "from=mpl"];

        // MPL -> esdk: ephemeral sender, and static sender.
        mpl(
            p,
            &[
                "encrypt",
                "-i",
                "pt",
                "-o",
                "m-eph",
                "--raw-ecdh-recipient-public-key",
                "r.pub",
                "-c",
                "from=mpl",
            ],
        );
        assert_eq!(
            open(p, "m-eph", &[&recipient[..], &ctx].concat()),
            pt,
            "{c}"
        );
        mpl(
            p,
            &[
                "encrypt",
                "-i",
                "pt",
                "-o",
                "m-static",
                "--raw-ecdh-private-key",
                "s.pem",
                "--raw-ecdh-recipient-public-key",
                "r.pub",
            ],
        );
        assert_eq!(open(p, "m-static", &recipient), pt, "{c}");
        let mirrored = ["--raw-ecdh-key", "r.pem", "--recipient-public-key", "s.pub"];
        assert_eq!(open(p, "m-static", &mirrored), pt, "{c}");

        // esdk -> MPL: ephemeral sender, and static sender (the MPL in discovery and static).
        run(
            p,
            "encrypt",
            "pt",
            "e-eph",
            &["--recipient-public-key", "r.pub", "-c", "to=mpl"],
        )
        .ok();
        mpl(
            p,
            &[
                "decrypt",
                "-i",
                "e-eph",
                "-o",
                "e-eph.out",
                "--raw-ecdh-private-key",
                "r.pem",
            ],
        );
        assert_eq!(fs::read(p.join("e-eph.out")).ok(), Some(pt.clone()), "{c}");
        run(
            p,
            "encrypt",
            "pt",
            "e-static",
            &["--raw-ecdh-key", "s.pem", "--recipient-public-key", "r.pub"],
        )
        .ok();
        mpl(
            p,
            &[
                "decrypt",
                "-i",
                "e-static",
                "-o",
                "e-static.out",
                "--raw-ecdh-private-key",
                "r.pem",
            ],
        );
        assert_eq!(
            fs::read(p.join("e-static.out")).ok(),
            Some(pt.clone()),
            "{c}"
        );
        mpl(
            p,
            &[
                "decrypt",
                "-i",
                "e-static",
                "-o",
                "e-static2.out",
                "--raw-ecdh-private-key",
                "s.pem",
                "--raw-ecdh-recipient-public-key",
                "r.pub",
            ],
        );
        assert_eq!(
            fs::read(p.join("e-static2.out")).ok(),
            Some(pt.clone()),
            "{c}"
        );
    }
}

#[test]
fn raw_ecdh_usage_errors_are_specific() {
    let d = TempDir::new().expect("tempdir");
    let p = d.path();
    keys_in(p, "p256");
    fs::copy(key("ecc-p384-recipient-spki.der"), p.join("r384.pub")).expect("copy");
    fs::copy(key("ecc-p256-sender-sec1.pem"), p.join("sec1.pem")).expect("copy");
    fs::copy(key("ecc-p256-sender-spki.pem"), p.join("s.pub.pem")).expect("copy");
    fs::copy(key("rsa2048-pkcs8.pem"), p.join("rsa.pem")).expect("copy");
    fs::write(p.join("junk"), b"not a key at all").expect("junk");
    write(p, "pt", b"x");
    run(
        p,
        "encrypt",
        "pt",
        "ct",
        &["--recipient-public-key", "r.pub"],
    )
    .ok();
    let enc = |keys: &[&str]| run(p, "encrypt", "pt", "out", keys);
    let dec = |keys: &[&str]| run(p, "decrypt", "ct", "out", keys);

    // Wrong curve.
    enc(&[
        "--raw-ecdh-key",
        "s.pem",
        "--recipient-public-key",
        "r384.pub",
    ])
    .fails(
        2,
        "is a P-256 key but --recipient-public-key 'r384.pub' is on P-384",
    );
    // A public key where a private one is needed, and the other way round.
    enc(&[
        "--raw-ecdh-key",
        "s.pub.pem",
        "--recipient-public-key",
        "r.pub",
    ])
    .fails(2, "is a public key: --raw-ecdh-key takes a private key");
    dec(&["--raw-ecdh-key", "r.pub", "--ecdh-discovery"]).fails(2, "is a public key");
    enc(&["--raw-ecdh-key", "s.pem", "--recipient-public-key", "r.pem"])
        .fails(2, "is a private key: give the recipient's public key");
    // Discovery encrypts nothing; an ephemeral sender decrypts nothing.
    enc(&["--raw-ecdh-key", "r.pem", "--ecdh-discovery"])
        .fails(2, "--ecdh-discovery decrypts only");
    dec(&["--recipient-public-key", "r.pub"]).fails(2, "encrypts only");
    // Followers out of place, missing or doubled.
    enc(&["--ecdh-discovery", "--raw-ecdh-key", "r.pem"])
        .fails(2, "must follow the --raw-ecdh-key");
    enc(&["--raw-aes-key", "rsa.pem", "--ecdh-discovery"])
        .fails(2, "must follow the --raw-ecdh-key");
    enc(&["--raw-ecdh-key", "s.pem"]).fails(
        2,
        "needs --recipient-public-key FILE (the key is the sender's) or --ecdh-discovery",
    );
    enc(&["--recipient-public-key", "r.pub", "--raw-ecdh-key", "s.pem"]).fails(
        2,
        "a recipient must follow the --raw-ecdh-key it belongs to",
    );
    enc(&[
        "--raw-ecdh-key",
        "s.pem",
        "--recipient-public-key",
        "r.pub",
        "--ecdh-discovery",
    ])
    .fails(2, "not two");
    enc(&[
        "--raw-ecdh-key",
        "s.pem",
        "--recipient-public-key",
        "r.pub",
        "--key-name",
        "n",
    ])
    .fails(2, "--key-name follows --raw-ecdh-key");
    enc(&[
        "--recipient-public-key",
        "arn:aws:kms:us-west-2:111122223333:key/x",
    ])
    .fails(
        2,
        "a KMS key ARN names a recipient only after --kms-ecdh-key",
    );
    // Key files that are not PKCS#8 / SubjectPublicKeyInfo EC keys.
    enc(&[
        "--raw-ecdh-key",
        "sec1.pem",
        "--recipient-public-key",
        "r.pub",
    ])
    .fails(2, "openssl pkcs8 -topk8");
    enc(&[
        "--raw-ecdh-key",
        "rsa.pem",
        "--recipient-public-key",
        "r.pub",
    ])
    .fails(2, "rsa.pem");
    enc(&["--recipient-public-key", "junk"]).fails(2, "not a P-256, P-384 or P-521 key");
    enc(&["--recipient-public-key", "missing.pub"]).fails(3, "missing.pub");
    assert!(!p.join("out").exists(), "no output after usage errors");
}
