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
    run_esdk(dir, args, &["--kms-endpoint", &endpoint(), "--quiet"])
}

/// The `esdk` binary with `args` then `tail`, test credentials, region us-west-2, no
/// endpoint from the environment and no shared AWS files of whoever runs the tests.
fn run_esdk(dir: &Path, args: &[&str], tail: &[&str]) -> Out {
    run(Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(args)
        .args(tail)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", W)
        .env_remove("AWS_ENDPOINT_URL_KMS")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        ))
}

/// `esdk` with none of this process's environment but PATH and `env`: no AWS variables,
/// HOME in `dir` (so `~/.aws` is the test's, empty), no EC2 instance metadata lookups.
/// Everything AWS comes from `env` and the files it names.
fn esdk_bare_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Out {
    run(Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(args)
        .arg("--quiet")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied()))
}

fn run(cmd: &mut Command) -> Out {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
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

/// A shared config file with a named profile (region, endpoint) beside a `default` one in
/// another region, and a credentials file for it (the layout `aws configure` writes).
fn profile_files(p: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = p.join("aws-config");
    let credentials = p.join("aws-credentials");
    let ep = endpoint();
    fs::write(
        &config,
        format!(
            "[default]\nregion = {C}\n\n[profile esdk-test]\nregion = {W}\nendpoint_url = {ep}\n\n\
             [profile from-process]\nregion = {W}\nendpoint_url = {ep}\n\
             credential_process = /bin/sh {}\n",
            p.join("creds.sh").display()
        ),
    )
    .unwrap();
    fs::write(
        &credentials,
        "[esdk-test]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n",
    )
    .unwrap();
    (config, credentials)
}

#[test]
fn aws_profile_gives_credentials_region_and_endpoint() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let pt = data(9000, 4);
    fs::write(p.join("pt"), &pt).unwrap();
    let (config, credentials) = profile_files(p);
    let files: [(&str, &Path); 2] = [
        ("AWS_CONFIG_FILE", &config),
        ("AWS_SHARED_CREDENTIALS_FILE", &credentials),
    ];
    // A bare key id: the region (us-west-2, where the key is, not the default profile's
    // eu-central-1), the endpoint and the credentials all come from the named profile;
    // nothing is in the environment.
    let key_id = k.w.rsplit('/').next().unwrap();
    esdk_bare_env(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct",
            "--kms-key",
            key_id,
            "--profile",
            "esdk-test",
        ],
        &files,
    )
    .ok();
    esdk_bare_env(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "out",
            "--kms-key",
            &k.w,
            "--profile",
            "esdk-test",
        ],
        &files,
    )
    .ok();
    assert_eq!(fs::read(p.join("out")).unwrap(), pt);
    // AWS_PROFILE chooses it as well.
    let by_env: [(&str, &Path); 3] = [files[0], files[1], ("AWS_PROFILE", Path::new("esdk-test"))];
    esdk_bare_env(
        p,
        &["decrypt", "-i", "ct", "-o", "out2", "--kms-key", &k.w],
        &by_env,
    )
    .ok();
    assert_eq!(fs::read(p.join("out2")).unwrap(), pt);

    // Without the credentials file the profile has no credentials: the KMS call fails
    // saying so, and nothing is written.
    let no_credentials: [(&str, &Path); 2] = [
        ("AWS_CONFIG_FILE", &config),
        ("AWS_SHARED_CREDENTIALS_FILE", &p.join("missing")),
    ];
    let out = esdk_bare_env(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "out3",
            "--kms-key",
            &k.w,
            "--profile",
            "esdk-test",
        ],
        &no_credentials,
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("failed: no AWS credentials: "),
        "{}",
        out.stderr
    );
    assert!(!p.join("out3").exists());

    // A profile that is in neither file: a usage error naming it and the files, before
    // any KMS call.
    let out = esdk_bare_env(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "out4",
            "--kms-key",
            &k.w,
            "--profile",
            "nope",
        ],
        &files,
    )
    .fails(2, "\"nope\"");
    assert!(out.stderr.contains("no such profile"), "{}", out.stderr);
    assert!(out.stderr.contains("aws-config"), "{}", out.stderr);
    assert!(!p.join("out4").exists());
}

