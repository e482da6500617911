//! The public one-shot calls on several threads (`Config::threads`), with the default
//! provider: messages of any thread count decrypt under any other, and a damaged message
//! fails with the same error as on one thread, on `decrypt` and `decrypt_detailed`. (The
//! byte-for-byte comparison of the messages, which needs a seeded random source, is in the
//! crate's unit tests, `parallel::oneshot::tests`.)

use esdk::core::error::AuthFailure;
use esdk::raw::RawAesKeyring;
use esdk::{AlgorithmSuite, Config, EncryptOptions};
use esdk_test_support::config_for;

const EC: [(&str, &str); 1] = [("purpose", "parallel")];

fn keyring() -> RawAesKeyring<'static> {
    RawAesKeyring::new("ns", "key", &[0x24; 32]).expect("keyring")
}

fn cfg(id: u16, threads: usize) -> Config {
    config_for(AlgorithmSuite::from_id(id).expect("suite")).with_threads(threads)
}

fn encrypt(id: u16, frame: u32, pt: &[u8], threads: usize) -> Vec<u8> {
    let opts = EncryptOptions::new()
        .with_suite(AlgorithmSuite::from_id(id).expect("suite"))
        .with_frame_length(frame);
    esdk::encrypt(&cfg(id, threads), &keyring(), &opts, &EC, pt).expect("encrypt")
}

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 4093) as u8).collect()
}

#[test]
fn messages_of_any_thread_count_decrypt_under_any_other() {
    // Above and below the size where the calls go parallel, at the default thread count too.
    for id in [0x0478, 0x0578, 0x0014, 0x0346] {
        for (frame, n) in [
            (4096, 3 << 20),
            (65536, (3 << 20) + 17),
            (1 << 20, 5 << 20),
            (4096, 100),
            (1, 260 * 1024),
        ] {
            let pt = plaintext(n);
            for (enc_threads, dec_threads) in [(1, 3), (2, 1), (8, 0), (0, 2)] {
                let ct = encrypt(id, frame, &pt, enc_threads);
                let d =
                    esdk::decrypt(&cfg(id, dec_threads), &keyring(), &[], &ct).expect("decrypt");
                assert!(
                    d.plaintext == pt,
                    "{id:#06x}, frame {frame}, {n} bytes, {enc_threads} -> {dec_threads}"
                );
                let pair = ("purpose".to_string(), "parallel".to_string());
                assert!(d.encryption_context.contains(&pair));
                let d = esdk::decrypt_detailed(&cfg(id, enc_threads), &keyring(), &[], &ct)
                    .expect("decrypt_detailed");
                assert!(d.plaintext == pt);
            }
        }
    }
}

/// The core error of decrypting `ct` on `threads` threads, through both calls.
fn error(id: u16, ct: &[u8], threads: usize) -> esdk::core::Error {
    let e = esdk::decrypt(&cfg(id, threads), &keyring(), &[], ct).expect_err("damaged");
    let d = esdk::decrypt_detailed(&cfg(id, threads), &keyring(), &[], ct).expect_err("damaged");
    let e = e.core().expect("a core error");
    assert_eq!(d.core(), Some(e));
    e
}

#[test]
fn damaged_messages_fail_as_on_one_thread() {
    let frame = 4096usize;
    let pt = plaintext(200 * frame + 9);
    for id in [0x0478, 0x0578] {
        let ct = encrypt(id, frame as u32, &pt, 2);
        let body = esdk::core::ciphertext_len(
            AlgorithmSuite::from_id(id).expect("suite"),
            frame as u32,
            0,
            pt.len() as u64,
        )
        .expect("length") as usize;
        let at = ct.len() - body;
        let frame_at = |seq: usize| at + (seq - 1) * (frame + 32);
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for p in [
            frame_at(1) + 2,
            frame_at(5) + 100,
            frame_at(120) + 16 + frame + 3,
            frame_at(201) + 22,
            frame_at(201) + 30,
            ct.len() - 1,
        ] {
            let mut bad = ct.clone();
            bad[p] ^= 0x80;
            cases.push(bad);
        }
        let mut two = ct.clone();
        two[frame_at(150) + 50] ^= 1;
        two[frame_at(9) + 50] ^= 1;
        cases.push(two.clone());
        cases.push(ct[..frame_at(100) + 7].to_vec());
        cases.push(ct[..ct.len() - 1].to_vec());
        let mut long = ct.clone();
        long.push(0);
        cases.push(long);
        for (i, bad) in cases.iter().enumerate() {
            let want = error(id, bad, 1);
            for threads in [0, 2, 5] {
                assert_eq!(error(id, bad, threads), want, "case {i}, {threads} threads");
            }
        }
        assert_eq!(
            error(id, &two, 2),
            esdk::core::Error::Authentication(AuthFailure::FrameTag { sequence: 9 })
        );
    }
}

