//! The core allocates nothing, counted from a cold start.
//!
//! A counting global allocator sees every allocation of this process (the test has no harness
//! and runs on one thread, so nothing else allocates while a case runs). There is no warm-up:
//! each case is counted on its own, in order, so the first use of every suite, of the
//! signature code, of the ECDH curves and of the embedded-io adapters is what is counted. The
//! package links only `esdk-core` (`rustcrypto`, `embedded-io`) and `esdk-raw` (`ecdh`), the
//! firmware configuration (it passes in the workspace run too, where the std adapter's features
//! are unified in).
//!
//! Cases: one-shot encrypt + decrypt of every suite (11), the engine's states driven one by one
//! (encryptor request / materials / header, the `Decryptor` fed one byte at a time with its
//! data key from its materials step), the embedded-io `EncryptingWriter` / `DecryptingReader` over caller buffers
//! (signed and unsigned), the raw ECDH keyring (static P-256 sender, ephemeral sender to a P-384
//! key, discovery on P-521), a multi-keyring (AES generator + ECDH child), the required
//! encryption context CMM with a reproduced context, and one buffer for a whole message: frames
//! sealed in the message buffer (`Encryptor::seal_in_place`) or where their content lies
//! (`Encryptor::seal_detached`), `encrypt_in_place`, and `decrypt_in_place` (with a required
//! context: its scratch); random access to a range (unsigned, and signed with the opt-in).

use embedded_io::{Read as _, Write as _};
use esdk_core::random_access::{RandomAccessOptions, SIGNED_TAIL_LEN};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{
    AlgorithmSuite, CryptoMaterialsManager, Decryptor, EncryptOptions, Encryptor, MultiKeyring,
    RequiredEncryptionContextCmm, Status, decrypt, decrypt_in_place, encrypt, encrypt_in_place,
};
use esdk_raw::RawAesKeyring;
use esdk_raw::ecdh::{EcdhCurve, EcdhPrivateKey, EcdhPublicKey, RawEcdhKeyring};
use esdk_test_support::alloc::{Counting, allocations};
use esdk_test_support::{XorShift, config_for};

#[global_allocator]
static GLOBAL: Counting = Counting::new();

const PLAINTEXT_LEN: usize = 1000;
const FRAME: u32 = 256;

/// Fixed-size storage for one case: everything lives on the stack of `main`'s frame.
struct Bufs {
    msg: [u8; 8192],
    back: [u8; 8192],
    frame: [u8; 512],
    out: [u8; 2048],
}

/// Counts the allocations of `f`; fails the run if there are any.
fn count(results: &mut Vec<(String, usize)>, name: String, f: impl FnOnce() -> Result<(), String>) {
    let before = allocations();
    let r = f();
    let n = allocations() - before;
    if let Err(e) = r {
        panic!("{name}: {e}");
    }
    results.push((name, n));
}

