//! Firmware image: a sender encrypts a record to a server's P-384 public key with the raw ECDH
//! keyring (ephemeral sender key), and the receiver side (discovery with the private key)
//! decrypts it, with no heap.
#![no_std]
#![no_main]

use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, decrypt, encrypt};
use esdk_firmware_probe::{BoardRng, park};
use esdk_raw::ecdh::{EcdhCurve, EcdhPrivateKey, RawEcdhKeyring};

/// A test key (the raw keyring crate's), standing in for one provisioned on the device.
static RECIPIENT_PEM: &str =
    include_str!("../../../backends/raw/tests/data/ecc-p384-recipient-pkcs8.pem");

fn run() -> Result<usize, esdk_core::Error> {
    let provider = RustCrypto::new(BoardRng::new(0x9E37_79B9_7F4A_7C15));
    let recipient = EcdhPrivateKey::from_pkcs8_pem(RECIPIENT_PEM)?;
    let sender = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
        EcdhCurve::P384,
        recipient.public_key(),
    )?;
    let receiver = RawEcdhKeyring::public_key_discovery(EcdhCurve::P384, recipient)?;
    let cfg = Config::new();
    let opts = EncryptOptions::new()
        .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .with_frame_length(256);
    let record = b"t=1700000000;temp=21.5;hum=40";
    let mut ec = [("device", "sensor-7")];
    let mut msg = [0u8; 1024];
    let n = encrypt(&cfg, &provider, &sender, &opts, &mut ec, record, &mut msg)?;
    let mut back = [0u8; 64];
    let d = decrypt(&cfg, &provider, &receiver, &[], &msg[..n], &mut back)?;
    Ok(d.plaintext_len)
}

/// Reset entry point.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    park(run())
}
