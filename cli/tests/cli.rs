//! End-to-end tests of the `esdk` binary: round trips over files, stdin/stdout and
//! directories; key encodings; RSA; multi-keyrings; encryption-context checks; failures and
//! their exit codes (no output left behind); metadata; keygen; interop with the official
//! Python ESDK both ways (never skipped: it fails when the Python peer cannot be set up).

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use esdk_tests::forge::crowded_header;
use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::{Out, data, setup, write};

/// Runs `esdk` with `args` in `dir`, feeding `stdin`.
fn esdk_in<S: AsRef<OsStr>>(dir: &Path, args: &[S], stdin: &[u8]) -> Out {
    esdk_trickle(dir, args, stdin.to_vec(), stdin.len().max(1))
}

fn esdk<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Out {
    esdk_in(dir, args, b"")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rsa_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../backends/raw/tests/data")
        .join(name)
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// Names in `dir` (not recursive), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn metadata_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("metadata line is JSON"))
        .collect()
}

#[test]
fn file_round_trip_with_the_default_suite() {
    let d = setup();
    let p = d.path();
    let pt = data(100_000, 1);
    write(p, "pt", &pt);
    let m = esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "pt",
            "-o",
            "ct",
            "--metadata-output",
            "-",
        ],
    )
    .ok();
    let meta = metadata_lines(&m.stdout);
    assert_eq!(meta[0]["suite"], "0x0578");
    assert_ne!(read(p, "ct"), pt);
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "ct",
            "-o",
            "back",
        ],
    )
    .ok();
    assert_eq!(read(p, "back"), pt);
    // Only the outputs: no temporary file left.
    assert_eq!(names(p), ["back", "ct", "k.bin", "pt"]);
}

#[test]
fn stdin_to_stdout_round_trip_including_empty_input() {
    let d = setup();
    let p = d.path();
    for len in [0usize, 1, 4096, 70_001] {
        let pt = data(len, 2);
        let ct = esdk_in(
            p,
            &["encrypt", "--raw-aes-key", "k.bin", "-i", "-", "-o", "-"],
            &pt,
        )
        .ok()
        .stdout;
        let back = esdk_in(
            p,
            &["decrypt", "--raw-aes-key", "k.bin", "-i", "-", "-o", "-"],
            &ct,
        )
        .ok()
        .stdout;
        assert_eq!(back, pt, "length {len}");
    }
    // stdin into a file and a file to stdout.
    let pt = data(5000, 3);
    esdk_in(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "-",
            "-o",
            "m.esdk",
        ],
        &pt,
    )
    .ok();
    let back = esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "m.esdk",
            "-o",
            "-",
        ],
    )
    .ok()
    .stdout;
    assert_eq!(back, pt);
}

#[test]
fn directories_round_trip_and_mirror_the_tree() {
    let d = setup();
    let p = d.path();
    let files = [
        ("src/a.txt", 10usize),
        ("src/sub/b.bin", 9000),
        ("src/sub/deeper/c", 0),
        ("src/d e.txt", 1),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        write(p, name, &data(*len, i as u8));
    }
    // Not without --recursive.
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "src",
            "-o",
            "enc",
        ],
    )
    .fails(2, "--recursive");
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "-i",
            "src",
            "-o",
            "enc",
        ],
    )
    .ok();
    assert_eq!(names(&p.join("enc")), ["a.txt.esdk", "d e.txt.esdk", "sub"]);
    assert_eq!(names(&p.join("enc/sub")), ["b.bin.esdk", "deeper"]);
    assert_eq!(names(&p.join("enc/sub/deeper")), ["c.esdk"]);
    // A stray file without the suffix is skipped on decrypt, with a warning.
    write(p, "enc/notes.md", b"not a message");
    let out = esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "-i",
            "enc",
            "-o",
            "dec",
        ],
    )
    .ok();
    assert!(out.stderr.contains("notes.md"), "{}", out.stderr);
    for (i, (name, len)) in files.iter().enumerate() {
        let rel = name.strip_prefix("src/").expect("prefix");
        assert_eq!(read(&p.join("dec"), rel), data(*len, i as u8), "{rel}");
    }
    assert!(!p.join("dec/notes.md").exists());
    // A custom suffix, and an output directory inside the input (not descended into).
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "--suffix",
            ".enc",
            "-i",
            "src",
            "-o",
            "src/out",
        ],
    )
    .ok();
    assert_eq!(
        names(&p.join("src/out")),
        ["a.txt.enc", "d e.txt.enc", "sub"]
    );
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "--suffix",
            ".enc",
            "-i",
            "src/out",
            "-o",
            "dec2",
        ],
    )
    .ok();
    assert_eq!(read(&p.join("dec2/sub"), "b.bin"), data(9000, 1));
    // A single file into an existing directory gains (encrypt) and loses (decrypt) the suffix.
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "src/a.txt",
            "-o",
            "dec2",
        ],
    )
    .ok();
    fs::remove_file(p.join("dec2/a.txt")).expect("rm");
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "dec2/a.txt.esdk",
            "-o",
            "dec2",
        ],
    )
    .ok();
    assert_eq!(read(p, "dec2/a.txt"), data(10, 0));
}

#[test]
fn raw_aes_keys_in_all_three_encodings_are_the_same_key() {
    let d = TempDir::new().expect("tempdir");
    let p = d.path();
    for len in [16usize, 24, 32] {
        let key = data(len, len as u8);
        write(p, "raw.key", &key);
        write(p, "hex.key", format!("{}\n", hex(&key)).as_bytes());
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&key)
        };
        write(p, "b64.key", format!("{b64}\n").as_bytes());
        let pt = data(3000, 9);
        write(p, "pt", &pt);
        for enc_key in ["raw.key", "hex.key", "b64.key"] {
            esdk(
                p,
                &["encrypt", "--raw-aes-key", enc_key, "-i", "pt", "-o", "ct"],
            )
            .ok();
            for dec_key in ["raw.key", "hex.key", "b64.key"] {
                let back = esdk(
                    p,
                    &["decrypt", "--raw-aes-key", dec_key, "-i", "ct", "-o", "-"],
                )
                .ok()
                .stdout;
                assert_eq!(back, pt, "AES-{} {enc_key} -> {dec_key}", len * 8);
            }
        }
    }
}

