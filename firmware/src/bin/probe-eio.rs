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

/// The caller's buffers, static RAM as on a device (so that the stack figure is the ESDK's
/// own): the message, the writer's frame and output buffers, the reader's input and
/// output buffers, and the application's read buffer.
struct Buffers {
    msg: [u8; 2048],
    frame: [u8; 128],
    out: [u8; 512],
    inbuf: [u8; 512],
    outbuf: [u8; 128],
    back: [u8; 64],
}

fn run(b: &mut Buffers) -> Result<usize, esdk_core::Error> {
    let provider = RustCrypto::new(BoardRng::new(0x9E37_79B9_7F4A_7C15));
    let keyring = RawAesKeyring::new("firmware", "device-key", &DEVICE_KEY)?;
    let cfg = Config::new();
    let n = send(&cfg, &provider, &keyring, b)?;
    receive(&cfg, &provider, &keyring, b, n)
}

/// The sending side: streams the record through an encrypting writer into the message
/// buffer; returns the message length. (A function of its own, as the two sides of a
/// device are: the writer's state is gone when the reader's is built.)
#[inline(never)]
fn send(
    cfg: &Config,
    provider: &RustCrypto<BoardRng>,
    keyring: &RawAesKeyring<'_>,
    b: &mut Buffers,
) -> Result<usize, esdk_core::Error> {
    let opts = EncryptOptions::new()
        .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
        .with_frame_length(128);
    let mut ec = [("device", "sensor-7")];
    let mut sink: &mut [u8] = &mut b.msg;
    let total = sink.len();
    // The writer writes through `&mut sink` and ends with `try_finish`: `finish` would move
    // the writer (its whole state) to hand the sink back. It is built in place (`new_in`),
    // in this frame: never moved, no copy of it under the header's and footer's frames.
    // Dropped in place at the end of this block (`drop` would move it into a copy).
    {
        let mut slot = None;
        let w = EncryptingWriter::new_in(
            &mut slot,
            cfg,
            provider,
            keyring,
            &opts,
            &mut ec,
            &mut sink,
            &mut b.frame,
            &mut b.out,
        )
        .map_err(esdk)?;
        for _ in 0..8 {
            w.write_all(CHUNK).map_err(esdk)?;
        }
        w.try_finish().map_err(esdk)?;
    }
    Ok(total - sink.len())
}

/// The receiving side: reads the plaintext of the first `n` message bytes back through a
/// decrypting reader; returns its length.
#[inline(never)]
fn receive(
    cfg: &Config,
    provider: &RustCrypto<BoardRng>,
    keyring: &RawAesKeyring<'_>,
    b: &mut Buffers,
    n: usize,
) -> Result<usize, esdk_core::Error> {
    let mut r = DecryptingReader::new(
        cfg,
        provider,
        keyring,
        &[],
        &b.msg[..n],
        &mut b.inbuf,
        &mut b.outbuf,
    );
    let mut got = 0;
    loop {
        match r.read(&mut b.back).map_err(esdk)? {
            0 => break,
            k => got += k,
        }
    }
    Ok(got)
}

#[entry]
fn main() -> ! {
    static mut BUFFERS: Buffers = Buffers {
        msg: [0; 2048],
        frame: [0; 128],
        out: [0; 512],
        inbuf: [0; 512],
        outbuf: [0; 128],
        back: [0; 64],
    };
    finish_round_trip(run(BUFFERS), EXPECTED_LEN)
}
