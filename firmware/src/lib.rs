//! What the probe images share: the board's random source stand-in, host I/O through ARM
//! semihosting (the QEMU runs of `scripts/firmware.sh` read their input from and write their
//! output to files on the host), the stack high-water mark, and the panic handler.
//!
//! Each image in `src/bin/` is `#![no_main]` (cortex-m-rt's reset handler and vector table)
//! with no global allocator, so it links only if nothing it calls allocates. cortex-m-rt's
//! `paint-stack` feature fills the stack with [`cortex_m_rt::STACK_PAINT_VALUE`] at reset;
//! [`finish`] reports how deep the run went.
//!
//! The unsafe code here is the interrupt table's linker attributes, the semihosting calls
//! (raw host system calls on pointers to our own buffers) and the reads of the painted stack
//! below the current frame; the ESDK crates themselves stay `forbid(unsafe_code)`.
#![no_std]

use core::cell::Cell;
use core::panic::PanicInfo;

use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::{nr, syscall};
use esdk_core::error::CryptoError;
use esdk_core::provider::{CryptoProvider, HkdfOutput, MessageHasher, RandomSource};
use esdk_core::rustcrypto::{AesGcmKey, RustCrypto};
use esdk_core::suite::{HashAlg, SignatureAlg};
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, Keyring, encrypt};
use sha2::Digest;

/// The board's external interrupt vectors, as a peripheral access crate provides them
/// (cortex-m-rt's `device` feature): QEMU's mps2-an386 has 32 (its NVIC's `num-irq`), where
/// cortex-m-rt's table without a device crate has 240, 832 bytes of flash that no chip with
/// fewer interrupts has. The probes enable none; each goes to cortex-m-rt's `DefaultHandler`.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
pub static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [{
    unsafe extern "C" {
        fn DefaultHandler();
    }
    DefaultHandler
}; 32];

/// The record every probe seals: what a sensor sends. `scripts/firmware.sh` checks that the
/// host decrypts exactly these bytes from what the devices wrote.
pub const RECORD: &[u8] = b"t=1700000000;device=sensor-7;temp=21.5;hum=40;bat=3.71";

/// Stand-in for the microcontroller's TRNG peripheral. A real device reads its hardware
/// random number generator here; this xorshift makes the emulated runs repeatable.
pub struct BoardRng(Cell<u64>);

impl BoardRng {
    /// Seeded.
    pub const fn new(seed: u64) -> Self {
        Self(Cell::new(seed))
    }
}

impl RandomSource for BoardRng {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        for b in out {
            let mut x = self.0.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0.set(x);
            *b = x as u8;
        }
        Ok(())
    }
}

/// The pure-Rust provider on [`BoardRng`], all of it (the round-trip probes use it).
pub const fn provider() -> RustCrypto<BoardRng> {
    RustCrypto::new(BoardRng::new(0x9E37_79B9_7F4A_7C15))
}

/// The pure-Rust provider cut down to the suites 0x0478 and 0x0578 need: AES-256-GCM and
/// HKDF-SHA512, plus (when `VERIFY_P384`) SHA-384 and ECDSA P-384 verification. Every other
/// request is [`CryptoError::Unsupported`], so the code behind it (HKDF-SHA256 and SHA-384,
/// ECDSA signing, P-256) is unreachable and the linker drops it; its key and hash types
/// (the core's [`AesGcmKey`] on AES-256, [`Sha384Hasher`]) have no AES-128/192 or SHA-256
/// variant whose code a `match` would keep. This is how a firmware build keeps only what its suites use, with
/// no feature of the ESDK crates: the provider is a generic parameter, so what it never
/// calls is never linked.
pub struct Slim<const VERIFY_P384: bool>(RustCrypto<BoardRng>);

impl<const VERIFY_P384: bool> Slim<VERIFY_P384> {
    /// On the board's random source.
    pub const fn new() -> Self {
        Self(provider())
    }
}

impl<const VERIFY_P384: bool> Default for Slim<VERIFY_P384> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const VERIFY_P384: bool> RandomSource for Slim<VERIFY_P384> {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.0.fill_random(out)
    }
}

/// The message hash of a [`Slim`] provider: SHA-384 when it verifies P-384 signatures,
/// otherwise none at all ([`NoHasher`]), so that the encryptor's room for a running
/// signature (the hash state) is not there in an image that never signs.
pub trait SlimHash {
    /// The provider's [`CryptoProvider::Hasher`].
    type Hasher: MessageHasher;
    /// A fresh SHA-384 state, `None` when there is none.
    fn sha384() -> Option<Self::Hasher>;
}