#[test]
fn ambiguous_or_invalid_aes_key_files_are_usage_errors() {
    let d = setup();
    let p = d.path();
    write(p, "pt", b"x");
    // 32 bytes that are also 32 hex digits: AES-256 raw or AES-128 hex?
    write(p, "amb.key", b"00112233445566778899aabbccddeeff");
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "amb.key",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .fails(2, "ambiguous");
    assert!(!p.join("ct").exists());
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "amb.key",
            "--key-encoding",
            "hex",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .ok();
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "amb.key",
            "--key-encoding",
            "raw",
            "-i",
            "ct",
            "-o",
            "-",
        ],
    )
    .fails(1, "no keyring decrypted");
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "amb.key",
            "--key-encoding",
            "hex",
            "-i",
            "ct",
            "-o",
            "-",
        ],
    )
    .ok();
    write(p, "short.key", &[1u8; 20]);
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "short.key",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .fails(2, "short.key");
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "missing.key",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .fails(3, "missing.key");
}

#[test]
fn rsa_public_keys_encrypt_and_private_keys_do_both() {
    let d = setup();
    let p = d.path();
    let pt = data(20_000, 4);
    write(p, "pt", &pt);
    let spki = rsa_data("rsa2048-spki.pem");
    let pkcs8 = rsa_data("rsa2048-pkcs8.pem");
    let pkcs1 = rsa_data("rsa2048-pkcs1.pem");
    let pkcs1_der = rsa_data("rsa2048-pkcs1.der");
    for padding in [
        "oaep-sha1",
        "oaep-sha256",
        "oaep-sha384",
        "oaep-sha512",
        "pkcs1",
    ] {
        // Public key encrypts; each private form decrypts.
        let a = |k: &Path| k.as_os_str().to_owned();
        let args = |mode: &str, key: &Path, input: &str, output: &str| -> Vec<std::ffi::OsString> {
            [mode, "--raw-rsa-key"]
                .iter()
                .map(|s| (*s).into())
                .chain([a(key)])
                .chain(
                    ["--rsa-padding", padding, "-i", input, "-o", output]
                        .iter()
                        .map(|s| (*s).into()),
                )
                .collect()
        };
        esdk(p, &args("encrypt", &spki, "pt", "ct")).ok();
        for private in [&pkcs8, &pkcs1, &pkcs1_der] {
            let back = esdk(p, &args("decrypt", private, "ct", "-")).ok().stdout;
            assert_eq!(back, pt, "{padding} {}", private.display());
        }
        // A private key encrypts too (its public half is derived).
        esdk(p, &args("encrypt", &pkcs1, "pt", "ct2")).ok();
        assert_eq!(
            esdk(p, &args("decrypt", &pkcs8, "ct2", "-")).ok().stdout,
            pt
        );
        // A public key cannot decrypt.
        esdk(p, &args("decrypt", &spki, "ct", "-")).fails(2, "public key");
    }
    // The padding must match.
    esdk(
        p,
        &[
            OsStr::new("encrypt"),
            OsStr::new("--raw-rsa-key"),
            spki.as_os_str(),
            OsStr::new("-i"),
            OsStr::new("pt"),
            OsStr::new("-o"),
            OsStr::new("ct"),
        ],
    )
    .ok();
    esdk(
        p,
        &[
            OsStr::new("decrypt"),
            OsStr::new("--raw-rsa-key"),
            pkcs8.as_os_str(),
            OsStr::new("--rsa-padding"),
            OsStr::new("oaep-sha1"),
            OsStr::new("-i"),
            OsStr::new("ct"),
            OsStr::new("-o"),
            OsStr::new("-"),
        ],
    )
    .fails(1, "unwrap failed");
    // Not an RSA key.
    esdk(
        p,
        &["encrypt", "--raw-rsa-key", "k.bin", "-i", "pt", "-o", "ct"],
    )
    .fails(2, "k.bin");
}