fn one_shot<M: CryptoMaterialsManager + ?Sized>(
    b: &mut Bufs,
    suite: AlgorithmSuite,
    cmm: &M,
    reproduced: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<(), String> {
    round_trip(b, suite, cmm, cmm, reproduced, plaintext)
}

/// Encrypts with `enc` and decrypts with `dec` (one-shot, into the fixed buffers).
fn round_trip<E: CryptoMaterialsManager + ?Sized, D: CryptoMaterialsManager + ?Sized>(
    b: &mut Bufs,
    suite: AlgorithmSuite,
    enc: &E,
    dec: &D,
    reproduced: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<(), String> {
    let provider = RustCrypto::new(XorShift::new(0x9E37_79B9_7F4A_7C15));
    let cfg = config_for(suite);
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME);
    let mut ec = [("device", "sensor-7"), ("fw", "1.2.3")];
    let n = encrypt(&cfg, &provider, enc, &opts, &mut ec, plaintext, &mut b.msg)
        .map_err(|e| format!("encrypt: {e}"))?;
    let d = decrypt(&cfg, &provider, dec, reproduced, &b.msg[..n], &mut b.back)
        .map_err(|e| format!("decrypt: {e}"))?;
    if &b.back[..d.plaintext_len] != plaintext {
        return Err("round trip changed the plaintext".into());
    }
    Ok(())
}

/// The engine's states driven one by one, as an async or caching front end does: the
/// encryptor's request, materials (in a caller work buffer) and header steps, then the
/// decryptor fed one byte at a time, its data key obtained through its materials step.
fn one_byte_feed(b: &mut Bufs, plaintext: &[u8]) -> Result<(), String> {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let provider = RustCrypto::new(XorShift::new(7));
    let keyring =
        RawAesKeyring::new("firmware", "device-key", &[7u8; 32]).map_err(|e| e.to_string())?;
    let cfg = config_for(suite);
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME)
        .with_plaintext_len(plaintext.len() as u64);
    let mut ec = [("device", "sensor-7")];
    let mut enc = Encryptor::new(&cfg, &provider, &opts).map_err(|e| format!("new: {e}"))?;
    let request = enc
        .request(&mut ec, &[])
        .map_err(|e| format!("request: {e}"))?;
    let mut m = enc
        .materials(&request, None, &mut b.out)
        .map_err(|e| format!("materials: {e}"))?;
    keyring
        .get_encryption_materials(&mut m)
        .map_err(|e| format!("keyring: {e}"))?;
    let h = enc
        .write_header_with(&m, &mut b.msg)
        .map_err(|e| format!("header: {e}"))?;
    let n = h + enc
        .seal_body(plaintext, &mut b.msg[h..])
        .map_err(|e| format!("body: {e}"))?;
    let mut dec = Decryptor::new(&cfg, &provider, &[]);
    let (mut fed, mut start, mut written) = (0usize, 0usize, 0usize);
    loop {
        let p = dec
            .process(&b.msg[start..fed], &mut b.back[written..])
            .map_err(|e| format!("process: {e}"))?;
        start += p.consumed;
        written += p.written;
        match p.status {
            Status::Done => break,
            Status::NeedDataKey => {
                let mut m = dec
                    .decryption_materials(&b.msg[start..fed], &mut b.back[written..])
                    .map_err(|e| format!("materials: {e}"))?;
                let edks = m.encrypted_data_keys();
                let key = keyring
                    .decrypt_materials(&mut m, edks)
                    .and_then(|()| m.into_data_key())
                    .map_err(|e| format!("keyring: {e}"))?;
                dec.set_data_key(key).map_err(|e| format!("set key: {e}"))?;
            }
            Status::NeedInput { .. } if fed < n => fed += 1,
            Status::NeedInput { .. } => return Err("truncated".into()),
            _ => {}
        }
    }
    if &b.back[..written] != plaintext || start != n {
        return Err("one-byte feed changed the plaintext".into());
    }
    Ok(())
}

fn eio_round_trip(b: &mut Bufs, suite: AlgorithmSuite, plaintext: &[u8]) -> Result<(), String> {
    use esdk_core::eio::{DecryptingReader, EncryptingWriter};
    let provider = RustCrypto::new(XorShift::new(11));
    let keyring =
        RawAesKeyring::new("firmware", "device-key", &[7u8; 32]).map_err(|e| e.to_string())?;
    let cfg = config_for(suite);
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME);
    let mut ec = [("device", "sensor-7")];
    let sink: &mut [u8] = &mut b.msg;
    let total = sink.len();
    let mut w = EncryptingWriter::new(
        &cfg,
        &provider,
        &keyring,
        &opts,
        &mut ec,
        sink,
        &mut b.frame,
        &mut b.out,
    )
    .map_err(|e| format!("writer: {e}"))?;
    for chunk in plaintext.chunks(37) {
        w.write_all(chunk).map_err(|e| format!("write: {e}"))?;
    }
    let rest = w.finish().map_err(|e| format!("finish: {e}"))?;
    let n = total - rest.len();
    let mut inbuf = [0u8; 1024];
    let mut outbuf = [0u8; 512];
    let mut r = DecryptingReader::new(
        &cfg,
        &provider,
        &keyring,
        &[],
        &b.msg[..n],
        &mut inbuf,
        &mut outbuf,
    );
    let mut got = 0usize;
    loop {
        let k = r
            .read(&mut b.back[got..got + 100])
            .map_err(|e| format!("read: {e}"))?;
        if k == 0 {
            break;
        }
        got += k;
    }
    if &b.back[..got] != plaintext {
        return Err("embedded-io round trip changed the plaintext".into());
    }
    Ok(())
}

