//! The `esdk` CLI with AWS KMS keys (`--kms-key`, `--kms-discovery`, `--discovery-account`,
//! `--kms-endpoint`, `--caching`) against the local KMS server that `scripts/kms-test.sh`
//! starts (it exports `ESDK_KMS_ENDPOINT`). Never skips: without the server it fails.
#![cfg(feature = "kms")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const W: &str = "us-west-2";
const E: &str = "us-east-1";
const C: &str = "eu-central-1";

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

struct Keys {
    w: String,
    c: String,
    mrk_w: String,
    mrk_e: String,
}

/// Keys created once through the KMS API (the same calls a user's tooling would make).
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let sup = esdk::kms::DefaultClientSupplier::new()
            .with_endpoint_url(&endpoint())
            .with_credentials(aws_sdk_kms::config::Credentials::new(
                "test", "test", None, None, "static",
            ));
        let rt = esdk::kms::KmsRuntime::new().unwrap();
        rt.block_on(async {
            let create = |region: &'static str, mrk: bool| {
                let c = sup.client_for(region);
                async move {
                    let out = c.create_key().multi_region(mrk).send().await.unwrap();
                    out.key_metadata().unwrap().arn().unwrap().to_owned()
                }
            };
            let w = create(W, false).await;
            let c = create(C, false).await;
            let mrk_w = create(W, true).await;
            let rep = sup
                .client_for(W)
                .replicate_key()
                .key_id(mrk_w.rsplit('/').next().unwrap())
                .replica_region(E)
                .send()
                .await
                .unwrap();
            let mrk_e = rep
                .replica_key_metadata()
                .unwrap()
                .arn()
                .unwrap()
                .to_owned();
            Keys { w, c, mrk_w, mrk_e }
        })
    })
}

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Out {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "esdk failed: {}", self.stderr);
        self
    }
    fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "exit code; stderr: {}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {}",
            self.stderr
        );
        self
    }
    fn json_lines(&self) -> Vec<Value> {
        String::from_utf8(self.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn esdk(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(args)
        .args(["--kms-endpoint", &endpoint(), "--quiet"])
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", W)
        .env_remove("AWS_ENDPOINT_URL_KMS")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn edk_keys(meta: &Value) -> Vec<String> {
    meta["header"]["encrypted_data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let info = e["key_provider"]["key_info"].as_str().unwrap();
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(info)
                .unwrap();
            String::from_utf8_lossy(&raw).into_owned()
        })
        .collect()
}

#[test]
fn kms_keys_in_two_regions_plus_a_raw_key() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("raw.key"), [9u8; 32]).unwrap();
    let pt = data(300_000, 1);
    fs::write(p.join("pt"), &pt).unwrap();
    let enc = esdk(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct",
            "--kms-key",
            &k.w,
            "--kms-key",
            &k.c,
            "--raw-aes-key",
            "raw.key",
            "-c",
            "app=cli-kms",
            "--metadata-output",
            "-",
        ],
    )
    .ok();
    let meta = &enc.json_lines()[0];
    // The KMS keys are the generator (first on the command line) and a child; the raw key
    // wraps the same data key.
    // (The header part of the metadata lists EDKs sorted, as aws-encryption-cli does.)
    let mut keys_written = edk_keys(meta);
    keys_written.sort();
    assert_eq!(keys_written.len(), 3, "{keys_written:?}");
    let mut want = [k.c.clone(), k.w.clone()];
    want.sort();
    assert_eq!(keys_written[..2], want[..]);
    // Raw AES key info: the key name, then the tag length and the IV.
    assert!(keys_written[2].starts_with("default"), "{keys_written:?}");
    // In the message itself the generator's EDK comes first.
    let providers: Vec<&str> = meta["encrypted_data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["provider_id"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["aws-kms", "aws-kms", "esdk"]);
    // Any one key decrypts: each KMS key alone (in its own region), the raw key alone.
    for key in [&k.w, &k.c] {
        esdk(
            p,
            &[
                "decrypt",
                "-i",
                "ct",
                "-o",
                "out",
                "--kms-key",
                key,
                "-c",
                "app=cli-kms",
            ],
        )
        .ok();
        assert_eq!(fs::read(p.join("out")).unwrap(), pt, "{key}");
        fs::remove_file(p.join("out")).unwrap();
    }
    esdk(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "out",
            "--raw-aes-key",
            "raw.key",
        ],
    )
    .ok();
    assert_eq!(fs::read(p.join("out")).unwrap(), pt);
    fs::remove_file(p.join("out")).unwrap();
    // Discovery calls KMS in each key's region (us-west-2 is the default region; the
    // eu-central-1 EDK needs its own client), with and without an account filter.
    esdk(p, &["decrypt", "-i", "ct", "-o", "out", "--kms-discovery"]).ok();
    assert_eq!(fs::read(p.join("out")).unwrap(), pt);
    fs::remove_file(p.join("out")).unwrap();
    esdk(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "out",
            "--kms-discovery",
            "--discovery-account",
            "123456789012",
        ],
    )
    .ok();
    fs::remove_file(p.join("out")).unwrap();
    esdk(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "out",
            "--kms-discovery",
            "--discovery-account",
            "111122223333",
        ],
    )
    .fails(1, "111122223333");
    assert!(!p.join("out").exists(), "no output after a failure");
}

