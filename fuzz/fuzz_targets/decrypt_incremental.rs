//! Incremental decryption with fuzzer-chosen input splits, against the one-shot verdict.
//!
//! Input: a flag byte (as `decrypt_oneshot`), a byte `n` (bits 0-5: number of split sizes;
//! bit 6: probe every step with a too-small output buffer; bit 7: also run the std `Read` and
//! `Write` adapters), `n & 63` split-size bytes, then the message.
//!
//! Checks: the `Decryptor` contract at every call (see `esdk_fuzz::incremental`), the same
//! verdict and plaintext as the one-shot decrypt whatever the splits, the release bound on
//! failure (see [`check_release`]), and the same verdict from
//! `DecryptingReader` / `DecryptingWriter`. The std adapters run with `max_body_len` capped at
//! 1 MiB: without a limit, `DecryptingReader` allocates the length a header claims before
//! reading it (see the report of issue #8 and tests/tests/hostile.rs).
#![no_main]

use esdk_core::error::{AuthFailure, Error, Malformed};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{Config, CryptoMaterialsManager, CryptoProvider};
use esdk_fuzz::{
    FuzzKeyring, FuzzProvider, Setup, Splits, VectorKeyrings, incremental, one_shot, reseal,
    std_read, std_write,
};
use esdk_tests::layout::Layout;
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
    if let Err(e) = &whole {
        check_release(msg, e, &inc.released);
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

/// The release bound of a failed decryption: the released bytes are the plaintext of whole
/// regular frames only (so never a final frame, in particular not a signed message's before
/// its signature verified, and nothing of a non-framed body), of frames wholly present in the
/// message, and of frames before the one the error names (those whose tag verified).
/// `TrailingBytes` (and, for unsigned suites, bytes after the body) come after the message
/// verified completely, so everything may have been released.
fn check_release(msg: &[u8], e: &Error, released: &[u8]) {
    let Ok(layout) = Layout::of(msg) else {
        assert!(
            released.is_empty(),
            "{} bytes released without a header ({e:?})",
            released.len()
        );
        return;
    };
    let unsigned = layout.suite.signature().is_none();
    let after_done = matches!(e, Error::TrailingBytes { .. })
        || (unsigned
            && matches!(
                e,
                Error::Malformed {
                    kind: Malformed::Footer,
                    ..
                }
            ));
    if after_done {
        return;
    }
    // Frames before the one the error names verified; the named one did not.
    let failed_frame = match e {
        Error::Authentication(AuthFailure::FrameTag { sequence })
        | Error::Malformed {
            kind:
                Malformed::FrameIv { sequence }
                | Malformed::FrameSequence {
                    expected: sequence, ..
                }
                | Malformed::FinalFrameLength { sequence, .. },
            ..
        } => Some(*sequence),
        _ => None,
    };
    let mut allowed: Vec<usize> = vec![0];
    for (i, (end, plain)) in layout.regular_ends.iter().enumerate() {
        let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if *end > msg.len() || failed_frame.is_some_and(|f| seq >= f) {
            break;
        }
        allowed.push(*plain);
    }
    assert!(
        allowed.contains(&released.len()),
        "{} bytes released with {e:?}: not the plaintext of whole regular frames that \
         verified (allowed lengths {allowed:?})",
        released.len()
    );
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