/// `encrypt_into` / `decrypt_into` reuse the caller's buffer: the same messages as the
/// allocating calls (they decrypt alike), any leftover content replaced, and a failed
/// decrypt leaves the buffer empty.
#[test]
fn into_variants_reuse_the_buffer() {
    let key = [3u8; 32];
    let kr = esdk::raw::RawAesKeyring::new("ns", "k", &key).unwrap();
    let pt: Vec<u8> = (0..(600 << 10)).map(|i| (i * 7 % 251) as u8).collect();
    let opts = esdk::EncryptOptions::new().with_frame_length(4096);
    let mut ct = vec![0xEEu8; 5 << 20]; // longer than the message: truncated
    let mut back = vec![0xEEu8; 10]; // shorter than the plaintext: grown
    for threads in [1, 2] {
        let cfg = esdk::Config::new().with_threads(threads);
        esdk::encrypt_into(&cfg, &kr, &opts, &[("a", "b")], &pt, &mut ct).unwrap();
        let d = esdk::decrypt(&cfg, &kr, &[], &ct).unwrap();
        assert_eq!(d.plaintext, pt);
        let info = esdk::decrypt_into(&cfg, &kr, &[], &ct, &mut back).unwrap();
        assert_eq!(back, pt);
        assert_eq!(info.encryption_context, d.encryption_context);
        assert!(
            info.encryption_context
                .contains(&("a".to_owned(), "b".to_owned()))
        );
        // a damaged message: an error, and nothing left in the buffer
        let mut bad = ct.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        assert!(esdk::decrypt_into(&cfg, &kr, &[], &bad, &mut back).is_err());
        assert!(back.is_empty());
    }
}

/// Every thread count from 1 to 8, on sizes around the parallel threshold (256 KiB) and
/// the batch bounds (128 KiB .. 1 MiB of frames), through the `_into` calls with one buffer
/// each kept across the calls: each message decrypts on every count, and a frame damaged
/// in the first, a middle or the last batch fails alike on every count, leaving nothing.
#[test]
fn every_thread_count_over_sizes_around_the_batch_bounds() {
    let kr = keyring();
    let mut ct = Vec::new();
    let mut back = Vec::new();
    for (id, frame) in [(0x0478, 4096usize), (0x0478, 1 << 20), (0x0578, 65536)] {
        let opts = EncryptOptions::new()
            .with_suite(AlgorithmSuite::from_id(id).expect("suite"))
            .with_frame_length(frame as u32);
        for n in [
            (256 << 10) - 1,
            256 << 10,
            (1 << 20) + 1,
            (1 << 20) + frame - 1,
            (2 << 20) + 3 * frame,
            (5 << 20) + 17,
        ] {
            let pt = plaintext(n);
            let one = encrypt(id, frame as u32, &pt, 1);
            let body = esdk::core::ciphertext_len(
                AlgorithmSuite::from_id(id).expect("suite"),
                frame as u32,
                0,
                n as u64,
            )
            .expect("length") as usize;
            let frames = n.div_ceil(frame);
            let frame_at = |seq: usize| one.len() - body + (seq - 1) * (frame + 32);
            let damaged: Vec<Vec<u8>> = [1, frames / 2 + 1, frames]
                .iter()
                .map(|&seq| {
                    let mut bad = one.clone();
                    bad[frame_at(seq) + 30] ^= 4;
                    bad
                })
                .collect();
            let errors: Vec<_> = damaged.iter().map(|bad| error(id, bad, 1)).collect();
            for threads in 1..=8 {
                let what = format!("{id:#06x}, frame {frame}, {n} bytes, {threads} threads");
                esdk::encrypt_into(&cfg(id, threads), &kr, &opts, &EC, &pt, &mut ct)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                for m in [&ct[..], &one[..]] {
                    esdk::decrypt_into(&cfg(id, threads), &kr, &[], m, &mut back)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert!(back == pt, "{what}");
                }
                for (bad, want) in damaged.iter().zip(&errors) {
                    let e = esdk::decrypt_into(&cfg(id, threads), &kr, &[], bad, &mut back)
                        .expect_err("damaged");
                    assert_eq!(e.core(), Some(*want), "{what}");
                    assert!(back.is_empty(), "{what}: plaintext left");
                }
            }
        }
    }
}
