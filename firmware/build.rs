//! Puts `memory.x` where cortex-m-rt's `link.x` finds it, and links with `link.x`.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("memory.x is in the crate root");
    // cortex-m-rt's `device` feature includes the device crate's `device.x`; the interrupt
    // table (src/lib.rs) names cortex-m-rt's DefaultHandler itself, so it has nothing to add.
    fs::copy("device.x", out.join("device.x")).expect("device.x is in the crate root");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=device.x");
    println!("cargo:rustc-link-arg=-Tlink.x");
}