#[test]
fn aws_profile_credential_process_is_run() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let pt = data(3000, 5);
    fs::write(p.join("pt"), &pt).unwrap();
    let (config, _) = profile_files(p);
    let asked = p.join("asked");
    fs::write(
        p.join("creds.sh"),
        format!(
            "echo run >> {}\necho '{{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \
             \"SecretAccessKey\": \"process-secret\"}}'\n",
            asked.display()
        ),
    )
    .unwrap();
    let files: [(&str, &Path); 2] = [
        ("AWS_CONFIG_FILE", &config),
        ("AWS_SHARED_CREDENTIALS_FILE", &p.join("missing")),
    ];
    // Two KMS keys, one process: the credentials are fetched once and shared.
    esdk_bare_env(
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
            &k.mrk_w,
            "--profile",
            "from-process",
        ],
        &files,
    )
    .ok();
    assert_eq!(fs::read_to_string(&asked).unwrap(), "run\n");
    esdk_bare_env(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "out",
            "--kms-key",
            &k.mrk_w,
            "--profile",
            "from-process",
        ],
        &files,
    )
    .ok();
    assert_eq!(fs::read(p.join("out")).unwrap(), pt);
    assert_eq!(fs::read_to_string(&asked).unwrap(), "run\nrun\n");
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
    .fails(2, "applies to raw AES and RSA keys and PKCS#11 keys only");
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

// ---------------------------------------------------------------------------------------
// AWS KMS RSA keys (--kms-rsa-key, --kms-rsa-public-key).

/// A new KMS key of `spec` and `usage` in us-west-2: its ARN and its public key (KMS
/// GetPublicKey, DER SubjectPublicKeyInfo).
fn asymmetric_key(
    spec: aws_sdk_kms::types::KeySpec,
    usage: aws_sdk_kms::types::KeyUsageType,
) -> (String, Vec<u8>) {
    let sup = esdk::kms::DefaultClientSupplier::new()
        .with_endpoint_url(&endpoint())
        .with_credentials(aws_sdk_kms::config::Credentials::new(
            "test", "test", None, None, "static",
        ));
    let c = sup.client_for(W);
    let rt = esdk::kms::KmsRuntime::new().unwrap();
    rt.block_on(async {
        let out = c
            .create_key()
            .key_spec(spec)
            .key_usage(usage)
            .send()
            .await
            .unwrap();
        let arn = out.key_metadata().unwrap().arn().unwrap().to_owned();
        let pk = c.get_public_key().key_id(&arn).send().await.unwrap();
        (arn, pk.public_key().unwrap().as_ref().to_vec())
    })
}