/// How the frames of [`in_place_round_trip`] are sealed.
#[derive(Clone, Copy)]
enum Seal {
    /// Each frame laid out in the message buffer and sealed there.
    InPlace,
    /// Each frame's content sealed where it lies, the header and tag detached.
    Detached,
}

/// One buffer for the whole message: the header written into `b.msg`, each frame's plaintext
/// put where the frame's content goes and sealed there, the footer after it; then the message
/// decrypted in place in the same buffer (`scratch`: the materials step's, for a required
/// context).
fn in_place_round_trip<M: CryptoMaterialsManager + ?Sized>(
    b: &mut Bufs,
    suite: AlgorithmSuite,
    how: Seal,
    cmm: &M,
    reproduced: &[(&str, &str)],
    plaintext: &[u8],
) -> Result<(), String> {
    let provider = RustCrypto::new(XorShift::new(13));
    let cfg = config_for(suite);
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME)
        .with_plaintext_len(plaintext.len() as u64);
    let mut ec = [("device", "sensor-7"), ("fw", "1.2.3")];
    let mut enc = Encryptor::new(&cfg, &provider, &opts).map_err(|e| format!("new: {e}"))?;
    let mut at = enc
        .write_header(cmm, &mut ec, &mut b.msg)
        .map_err(|e| format!("header: {e}"))?;
    let f = FRAME as usize;
    let regular = plaintext.len().saturating_sub(1) / f;
    for i in 0..=regular {
        let last = i == regular;
        let chunk = &plaintext[i * f..if last { plaintext.len() } else { (i + 1) * f }];
        let (prefix, overhead) = if last { (24, 40) } else { (16, 32) };
        let frame = &mut b.msg[at..at + chunk.len() + overhead];
        frame[prefix..prefix + chunk.len()].copy_from_slice(chunk);
        match how {
            Seal::InPlace => {
                enc.seal_in_place(frame, last)
                    .map_err(|e| format!("seal_in_place: {e}"))?;
            }
            Seal::Detached => {
                let content = &mut frame[prefix..prefix + chunk.len()];
                let sealed = enc
                    .seal_detached(content, last)
                    .map_err(|e| format!("seal_detached: {e}"))?;
                frame[..prefix].copy_from_slice(sealed.prefix());
                frame[prefix + chunk.len()..].copy_from_slice(sealed.tag());
            }
        }
        at += frame.len();
    }
    at += enc
        .write_footer(&mut b.msg[at..])
        .map_err(|e| format!("footer: {e}"))?;
    let d = decrypt_in_place(
        &cfg,
        &provider,
        cmm,
        reproduced,
        &mut b.msg[..at],
        &mut b.out,
    )
    .map_err(|e| format!("decrypt_in_place: {e}"))?;
    if &b.msg[..d.plaintext_len] != plaintext {
        return Err("in-place round trip changed the plaintext".into());
    }
    Ok(())
}

/// The one-shot pair in one buffer: the plaintext at the start of `b.msg` becomes the message
/// (`encrypt_in_place`), which becomes the plaintext again (`decrypt_in_place`).
fn one_shot_in_place<M: CryptoMaterialsManager + ?Sized>(
    b: &mut Bufs,
    suite: AlgorithmSuite,
    cmm: &M,
    plaintext: &[u8],
) -> Result<(), String> {
    let (cfg, provider) = (config_for(suite), RustCrypto::new(XorShift::new(17)));
    let opts = EncryptOptions::new().with_suite(suite);
    let mut ec = [("device", "sensor-7")];
    b.msg[..plaintext.len()].copy_from_slice(plaintext);
    let n = encrypt_in_place(
        &cfg,
        &provider,
        cmm,
        &opts.with_frame_length(FRAME),
        &mut ec,
        &mut b.msg,
        plaintext.len(),
    )
    .map_err(|e| format!("encrypt_in_place: {e}"))?;
    let d = decrypt_in_place(&cfg, &provider, cmm, &[], &mut b.msg[..n], &mut [])
        .map_err(|e| format!("decrypt_in_place: {e}"))?;
    if &b.msg[..d.plaintext_len] != plaintext {
        return Err("one-shot in-place round trip changed the plaintext".into());
    }
    Ok(())
}

