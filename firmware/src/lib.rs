//! What the probe images share: the board's random source stand-in and the panic handler.
//! Each image in `src/main.rs` and `src/bin/` is `#![no_main]` with no global allocator, so it
//! links only if nothing it calls allocates.
#![no_std]

use core::cell::Cell;
use core::panic::PanicInfo;

use esdk_core::error::CryptoError;
use esdk_core::provider::RandomSource;

/// Stand-in for the microcontroller's TRNG peripheral. A real device reads its hardware
/// random number generator here; this xorshift exists only so the image links.
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

/// Keeps `r` observable so the optimizer cannot drop the work, then parks the core.
pub fn park<T>(r: T) -> ! {
    core::hint::black_box(&r);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