/// A new RSA_2048 ENCRYPT_DECRYPT key: returns its ARN and writes its public key (KMS
/// GetPublicKey) to `dir` as `rsa.pem` and `rsa.der`.
fn rsa_key(dir: &Path) -> String {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    use base64::Engine as _;
    let (arn, der) = asymmetric_key(KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    fs::write(dir.join("rsa.pem"), pem).unwrap();
    fs::write(dir.join("rsa.der"), der).unwrap();
    arn
}

/// The EDK provider ids in a `--metadata-output` line, in message order.
fn providers(meta: &Value) -> Vec<String> {
    meta["encrypted_data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["provider_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn kms_rsa_key_encrypts_offline_and_decrypts_with_kms() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let arn = rsa_key(p);
    let pt = data(200_000, 4);
    fs::write(p.join("pt"), &pt).unwrap();
    // Encrypt: the public key only; the default suite becomes the unsigned 0x0478.
    let enc = esdk(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct",
            "--kms-rsa-key",
            &arn,
            "--kms-rsa-public-key",
            "rsa.pem",
            "-c",
            "app=cli-rsa",
            "--metadata-output",
            "-",
        ],
    )
    .ok();
    let meta = &enc.json_lines()[0];
    assert_eq!(providers(meta), ["aws-kms-rsa"]);
    assert_eq!(edk_keys(meta), std::slice::from_ref(&arn));
    let ct = fs::read(p.join("ct")).unwrap();
    assert_eq!(
        ct[..3],
        [0x02, 0x04, 0x78],
        "message format 2, suite 0x0478"
    );
    // Decrypt: KMS Decrypt with RSAES_OAEP_SHA_256.
    esdk(
        p,
        &[
            "decrypt",
            "-i",
            "ct",
            "-o",
            "out",
            "--kms-rsa-key",
            &arn,
            "-c",
            "app=cli-rsa",
        ],
    )
    .ok();
    assert_eq!(fs::read(p.join("out")).unwrap(), pt);

    // OAEP-SHA1 (RSAES_OAEP_SHA_1) on both sides, the DER public key, next to a symmetric
    // KMS key that generates the data key.
    esdk(
        p,
        &[
            "encrypt",
            "-i",
            "pt",
            "-o",
            "ct1",
            "--kms-key",
            &k.w,
            "--kms-rsa-key",
            &arn,
            "--kms-rsa-public-key",
            "rsa.der",
            "--rsa-padding",
            "oaep-sha1",
        ],
    )
    .ok();
    esdk(
        p,
        &[
            "decrypt",
            "-i",
            "ct1",
            "-o",
            "out1",
            "--kms-rsa-key",
            &arn,
            "--rsa-padding",
            "oaep-sha1",
        ],
    )
    .ok();
    assert_eq!(fs::read(p.join("out1")).unwrap(), pt);
    // The wrong padding: KMS refuses, the error names the key and the KMS error code.
    let out = esdk(
        p,
        &["decrypt", "-i", "ct1", "-o", "out2", "--kms-rsa-key", &arn],
    )
    .fails(1, "InvalidCiphertextException");
    assert!(out.stderr.contains(&arn), "{}", out.stderr);
    assert!(!p.join("out2").exists());
    // Another RSA key: no KMS call, the EDK is named as wrapped under another key.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = rsa_key(elsewhere.path());
    esdk(
        p,
        &["decrypt", "-i", "ct", "-o", "out3", "--kms-rsa-key", &other],
    )
    .fails(1, "another key");
    assert!(!p.join("out3").exists());
}

#[test]
fn kms_rsa_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let arn = rsa_key(p);
    fs::write(p.join("pt"), b"x").unwrap();
    let enc = |extra: &[&str]| {
        let mut a = vec!["encrypt", "-i", "pt", "-o", "ct"];
        a.extend_from_slice(extra);
        esdk(p, &a)
    };
    enc(&["--kms-rsa-key", &arn]).fails(2, "needs its public key");
    let with_key = ["--kms-rsa-key", &arn, "--kms-rsa-public-key", "rsa.pem"];
    let mut signed = with_key.to_vec();
    signed.extend(["--suite", "0x0578"]);
    enc(&signed).fails(2, "signs with ECDSA");
    let mut padding = with_key.to_vec();
    padding.extend(["--rsa-padding", "oaep-sha384"]);
    enc(&padding).fails(2, "oaep-sha256 (RSAES_OAEP_SHA_256) or oaep-sha1");
    let mut name = with_key.to_vec();
    name.extend(["--key-name", "n"]);
    enc(&name).fails(2, "follows --kms-rsa-key");
    enc(&["--kms-rsa-public-key", "rsa.pem", "--kms-rsa-key", &arn])
        .fails(2, "must follow the --kms-rsa-key");
    enc(&[
        "--kms-rsa-key",
        "alias/my-rsa",
        "--kms-rsa-public-key",
        "rsa.pem",
    ])
    .fails(2, "not the alias");
    fs::write(p.join("junk.pem"), b"not a key").unwrap();
    enc(&["--kms-rsa-key", &arn, "--kms-rsa-public-key", "junk.pem"]).fails(2, "junk.pem");
    assert!(!p.join("ct").exists());
    // Both flags are in --help.
    let help = Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(["encrypt", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--kms-rsa-key <ARN>"), "{help}");
    assert!(help.contains("--kms-rsa-public-key <PEM>"), "{help}");
    assert!(help.contains("AWS KMS RSA keys"), "{help}");
}

// ---------------------------------------------------------------------------------------
// AWS KMS ECDH keys (--kms-ecdh-key, --recipient-public-key, --kms-ecdh-discovery).

/// A new KEY_AGREEMENT key of `spec`: returns its ARN and writes its public key (KMS
/// GetPublicKey, DER SubjectPublicKeyInfo) to `dir/<name>.der`.
fn ecdh_key(dir: &Path, name: &str, spec: aws_sdk_kms::types::KeySpec) -> String {
    let (arn, der) = asymmetric_key(spec, aws_sdk_kms::types::KeyUsageType::KeyAgreement);
    fs::write(dir.join(format!("{name}.der")), der).unwrap();
    arn
}

#[test]
fn kms_ecdh_keys_static_and_discovery() {
    use aws_sdk_kms::types::KeySpec;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let sender = ecdh_key(p, "sender", KeySpec::EccNistP256);
    let recipient = ecdh_key(p, "recipient", KeySpec::EccNistP256);
    let pt = data(100_000, 9);
    fs::write(p.join("pt"), &pt).unwrap();
    let ctx = ["-c", "app=cli-ecdh"];
    let enc = |out: &str, keys: &[&str]| {
        let mut a = vec!["encrypt", "-i", "pt", "-o", out, "--metadata-output", "-"];
        a.extend_from_slice(keys);
        a.extend_from_slice(&ctx);
        esdk(p, &a)
    };
    let dec = |input: &str, out: &str, keys: &[&str]| {
        let mut a = vec!["decrypt", "-i", input, "-o", out];
        a.extend_from_slice(keys);
        a.extend_from_slice(&ctx);
        esdk(p, &a)
    };
    // KmsPrivateKeyToStaticPublicKey: the recipient's public key fetched from KMS by ARN.
    let to_recipient = [
        "--kms-ecdh-key",
        &sender,
        "--recipient-public-key",
        &recipient,
    ];
    let meta = enc("ct", &to_recipient).ok().json_lines();
    assert_eq!(providers(&meta[0]), ["aws-kms-ecdh"]);
    // The recipient's KMS key with discovery, and the sender's with the recipient's public
    // key from a DER file.
    let discovery = ["--kms-ecdh-key", &recipient, "--kms-ecdh-discovery"];
    dec("ct", "o1", &discovery).ok();
    assert_eq!(fs::read(p.join("o1")).unwrap(), pt);
    let from_file = ["--recipient-public-key", "recipient.der"];
    dec(
        "ct",
        "o2",
        &[&["--kms-ecdh-key", &sender][..], &from_file].concat(),
    )
    .ok();
    assert_eq!(fs::read(p.join("o2")).unwrap(), pt);
    // The sender's key in discovery is not the recipient: no KMS call, a specific reason.
    dec(
        "ct",
        "o3",
        &["--kms-ecdh-key", &sender, "--kms-ecdh-discovery"],
    )
    .fails(1, "made for other public keys");
    assert!(!p.join("o3").exists());

    // A device with the raw ECDH keyring and only the recipient's public key (ephemeral
    // sender); the CLI decrypts it with the KMS key.
    let public =
        esdk::raw::ecdh::EcdhPublicKey::from_spki_der(&fs::read(p.join("recipient.der")).unwrap())
            .unwrap();
    let device = esdk::raw::ecdh::RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
        esdk::raw::ecdh::EcdhCurve::P256,
        public,
    )
    .unwrap();
    let cfg = esdk::Config::new();
    let opts = esdk::EncryptOptions::new();
    let msg = esdk::encrypt(&cfg, &device, &opts, &[("app", "cli-ecdh")], &pt).unwrap();
    fs::write(p.join("device.ct"), msg).unwrap();
    dec("device.ct", "o4", &discovery).ok();
    assert_eq!(fs::read(p.join("o4")).unwrap(), pt);

    // P-384, next to a raw AES key.
    let s384 = ecdh_key(p, "s384", KeySpec::EccNistP384);
    let r384 = ecdh_key(p, "r384", KeySpec::EccNistP384);
    fs::write(p.join("aes.key"), [7u8; 32]).unwrap();
    let keys = ["--raw-aes-key", "aes.key", "--kms-ecdh-key", &s384];
    let meta = enc(
        "ct384",
        &[&keys[..], &["--recipient-public-key", "r384.der"]].concat(),
    )
    .ok()
    .json_lines();
    assert_eq!(providers(&meta[0]), ["esdk", "aws-kms-ecdh"]);
    dec(
        "ct384",
        "o5",
        &["--kms-ecdh-key", &r384, "--kms-ecdh-discovery"],
    )
    .ok();
    assert_eq!(fs::read(p.join("o5")).unwrap(), pt);
}

#[test]
fn kms_ecdh_usage_errors() {
    use aws_sdk_kms::types::KeySpec;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let sender = ecdh_key(p, "sender", KeySpec::EccNistP256);
    let r384 = ecdh_key(p, "r384", KeySpec::EccNistP384);
    fs::write(p.join("pt"), b"x").unwrap();
    let enc = |extra: &[&str]| {
        let mut a = vec!["encrypt", "-i", "pt", "-o", "ct"];
        a.extend_from_slice(extra);
        esdk(p, &a)
    };
    enc(&["--kms-ecdh-key", &sender]).fails(2, "needs --recipient-public-key FILE|ARN");
    enc(&["--kms-ecdh-key", &sender, "--kms-ecdh-discovery"]).fails(2, "decrypts only");
    enc(&[
        "--recipient-public-key",
        "sender.der",
        "--kms-ecdh-key",
        &sender,
    ])
    .fails(2, "must follow the --kms-ecdh-key");
    let both = [
        "--kms-ecdh-key",
        &sender,
        "--recipient-public-key",
        "sender.der",
        "--kms-ecdh-discovery",
    ];
    enc(&both).fails(2, "not two");
    let named = [
        "--kms-ecdh-key",
        &sender,
        "--recipient-public-key",
        "sender.der",
        "--key-name",
        "n",
    ];
    enc(&named).fails(2, "follows --kms-ecdh-key");
    fs::write(p.join("junk.pem"), b"not a key").unwrap();
    enc(&[
        "--kms-ecdh-key",
        &sender,
        "--recipient-public-key",
        "junk.pem",
    ])
    .fails(2, "junk.pem");
    // A recipient on another curve than the sender's KMS key.
    let out = enc(&["--kms-ecdh-key", &sender, "--recipient-public-key", &r384])
        .fails(2, "ECC_NIST_P384");
    assert!(out.stderr.contains("P-256"), "{}", out.stderr);
    enc(&[
        "--kms-ecdh-key",
        &sender,
        "--recipient-public-key",
        "r384.der",
    ])
    .fails(2, "P-384");
    // A symmetric key has no public key: KMS says so, with its error code.
    let symmetric = keys().w.clone();
    enc(&[
        "--kms-ecdh-key",
        &symmetric,
        "--recipient-public-key",
        "r384.der",
    ])
    .fails(2, "UnsupportedOperationException");
    enc(&[
        "--kms-ecdh-key",
        "alias/x",
        "--recipient-public-key",
        "r384.der",
    ])
    .fails(2, "alias/x");
    assert!(!p.join("ct").exists());
    let help = Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(["decrypt", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--kms-ecdh-key <ARN>",
        "--recipient-public-key <FILE|ARN>",
        "--kms-ecdh-discovery",
        "AWS KMS ECDH keys",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
}

// ---------------------------------------------------------------------------------------
// The hierarchical keyring: --branch-key-id with its key store, `esdk branch-key`.

/// `esdk branch-key ARGS` against the local server (KMS and DynamoDB on the same port).
fn branch_key(dir: &Path, args: &[&str]) -> Out {
    let ep = endpoint();
    let mut all = vec!["branch-key"];
    all.extend_from_slice(args);
    run_esdk(
        dir,
        &all,
        &["--kms-endpoint", &ep, "--branch-key-endpoint", &ep],
    )
}

fn stdout_line(out: &Out) -> String {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

/// A new key store table (made by `esdk branch-key create --create-table`) and a branch
/// key in it: (table, branch key id).
fn new_branch_key(dir: &Path) -> (String, String) {
    let table = format!(
        "cli-hier-{}{}",
        std::process::id(),
        dir.file_name().unwrap().to_string_lossy()
    );
    let out = branch_key(
        dir,
        &[
            "create",
            "--branch-key-table",
            &table,
            "--branch-key-kms-key",
            &keys().w,
            "--create-table",
        ],
    )
    .ok();
    (table, stdout_line(&out))
}

#[test]
fn branch_key_create_encrypt_rotate_decrypt_and_mpl_interop() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (table, id) = new_branch_key(p);
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let ep = endpoint();
    let store = [
        "--branch-key-id",
        id.as_str(),
        "--branch-key-table",
        table.as_str(),
        "--branch-key-kms-key",
        k.w.as_str(),
        "--branch-key-endpoint",
        ep.as_str(),
    ];
    let pt = data(100_000, 9);
    fs::write(p.join("pt"), &pt).unwrap();
    let crypt = |mode: &str, input: &str, output: &str, extra: &[&str]| {
        let mut a = vec![mode, "-i", input, "-o", output];
        a.extend(store);
        a.extend(extra);
        esdk(p, &a)
    };
    let enc = crypt(
        "encrypt",
        "pt",
        "ct1",
        &["-c", "app=cli-hier", "--metadata-output", "-"],
    )
    .ok();
    let meta = &enc.json_lines()[0];
    assert_eq!(providers(meta), ["aws-kms-hierarchy"]);
    assert_eq!(edk_keys(meta), std::slice::from_ref(&id));
    crypt("decrypt", "ct1", "out1", &["-c", "app=cli-hier"]).ok();
    assert_eq!(fs::read(p.join("out1")).unwrap(), pt);
    // Rotate; the new message uses the new version, the old one still decrypts.
    let version = stdout_line(
        &branch_key(
            p,
            &[
                "version",
                "--branch-key-table",
                &table,
                "--branch-key-kms-key",
                &k.w,
                "--branch-key-id",
                &id,
            ],
        )
        .ok(),
    );
    assert_eq!(version.len(), 36, "{version}");
    crypt("encrypt", "pt", "ct2", &[]).ok();
    // The EDK holds the version as its 16 UUID bytes.
    let hex = version.replace('-', "");
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let ct2 = fs::read(p.join("ct2")).unwrap();
    assert!(
        ct2.windows(16).any(|w| w == bytes),
        "ct2 names version {version}"
    );
    let ct1 = fs::read(p.join("ct1")).unwrap();
    assert!(!ct1.windows(16).any(|w| w == bytes));
    for (ct, out) in [("ct1", "o1"), ("ct2", "o2")] {
        crypt("decrypt", ct, out, &[]).ok();
        assert_eq!(fs::read(p.join(out)).unwrap(), pt);
    }
    // Next to a KMS key: either decrypts.
    let mut both = vec!["encrypt", "-i", "pt", "-o", "ct3", "--kms-key", &k.w];
    both.extend(store);
    esdk(p, &both).ok();
    esdk(p, &["decrypt", "-i", "ct3", "-o", "o3", "--kms-key", &k.w]).ok();
    crypt("decrypt", "ct3", "o4", &[]).ok();
    assert_eq!(fs::read(p.join("o4")).unwrap(), pt);

    // The MPL decrypts the CLI's messages (both versions) from the same table, and the CLI
    // decrypts the MPL's.
    let peer = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend([
            "--endpoint",
            ep.as_str(),
            "--hierarchical",
            "--table",
            table.as_str(),
            "--kms-key",
            k.w.as_str(),
            "--branch-key-id",
            id.as_str(),
        ]);
        let out = esdk_test_support::mpl_peer("cli_kms", &a);
        assert!(
            out.status.success(),
            "mpl_peer.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for ct in ["ct1", "ct2"] {
        let (ct, out) = (p.join(ct), p.join("mpl.out"));
        peer(&[
            "decrypt",
            "-i",
            ct.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(fs::read(&out).unwrap(), pt);
    }
    let (input, ct) = (p.join("pt"), p.join("mpl.ct"));
    peer(&[
        "encrypt",
        "-i",
        input.to_str().unwrap(),
        "-o",
        ct.to_str().unwrap(),
    ]);
    crypt("decrypt", "mpl.ct", "o5", &[]).ok();
    assert_eq!(fs::read(p.join("o5")).unwrap(), pt);
}

#[test]
fn branch_key_usage_and_store_errors() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (table, id) = new_branch_key(p);
    let ep = endpoint();
    fs::write(p.join("pt"), b"x").unwrap();
    let enc = |extra: &[&str]| {
        let mut a = vec!["encrypt", "-i", "pt", "-o", "ct"];
        a.extend_from_slice(extra);
        a.extend(["--branch-key-endpoint", ep.as_str()]);
        esdk(p, &a)
    };
    // The id needs its table and KMS key; per-key options do not apply to it.
    enc(&["--branch-key-id", &id]).fails(2, "--branch-key-table");
    let good = [
        "--branch-key-id",
        id.as_str(),
        "--branch-key-table",
        table.as_str(),
        "--branch-key-kms-key",
        k.w.as_str(),
    ];
    let mut named = good.to_vec();
    named.extend(["--key-name", "n"]);
    enc(&named).fails(2, "follows --branch-key-id");
    // An unknown branch key, another table, a KMS key that is not an ARN.
    let mut unknown = good.to_vec();
    unknown[1] = "no-such-branch-key";
    enc(&unknown).fails(1, "branch key \"no-such-branch-key\" not found");
    let mut missing = good.to_vec();
    missing[3] = "no-such-table";
    enc(&missing).fails(1, "ResourceNotFoundException");
    let mut alias = good.to_vec();
    alias[5] = "alias/x";
    enc(&alias).fails(2, "--branch-key-kms-key");
    // Another KMS key than the one wrapping the table's keys.
    let mut other = good.to_vec();
    other[5] = k.c.as_str();
    enc(&other).fails(1, "not by the key store's");
    assert!(!p.join("ct").exists());
    // `esdk branch-key`: a chosen id needs a custom context; an existing id is refused;
    // an unknown id cannot be versioned.
    let store = [
        "--branch-key-table",
        table.as_str(),
        "--branch-key-kms-key",
        k.w.as_str(),
    ];
    let mut create = vec!["create"];
    create.extend(store);
    create.extend(["--branch-key-id", "chosen"]);
    branch_key(p, &create).fails(2, "custom encryption context");
    create.extend(["-c", "tenant=t"]);
    assert_eq!(stdout_line(&branch_key(p, &create).ok()), "chosen");
    branch_key(p, &create).fails(1, "already exists");
    let mut version = vec!["version"];
    version.extend(store);
    version.extend(["--branch-key-id", "nope"]);
    branch_key(p, &version).fails(1, "not found");
    // The flags are in --help.
    let help = Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(["encrypt", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--branch-key-id <ID>",
        "--branch-key-table <NAME>",
        "--branch-key-kms-key <ARN>",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    assert!(help.contains("hierarchical keyring"), "{help}");
}
