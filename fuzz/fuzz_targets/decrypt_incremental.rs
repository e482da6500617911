//! Incremental decryption with fuzzer-chosen input splits, against the one-shot verdict.
//!
//! Input: a flag byte (as `decrypt_oneshot`), a byte `n` (bits 0-5: number of split sizes;
//! bit 6: probe every step with a too-small output buffer; bit 7: also run the std `Read` and
//! `Write` adapters), `n & 63` split-size bytes, then the message.
//!
//! Checks: the `Decryptor` contract at every call (see `esdk_fuzz::incremental`), the same
//! verdict and plaintext as the one-shot decrypt whatever the splits, and the same from
//! `DecryptingReader` / `DecryptingWriter`. The std adapters run with `max_body_len` capped at
//! 1 MiB: without a limit, `DecryptingReader` allocates the length a header claims before
//! reading it (see the report of issue #8 and tests/tests/hostile.rs).
#![no_main]

use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{Config, CryptoMaterialsManager, CryptoProvider};
use esdk_fuzz::{
    FuzzKeyring, FuzzProvider, Setup, Splits, VectorKeyrings, incremental, one_shot, reseal,
    std_read, std_write,
};
use libfuzzer_sys::fuzz_target;

fn check<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    p: &P,
    cmm: &M,
    msg: &[u8],
    sizes: &[u8],
    probe: bool,
    std_too: bool,
) {
    let whole = one_shot(cfg, p, cmm, msg);
    let inc = incremental(cfg, p, cmm, msg, Splits::new(sizes), probe);
    assert!(
        inc.result == whole,
        "incremental and one-shot disagree: {:?} vs {:?}",
        inc.result,
        whole
    );
    if whole.is_err() {
        // Whatever was released came from frames that verified: never more than the
        // message could hold, and never the final frame (no Done was seen).
        assert!(inc.released.len() <= msg.len());
    }
    if std_too {
        let mut capped = *cfg;
        capped.max_body_len = Some(cfg.max_body_len.unwrap_or(1 << 20).min(1 << 20));
        let whole = one_shot(&capped, p, cmm, msg);
        let r = std_read(&capped, p, cmm, msg, Splits::new(sizes));
        assert!(r == whole, "DecryptingReader: {r:?} vs one-shot {whole:?}");
        let w = std_write(&capped, p, cmm, msg, Splits::new(sizes));
        assert!(w == whole, "DecryptingWriter: {w:?} vs one-shot {whole:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let s = Setup::from_flags(data[0]);
    let n = usize::from(data[1] & 63);
    let probe = data[1] & 64 != 0;
    let std_too = data[1] & 128 != 0;
    let Some(sizes) = data.get(2..2 + n) else {
        return;
    };
    let mut msg = data[2 + n..].to_vec();
    if s.real {
        let p = RustCrypto::new(FuzzProvider::new(false, false));
        let rings = VectorKeyrings::new();
        rings.with(|k| check(&s.cfg, &p, k, &msg, sizes, probe, std_too));
    } else {
        let p = FuzzProvider::new(s.lax_tags, s.lax_signatures);
        if s.reseal {
            reseal(&mut msg, &p);
        }
        check(&s.cfg, &p, &FuzzKeyring, &msg, sizes, probe, std_too);
    }
});