/// Selects [`SlimHash`] by `VERIFY_P384`.
pub struct Verify<const VERIFY_P384: bool>;

impl SlimHash for Verify<true> {
    type Hasher = Sha384Hasher;
    fn sha384() -> Option<Sha384Hasher> {
        Some(Sha384Hasher(sha2::Sha384::new()))
    }
}

impl SlimHash for Verify<false> {
    type Hasher = NoHasher;
    fn sha384() -> Option<NoHasher> {
        None
    }
}

/// The hash of a provider that neither signs nor verifies: no value exists (an
/// uninhabited type takes no room in the encryptor's state).
pub enum NoHasher {}

impl MessageHasher for NoHasher {
    fn update(&mut self, _: &[u8]) {
        match *self {}
    }

    fn finalize_into(self, _: &mut [u8; 64]) -> usize {
        match self {}
    }
}

impl<const VERIFY_P384: bool> CryptoProvider for Slim<VERIFY_P384>
where
    Verify<VERIFY_P384>: SlimHash,
{
    // The devices send unsigned suites (0x0478) and at most verify: the encryptor's signing
    // code is compiled out.
    const SIGNS: bool = false;

    type Aead = AesGcmKey<aes::Aes256>;
    type Hasher = <Verify<VERIFY_P384> as SlimHash>::Hasher;

    fn aead_key(&self, key: &[u8]) -> Result<Self::Aead, CryptoError> {
        let key: &[u8; 32] = key.try_into().map_err(|_| CryptoError::Unsupported)?;
        Ok(AesGcmKey::new(key.into()))
    }

    fn hkdf(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
        outputs: &mut [HkdfOutput<'_>],
    ) -> Result<(), CryptoError> {
        match hash {
            HashAlg::Sha512 => self.0.hkdf(HashAlg::Sha512, salt, ikm, outputs),
            _ => Err(CryptoError::Unsupported),
        }
    }

    fn hasher(&self, alg: SignatureAlg) -> Result<Self::Hasher, CryptoError> {
        match alg {
            SignatureAlg::EcdsaP384Sha384 => {
                <Verify<VERIFY_P384> as SlimHash>::sha384().ok_or(CryptoError::Unsupported)
            }
            _ => Err(CryptoError::Unsupported),
        }
    }

    fn generate_signing_key(
        &self,
        _: SignatureAlg,
        _: &mut [u8],
        _: &mut [u8],
    ) -> Result<(), CryptoError> {
        Err(CryptoError::Unsupported)
    }

    fn sign_digest(
        &self,
        _: SignatureAlg,
        _: &[u8],
        _: &[u8],
        _: &mut [u8],
    ) -> Result<usize, CryptoError> {
        Err(CryptoError::Unsupported)
    }

    fn verify_digest(
        &self,
        alg: SignatureAlg,
        public: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError> {
        match alg {
            SignatureAlg::EcdsaP384Sha384 if VERIFY_P384 => {
                let p384 = SignatureAlg::EcdsaP384Sha384;
                self.0.verify_digest(p384, public, digest, sig)
            }
            _ => Err(CryptoError::Unsupported),
        }
    }
}

/// The running SHA-384 of a signed message (suite 0x0578's footer signature).
#[derive(Clone)]
pub struct Sha384Hasher(sha2::Sha384);

impl MessageHasher for Sha384Hasher {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize_into(self, out: &mut [u8; 64]) -> usize {
        out[..48].copy_from_slice(&self.0.finalize());
        48
    }
}

/// What the senders do: encrypt [`RECORD`] with `suite` (unsigned: the [`Slim`] provider
/// signs nothing) (256-byte frames, context
/// `device=sensor-7`) under `keyring` into `msg`, then write the message to the host file
/// `file` (NUL-terminated).
///
/// # Errors
/// The step that failed.
pub fn send<K: Keyring>(
    keyring: &K,
    suite: AlgorithmSuite,
    msg: &mut [u8],
    file: &[u8],
) -> Result<(), &'static str> {
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(256);
    let mut ec = [("device", "sensor-7")];
    let n = encrypt(
        &Config::new(),
        &Slim::<false>::new(),
        keyring,
        &opts,
        &mut ec,
        RECORD,
        msg,
    )
    .map_err(|_| "encrypt")?;
    let written = msg.get(..n).is_some_and(|m| write_file(file, m));
    written
        .then_some(())
        .ok_or("writing the message to the host")
}

/// Ends a round-trip probe: ok when it gave back `expected` plaintext bytes.
pub fn finish_round_trip(result: Result<usize, esdk_core::Error>, expected: usize) -> ! {
    finish(match result {
        Ok(n) if n == expected => Ok(()),
        Ok(_) => Err("round trip: wrong plaintext length"),
        Err(_) => Err("round trip"),
    })
}

/// Writes `msg` to the host's standard output (the QEMU process's stdout).
pub fn print(msg: &[u8]) {
    if let Ok(mut out) = cortex_m_semihosting::hio::hstdout() {
        let _ = out.write_all(msg);
    }
}

/// Opens the host file `name` (NUL-terminated) in semihosting `mode`; `None` when the host
/// refuses.
fn open(name: &[u8], mode: usize) -> Option<usize> {
    if name.last() != Some(&0) {
        return None;
    }
    // SAFETY: SYS_OPEN reads `name.len() - 1` bytes at `name`, which points into a live slice
    // that ends with the NUL the call expects.
    let fd = unsafe { syscall!(OPEN, name.as_ptr(), mode, name.len() - 1) };
    (fd as isize >= 0).then_some(fd)
}

fn close(fd: usize) {
    // SAFETY: SYS_CLOSE takes a handle by value and touches no memory of ours.
    unsafe { syscall!(CLOSE, fd) };
}

/// Reads the host file `name` (NUL-terminated) into `buf`; returns the bytes read, `None` when
/// the file cannot be opened or does not fit.
pub fn read_file(name: &[u8], buf: &mut [u8]) -> Option<usize> {
    let fd = open(name, nr::open::R_BINARY)?;
    let mut filled = 0;
    let result = loop {
        let Some(rest) = buf.get_mut(filled..) else {
            break None;
        };
        if rest.is_empty() {
            // Full: only a file that ends exactly here fits (one more byte must not exist).
            let mut probe = [0u8; 1];
            // SAFETY: SYS_READ writes at most 1 byte into `probe`, which lives across the call.
            let left = unsafe { syscall!(READ, fd, probe.as_mut_ptr(), 1) };
            break (left == 1).then_some(filled);
        }
        // SAFETY: SYS_READ writes at most `rest.len()` bytes at `rest`, a live exclusive
        // slice; it returns the number of bytes it did NOT read.
        let not_read = unsafe { syscall!(READ, fd, rest.as_mut_ptr(), rest.len()) };
        let Some(got) = rest.len().checked_sub(not_read) else {
            break None;
        };
        if got == 0 {
            break Some(filled);
        }
        filled += got;
    };
    close(fd);
    result
}

/// Writes `data` to the host file `name` (NUL-terminated), replacing it; `false` on a host
/// error.
pub fn write_file(name: &[u8], data: &[u8]) -> bool {
    let Some(fd) = open(name, nr::open::W_TRUNC_BINARY) else {
        return false;
    };
    // SAFETY: SYS_WRITE reads `data.len()` bytes at `data`, a live slice; it returns the
    // number of bytes it did NOT write.
    let not_written = unsafe { syscall!(WRITE, fd, data.as_ptr(), data.len()) };
    close(fd);
    not_written == 0
}

/// The deepest the stack has been since reset, in bytes: from the top of the stack down to the
/// lowest word that no longer holds the paint cortex-m-rt put there at reset.
pub fn stack_high_water() -> usize {
    unsafe extern "C" {
        // cortex-m-rt's linker script: the stack grows down from `_stack_start` to
        // `_stack_end` (the end of the static RAM), all painted at reset.
        static _stack_start: u32;
        static _stack_end: u32;
    }
    let top = &raw const _stack_start as usize;
    let mut at = &raw const _stack_end as usize;
    while at < top {
        // SAFETY: `at` is word-aligned (cortex-m-rt aligns `_stack_end` to 4) and inside the
        // stack region the linker reserved, which is RAM; a volatile read keeps the compiler
        // from assuming what the paint left there.
        let word = unsafe { core::ptr::read_volatile(at as *const u32) };
        if word != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        at += 4;
    }
    top - at
}

/// `n` in decimal, into `buf`; returns the digits.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Ends the run: prints `stack N` (the high-water mark in bytes) and then `ok` or
/// `error: WHAT`, and exits QEMU with the matching status.
pub fn finish(result: Result<(), &'static str>) -> ! {
    let stack = stack_high_water();
    let mut digits = [0u8; 20];
    print(b"stack ");
    print(decimal(stack, &mut digits));
    match result {
        Ok(()) => {
            print(b"\nok\n");
            debug::exit(EXIT_SUCCESS);
        }
        Err(what) => {
            print(b"\nerror: ");
            print(what.as_bytes());
            print(b"\n");
            debug::exit(EXIT_FAILURE);
        }
    }
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    // No message formatting: that would link core::fmt into every image.
    finish(Err("panic"))
}