#[test]
fn multi_key_messages_open_with_any_one_key() {
    let d = setup();
    let p = d.path();
    write(p, "k2.hex", format!("{}\n", hex(&data(16, 77))).as_bytes());
    let pt = data(12_345, 5);
    write(p, "pt", &pt);
    let spki = rsa_data("rsa2048-spki.pem");
    let pkcs8 = rsa_data("rsa2048-pkcs8.pem");
    let s = |x: &str| std::ffi::OsString::from(x);
    let enc: Vec<std::ffi::OsString> = vec![
        s("encrypt"),
        s("--key-namespace"),
        s("team"),
        s("--raw-aes-key"),
        s("k.bin"),
        s("--key-name"),
        s("first"),
        s("--raw-rsa-key"),
        spki.clone().into(),
        s("--key-name"),
        s("rsa"),
        s("--key-namespace"),
        s("rsa-ns"),
        s("--raw-aes-key"),
        s("k2.hex"),
        s("--key-name"),
        s("second"),
        s("-i"),
        s("pt"),
        s("-o"),
        s("ct"),
        s("--metadata-output"),
        s("meta.json"),
    ];
    esdk(p, &enc).ok();
    let meta = metadata_lines(&read(p, "meta.json"));
    let edks: Vec<(String, String)> = meta[0]["encrypted_data_keys"]
        .as_array()
        .expect("edks")
        .iter()
        .map(|e| {
            (
                e["provider_id"].as_str().unwrap_or("").to_owned(),
                e["key_name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want = [("team", "first"), ("rsa-ns", "rsa"), ("team", "second")];
    assert_eq!(edks, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let dec = |key_flag: &str, key: std::ffi::OsString, ns: &str, name: &str| -> Out {
        esdk(
            p,
            &[
                s("decrypt"),
                s(key_flag),
                key,
                s("--key-namespace"),
                s(ns),
                s("--key-name"),
                s(name),
                s("-i"),
                s("ct"),
                s("-o"),
                s("-"),
            ],
        )
    };
    assert_eq!(
        dec("--raw-aes-key", s("k.bin"), "team", "first")
            .ok()
            .stdout,
        pt
    );
    assert_eq!(
        dec("--raw-aes-key", s("k2.hex"), "team", "second")
            .ok()
            .stdout,
        pt
    );
    assert_eq!(
        dec("--raw-rsa-key", pkcs8.clone().into(), "rsa-ns", "rsa")
            .ok()
            .stdout,
        pt
    );
    // A wrong name: the error names every attempt and the keyrings.
    dec("--raw-aes-key", s("k.bin"), "team", "nobody").fails(1, "key name does not match");
    // Two keys on decrypt: the second one opens it.
    let out = esdk(
        p,
        &[
            s("decrypt"),
            s("--key-namespace"),
            s("team"),
            s("--raw-aes-key"),
            s("k.bin"),
            s("--key-name"),
            s("wrong"),
            s("--raw-aes-key"),
            s("k2.hex"),
            s("--key-name"),
            s("second"),
            s("-i"),
            s("ct"),
            s("-o"),
            s("-"),
        ],
    )
    .ok();
    assert_eq!(out.stdout, pt);
    // A per-key option given twice for one key is refused.
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "--key-name",
            "a",
            "--key-name",
            "b",
            "-i",
            "ct",
            "-o",
            "-",
        ],
    )
    .fails(2, "twice");
}

#[test]
fn encryption_context_is_stored_and_required_on_decrypt() {
    let d = setup();
    let p = d.path();
    let pt = data(50_000, 6);
    write(p, "pt", &pt);
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-c",
            "purpose=test",
            "dept=it ops",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .ok();
    let dec = |ec: &[&str]| {
        let mut args = vec!["decrypt", "--raw-aes-key", "k.bin", "-i", "ct", "-o", "out"];
        if !ec.is_empty() {
            args.push("-c");
            args.extend_from_slice(ec);
        }
        esdk(p, &args)
    };
    dec(&[]).ok();
    dec(&["purpose=test"]).ok();
    dec(&["purpose=test", "dept=it ops"]).ok();
    dec(&["dept"]).ok();
    assert_eq!(read(p, "out"), pt);
    fs::remove_file(p.join("out")).expect("rm");
    dec(&["purpose=prod"]).fails(1, "'purpose'");
    dec(&["owner=me"]).fails(1, "'owner' is not in the message");
    dec(&["owner"]).fails(1, "'owner' is not in the message");
    assert!(!p.join("out").exists());
    // Reserved keys and malformed pairs are usage errors.
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-c",
            "aws-crypto-x=1",
            "-i",
            "pt",
            "-o",
            "ct2",
        ],
    )
    .fails(2, "reserved");
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-c",
            "novalue",
            "-i",
            "pt",
            "-o",
            "ct2",
        ],
    )
    .fails(2, "KEY=VALUE");
}

#[test]
fn tampered_or_truncated_messages_fail_with_code_1_and_leave_no_output() {
    let d = setup();
    let p = d.path();
    let pt = data(64 * 1024, 7);
    write(p, "pt", &pt);
    for suite in ["0x0578", "0x0478"] {
        esdk(
            p,
            &[
                "encrypt",
                "--raw-aes-key",
                "k.bin",
                "--suite",
                suite,
                "-i",
                "pt",
                "-o",
                "ct",
            ],
        )
        .ok();
        let ct = read(p, "ct");
        // A flipped bit in the middle of the body: frames before it were already decrypted.
        let mut bad = ct.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x01;
        write(p, "bad", &bad);
        let out = esdk(
            p,
            &[
                "decrypt",
                "--raw-aes-key",
                "k.bin",
                "-i",
                "bad",
                "-o",
                "plain",
            ],
        )
        .fails(1, "authentication failed");
        assert!(out.stderr.contains("'bad'"), "{}", out.stderr);
        assert!(
            !p.join("plain").exists(),
            "partial plaintext left behind ({suite})"
        );
        // An existing output is left untouched.
        write(p, "plain", b"previous");
        esdk(
            p,
            &[
                "decrypt",
                "--raw-aes-key",
                "k.bin",
                "-i",
                "bad",
                "-o",
                "plain",
            ],
        )
        .fails(1, "tag mismatch");
        assert_eq!(read(p, "plain"), b"previous");
        fs::remove_file(p.join("plain")).expect("rm");
        // Truncated, and trailing bytes.
        write(p, "short", &ct[..ct.len() - 1]);
        esdk(
            p,
            &[
                "decrypt",
                "--raw-aes-key",
                "k.bin",
                "-i",
                "short",
                "-o",
                "plain",
            ],
        )
        .fails(1, "truncated");
        let mut long = ct.clone();
        long.push(0);
        write(p, "long", &long);
        esdk(
            p,
            &[
                "decrypt",
                "--raw-aes-key",
                "k.bin",
                "-i",
                "long",
                "-o",
                "plain",
            ],
        )
        .fails(1, "after the end");
        assert!(!p.join("plain").exists());
        // Not a message at all.
        esdk(
            p,
            &[
                "decrypt",
                "--raw-aes-key",
                "k.bin",
                "-i",
                "pt",
                "-o",
                "plain",
            ],
        )
        .fails(1, "'pt'");
        // To stdout: a signed message's plaintext is held until its signature verifies, so
        // nothing reaches stdout; an unsigned one's verified frames before the damage do.
        // With --stream-unverified the signed frames stream too, and the failure says that
        // what was written is unverified.
        let out = esdk(
            p,
            &["decrypt", "--raw-aes-key", "k.bin", "-i", "bad", "-o", "-"],
        )
        .fails(1, "'bad'");
        // Whole frames before the flipped byte (the header is well under 1 KiB).
        let frames_before = (mid - 1024) / (4096 + 32) * 4096;
        if suite == "0x0578" {
            assert!(
                out.stdout.is_empty(),
                "signed plaintext reached stdout unverified"
            );
            assert!(!out.stderr.contains("unverified"), "{}", out.stderr);
        } else {
            assert!(out.stdout.len() >= frames_before && pt.starts_with(&out.stdout));
        }
        let out = esdk(
            p,
            &[
                "decrypt",
                "--raw-aes-key",
                "k.bin",
                "--stream-unverified",
                "-i",
                "bad",
                "-o",
                "-",
            ],
        )
        .fails(1, "unverified");
        assert!(out.stdout.len() >= frames_before && pt.starts_with(&out.stdout));
    }
    // Nothing but our files in the directory: no temporary files.
    assert_eq!(names(p), ["bad", "ct", "k.bin", "long", "pt", "short"]);
    // In a directory run, the good files are written and the bad one is not.
    write(p, "in/good.esdk", &read(p, "ct"));
    write(p, "in/bad.esdk", &read(p, "bad"));
    let out = esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "-i",
            "in",
            "-o",
            "outdir",
        ],
    )
    .fails(1, "1 of 2 files failed");
    assert!(out.stderr.contains("bad.esdk"), "{}", out.stderr);
    assert_eq!(names(&p.join("outdir")), ["good"]);
}

