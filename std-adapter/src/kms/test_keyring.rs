//! A local async keyring for the unit tests of the async front ends (the KMS keyrings need
//! a server: `tests/kms.rs`). It binds each EDK to the full encryption context it was given
//! (stored in the provider info and checked on decrypt), so a front end that hands the
//! keyring a wrong context fails; it counts its calls, so tests can check that an error
//! comes before any keyring call.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use esdk_core::materials::DataKey;

use super::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest, Error, OwnedEdk};

/// The provider id of the test keyring's EDKs.
pub(crate) const TEST_PROVIDER_ID: &str = "async-test";

/// The pad the data key is XORed with (a wrapping that is enough to test the plumbing).
const PAD: [u8; 32] = [0x5a; 32];

fn context_text(ec: &[(&str, &str)]) -> Vec<u8> {
    let mut t = Vec::new();
    for (k, v) in ec {
        t.extend_from_slice(k.as_bytes());
        t.push(0);
        t.extend_from_slice(v.as_bytes());
        t.push(0);
    }
    t
}

/// The test keyring.
#[derive(Debug, Default)]
pub(crate) struct TestAsyncKeyring {
    pub(crate) encrypts: AtomicUsize,
    pub(crate) decrypts: AtomicUsize,
}

impl TestAsyncKeyring {
    pub(crate) fn calls(&self) -> usize {
        self.encrypts.load(Ordering::SeqCst) + self.decrypts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AsyncKeyring for TestAsyncKeyring {
    async fn on_encrypt(&self, request: &EncryptRequest<'_>) -> Result<EncryptOutcome, Error> {
        self.encrypts.fetch_add(1, Ordering::SeqCst);
        let n = request.suite.key_len();
        let mut key = vec![0u8; n];
        getrandom::fill(&mut key)
            .map_err(|_| Error::Core(esdk_core::error::CryptoError::Rng.into()))?;
        let wrapped: Vec<u8> = key.iter().zip(PAD).map(|(a, b)| a ^ b).collect();
        let data_key = DataKey::from_slice(&key)?;
        Ok(EncryptOutcome {
            data_key: Some(data_key),
            edks: vec![OwnedEdk {
                provider_id: TEST_PROVIDER_ID.into(),
                provider_info: context_text(request.encryption_context),
                ciphertext: wrapped,
            }],
        })
    }

    async fn on_decrypt(&self, request: &DecryptRequest<'_>) -> Result<DataKey, Error> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        let want = context_text(request.encryption_context);
        for (_, e) in request.edks {
            if e.provider_id == TEST_PROVIDER_ID && e.provider_info == want.as_slice() {
                let key: Vec<u8> = e.ciphertext.iter().zip(PAD).map(|(a, b)| a ^ b).collect();
                return Ok(DataKey::from_slice(&key)?);
            }
        }
        Err(Error::NoDataKeyDecrypted {
            attempts: Vec::new(),
        })
    }

    fn description(&self) -> String {
        "async test keyring".into()
    }
}

/// Polls a future whose awaits are all ready at once (the test keyring's) to completion.
pub(crate) fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the future did not complete");
}
