//! Probe (c), the receiver: reads a message the host made (suite 0x0578: key commitment and an
//! ECDSA P-384 signature) from the host file `receiver.esdk`, decrypts it with a raw AES-256
//! keyring into a static buffer, and writes the plaintext to `receiver.out`. Decrypt only.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use esdk_core::{Config, decrypt};
use esdk_firmware_probe::{Slim, finish, read_file, write_file};
use esdk_raw::RawAesKeyring;

/// The device's wrapping key (a test key: the host encrypts to it).
static DEVICE_KEY: [u8; 32] = [0x2B; 32];

#[entry]
fn main() -> ! {
    static mut MSG: [u8; 1024] = [0; 1024];
    static mut PLAIN: [u8; 1024] = [0; 1024];
    finish(run(MSG, PLAIN))
}

fn run(msg: &mut [u8], plain: &mut [u8]) -> Result<(), &'static str> {
    let keyring =
        RawAesKeyring::new("firmware", "device-key", &DEVICE_KEY).map_err(|_| "keyring")?;
    let n = read_file(b"receiver.esdk\0", msg).ok_or("reading receiver.esdk from the host")?;
    // The context the device expects: a message without it is refused.
    let expect = [("device", "sensor-7")];
    let d = decrypt(
        &Config::new(),
        &Slim::<true>::new(),
        &keyring,
        &expect,
        &msg[..n],
        plain,
    )
    .map_err(|_| "decrypt")?;
    if write_file(b"receiver.out\0", &plain[..d.plaintext_len]) {
        Ok(())
    } else {
        Err("writing receiver.out on the host")
    }
}