#[test]
fn metadata_is_one_json_line_per_file() {
    let d = setup();
    let p = d.path();
    write(p, "dir/a", &data(100, 1));
    write(p, "dir/b", &data(5000, 2));
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "--key-name",
            "kn",
            "--frame-length",
            "1024",
            "--suite",
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
            "-c",
            "x=y",
            "-r",
            "-i",
            "dir",
            "-o",
            "enc",
            "--metadata-output",
            "meta.json",
        ],
    )
    .ok();
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "--key-name",
            "kn",
            "-r",
            "-i",
            "enc",
            "-o",
            "dec",
            "--metadata-output",
            "meta.json",
        ],
    )
    .ok();
    let lines = metadata_lines(&read(p, "meta.json"));
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        let mode = if i < 2 { "encrypt" } else { "decrypt" };
        assert_eq!(l["mode"], mode);
        assert_eq!(l["suite"], "0x0478");
        assert_eq!(l["frame_length"], 1024);
        assert_eq!(l["encryption_context"], serde_json::json!({"x": "y"}));
        assert_eq!(l["encrypted_data_keys"][0]["provider_id"], "esdk");
        assert_eq!(l["encrypted_data_keys"][0]["key_name"], "kn");
        // The aws-encryption-cli shape.
        let h = &l["header"];
        assert_eq!(h["algorithm"], "AES_256_GCM_HKDF_SHA512_COMMIT_KEY");
        assert_eq!(h["version"], "2.0");
        assert_eq!(
            h["encrypted_data_keys"][0]["key_provider"]["provider_id"],
            "ZXNkaw=="
        );
        assert!(h["message_id"].as_str().is_some_and(|m| m.len() == 44));
    }
    assert_eq!(
        lines[1]["input"],
        Path::new("dir").join("b").display().to_string()
    );
    assert_eq!(lines[1]["plaintext_bytes"], 5000);
    assert_eq!(lines[3]["plaintext_bytes"], 5000);
    assert_eq!(lines[1]["message_bytes"], lines[3]["message_bytes"]);
    // Metadata and output cannot both go to stdout.
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "dir/a",
            "-o",
            "-",
            "--metadata-output",
            "-",
        ],
    )
    .fails(2, "stdout");
}

#[cfg(unix)]
#[test]
fn keygen_writes_a_0600_key_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new().expect("tempdir");
    let p = d.path();
    esdk(p, &["keygen", "--output", "new.key"]).ok();
    let meta = fs::metadata(p.join("new.key")).expect("key");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let first = read(p, "new.key");
    esdk(p, &["keygen", "--output", "new.key"]).fails(3, "refusing to overwrite");
    assert_eq!(read(p, "new.key"), first);
    esdk(p, &["keygen", "--output", "new.hex", "--encoding", "hex"]).ok();
    esdk(
        p,
        &["keygen", "--output", "new.b64", "--encoding", "base64"],
    )
    .ok();
    assert_eq!(read(p, "new.hex").len(), 65);
    assert_eq!(read(p, "new.b64").len(), 45);
    assert_ne!(read(p, "new.hex"), read(p, "new.b64"));
    let printed = esdk(p, &["keygen", "-o", "-", "--encoding", "hex"])
        .ok()
        .stdout;
    assert_eq!(printed.len(), 65);
    write(p, "pt", b"hello");
    for k in ["new.key", "new.hex", "new.b64"] {
        esdk(p, &["encrypt", "--raw-aes-key", k, "-i", "pt", "-o", "ct"]).ok();
        assert_eq!(
            esdk(p, &["decrypt", "--raw-aes-key", k, "-i", "ct", "-o", "-"])
                .ok()
                .stdout,
            b"hello"
        );
    }
}

#[test]
fn suites_policies_and_limits() {
    let d = setup();
    let p = d.path();
    let pt = data(10_000, 8);
    write(p, "pt", &pt);
    let enc = |extra: &[&str]| {
        let mut a = vec!["encrypt", "--raw-aes-key", "k.bin", "-i", "pt", "-o", "ct"];
        a.extend_from_slice(extra);
        esdk(p, &a)
    };
    let dec = |extra: &[&str]| {
        let mut a = vec!["decrypt", "--raw-aes-key", "k.bin", "-i", "ct", "-o", "-"];
        a.extend_from_slice(extra);
        esdk(p, &a)
    };
    // Non-committing suites need forbid-encrypt-allow-decrypt to encrypt...
    enc(&["--suite", "0x0378"]).fails(2, "not allowed");
    enc(&[
        "--suite",
        "0x0014",
        "--commitment-policy",
        "forbid-encrypt-allow-decrypt",
    ])
    .ok();
    // ... and an allow-decrypt policy to decrypt.
    dec(&[]).fails(1, "commitment policy");
    assert_eq!(
        dec(&["--commitment-policy", "require-encrypt-allow-decrypt"])
            .ok()
            .stdout,
        pt
    );
    // Its default suite is 0x0378.
    let m = enc(&[
        "--commitment-policy",
        "forbid-encrypt-allow-decrypt",
        "--metadata-output",
        "-",
    ])
    .ok();
    assert_eq!(metadata_lines(&m.stdout)[0]["suite"], "0x0378");
    enc(&["--suite", "0x0479"]).fails(2, "0x0479");
    // Names work too.
    enc(&["--suite", "alg_aes_256_gcm_hkdf_sha512_commit_key"]).ok();
    // --decrypt-unsigned: unsigned messages pass, signed ones are refused before output.
    assert_eq!(dec(&["--decrypt-unsigned"]).ok().stdout, pt);
    enc(&[]).ok();
    let out = dec(&["--decrypt-unsigned"]).fails(1, "signed");
    assert!(out.stdout.is_empty());
    // --max-length bounds the frame length.
    enc(&["--frame-length", "8192"]).ok();
    dec(&["--max-length", "4096"]).fails(1, "body larger than");
    assert_eq!(dec(&["--max-length", "8192"]).ok().stdout, pt);
    enc(&["--frame-length", "0"]).fails(2, "frame-length");
    // --max-encrypted-data-keys on both sides.
    let two = [
        "encrypt",
        "--raw-aes-key",
        "k.bin",
        "--raw-aes-key",
        "k.bin",
        "--key-name",
        "b",
        "-i",
        "pt",
        "-o",
        "ct",
    ];
    esdk(p, &two).ok();
    dec(&["--max-encrypted-data-keys", "1"]).fails(1, "encrypted data keys");
    assert_eq!(dec(&["--max-encrypted-data-keys", "2"]).ok().stdout, pt);
    let mut two_limited = two.to_vec();
    two_limited.extend_from_slice(&["--max-encrypted-data-keys", "1"]);
    esdk(p, &two_limited).fails(1, "encrypted data keys");
    // Large frames, many of them.
    let big = data(3 * 1024 * 1024 + 17, 9);
    write(p, "big", &big);
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "--frame-length",
            "1048576",
            "-i",
            "big",
            "-o",
            "big.esdk",
        ],
    )
    .ok();
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "big.esdk",
            "-o",
            "big.out",
        ],
    )
    .ok();
    assert!(read(p, "big.out") == big);
}