/// Random access: the header processed, the final frame verified in `b.frame`, the frames of
/// an unaligned range opened into `b.out` (signed suites with the unverified opt-in).
fn random_access(b: &mut Bufs, suite: AlgorithmSuite, plaintext: &[u8]) -> Result<(), String> {
    let provider = RustCrypto::new(XorShift::new(0x5EED));
    let cfg = config_for(suite);
    let aes =
        RawAesKeyring::new("firmware", "device-key", &[7u8; 32]).map_err(|e| e.to_string())?;
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME);
    let mut ec = [("device", "sensor-7")];
    let n = encrypt(&cfg, &provider, &aes, &opts, &mut ec, plaintext, &mut b.msg)
        .map_err(|e| format!("encrypt: {e}"))?;
    let msg = &b.msg[..n];
    let mut d = Decryptor::new(&cfg, &provider, &[]);
    let mut at = 0;
    loop {
        let p = d
            .process_with(&aes, &msg[at..], &mut b.out)
            .map_err(|e| format!("header: {e}"))?;
        at += p.consumed;
        if p.status == Status::Header {
            break;
        }
    }
    let tail = &msg[n - SIGNED_TAIL_LEN..];
    let ra_opts = match suite.signature() {
        Some(_) => RandomAccessOptions::new().unverified_signed(tail),
        None => RandomAccessOptions::new(),
    };
    let layout = d
        .random_access(n as u64, ra_opts)
        .map_err(|e| format!("layout: {e}"))?;
    let fin = layout.final_frame();
    let fin_len = (fin.end - fin.start) as usize;
    b.frame[..fin_len].copy_from_slice(&msg[fin.start as usize..fin.end as usize]);
    let ra = layout
        .verify_final(&mut b.frame[..fin_len])
        .map_err(|e| format!("final frame: {e}"))?;
    let range = 300u64..777;
    let mut got = 0usize;
    for span in ra
        .map()
        .frames_for(range.clone())
        .map_err(|e| e.to_string())?
    {
        let frame = &msg[span.offset as usize..span.offset as usize + span.slot.frame_len()];
        ra.open_frame(span.slot.sequence(), frame, &mut b.out)
            .map_err(|e| format!("frame: {e}"))?;
        let want = &plaintext[span.plaintext_offset as usize..][..span.within.len()];
        if &b.out[span.within] != want {
            return Err("a range changed the plaintext".into());
        }
        got += want.len();
    }
    if got as u64 != range.end - range.start {
        return Err("the range was not covered".into());
    }
    Ok(())
}

fn private(pem: &str) -> EcdhPrivateKey {
    EcdhPrivateKey::from_pkcs8_pem(pem).expect("private key")
}

fn public(der: &[u8]) -> EcdhPublicKey {
    EcdhPublicKey::from_spki_der(der).expect("public key")
}

// The raw keyring crate's test keys (PKCS#8 PEM private keys, SPKI DER public keys).
const P256_SK: &str = include_str!("../../../backends/raw/tests/data/ecc-p256-sender-pkcs8.pem");
const P384_SK: &str = include_str!("../../../backends/raw/tests/data/ecc-p384-recipient-pkcs8.pem");
const P384_PK: &[u8] =
    include_bytes!("../../../backends/raw/tests/data/ecc-p384-recipient-spki.der");
const P521_SK: &str = include_str!("../../../backends/raw/tests/data/ecc-p521-recipient-pkcs8.pem");
const P521_PK: &[u8] =
    include_bytes!("../../../backends/raw/tests/data/ecc-p521-recipient-spki.der");

