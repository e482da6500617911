//! Probe (a), the telemetry sender: encrypts one record with suite 0x0478 (AES-256-GCM,
//! HKDF-SHA512, key commitment, no signature) under a raw AES-256 keyring into a static
//! buffer, and writes the message to the host file `telemetry.esdk`. Encrypt only: no
//! decrypt code is linked.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use esdk_core::AlgorithmSuite;
use esdk_firmware_probe::{finish, send};
use esdk_raw::RawAesKeyring;

/// The device's wrapping key (a test key: `scripts/firmware.sh` decrypts with it on the host).
static DEVICE_KEY: [u8; 32] = [0x2B; 32];

#[entry]
fn main() -> ! {
    // The message buffer and the keyring (its AES key schedule) are static RAM: cortex-m-rt
    // hands `main` its `static mut`s as `&'static mut`. Long-lived objects live there on a
    // device; the stack figure is then what sending a message takes.
    static mut MSG: [u8; 512] = [0; 512];
    static mut KEYRING: Option<RawAesKeyring<'static>> = None;
    finish(run(KEYRING, MSG))
}

fn run(keyring: &mut Option<RawAesKeyring<'static>>, msg: &mut [u8]) -> Result<(), &'static str> {
    let keyring = make_keyring(keyring)?;
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    send(keyring, suite, msg, b"telemetry.esdk\0")
}

/// Builds the keyring into its static slot, in a frame of its own (the key schedule's
/// temporaries are gone when the message is sent).
#[inline(never)]
fn make_keyring<'s>(
    slot: &'s mut Option<RawAesKeyring<'static>>,
) -> Result<&'s RawAesKeyring<'static>, &'static str> {
    let keyring =
        RawAesKeyring::new("firmware", "device-key", &DEVICE_KEY).map_err(|_| "keyring")?;
    Ok(slot.insert(keyring))
}