#[test]
fn usage_and_io_errors_have_their_exit_codes() {
    let d = setup();
    let p = d.path();
    write(p, "pt", b"x");
    esdk(p, &["encrypt", "-i", "pt", "-o", "ct"]).fails(2, "no wrapping key");
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "pt",
            "-o",
            "ct",
            "--bogus",
        ],
    )
    .fails(2, "--bogus");
    esdk(p, &["frobnicate"]).fails(2, "frobnicate");
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "nope",
            "-o",
            "ct",
        ],
    )
    .fails(3, "'nope'");
    esdk(
        p,
        &["encrypt", "--raw-aes-key", "k.bin", "-i", "pt", "-o", "pt"],
    )
    .fails(2, "same file");
    // Missing parent directories are created; a parent that is a file is an I/O error.
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "pt",
            "-o",
            "new/dir/ct",
        ],
    )
    .ok();
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "pt",
            "-o",
            "pt.d/x",
        ],
    )
    .ok();
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-i",
            "pt",
            "-o",
            "pt/x",
        ],
    )
    .fails(3, "'pt'");
    let help = esdk(p, &["encrypt", "--help"]).ok();
    let help = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "Exit codes:",
        "3  I/O error",
        "derived from it with",
        "ESDK_PKCS11_PIN",
        "oaep-sha256",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}");
    }
    // --no-overwrite keeps an existing output.
    write(p, "ct", b"keep");
    let out = esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "--no-overwrite",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .ok();
    assert!(out.stderr.contains("exists"), "{}", out.stderr);
    assert_eq!(read(p, "ct"), b"keep");
}

