//! `esdk` as a drop-in for the official `aws-encryption-cli` (PyPI aws-encryption-sdk-cli
//! 4.x), against the real one on the local KMS server that `scripts/kms-test.sh` starts (it
//! exports `ESDK_KMS_ENDPOINT`, and `ESDK_TEST_AWSCLI` from `scripts/awscli-peer.sh`).
//!
//! One shell script written for aws-encryption-cli runs with each tool, only the command
//! name changed: it encrypts a tree with `--wrapping-keys key=ARN -r` (metadata to a file),
//! decrypts a tree with `--wrapping-keys discovery=true -S`, and pipes one message through
//! stdin/stdout. Each tool decrypts what the other encrypted; plaintexts, output names and
//! metadata keys are compared. Never skips: without the server or the peer it fails.
#![cfg(feature = "kms")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[allow(dead_code)]
mod common;
use common::data;

fn endpoint() -> String {
    let ep = std::env::var("ESDK_KMS_ENDPOINT").unwrap_or_else(|_| {
        panic!("ESDK_KMS_ENDPOINT is not set: run `bash scripts/kms-test.sh` (starts the server)")
    });
    let addr = ep.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        TcpStream::connect(addr).is_ok(),
        "the KMS server at {ep} does not answer: start it with scripts/kms-test.sh"
    );
    ep
}

/// The official aws-encryption-cli.
fn awscli() -> PathBuf {
    let p = std::env::var("ESDK_TEST_AWSCLI").unwrap_or_else(|_| {
        panic!(
            "ESDK_TEST_AWSCLI is not set: run `bash scripts/kms-test.sh` (it installs the official \
             aws-encryption-cli with scripts/awscli-peer.sh)"
        )
    });
    let p = PathBuf::from(p);
    assert!(
        p.is_file(),
        "ESDK_TEST_AWSCLI={} does not exist",
        p.display()
    );
    p
}

/// A symmetric KMS key in us-west-2, created through the KMS API.
fn new_key(region: &str) -> String {
    let sup = esdk::kms::DefaultClientSupplier::new()
        .with_endpoint_url(&endpoint())
        .with_credentials(aws_sdk_kms::config::Credentials::new(
            "test", "test", None, None, "static",
        ));
    let rt = esdk::kms::KmsRuntime::new().unwrap();
    rt.block_on(async {
        let out = sup.client_for(region).create_key().send().await.unwrap();
        out.key_metadata().unwrap().arn().unwrap().to_owned()
    })
}

/// The script, as written for aws-encryption-cli. `$1` is encrypt or decrypt; the paths and
/// the key come from the environment.
const SCRIPT: &str = r#"
set -euo pipefail
case "$1" in
encrypt)
    mkdir -p "$ENC"
    aws-encryption-cli --encrypt -r \
        --input "$SRC" --output "$ENC" \
        --wrapping-keys key="$KEY_ARN" \
        --encryption-context purpose=compat-test team=esdk \
        --metadata-output "$META" --overwrite-metadata \
        --frame-length 1024 -q
    aws-encryption-cli -e -i - -o - -w key="$KEY_ARN" -S -c purpose=pipe \
        < "$SRC/a.txt" > "$PIPED"
    aws-encryption-cli -e -i "$SRC/d e.txt" -o "$PIPED.b64" -w key="$KEY_ARN" -S --encode
    ;;
decrypt)
    mkdir -p "$DEC"
    aws-encryption-cli --decrypt --recursive \
        --input "$ENC" --output "$DEC" \
        --wrapping-keys discovery=true \
        --encryption-context purpose=compat-test \
        --commitment-policy require-encrypt-require-decrypt \
        -S --buffer
    aws-encryption-cli -d -i "$ENC/sub/b.bin.encrypted" -o "$DEC/one.bin" \
        --wrapping-keys key="$KEY_ARN" --metadata-output "$META"
    aws-encryption-cli -d -i - -o - --wrapping-keys discovery=true -S --buffer \
        < "$PIPED" > "$DEC/piped.txt"
    aws-encryption-cli -d -i "$PIPED.b64" -o "$DEC/b64.txt" -w discovery=true -S --decode
    ;;
esac
"#;

/// Where one tool works.
struct Run {
    enc: PathBuf,
    dec: PathBuf,
    meta_enc: PathBuf,
    meta_dec: PathBuf,
    piped: PathBuf,
}

impl Run {
    fn new(root: &Path, name: &str) -> Self {
        Self {
            enc: root.join(format!("{name}-enc")),
            dec: root.join(format!("{name}-dec")),
            meta_enc: root.join(format!("{name}-meta-enc.jsonl")),
            meta_dec: root.join(format!("{name}-meta-dec.jsonl")),
            piped: root.join(format!("{name}-piped.bin")),
        }
    }
}

