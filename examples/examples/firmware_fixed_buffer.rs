//! Firmware-style use: encrypt a telemetry record into a fixed `[u8; N]` with a raw AES
//! key, then decrypt it back, with no heap. Only `esdk-core` and `esdk-raw` APIs are used;
//! the same code builds for `thumbv7em-none-eabihf` (see `firmware/`).
//!
//! Run: `cargo run -p esdk-examples --example firmware_fixed_buffer`

use esdk_core::{AlgorithmSuite, Config, EncryptOptions, decrypt, encrypt, encrypted_len};
use esdk_raw::RawAesKeyring;

/// Sized for the worst record this device sends; `encrypted_len` checks it at start-up.
const MSG_CAPACITY: usize = 512;

fn main() -> Result<(), esdk_core::Error> {
    // On a device: the key comes from secure storage, randomness from the TRNG.
    let device_key = [0x2Bu8; 32];
    let keyring = RawAesKeyring::new("firmware", "device-key", &device_key)?;
    let provider = esdk::DEFAULT_PROVIDER;
    let cfg = Config::new();
    // Unsigned committing suite: small and fast; the default 0x0578 adds an ECDSA footer.
    let opts = EncryptOptions::new()
        .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .with_frame_length(256);

    let record = b"t=1700000000;temp=21.5;hum=40";
    let mut ec = [("device", "sensor-7"), ("stream", "telemetry")];
    let need = encrypted_len(&cfg, &opts, &keyring, &ec, record.len())?;
    assert!(
        need <= MSG_CAPACITY,
        "buffer too small for this record: {need}"
    );

    let mut msg = [0u8; MSG_CAPACITY];
    let n = encrypt(&cfg, &provider, &keyring, &opts, &mut ec, record, &mut msg)?;
    println!(
        "encrypted {} bytes of telemetry into a {n}-byte message (predicted {need})",
        record.len()
    );

    let mut plain = [0u8; 64];
    let d = decrypt(
        &cfg,
        &provider,
        &keyring,
        &[("device", "sensor-7")],
        &msg[..n],
        &mut plain,
    )?;
    assert_eq!(&plain[..d.plaintext_len], record);
    println!(
        "decrypted {} bytes, suite {}, device = {:?}",
        d.plaintext_len,
        d.header.suite,
        d.header.encryption_context.get("device")
    );
    Ok(())
}
