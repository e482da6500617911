//! One keyring shared by 8 threads that encrypt and decrypt concurrently: the session pool
//! gives each call its own session (a cryptoki `Session` is `Send` but not `Sync`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use esdk_core::{AlgorithmSuite, EncryptOptions};
use esdk_pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring, Token};
use esdk_raw::RawAesKeyring;
use esdk_test_support::config_for;

const THREADS: usize = 8;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn keyrings_and_tokens_are_send_and_sync() {
    assert_send_sync::<Token>();
    assert_send_sync::<Pkcs11AesKeyring>();
    assert_send_sync::<Pkcs11RsaKeyring>();
}

fn hammer<K: esdk_core::Keyring + Send + Sync + 'static>(kr: Arc<K>, rounds: usize) {
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let kr = Arc::clone(&kr);
            std::thread::spawn(move || {
                for i in 0..rounds {
                    let suite = AlgorithmSuite::ALL[(t + i) % AlgorithmSuite::ALL.len()];
                    let cfg = config_for(suite);
                    let opts = EncryptOptions::new().with_suite(suite);
                    let tv = t.to_string();
                    let ec = [("thread", tv.as_str())];
                    let pt = plaintext(64 + t * 7 + i);
                    let msg = esdk::encrypt(&cfg, &*kr, &opts, &ec, &pt).unwrap();
                    let out = esdk::decrypt(&cfg, &*kr, &[], &msg).unwrap();
                    assert_eq!(out.plaintext, pt);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker thread panicked");
    }
}

#[test]
fn eight_threads_share_one_aes_keyring() {
    let kr = Arc::new(aes_keyring());
    hammer(Arc::clone(&kr), 40);
    assert!(token().open_sessions() <= esdk_pkcs11::TokenConfig::DEFAULT_MAX_SESSIONS);
    // Everything the threads wrote opens with the raw keyring too.
    let raw = RawAesKeyring::new(NS, AES_NAME, &aes_key()).unwrap();
    let cfg = esdk_core::Config::new();
    let msg = esdk::encrypt(&cfg, &*kr, &EncryptOptions::new(), &[], b"after").unwrap();
    assert_eq!(
        esdk::decrypt(&cfg, &raw, &[], &msg).unwrap().plaintext,
        b"after"
    );
}

#[test]
fn eight_threads_share_one_rsa_keyring() {
    let kr = Arc::new(rsa_keyring(supported_hashes()[0]));
    hammer(kr, 8);
}

#[test]
fn eight_threads_through_a_pool_of_two_sessions() {
    let t = Token::open(config().with_max_sessions(2)).unwrap();
    let kr = Arc::new(Pkcs11AesKeyring::new(&t, aes_selector(), NS, AES_NAME).unwrap());
    hammer(kr, 20);
    assert!(
        t.open_sessions() <= 2,
        "{} sessions open",
        t.open_sessions()
    );
}
