//! One-shot decryption of arbitrary bytes.
//!
//! Input: a flag byte (see `esdk_fuzz::Setup`: fuzzing provider with a resealed header, or the
//! real pure-Rust provider with the official vectors' AES keys; lax or strict tags and
//! signatures; commitment policy, limits, unsigned-only, .NET 4.0.0 retry), then the message.
//! Checks: no panic, only message errors, nothing left in the output buffer on error, exact
//! `BufferTooSmall` sizes (checked inside `esdk_fuzz::one_shot`).
#![no_main]

use esdk_core::rustcrypto::RustCrypto;
use esdk_fuzz::{FuzzKeyring, FuzzProvider, Setup, VectorKeyrings, one_shot, reseal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, msg)) = data.split_first() else {
        return;
    };
    let s = Setup::from_flags(flags);
    let mut msg = msg.to_vec();
    if s.real {
        let p = RustCrypto::new(FuzzProvider::new(false, false));
        let rings = VectorKeyrings::new();
        rings.with(|k| one_shot(&s.cfg, &p, k, &msg)).ok();
    } else {
        let p = FuzzProvider::new(s.lax_tags, s.lax_signatures);
        if s.reseal {
            reseal(&mut msg, &p);
        }
        one_shot(&s.cfg, &p, &FuzzKeyring, &msg).ok();
    }
});