#[test]
fn ranged_decrypt_with_kms_keys() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let pt = data(50_000, 3);
    fs::write(p.join("pt"), &pt).unwrap();
    esdk(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct",
            "--kms-key",
            &k.w,
            "--kms-key",
            &k.c,
            "--suite",
            "0x0478",
            "--frame-length",
            "4096",
        ],
    )
    .ok();
    // Each key alone, an unaligned range across frames, and the suffix form.
    for (key, range, want) in [
        (&k.w, "1000-9999", &pt[1000..10_000]),
        (&k.c, "-100", &pt[pt.len() - 100..]),
    ] {
        let out = esdk(
            p,
            &[
                "decrypt",
                "-i",
                "ct",
                "-o",
                "-",
                "--kms-key",
                key,
                "--range",
                range,
            ],
        )
        .ok();
        assert!(out.stdout == want, "{key} {range}");
    }
    // A key that wraps no EDK of the message: refused, naming the key, no output file.
    fs::write(p.join("other"), data(100, 4)).unwrap();
    esdk(
        p,
        &["encrypt", "-i", "other", "-o", "ct2", "--kms-key", &k.c],
    )
    .ok();
    esdk(
        p,
        &[
            "decrypt",
            "-i",
            "ct2",
            "-o",
            "out",
            "--kms-key",
            &k.w,
            "--range",
            "0-9",
        ],
    )
    .fails(1, &k.w);
    assert!(!p.join("out").exists());
}

#[test]
fn wrong_kms_key_names_the_key_and_leaves_nothing() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("pt"), data(5000, 2)).unwrap();
    esdk(p, &["encrypt", "-i", "pt", "-o", "ct", "--kms-key", &k.w]).ok();
    let out = esdk(p, &["decrypt", "-i", "ct", "-o", "out", "--kms-key", &k.c]).fails(1, &k.c);
    assert!(out.stderr.contains("EDK #0"), "{}", out.stderr);
    assert!(!p.join("out").exists());
}

#[test]
fn multi_region_key_decrypts_with_its_replica() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let pt = data(70_000, 3);
    fs::write(p.join("pt"), &pt).unwrap();
    esdk(
        p,
        &["encrypt", "-i", "pt", "-o", "ct", "--kms-key", &k.mrk_w],
    )
    .ok();
    esdk(
        p,
        &["decrypt", "-i", "ct", "-o", "out", "--kms-key", &k.mrk_e],
    )
    .ok();
    assert_eq!(fs::read(p.join("out")).unwrap(), pt);
}

#[test]
fn usage_errors() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("pt"), b"x").unwrap();
    esdk(p, &["encrypt", "-i", "pt", "-o", "ct", "--kms-discovery"]).fails(2, "decrypts only");
    esdk(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct",
            "--kms-key",
            &k.w,
            "--key-name",
            "n",
        ],
    )
    .fails(2, "applies to raw and PKCS#11 keys only");
    esdk(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct",
            "--kms-key",
            "not-an-arn:x",
        ],
    )
    .fails(2, "--kms-key");
    esdk(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct",
            "--kms-key",
            &k.mrk_w,
            "--kms-key",
            &k.mrk_e,
        ],
    )
    .fails(2, "multi-Region");
    esdk(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct",
            "--kms-key",
            &k.w,
            "--caching",
            "capacity=0",
        ],
    )
    .fails(2, "capacity");
    assert!(!p.join("ct").exists());
}

#[test]
fn caching_reuses_the_data_key_across_files() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::create_dir(p.join("in")).unwrap();
    for i in 0..4u8 {
        fs::write(
            p.join("in").join(format!("f{i}")),
            data(10_000 + usize::from(i), i),
        )
        .unwrap();
    }
    let run = |out: &str, caching: bool| -> Vec<Value> {
        let mut args = vec![
            "encrypt",
            "-r",
            "-i",
            "in",
            "-o",
            out,
            "--kms-key",
            &k.w,
            "-c",
            "t=1",
            "--metadata-output",
            "-",
        ];
        if caching {
            args.extend(["--caching", "max_messages=3", "max_age=60"]);
        }
        esdk(p, &args).ok().json_lines()
    };
    let edk = |m: &Value| m["header"]["encrypted_data_keys"][0]["encrypted_data_key"].clone();
    let plain = run("plain", false);
    let cached = run("cached", true);
    assert_eq!(plain.len(), 4);
    assert_eq!(cached.len(), 4);
    let distinct = |ms: &[Value]| {
        let mut v: Vec<String> = ms.iter().map(|m| edk(m).to_string()).collect();
        v.sort();
        v.dedup();
        v.len()
    };
    // Without the cache every file has its own data key (one GenerateDataKey each); with it,
    // max_messages=3 lets three files share one, so four files need two.
    assert_eq!(distinct(&plain), 4);
    assert_eq!(distinct(&cached), 2);
    // Every file decrypts, with the cache on decrypt too.
    esdk(
        p,
        &[
            "decrypt",
            "-r",
            "-i",
            "cached",
            "-o",
            "back",
            "--kms-key",
            &k.w,
            "--caching",
        ],
    )
    .ok();
    for i in 0..4u8 {
        assert_eq!(
            fs::read(p.join("back").join(format!("f{i}"))).unwrap(),
            data(10_000 + usize::from(i), i)
        );
    }
}