fn main() {
    let plaintext: [u8; PLAINTEXT_LEN] = core::array::from_fn(|i| (i * 7 + 3) as u8);
    // Built before counting: key parsing is set-up, not the per-message path.
    let aes = RawAesKeyring::new("firmware", "device-key", &[7u8; 32]).expect("keyring");
    let p256_static = {
        let sk = private(P256_SK);
        let pk = sk.public_key();
        RawEcdhKeyring::raw_private_key_to_static_public_key(EcdhCurve::P256, sk, pk)
            .expect("static keyring")
    };
    let p384_ephemeral = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
        EcdhCurve::P384,
        public(P384_PK),
    )
    .expect("ephemeral keyring");
    let p384_discovery = RawEcdhKeyring::public_key_discovery(EcdhCurve::P384, private(P384_SK))
        .expect("discovery keyring");
    let p521_ephemeral = RawEcdhKeyring::ephemeral_private_key_to_static_public_key(
        EcdhCurve::P521,
        public(P521_PK),
    )
    .expect("ephemeral keyring");
    let p521_discovery = RawEcdhKeyring::public_key_discovery(EcdhCurve::P521, private(P521_SK))
        .expect("discovery keyring");
    let children: [&dyn esdk_core::Keyring; 1] = [&p256_static];
    let multi = MultiKeyring::new(&aes, &children);
    let required = RequiredEncryptionContextCmm::new(&aes, &["device"]);

    let mut b = Box::new(Bufs {
        msg: [0; 8192],
        back: [0; 8192],
        frame: [0; 512],
        out: [0; 2048],
    });
    let mut results: Vec<(String, usize)> = Vec::with_capacity(64);
    let start = allocations();

    // The firmware default first, from a cold start.
    for suite in [AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384]
        .into_iter()
        .chain(AlgorithmSuite::ALL)
    {
        count(&mut results, format!("one-shot {suite}"), || {
            one_shot(&mut b, suite, &aes, &[], &plaintext)
        });
    }
    count(
        &mut results,
        "Decryptor fed 1 byte at a time, 0x0578".into(),
        || one_byte_feed(&mut b, &plaintext),
    );
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
    ] {
        count(
            &mut results,
            format!("embedded-io writer + reader {suite}"),
            || eio_round_trip(&mut b, suite, &plaintext),
        );
    }
    let signed = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    count(&mut results, "raw ECDH static P-256".into(), || {
        one_shot(&mut b, signed, &p256_static, &[], &plaintext)
    });
    count(
        &mut results,
        "raw ECDH ephemeral -> discovery P-384".into(),
        || {
            round_trip(
                &mut b,
                signed,
                &p384_ephemeral,
                &p384_discovery,
                &[],
                &plaintext,
            )
        },
    );
    let unsigned = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    count(
        &mut results,
        "raw ECDH ephemeral -> discovery P-521".into(),
        || {
            round_trip(
                &mut b,
                unsigned,
                &p521_ephemeral,
                &p521_discovery,
                &[],
                &plaintext,
            )
        },
    );
    count(
        &mut results,
        "multi-keyring AES + ECDH P-256".into(),
        || one_shot(&mut b, signed, &multi, &[], &plaintext),
    );
    count(
        &mut results,
        "required encryption context CMM".into(),
        || {
            one_shot(
                &mut b,
                signed,
                &required,
                &[("device", "sensor-7")],
                &plaintext,
            )
        },
    );

    for (suite, how, name) in [
        (signed, Seal::InPlace, "seal_in_place"),
        (unsigned, Seal::InPlace, "seal_in_place"),
        (signed, Seal::Detached, "seal_detached"),
        (
            AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
            Seal::Detached,
            "seal_detached",
        ),
    ] {
        count(
            &mut results,
            format!("{name} + decrypt_in_place {suite}"),
            || in_place_round_trip(&mut b, suite, how, &aes, &[], &plaintext),
        );
    }
    for suite in [signed, unsigned] {
        count(
            &mut results,
            format!("encrypt_in_place + decrypt_in_place {suite}"),
            || one_shot_in_place(&mut b, suite, &aes, &plaintext),
        );
    }
    count(
        &mut results,
        "decrypt_in_place, required encryption context (scratch)".into(),
        || {
            in_place_round_trip(
                &mut b,
                signed,
                Seal::InPlace,
                &required,
                &[("device", "sensor-7")],
                &plaintext,
            )
        },
    );

    for suite in [unsigned, signed] {
        count(&mut results, format!("random access {suite}"), || {
            random_access(&mut b, suite, &plaintext)
        });
    }

    let total = allocations() - start;
    let bad: Vec<&(String, usize)> = results.iter().filter(|(_, n)| *n > 0).collect();
    for (name, n) in &results {
        println!("no-alloc: {name}: {n} allocations");
    }
    println!(
        "no-alloc: {} cases from a cold start, {} with allocations ({total} allocations in all, \
         bookkeeping of this test included)",
        results.len(),
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "the core allocated: {bad:?} (counted from a cold start, no warm-up)"
    );
    assert_eq!(results.len(), 30, "every case ran");
}
