//! Firmware image: one buffer for the whole message (0x0578). The header is written into the
//! message buffer, the telemetry record is put straight where the final frame's content goes
//! and sealed there (`Encryptor::seal_in_place`), the footer follows; then the same buffer is
//! decrypted in place (`decrypt_in_place`), the plaintext ending at its start. No second
//! buffer, no heap.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, Encryptor, decrypt_in_place};
use esdk_firmware_probe::{BoardRng, finish_round_trip};
use esdk_raw::RawAesKeyring;

static DEVICE_KEY: [u8; 32] = [0x2B; 32];

/// The final frame's header: marker, sequence number, IV, content length.
const FINAL_PREFIX: usize = 24;
/// The final frame's overhead: its header and the 16-byte tag.
const FINAL_OVERHEAD: usize = FINAL_PREFIX + 16;
/// The record sealed and opened in place.
const RECORD: &[u8] = b"t=1700000000;temp=21.5;hum=40";
/// The plaintext length the decryption must give back.
const EXPECTED_LEN: usize = RECORD.len();

fn run(msg: &mut [u8; 1024]) -> Result<usize, esdk_core::Error> {
    let provider = RustCrypto::new(BoardRng::new(0x9E37_79B9_7F4A_7C15));
    let keyring = RawAesKeyring::new("firmware", "device-key", &DEVICE_KEY)?;
    let cfg = Config::new();
    let n = seal(&cfg, &provider, &keyring, msg)?;
    // The message decrypts where it lies; the plaintext is msg[..len].
    let d = decrypt_in_place(&cfg, &provider, &keyring, &[], &mut msg[..n], &mut [])?;
    Ok(d.plaintext_len)
}

/// Seals [`RECORD`] in place in `msg`; returns the message length. (A function of its own,
/// as the sending side of a device is: the encryptor's state is gone when the message is
/// opened.)
#[inline(never)]
fn seal(
    cfg: &Config,
    provider: &RustCrypto<BoardRng>,
    keyring: &RawAesKeyring<'_>,
    msg: &mut [u8; 1024],
) -> Result<usize, esdk_core::Error> {
    let record = RECORD;
    let opts = EncryptOptions::new()
        .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
        .with_frame_length(256)
        .with_plaintext_len(record.len() as u64);
    let mut ec = [("device", "sensor-7")];

    let mut enc = Encryptor::new(cfg, provider, &opts)?;
    let mut n = enc.write_header(keyring, &mut ec, msg)?;
    // The sensor writes its record where the frame's content goes: no staging copy.
    let frame = msg.get_mut(n..n + record.len() + FINAL_OVERHEAD).ok_or(
        esdk_core::Error::BufferTooSmall {
            required: n + record.len() + FINAL_OVERHEAD,
        },
    )?;
    frame[FINAL_PREFIX..FINAL_PREFIX + record.len()].copy_from_slice(record);
    let slot = enc.seal_in_place(frame, true)?;
    n += slot.frame_len();
    n += enc.write_footer(&mut msg[n..])?;
    Ok(n)
}

#[entry]
fn main() -> ! {
    // The message buffer is static RAM, as on a device: the stack figure is the ESDK's own.
    static mut MSG: [u8; 1024] = [0; 1024];
    finish_round_trip(run(MSG), EXPECTED_LEN)
}
