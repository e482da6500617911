//! `hsm_ecdh`: devices encrypt to an HSM with ECDH; the private key never leaves the token.
//!
//! The server holds an EC key pair (P-256, P-384 or P-521, `CKA_DERIVE`) on a PKCS#11 token
//! and hands its public key to the devices. A device encrypts with the raw ECDH keyring
//! (`EphemeralPrivateKeyToStaticPublicKey`: a fresh key pair per message, no secret stored
//! on the device) into a fixed buffer, with the same `esdk-core` / `esdk-raw` calls that
//! build for `no_std` targets (see `firmware/`; there the provider is `RustCrypto` fed by
//! the device's TRNG). The server opens the messages on the token with
//! `Pkcs11EcdhKeyring::public_key_discovery` (`CKM_ECDH1_DERIVE` inside the token).
//!
//! ```text
//! hsm_ecdh public-key PUB.der                 # server: the token key's public key (SPKI DER)
//! hsm_ecdh device-encrypt PUB.der IN OUT.esdk # device: no token needed
//! hsm_ecdh server-decrypt IN.esdk OUT         # server: decrypts on the token
//! ```
//!
//! The server side is configured from the environment (the PIN is never printed):
//! `ESDK_PKCS11_MODULE` (default `/usr/lib/softhsm/libsofthsm2.so`), `ESDK_PKCS11_TOKEN`,
//! `ESDK_PKCS11_PIN` or `ESDK_PKCS11_PIN_FILE`, `ESDK_PKCS11_EC_KEY` (label of the key
//! pair). Every message binds the device name in its encryption context, and the server
//! checks it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use esdk_core::{AlgorithmSuite, Config, EncryptOptions};
use esdk_pkcs11::{EcdhPublicKey, KeySelector, Pkcs11EcdhKeyring, Token, TokenConfig};
use esdk_raw::ecdh::RawEcdhKeyring;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest record a device sends, and the message buffer sized for it.
const RECORD_MAX: usize = 1024;
const MSG_CAPACITY: usize = 2048;
const DEVICE: &str = "sensor-7";

fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn pin() -> Result<String, BoxError> {
    if let Ok(p) = std::env::var("ESDK_PKCS11_PIN") {
        return Ok(p);
    }
    let file =
        var("ESDK_PKCS11_PIN_FILE").map_err(|_| "set ESDK_PKCS11_PIN or ESDK_PKCS11_PIN_FILE")?;
    let p = std::fs::read_to_string(&file).map_err(|e| format!("reading {file}: {e}"))?;
    Ok(p.trim_end_matches(['\r', '\n']).to_owned())
}

/// The server's keyring: the EC private key on the token.
fn server_keyring() -> Result<Pkcs11EcdhKeyring, BoxError> {
    let module = std::env::var("ESDK_PKCS11_MODULE")
        .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".to_owned());
    let token = Token::open(TokenConfig::new(module, var("ESDK_PKCS11_TOKEN")?).with_pin(pin()?))?;
    let key = KeySelector::label(var("ESDK_PKCS11_EC_KEY")?);
    Ok(Pkcs11EcdhKeyring::public_key_discovery(&token, key)?)
}

/// The device side: only the recipient's public key, a fixed message buffer, no heap in the
/// ESDK calls.
fn device_encrypt(public_der: &[u8], record: &[u8]) -> Result<Vec<u8>, BoxError> {
    if record.len() > RECORD_MAX {
        return Err(format!(
            "record of {} bytes; the device sends at most {RECORD_MAX}",
            record.len()
        )
        .into());
    }
    let recipient = EcdhPublicKey::from_spki_der(public_der)?;
    let keyring =
        RawEcdhKeyring::ephemeral_private_key_to_static_public_key(recipient.curve(), recipient)?;
    let cfg = Config::new();
    // Unsigned committing suite: small and fast; a device need not sign.
    let opts = EncryptOptions::new().with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let mut ec = [("device", DEVICE), ("app", "hsm_ecdh")];
    let mut msg = [0u8; MSG_CAPACITY];
    let n = esdk_core::encrypt(
        &cfg,
        &esdk::DEFAULT_PROVIDER,
        &keyring,
        &opts,
        &mut ec,
        record,
        &mut msg,
    )?;
    Ok(msg[..n].to_vec())
}

fn run(args: &[String]) -> Result<(), BoxError> {
    match args {
        [cmd, out] if cmd == "public-key" => {
            let kr = server_keyring()?;
            std::fs::write(out, kr.public_key().to_spki_der().as_ref())
                .map_err(|e| format!("writing {out}: {e}"))?;
            println!(
                "wrote the {} public key of the token key to {out}",
                kr.curve()
            );
        }
        [cmd, public, input, out] if cmd == "device-encrypt" => {
            let der = std::fs::read(public).map_err(|e| format!("reading {public}: {e}"))?;
            let record = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;
            let msg = device_encrypt(&der, &record)?;
            std::fs::write(out, &msg).map_err(|e| format!("writing {out}: {e}"))?;
            println!(
                "device: {} bytes -> {} bytes in {out}",
                record.len(),
                msg.len()
            );
        }
        [cmd, input, out] if cmd == "server-decrypt" => {
            let kr = server_keyring()?;
            let msg = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;
            let d = esdk::decrypt(&Config::new(), &kr, &[("device", DEVICE)], &msg)?;
            std::fs::write(out, &d.plaintext).map_err(|e| format!("writing {out}: {e}"))?;
            println!(
                "server: decrypted {} bytes on the token into {out}",
                d.plaintext.len()
            );
        }
        _ => {
            return Err(
                "usage: hsm_ecdh public-key PUB.der | device-encrypt PUB.der IN OUT.esdk \
                 | server-decrypt IN.esdk OUT"
                    .into(),
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hsm_ecdh: {e}");
            ExitCode::FAILURE
        }
    }
}