/// Runs `SCRIPT $step` with `tool` as the command: aws-encryption-cli itself, or the script
/// with only the command name replaced. `enc` is the tree to decrypt (and the pipe input),
/// `out` where this run writes.
fn script(tool: &Path, step: &str, src: &Path, enc: &Run, out: &Run, key: &str) {
    let name = tool.file_name().unwrap().to_str().unwrap();
    let text = SCRIPT.replace("aws-encryption-cli", name);
    let path = format!(
        "{}:{}",
        tool.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (meta, encdir) = match step {
        "encrypt" => (&out.meta_enc, &out.enc),
        _ => (&out.meta_dec, &enc.enc),
    };
    let result = Command::new("bash")
        .arg("-c")
        .arg(&text)
        .arg("script")
        .arg(step)
        .env("PATH", path)
        .env("SRC", src)
        .env("ENC", encdir)
        .env("DEC", &out.dec)
        .env("META", meta)
        .env(
            "PIPED",
            if step == "encrypt" {
                &out.piped
            } else {
                &enc.piped
            },
        )
        .env("KEY_ARN", key)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-west-2")
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ENDPOINT_URL_KMS", endpoint())
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{name} {step} failed ({}):\nstdout: {}\nstderr: {}",
        result.status,
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a metadata line is JSON"))
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

/// esdk's metadata lines carry every key of the official lines (and the header the same
/// keys), with the same mode, input and output.
fn same_metadata_keys(official: &[Value], ours: &[Value]) {
    assert_eq!(official.len(), ours.len(), "{official:?}\n{ours:?}");
    let by_input = |v: &[Value]| {
        let mut v = v.to_vec();
        v.sort_by_key(|l| l["input"].as_str().unwrap().to_owned());
        v
    };
    for (o, e) in by_input(official).iter().zip(by_input(ours).iter()) {
        let (ok, ek) = (keys(o), keys(e));
        assert!(ok.is_subset(&ek), "official keys {ok:?}, esdk's {ek:?}");
        assert_eq!(keys(&o["header"]), keys(&e["header"]), "header keys");
        assert_eq!(o["mode"], e["mode"]);
        for k in [
            "algorithm",
            "version",
            "content_type",
            "frame_length",
            "type",
            "header_iv_length",
        ] {
            assert_eq!(o["header"][k], e["header"][k], "header {k}");
        }
        if let Some(auth) = o.get("header_auth") {
            assert_eq!(keys(auth), keys(&e["header_auth"]), "header_auth keys");
        }
        let edk = |v: &Value| keys(&v["header"]["encrypted_data_keys"][0]);
        assert_eq!(edk(o), edk(e));
    }
}

#[test]
fn an_aws_encryption_cli_script_runs_against_esdk_both_ways() {
    let official = awscli();
    let esdk = PathBuf::from(env!("CARGO_BIN_EXE_esdk"));
    let key = new_key("us-west-2");
    let d = tempfile::TempDir::new().unwrap();
    let root = d.path();
    let src = root.join("src");
    let files = [
        ("a.txt", 5usize),
        ("sub/b.bin", 70_000),
        ("sub/deeper/c", 0),
        ("d e.txt", 3000),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        let p = src.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data(*len, i as u8)).unwrap();
    }
    let (a, e) = (Run::new(root, "official"), Run::new(root, "esdk"));
    // Each tool encrypts the tree.
    script(&official, "encrypt", &src, &a, &a, &key);
    script(&esdk, "encrypt", &src, &e, &e, &key);
    let want_enc: BTreeSet<String> = files
        .iter()
        .map(|(n, _)| format!("{n}.encrypted"))
        .collect();
    assert_eq!(tree(&a.enc), want_enc);
    assert_eq!(tree(&e.enc), want_enc);
    // Each decrypts what the other encrypted (discovery), into its own tree.
    script(&official, "decrypt", &src, &e, &a, &key);
    script(&esdk, "decrypt", &src, &a, &e, &key);
    let mut want_dec: BTreeSet<String> = files
        .iter()
        .map(|(n, _)| format!("{n}.encrypted.decrypted"))
        .collect();
    want_dec.insert("one.bin".into());
    want_dec.insert("piped.txt".into());
    want_dec.insert("b64.txt".into());
    for run in [&a, &e] {
        assert_eq!(tree(&run.dec), want_dec, "{}", run.dec.display());
        for (i, (name, len)) in files.iter().enumerate() {
            let got = fs::read(run.dec.join(format!("{name}.encrypted.decrypted"))).unwrap();
            assert_eq!(got, data(*len, i as u8), "{name} in {}", run.dec.display());
        }
        assert_eq!(fs::read(run.dec.join("one.bin")).unwrap(), data(70_000, 1));
        assert_eq!(fs::read(run.dec.join("piped.txt")).unwrap(), data(5, 0));
        assert_eq!(fs::read(run.dec.join("b64.txt")).unwrap(), data(3000, 3));
    }
    // --encode wrote base64 text, one line with no line breaks, in both tools.
    for run in [&a, &e] {
        let text = fs::read_to_string(run.piped.with_extension("bin.b64")).unwrap();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
            "{text:.80}"
        );
    }
    // The messages are what the script asked for, whoever wrote them.
    for run in [&a, &e] {
        let meta = lines(&run.meta_enc);
        assert_eq!(meta.len(), files.len());
        for l in &meta {
            assert_eq!(l["mode"], "encrypt");
            assert_eq!(l["header"]["frame_length"], 1024);
            assert_eq!(l["header"]["encryption_context"]["purpose"], "compat-test");
            assert_eq!(l["header"]["encryption_context"]["team"], "esdk");
            assert!(Path::new(l["input"].as_str().unwrap()).is_absolute(), "{l}");
            assert!(
                Path::new(l["output"].as_str().unwrap()).is_absolute(),
                "{l}"
            );
        }
        let dec = lines(&run.meta_dec);
        assert_eq!(dec.len(), 1);
        assert_eq!(dec[0]["mode"], "decrypt");
        assert!(dec[0]["output"].as_str().unwrap().ends_with("one.bin"));
    }
    same_metadata_keys(&lines(&a.meta_enc), &lines(&e.meta_enc));
    same_metadata_keys(&lines(&a.meta_dec), &lines(&e.meta_dec));
    // --overwrite-metadata: a second encrypt run replaces the file instead of appending.
    script(&esdk, "encrypt", &src, &e, &e, &key);
    assert_eq!(lines(&e.meta_enc).len(), files.len());
}
