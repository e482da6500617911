//! A firmware image for a Cortex-M4F that encrypts one telemetry record into a fixed buffer
//! and decrypts it back, with no heap: there is no `#[global_allocator]`, so the link fails
//! if anything in the ESDK core allocates. CI builds it and prints its flash size.
#![no_std]
#![no_main]

use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, decrypt, encrypt};
use esdk_firmware_probe::{BoardRng, park};
use esdk_raw::RawAesKeyring;

static DEVICE_KEY: [u8; 32] = [0x2B; 32];

fn run() -> Result<usize, esdk_core::Error> {
    let provider = RustCrypto::new(BoardRng::new(0x9E37_79B9_7F4A_7C15));
    let keyring = RawAesKeyring::new("firmware", "device-key", &DEVICE_KEY)?;
    let cfg = Config::new();
    let opts = EncryptOptions::new()
        .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
        .with_frame_length(256);
    let record = b"t=1700000000;temp=21.5;hum=40";
    let mut ec = [("device", "sensor-7")];
    let mut msg = [0u8; 1024];
    let n = encrypt(&cfg, &provider, &keyring, &opts, &mut ec, record, &mut msg)?;
    let mut back = [0u8; 64];
    let d = decrypt(&cfg, &provider, &keyring, &[], &msg[..n], &mut back)?;
    Ok(d.plaintext_len)
}

/// Reset entry point.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    park(run())
}
