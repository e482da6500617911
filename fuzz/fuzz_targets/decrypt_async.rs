//! The async front end (`esdk::kms::asynch::decrypt`) on arbitrary bytes, against the sync
//! one-shot `esdk::decrypt` on the same bytes: the same verdict, the same plaintext, the same
//! core error when the async path fails in the core (its keyring step may come before some
//! header policy checks, so "no data key" may stand for a policy error of the sync path).
//!
//! Both run on the std adapter's real provider (aws-lc): the input is resealed with it (header
//! tag and commitment rewritten for the fuzz EDK's data key, see `esdk_fuzz::reseal`), so
//! mutations reach the header checks, the keyring step and the body. The async keyring is the
//! fuzzing keyring's async twin (its EDK ciphertext *is* the data key); its futures are ready
//! at once, so a no-op waker drives them.
//!
//! Input: a flag byte (bit 0: reseal; bit 1: unsigned-only; bit 2: max 3 EDKs), then the
//! message.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use esdk::kms::asynch;
use esdk::kms::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest, Error};
use esdk_core::materials::DataKey;
use esdk_core::{CommitmentPolicy, Config};
use esdk_fuzz::{FUZZ_PROVIDER_ID, FuzzKeyring, reseal};
use libfuzzer_sys::fuzz_target;

/// The fuzzing keyring as an async keyring (decrypt only).
struct FuzzAsyncKeyring;

#[async_trait]
impl AsyncKeyring for FuzzAsyncKeyring {
    async fn on_encrypt(&self, _: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        Err(Error::EncryptNotSupported {
            keyring: self.description(),
        })
    }

    async fn on_decrypt(&self, request: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        let key = request
            .edks
            .iter()
            .map(|(_, e)| e)
            .find(|e| {
                e.provider_id == FUZZ_PROVIDER_ID && e.ciphertext.len() == request.suite.key_len()
            })
            .ok_or(Error::NoDataKeyDecrypted {
                attempts: Vec::new(),
            })?;
        DataKey::from_slice(key.ciphertext).map_err(Error::Core)
    }

    fn description(&self) -> String {
        "fuzz keyring".into()
    }
}

/// Drives a future whose awaits are all ready at once.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the async decrypt did not complete without I/O");
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, msg)) = data.split_first() else {
        return;
    };
    let mut msg = msg.to_vec();
    if flags & 1 != 0 {
        reseal(&mut msg, &esdk::DEFAULT_PROVIDER);
    }
    let mut cfg =
        Config::new().with_commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt);
    cfg.unsigned_only = flags & 2 != 0;
    if flags & 4 != 0 {
        cfg.max_encrypted_data_keys = Some(3);
    }
    let sync = esdk::decrypt(&cfg, &FuzzKeyring, &[], &msg);
    let asynced = ready(asynch::decrypt(&cfg, &FuzzAsyncKeyring, &[], &msg));
    match (&asynced, &sync) {
        (Ok(a), Ok(s)) => {
            assert_eq!(a.plaintext, s.plaintext, "async and sync plaintexts differ");
            assert_eq!(a.suite, s.suite);
            assert_eq!(a.encryption_context, s.encryption_context);
        }
        (Err(Error::Core(a)), Err(s)) => assert_eq!(a, s, "async and sync core errors differ"),
        // The async path asks its keyring before some of the header policy checks the core
        // runs first (a message that both lacks a usable EDK and breaks a policy): both
        // refuse it. (One engine for both paths is the materials-step redesign's job.)
        (Err(Error::NoDataKeyDecrypted { .. }), Err(_)) => {}
        (a, s) => panic!("async and sync verdicts differ: async {a:?}, sync {s:?}"),
    }
});