#[cfg(not(feature = "pkcs11"))]
#[test]
fn pkcs11_keys_need_the_pkcs11_feature() {
    let d = setup();
    let p = d.path();
    write(p, "pt", b"x");
    esdk(
        p,
        &[
            "encrypt",
            "--pkcs11-module",
            "/nonexistent.so",
            "--pkcs11-token",
            "t",
            "--pkcs11-key",
            "k",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .fails(2, "not built with PKCS#11 support yet");
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "--pkcs11-token",
            "t",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .fails(2, "without --pkcs11-key");
}

/// The Python interpreter with the official ESDK: `ESDK_PEER_PYTHON`, or the venv of
/// `scripts/python-peer.sh`. Panics (never skips) when neither works.
fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        if let Some(p) = std::env::var_os("ESDK_PEER_PYTHON") {
            return PathBuf::from(p);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-peer.sh");
        let out = Command::new("bash").arg(&script).output().expect("run python-peer.sh");
        assert!(
            out.status.success(),
            "scripts/python-peer.sh failed (set ESDK_PEER_PYTHON to a python with aws-encryption-sdk): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn peer_script() -> PathBuf {
    match std::env::var_os("ESDK_TEST_PYESDK_PEER") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/pyesdk_peer.py"),
    }
}

#[track_caller]
fn peer(dir: &Path, args: &[&str]) {
    let out = Command::new(python())
        .arg(peer_script())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run pyesdk_peer.py");
    assert!(
        out.status.success(),
        "pyesdk_peer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn interop_with_the_official_python_esdk_both_ways() {
    let d = TempDir::new().expect("tempdir");
    let p = d.path();
    let key = data(32, 42);
    fs::write(p.join("k.bin"), &key).expect("key");
    let key_hex = hex(&key);
    let pt = data(3 * 4096 + 11, 10);
    write(p, "pt", &pt);
    let ours = [
        "--raw-aes-key",
        "k.bin",
        "--key-namespace",
        "peer-ns",
        "--key-name",
        "peer-key",
    ];
    let pkcs8 = rsa_data("rsa2048-pkcs8.pem");
    let pkcs8 = pkcs8.to_str().expect("utf8 path");
    for (suite, api) in [("0x0578", "legacy"), ("0x0478", "keyring")] {
        // Rust -> Python.
        let mut a = vec![
            "encrypt",
            "--suite",
            suite,
            "-c",
            "purpose=interop",
            "-i",
            "pt",
            "-o",
            "ct",
        ];
        a.extend_from_slice(&ours);
        esdk(p, &a).ok();
        peer(
            p,
            &[
                "decrypt",
                "-i",
                "ct",
                "-o",
                "py.out",
                "--aes-key",
                &key_hex,
                "--ec",
                "purpose=interop",
                "--api",
                api,
            ],
        );
        assert_eq!(read(p, "py.out"), pt, "{suite} Rust -> Python");
        // Python -> Rust.
        peer(
            p,
            &[
                "encrypt",
                "-i",
                "pt",
                "-o",
                "py.ct",
                "--aes-key",
                &key_hex,
                "--suite",
                suite,
                "--ec",
                "purpose=interop",
                "--api",
                api,
            ],
        );
        let mut a = vec!["decrypt", "-c", "purpose=interop", "-i", "py.ct", "-o", "-"];
        a.extend_from_slice(&ours);
        assert_eq!(esdk(p, &a).ok().stdout, pt, "{suite} Python -> Rust");
        // RSA both ways.
        let rsa = [
            "--raw-rsa-key",
            pkcs8,
            "--key-namespace",
            "peer-ns",
            "--key-name",
            "peer-key",
            "--rsa-padding",
            "oaep-sha256",
        ];
        let mut a = vec!["encrypt", "--suite", suite, "-i", "pt", "-o", "rsa.ct"];
        a.extend_from_slice(&rsa);
        esdk(p, &a).ok();
        peer(
            p,
            &[
                "decrypt",
                "-i",
                "rsa.ct",
                "-o",
                "rsa.out",
                "--rsa-pem",
                pkcs8,
                "--api",
                api,
            ],
        );
        assert_eq!(read(p, "rsa.out"), pt, "{suite} RSA Rust -> Python");
        peer(
            p,
            &[
                "encrypt",
                "-i",
                "pt",
                "-o",
                "py.rsa.ct",
                "--rsa-pem",
                pkcs8,
                "--suite",
                suite,
                "--api",
                api,
            ],
        );
        let mut a = vec!["decrypt", "-i", "py.rsa.ct", "-o", "-"];
        a.extend_from_slice(&rsa);
        assert_eq!(esdk(p, &a).ok().stdout, pt, "{suite} RSA Python -> Rust");
    }
}

/// Makes a FIFO with the `mkfifo` tool (fails loudly when it is missing).
#[cfg(unix)]
fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("the mkfifo tool is needed by this test");
    assert!(st.success(), "mkfifo {} failed", path.display());
}

/// Runs `esdk` writing into the FIFO `fifo` while a thread reads it; returns what the
/// reader got.
#[cfg(unix)]
fn through_fifo(dir: &Path, args: &[&str], fifo: &Path) -> Vec<u8> {
    use std::os::unix::fs::FileTypeExt;
    let f = fifo.to_path_buf();
    let reader = std::thread::spawn(move || fs::read(f).expect("read the FIFO"));
    esdk(dir, args).ok();
    // Had the FIFO been replaced, the reader would wait forever on the old one: fail
    // instead of hanging.
    let still_fifo = fs::metadata(fifo).is_ok_and(|m| m.file_type().is_fifo());
    assert!(
        still_fifo,
        "{} is no longer a FIFO after {args:?}",
        fifo.display()
    );
    assert!(
        (0..500).any(|_| {
            reader.is_finished() || {
                std::thread::sleep(std::time::Duration::from_millis(10));
                false
            }
        }),
        "the FIFO reader got no end of data within 5 s after esdk exited"
    );
    reader.join().expect("reader")
}

#[cfg(unix)]
#[test]
fn non_regular_outputs_are_written_in_place_never_replaced() {
    use std::os::unix::fs::{FileTypeExt, symlink};
    let d = setup();
    let p = d.path();
    let pt = data(300_000, 21);
    write(p, "pt", &pt);
    let key = ["--raw-aes-key", "k.bin"];
    let enc = |out: &'static str| -> Vec<&'static str> {
        [&["encrypt"][..], &key, &["-i", "pt", "-o"], &[out]].concat()
    };
    let dec = |input: &'static str, out: &'static str| -> Vec<&'static str> {
        [&["decrypt"][..], &key, &["-i", input, "-o", out]].concat()
    };
    let mut checked = 0;
    // A FIFO read by another process: it gets the whole message and stays a FIFO.
    let fifo = p.join("fifo");
    mkfifo(&fifo);
    let ct = through_fifo(p, &enc("fifo"), &fifo);
    assert!(fs::metadata(&fifo).expect("fifo").file_type().is_fifo());
    write(p, "ct", &ct);
    let got = through_fifo(p, &dec("ct", "fifo"), &fifo);
    assert_eq!(got, pt, "plaintext through the FIFO");
    assert!(fs::metadata(&fifo).expect("fifo").file_type().is_fifo());
    checked += 2;
    // A symbolic link to the FIFO: the link and the FIFO stay.
    symlink("fifo", p.join("to-fifo")).expect("symlink");
    let got = through_fifo(p, &dec("ct", "to-fifo"), &fifo);
    assert_eq!(got, pt, "plaintext through the link to the FIFO");
    assert!(
        fs::symlink_metadata(p.join("to-fifo"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert!(fs::metadata(&fifo).expect("fifo").file_type().is_fifo());
    checked += 1;
    // A character device: the run succeeds and /dev/null is still a character device.
    for args in [enc("/dev/null"), dec("ct", "/dev/null")] {
        esdk(p, &args).ok();
        let m = fs::metadata("/dev/null").expect("/dev/null");
        assert!(
            m.file_type().is_char_device(),
            "/dev/null was replaced after {args:?}"
        );
        checked += 1;
    }
    // /dev/stdout (a pipe here) is our stdout.
    let out = esdk(p, &dec("ct", "/dev/stdout")).ok();
    assert_eq!(out.stdout, pt, "-o /dev/stdout");
    checked += 1;
    // /dev/stdout on a file opened for appending (`>> file`): appended through the
    // inherited descriptor, the file is not replaced.
    write(p, "log", b"before\n");
    let log = fs::OpenOptions::new()
        .append(true)
        .open(p.join("log"))
        .expect("open log");
    let st = Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(dec("ct", "/dev/stdout"))
        .current_dir(p)
        .stdout(Stdio::from(log))
        .status()
        .expect("run esdk");
    assert!(st.success());
    assert_eq!(read(p, "log"), [&b"before\n"[..], &pt].concat());
    checked += 1;
    // A symbolic link to a regular file: the file is replaced after success, the link stays.
    write(p, "target", b"old");
    symlink("target", p.join("to-target")).expect("symlink");
    esdk(p, &dec("ct", "to-target")).ok();
    assert_eq!(read(p, "target"), pt);
    assert!(
        fs::symlink_metadata(p.join("to-target"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    checked += 1;
    // A failed decrypt to a new regular file leaves no file (and no temporary file).
    let mut bad = ct.clone();
    let at = bad.len() - 200;
    bad[at] ^= 1;
    write(p, "bad", &bad);
    esdk(p, &dec("bad", "plain")).fails(1, "'bad'");
    assert!(
        !p.join("plain").exists(),
        "a failed decrypt left its output"
    );
    checked += 1;
    assert_eq!(
        names(p),
        [
            "bad",
            "ct",
            "fifo",
            "k.bin",
            "log",
            "pt",
            "target",
            "to-fifo",
            "to-target"
        ]
    );
    println!("{checked} in-place / replaced output cases checked");
}

#[test]
fn an_encryption_context_key_given_twice_is_a_usage_error() {
    let d = setup();
    let p = d.path();
    write(p, "pt", b"x");
    esdk(
        p,
        &["encrypt", "--raw-aes-key", "k.bin", "-i", "pt", "-o", "ct"],
    )
    .ok();
    for (mode, input) in [("encrypt", "pt"), ("decrypt", "ct")] {
        let out = esdk(
            p,
            &[
                mode,
                "--raw-aes-key",
                "k.bin",
                "-c",
                "t=good",
                "-c",
                "t=evil",
                "-i",
                input,
                "-o",
                "out",
            ],
        )
        .fails(2, "key 't' given twice");
        assert!(!p.join("out").exists(), "{mode}: {}", out.stderr);
    }
}

#[test]
fn caching_accepts_an_unrepresentable_max_age_as_never_expiring() {
    let d = setup();
    let p = d.path();
    write(p, "in/a", &data(1000, 1));
    write(p, "in/b", &data(2000, 2));
    let max = format!("max_age={}", u64::MAX);
    for (mode, input, output) in [("encrypt", "in", "enc"), ("decrypt", "enc", "dec")] {
        esdk(
            p,
            &[
                mode,
                "--raw-aes-key",
                "k.bin",
                "--caching",
                &max,
                "-r",
                "-i",
                input,
                "-o",
                output,
            ],
        )
        .ok();
    }
    assert_eq!(read(p, "dec/a"), data(1000, 1));
    assert_eq!(read(p, "dec/b"), data(2000, 2));
}

/// Runs `esdk` with `args` in `dir`, feeding `stdin` in writes of `step` bytes.
fn esdk_trickle<S: AsRef<OsStr>>(dir: &Path, args: &[S], stdin: Vec<u8>, step: usize) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_esdk"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn esdk");
    let mut input = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        for c in stdin.chunks(step) {
            if input.write_all(c).and_then(|()| input.flush()).is_err() {
                break; // A failing esdk may close stdin early: its error says why.
            }
        }
    });
    let out = child.wait_with_output().expect("wait esdk");
    feeder.join().expect("feeder");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn huge_headers_on_a_trickling_stdin_end_with_the_right_error() {
    let d = setup();
    let p = d.path();
    // About 3.6 MB: 3000 context pairs, 60,000 EDKs none of which the key opens.
    let msg = crowded_header(3000, 60_000);
    let len = msg.len();
    let dec = |extra: &[&str]| {
        let mut args = vec!["decrypt", "--raw-aes-key", "k.bin", "-i", "-", "-o", "-"];
        args.extend_from_slice(extra);
        esdk_trickle(p, &args, msg.clone(), 4096)
    };
    let out = dec(&[]).fails(
        1,
        "decrypting <stdin>: keyring failed: no keyring decrypted any encrypted data key \
         (60000 attempts",
    );
    assert!(out.stdout.is_empty());
    dec(&["--max-encrypted-data-keys", "100"]).fails(1, "maximum of 100");
    dec(&["-c", "k000005=v5", "-c", "absent=x"]).fails(1, "'absent' is not in the message");
    println!("header of {len} bytes in 4096-byte writes: 3 runs checked");
}

#[test]
fn threads_1_and_4_give_messages_that_decrypt_alike() {
    let d = setup();
    let p = d.path();
    // Several batches of small frames, and a final frame that is not full.
    let pt = data((3 << 20) + 4321, 9);
    write(p, "pt", &pt);
    for suite in ["0x0478", "0x0578"] {
        let mut outs = Vec::new();
        for threads in ["1", "4"] {
            // The file mapped (the default), read, and stdin.
            let inputs = [
                ("pt", &b""[..], "--quiet"),
                ("pt", &b""[..], "--no-mmap"),
                ("-", &pt[..], "--quiet"),
            ];
            for (i, (input, stdin, how)) in inputs.into_iter().enumerate() {
                let ct = format!("ct{threads}-{i}");
                esdk_in(
                    p,
                    &[
                        "encrypt",
                        "--raw-aes-key",
                        "k.bin",
                        "--suite",
                        suite,
                        "--frame-length",
                        "4096",
                        "--threads",
                        threads,
                        how,
                        "-i",
                        input,
                        "-o",
                        &ct,
                    ],
                    stdin,
                )
                .ok();
                outs.push(ct);
            }
        }
        // Every message decrypts on either thread count, to a file and to stdout.
        for ct in &outs {
            for threads in ["1", "4"] {
                esdk(
                    p,
                    &[
                        "decrypt",
                        "--raw-aes-key",
                        "k.bin",
                        "--threads",
                        threads,
                        "-i",
                        ct,
                        "-o",
                        "back",
                    ],
                )
                .ok();
                assert!(read(p, "back") == pt, "{suite} {ct} on {threads} threads");
                let out = esdk(
                    p,
                    &[
                        "decrypt",
                        "--raw-aes-key",
                        "k.bin",
                        "--threads",
                        threads,
                        "-i",
                        ct,
                        "-o",
                        "-",
                    ],
                )
                .ok();
                assert!(
                    out.stdout == pt,
                    "{suite} {ct} to stdout on {threads} threads"
                );
            }
        }
        // A flipped byte fails alike on both thread counts, leaving no output.
        let mut bad = read(p, &outs[0]);
        let at = bad.len() / 2;
        bad[at] ^= 1;
        write(p, "bad", &bad);
        let mut errors = Vec::new();
        for threads in ["1", "4"] {
            let out = esdk(
                p,
                &[
                    "decrypt",
                    "--raw-aes-key",
                    "k.bin",
                    "--threads",
                    threads,
                    "-i",
                    "bad",
                    "-o",
                    "nope",
                ],
            )
            .fails(1, "decrypting");
            errors.push(out.stderr);
            assert!(!p.join("nope").exists());
        }
        assert_eq!(errors[0], errors[1], "{suite}");
    }
}

/// Files from 256 KiB on are mapped on encrypt: sizes around that edge, on 1 and 2 threads,
/// mapped and read, all decrypt to the file.
#[test]
fn mapped_and_read_inputs_around_the_mapping_size_encrypt_alike() {
    let d = setup();
    let p = d.path();
    for len in [(256 << 10) - 1, 256 << 10, (256 << 10) + 1, (1 << 20) + 7] {
        let pt = data(len, 11);
        write(p, "pt", &pt);
        for threads in ["1", "2"] {
            for how in ["--quiet", "--no-mmap"] {
                let enc = [
                    "encrypt",
                    "--raw-aes-key",
                    "k.bin",
                    "--frame-length",
                    "65536",
                    "--threads",
                    threads,
                    how,
                    "-i",
                    "pt",
                    "-o",
                    "ct",
                ];
                esdk(p, &enc).ok();
                let dec = ["decrypt", "--raw-aes-key", "k.bin", "-i", "ct", "-o", "-"];
                let out = esdk(p, &dec).ok();
                assert!(out.stdout == pt, "{len} bytes on {threads} threads {how}");
            }
        }
    }
}

#[test]
fn a_failing_output_is_an_io_error_on_every_thread_count() {
    let d = setup();
    let p = d.path();
    let pt = data(3 << 20, 4);
    write(p, "pt", &pt);
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "--suite",
            "0x0478",
            "-i",
            "pt",
            "-o",
            "ct",
        ],
    )
    .ok();
    for threads in ["1", "2", "4"] {
        // /dev/full takes nothing: ENOSPC on the first write.
        esdk(
            p,
            &[
                "encrypt",
                "--raw-aes-key",
                "k.bin",
                "--threads",
                threads,
                "-i",
                "pt",
                "-o",
                "/dev/full",
            ],
        )
        .fails(3, "writing");
        esdk(
            p,
            &[
                "decrypt",
                "--raw-aes-key",
                "k.bin",
                "--threads",
                threads,
                "-i",
                "ct",
                "-o",
                "/dev/full",
            ],
        )
        .fails(3, "writing");
    }
}

#[test]
fn trees_with_the_official_suffix_decrypt_and_a_run_that_skips_everything_fails() {
    let d = setup();
    let p = d.path();
    write(p, "src/a.txt", &data(10, 1));
    write(p, "src/sub/b.bin", &data(5000, 2));
    // aws-encryption-cli names its outputs NAME.encrypted.
    esdk(
        p,
        &[
            "encrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "--suffix",
            ".encrypted",
            "-i",
            "src",
            "-o",
            "enc",
        ],
    )
    .ok();
    assert_eq!(names(&p.join("enc/sub")), ["b.bin.encrypted"]);
    // Decrypted natively with the default suffix: '.encrypted' is recognised and removed.
    let out = esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "-i",
            "enc",
            "-o",
            "dec",
        ],
    )
    .ok();
    assert!(!out.stderr.contains("skipping"), "{}", out.stderr);
    assert_eq!(read(p, "dec/a.txt"), data(10, 1));
    assert_eq!(read(p, "dec/sub/b.bin"), data(5000, 2));
    // A tree where no file can be decrypted is a failure that says why, not a silent success.
    write(p, "plain/x.txt", b"x");
    write(p, "plain/y/z.md", b"z");
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "-i",
            "plain",
            "-o",
            "dec3",
        ],
    )
    .fails(2, "nothing to decrypt: all 2 input files were skipped");
    // --no-overwrite skipping everything is what was asked: not a failure.
    esdk(
        p,
        &[
            "decrypt",
            "--raw-aes-key",
            "k.bin",
            "-r",
            "--no-overwrite",
            "-i",
            "enc",
            "-o",
            "dec",
        ],
    )
    .ok();
}

