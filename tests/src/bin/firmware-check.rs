//! The host side of the firmware probes' QEMU runs (`scripts/firmware.sh`): decrypts what the
//! emulated devices wrote with the `esdk` crate and checks it, and makes the message the
//! receiver probe decrypts.
//!
//! ```text
//! firmware-check telemetry FILE      # probe (a): raw AES, suite 0x0478
//! firmware-check ecdh-sender FILE    # probe (b): raw ECDH to the P-384 test recipient, 0x0478
//! firmware-check make-receiver FILE  # a 0x0578 message for probe (c)
//! firmware-check record FILE         # writes the record (for the Python ESDK to encrypt)
//! firmware-check is-record FILE      # checks a plaintext (probe (c)'s output, a peer's)
//! ```
//!
//! Each command prints one line and exits 0 only when every check passed. The key, the
//! record and the context are the probes' (`firmware/src/lib.rs`, `firmware/src/bin/`).

use std::process::ExitCode;

use esdk::raw::RawAesKeyring;
use esdk::raw::ecdh::{EcdhCurve, EcdhPrivateKey, RawEcdhKeyring};
use esdk::{AlgorithmSuite, Config, EncryptOptions};

/// The probes' raw AES key namespace and key name.
const NAMESPACE: &str = "firmware";
/// See [`NAMESPACE`].
const KEY_NAME: &str = "device-key";
/// The probes' wrapping key.
const DEVICE_KEY: [u8; 32] = [0x2B; 32];
/// The record the probes seal (`esdk_firmware_probe::RECORD`).
const RECORD: &[u8] = b"t=1700000000;device=sensor-7;temp=21.5;hum=40;bat=3.71";
/// The context every probe message carries.
const CONTEXT: [(&str, &str); 1] = [("device", "sensor-7")];
/// The server's private key, whose public half probe (b) encrypts to.
const SERVER_PEM: &str =
    include_str!("../../../backends/raw/tests/data/ecc-p384-recipient-pkcs8.pem");

fn check(
    what: &str,
    got: Result<esdk::Decrypted, esdk::Error>,
    suite: AlgorithmSuite,
) -> Result<(), String> {
    let d = got.map_err(|e| format!("{what}: the host cannot decrypt it: {e}"))?;
    if d.suite != suite {
        return Err(format!("{what}: suite {:?}, expected {suite:?}", d.suite));
    }
    let want: Vec<(String, String)> = CONTEXT
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if d.encryption_context != want {
        return Err(format!("{what}: context {:?}", d.encryption_context));
    }
    if d.plaintext != RECORD {
        return Err(format!("{what}: plaintext differs from the record"));
    }
    Ok(())
}

fn run(cmd: &str, path: &str) -> Result<String, String> {
    let cfg = Config::new();
    let aes = RawAesKeyring::new(NAMESPACE, KEY_NAME, &DEVICE_KEY).map_err(|e| e.to_string())?;
    let read = || std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    match cmd {
        "telemetry" => {
            let msg = read()?;
            check(
                cmd,
                esdk::decrypt(&cfg, &aes, &CONTEXT, &msg),
                AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            )?;
            Ok(format!(
                "{cmd}: {} B message decrypts to the record (0x0478, raw AES)",
                msg.len()
            ))
        }
        "ecdh-sender" => {
            let msg = read()?;
            let key = EcdhPrivateKey::from_pkcs8_pem(SERVER_PEM).map_err(|e| e.to_string())?;
            let server = RawEcdhKeyring::public_key_discovery(EcdhCurve::P384, key)
                .map_err(|e| e.to_string())?;
            check(
                cmd,
                esdk::decrypt(&cfg, &server, &CONTEXT, &msg),
                AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            )?;
            Ok(format!(
                "{cmd}: {} B message decrypts to the record (0x0478, raw ECDH P-384)",
                msg.len()
            ))
        }
        "make-receiver" => {
            let opts = EncryptOptions::new()
                .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
                .with_frame_length(128);
            let msg =
                esdk::encrypt(&cfg, &aes, &opts, &CONTEXT, RECORD).map_err(|e| e.to_string())?;
            std::fs::write(path, &msg).map_err(|e| format!("{path}: {e}"))?;
            Ok(format!("{cmd}: wrote a {} B 0x0578 message", msg.len()))
        }
        "record" => {
            std::fs::write(path, RECORD).map_err(|e| format!("{path}: {e}"))?;
            Ok(format!("{cmd}: wrote the {} B record", RECORD.len()))
        }
        "is-record" => {
            if read()? != RECORD {
                return Err(format!("{cmd}: {path} is not the record"));
            }
            Ok(format!("{cmd}: {path} is the record"))
        }
        _ => Err(format!(
            "unknown command {cmd:?} (telemetry, ecdh-sender, make-receiver, record, is-record)"
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cmd, path] = args.as_slice() else {
        eprintln!(
            "usage: firmware-check telemetry|ecdh-sender|make-receiver|record|is-record FILE"
        );
        return ExitCode::from(2);
    };
    match run(cmd, path) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("firmware-check: {e}");
            ExitCode::FAILURE
        }
    }
}
