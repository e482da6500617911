//! The core allocates nothing: a counting global allocator sees zero allocations across a
//! one-shot encrypt and decrypt of a 0x0578 (signed, committing) message.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use esdk_core::{AlgorithmSuite, Config, EncryptOptions, decrypt, encrypt};
use esdk_raw::RawAesKeyring;

struct Counting;

thread_local! {
    // Only this thread's allocations count: libtest's own threads allocate concurrently.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator and only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn one_shot_encrypt_and_decrypt_allocate_nothing() {
    let keyring = RawAesKeyring::new("firmware", "device-key", &[7u8; 32]).expect("keyring");
    // The core with the pure-Rust provider: the no_std configuration.
    let provider = esdk::RUSTCRYPTO_PROVIDER;
    let cfg = Config::new();
    let opts = EncryptOptions::new()
        .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
        .with_frame_length(256);
    let plaintext = [0x5Au8; 1000];
    let mut msg = [0u8; 4096];
    let mut back = [0u8; 4096];
    let mut ec = [("device", "sensor-7"), ("fw", "1.2.3")];
    // Warm up one-time lazy initialization outside the core: the OS RNG's first call and,
    // in std builds where p256/p384 have `std` + `precomputed-tables`, their base-point tables
    // (built once per process on first use; seen as 4 allocations in some feature sets). The
    // no_std image in firmware/ links with no allocator at all, which covers the first message.
    let mut warm_msg = [0u8; 4096];
    let mut warm_ec = [("device", "sensor-7")];
    let wn = encrypt(
        &cfg,
        &provider,
        &keyring,
        &opts,
        &mut warm_ec,
        &plaintext,
        &mut warm_msg,
    )
    .expect("warm-up encrypt");
    decrypt(&cfg, &provider, &keyring, &[], &warm_msg[..wn], &mut back).expect("warm-up decrypt");

    let before = ALLOCS.with(Cell::get);
    let n = encrypt(
        &cfg, &provider, &keyring, &opts, &mut ec, &plaintext, &mut msg,
    )
    .expect("encrypt");
    let d = decrypt(
        &cfg,
        &provider,
        &keyring,
        &[("device", "sensor-7")],
        &msg[..n],
        &mut back,
    )
    .expect("decrypt");
    let after = ALLOCS.with(Cell::get);

    assert_eq!(&back[..d.plaintext_len], &plaintext[..]);
    println!(
        "allocations during encrypt + decrypt of a 0x0578 message: {}",
        after - before
    );
    assert_eq!(after - before, 0, "the core must not allocate");
}
