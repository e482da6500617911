//! Firmware image: streams a record through the embedded-io `EncryptingWriter` into a fixed
//! buffer and back through the `DecryptingReader` (0x0578), with no heap; the run checks the
//! length of what comes back.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use embedded_io::{Read, Write};
use esdk_core::eio::{DecryptingReader, EncryptingWriter, StreamError};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions};
use esdk_firmware_probe::{BoardRng, finish_round_trip};
use esdk_raw::RawAesKeyring;

static DEVICE_KEY: [u8; 32] = [0x2B; 32];

/// The record streamed in eight writes.
const CHUNK: &[u8] = b"t=1700000000;temp=21.5;hum=40;";
/// The plaintext the reader must give back.
const EXPECTED_LEN: usize = 8 * CHUNK.len();

/// The ESDK error of a stream error; the fixed buffers used here cannot fail with I/O errors
/// (`Io` would be a full message buffer, reported as such).
fn esdk<E: core::fmt::Debug>(e: StreamError<E>) -> esdk_core::Error {
    match e {
        StreamError::Esdk(e) => e,
        _ => esdk_core::Error::BufferTooSmall { required: 2048 },
    }
}

fn run() -> Result<usize, esdk_core::Error> {
    let provider = RustCrypto::new(BoardRng::new(0x9E37_79B9_7F4A_7C15));
    let keyring = RawAesKeyring::new("firmware", "device-key", &DEVICE_KEY)?;
    let cfg = Config::new();
    let opts = EncryptOptions::new()
        .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
        .with_frame_length(128);
    let mut ec = [("device", "sensor-7")];
    let mut msg = [0u8; 2048];
    let (mut frame, mut out) = ([0u8; 128], [0u8; 512]);
    let sink: &mut [u8] = &mut msg;
    let total = sink.len();
    let mut w = EncryptingWriter::new(
        &cfg, &provider, &keyring, &opts, &mut ec, sink, &mut frame, &mut out,
    )
    .map_err(esdk)?;
    for _ in 0..8 {
        w.write_all(CHUNK).map_err(esdk)?;
    }
    let n = total - w.finish().map_err(esdk)?.len();
    let (mut inbuf, mut outbuf, mut back) = ([0u8; 512], [0u8; 128], [0u8; 64]);
    let mut r = DecryptingReader::new(
        &cfg,
        &provider,
        &keyring,
        &[],
        &msg[..n],
        &mut inbuf,
        &mut outbuf,
    );
    let mut got = 0;
    loop {
        match r.read(&mut back).map_err(esdk)? {
            0 => break,
            k => got += k,
        }
    }
    Ok(got)
}

#[entry]
fn main() -> ! {
    finish_round_trip(run(), EXPECTED_LEN)
}