#[test]
fn the_aws_encryption_cli_syntax_is_checked_as_it_checks_it() {
    let d = setup();
    let p = d.path();
    write(p, "pt", b"hello");
    let key = "key=arn:aws:kms:us-west-2:111122223333:key/k";
    // No mode flag, two of them, neither or both of -S / --metadata-output.
    esdk(p, &["-i", "pt", "-o", "ct", "-S", "--wrapping-keys", key]).fails(2, "--encrypt");
    esdk(p, &["-e", "-d", "-i", "pt", "-o", "ct", "-S", "-w", key]).fails(2, "cannot be used");
    esdk(p, &["-e", "-i", "pt", "-o", "ct", "--wrapping-keys", key])
        .fails(2, "--suppress-metadata");
    esdk(
        p,
        &[
            "-e",
            "-i",
            "pt",
            "-o",
            "ct",
            "-S",
            "--metadata-output",
            "m",
            "-w",
            key,
        ],
    )
    .fails(2, "cannot be used");
    // --wrapping-keys is required and checked.
    esdk(p, &["-e", "-i", "pt", "-o", "ct", "-S"]).fails(2, "--wrapping-keys");
    esdk(p, &["-e", "-i", "pt", "-o", "ct", "-S", "-w", "arn"]).fails(2, "expected key=value");
    esdk(
        p,
        &[
            "-d",
            "-i",
            "ct",
            "-o",
            "pt2",
            "-S",
            "-w",
            "discovery=true",
            key,
        ],
    )
    .fails(2, "give no key=");
    esdk(
        p,
        &["-d", "-i", "ct", "-o", "pt2", "-S", "-w", "discovery=false"],
    )
    .fails(2, "discovery=true");
    esdk(
        p,
        &[
            "-e",
            "-i",
            "pt",
            "-o",
            "ct",
            "-S",
            "-w",
            "provider=x",
            "key=k",
        ],
    )
    .fails(2, "only AWS KMS keys");
    // Nothing was written by any of them.
    assert!(!p.join("ct").exists() && !p.join("m").exists());
    // The native syntax is unchanged: its subcommands are never read as this syntax.
    esdk(p, &["encrypt", "-e"]).fails(2, "-e");
}
