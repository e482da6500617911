//! Probe (b), the sender to a server key: encrypts one record with suite 0x0478 under the raw
//! ECDH keyring (an ephemeral sender key per message, agreed with the server's static P-384
//! public key) and writes the message to the host file `ecdh-sender.esdk`. The device holds
//! only the server's public point; encrypt only.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use esdk_core::AlgorithmSuite;
use esdk_firmware_probe::{finish, send};
use esdk_raw::ecdh::{EcdhCurve, EcdhPublicKey, RawEcdhKeyring};

/// The server's public key (the raw keyring crate's P-384 test recipient), as DER
/// SubjectPublicKeyInfo; its last 97 bytes are the uncompressed SEC1 point.
static SERVER_SPKI: &[u8] =
    include_bytes!("../../../backends/raw/tests/data/ecc-p384-recipient-spki.der");

/// An uncompressed P-384 point: 0x04, x, y.
const P384_POINT_LEN: usize = 97;

#[entry]
fn main() -> ! {
    // The message buffer and the keyring (the server's public point) are static RAM, as a
    // device keeps long-lived objects; the stack figure is what sending a message takes.
    static mut MSG: [u8; 768] = [0; 768];
    static mut KEYRING: Option<RawEcdhKeyring> = None;
    finish(run(KEYRING, MSG))
}

fn run(keyring: &mut Option<RawEcdhKeyring>, msg: &mut [u8]) -> Result<(), &'static str> {
    let keyring = make_keyring(keyring)?;
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    send(keyring, suite, msg, b"ecdh-sender.esdk\0")
}

/// Builds the keyring into its static slot, in a frame of its own (the key parsing's
/// temporaries are gone when the message is sent).
#[inline(never)]
fn make_keyring(slot: &mut Option<RawEcdhKeyring>) -> Result<&RawEcdhKeyring, &'static str> {
    let point = SERVER_SPKI
        .len()
        .checked_sub(P384_POINT_LEN)
        .and_then(|at| SERVER_SPKI.get(at..))
        .ok_or("server key")?;
    let server = EcdhPublicKey::from_sec1(EcdhCurve::P384, point).map_err(|_| "server key")?;
    let keyring =
        RawEcdhKeyring::ephemeral_private_key_to_static_public_key(EcdhCurve::P384, server)
            .map_err(|_| "keyring")?;
    Ok(slot.insert(keyring))
}
