//! The embedded-io-async adapters: round trips for every suite with 1-byte I/O that also
//! returns `Pending`, a message of the one-shot API, truncation and trailing bytes, and a
//! failing inner reader and writer (the error passed on, nothing lost, nothing of a signed
//! message released before its end). Polled by a small executor with a no-op waker.
#![cfg(feature = "embedded-io-async")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_io::{ErrorKind, ErrorType};
use embedded_io_async::{Read, Write};
use esdk_core::eio::StreamError;
use esdk_core::eio_async::{DecryptingReader, EncryptingWriter};
use esdk_core::error::Error;
use esdk_core::{AlgorithmSuite, CommitmentPolicy, Config, EncryptOptions};
use esdk_raw::RawAesKeyring;

/// Polls `f` to completion (the test I/O wakes itself before `Pending`).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the future did not complete");
}

/// `Pending` once, then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: core::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Planned;

impl core::fmt::Display for Planned {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("planned I/O error")
    }
}

impl core::error::Error for Planned {}

impl embedded_io::Error for Planned {
    fn kind(&self) -> ErrorKind {
        ErrorKind::ConnectionReset
    }
}

/// In-memory I/O: at most `max` bytes per call, a yield before each, one error at `fail_at`.
struct Flaky {
    data: Vec<u8>,
    pos: usize,
    max: usize,
    fail_at: Option<usize>,
    sink: Vec<u8>,
}

impl Flaky {
    fn new(data: &[u8], max: usize, fail_at: Option<usize>) -> Self {
        Self {
            data: data.to_vec(),
            pos: 0,
            max,
            fail_at,
            sink: Vec::new(),
        }
    }

    async fn gate(&mut self, at: usize) -> Result<(), Planned> {
        YieldOnce(false).await;
        if self.fail_at.is_some_and(|f| at >= f) {
            self.fail_at = None;
            return Err(Planned);
        }
        Ok(())
    }
}

impl ErrorType for Flaky {
    type Error = Planned;
}

impl Read for Flaky {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Planned> {
        self.gate(self.pos).await?;
        let n = self.max.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Flaky {
    async fn write(&mut self, data: &[u8]) -> Result<usize, Planned> {
        self.gate(self.sink.len()).await?;
        let n = self.max.min(data.len());
        self.sink.extend_from_slice(&data[..n]);
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Planned> {
        Ok(())
    }
}

const FRAME: u32 = 100;

fn keyring() -> RawAesKeyring<'static> {
    RawAesKeyring::new("eio", "k", &[3u8; 32]).expect("keyring")
}

fn cfg_for(suite: AlgorithmSuite) -> Config {
    use CommitmentPolicy::{ForbidEncryptAllowDecrypt, RequireEncryptRequireDecrypt};
    let policies = [ForbidEncryptAllowDecrypt, RequireEncryptRequireDecrypt];
    Config::new().with_commitment_policy(policies[usize::from(suite.is_committing())])
}

fn plaintext() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 13) as u8).collect()
}

/// Encrypts `pt` in `chunk`-byte writes into a `Flaky` sink, retrying the planned error.
fn encrypt(
    suite: AlgorithmSuite,
    pt: &[u8],
    chunk: usize,
    max: usize,
    fail_at: Option<usize>,
) -> Vec<u8> {
    let cfg = cfg_for(suite);
    let k = keyring();
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME);
    let (mut frame, mut obuf) = ([0u8; FRAME as usize], [0u8; 1024]);
    let provider = provider();
    block_on(async {
        let mut sink = Flaky::new(&[], max, fail_at);
        // An error while the header goes out: start over (nothing was taken yet).
        let mut w = loop {
            let mut ec = [("site", "a")];
            let inner = core::mem::replace(&mut sink, Flaky::new(&[], max, None));
            match EncryptingWriter::new(
                &cfg, &provider, &k, &opts, &mut ec, inner, &mut frame, &mut obuf,
            )
            .await
            {
                Ok(w) => break w,
                Err(e) => assert_eq!(e, StreamError::Io(Planned)),
            }
        };
        let mut at = 0;
        while at < pt.len() {
            let end = (at + chunk).min(pt.len());
            match w.write(&pt[at..end]).await {
                Ok(n) => at += n,
                Err(e) => assert_eq!(e, StreamError::Io(Planned)),
            }
        }
        loop {
            match w.try_finish().await {
                Ok(()) => break,
                Err(e) => assert_eq!(e, StreamError::Io(Planned)),
            }
        }
        w.finish().await.unwrap().sink
    })
}

/// A deterministic RNG (tests only).
struct TestRng(core::cell::Cell<u64>);

impl esdk_core::provider::RandomSource for TestRng {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), esdk_core::error::CryptoError> {
        for b in out {
            let mut x = self.0.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0.set(x);
            *b = (x >> 17) as u8;
        }
        Ok(())
    }
}

type Provider = esdk_core::rustcrypto::RustCrypto<TestRng>;

/// The pure-Rust provider of the core with a deterministic RNG.
fn provider() -> Provider {
    esdk_core::rustcrypto::RustCrypto::new(TestRng(core::cell::Cell::new(77)))
}

/// Reads everything with `chunk`-byte reads, retrying the planned error: the ESDK error if
/// any, and the plaintext read.
fn decrypt(
    suite: AlgorithmSuite,
    msg: &[u8],
    chunk: usize,
    max: usize,
    fail_at: Option<usize>,
) -> (Option<Error>, Vec<u8>) {
    let cfg = cfg_for(suite);
    let k = keyring();
    let (mut inbuf, mut outbuf) = ([0u8; 1024], [0u8; FRAME as usize]);
    let provider = provider();
    let mut r = DecryptingReader::new(
        &cfg,
        &provider,
        &k,
        &[],
        Flaky::new(msg, max, fail_at),
        &mut inbuf,
        &mut outbuf,
    );
    let mut out = Vec::new();
    let err = block_on(async {
        let mut buf = vec![0u8; chunk];
        loop {
            match r.read(&mut buf).await {
                Ok(0) => return None,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(StreamError::Io(Planned)) => {}
                Err(StreamError::Esdk(e)) => return Some(e),
                Err(e) => panic!("{e:?}"),
            }
        }
    });
    (err, out)
}

#[test]
fn round_trip_every_suite_with_one_byte_io_and_pending() {
    let pt = plaintext();
    for suite in AlgorithmSuite::ALL {
        let cfg = cfg_for(suite);
        for (chunk, max) in [(1, 1), (333, 7), (2000, 2000)] {
            let msg = encrypt(suite, &pt, chunk, max, None);
            let mut back = vec![0u8; msg.len()];
            let d =
                esdk_core::decrypt(&cfg, &provider(), &keyring(), &[], &msg, &mut back).unwrap();
            assert_eq!(&back[..d.plaintext_len], &pt[..], "{suite}");
            assert_eq!(
                decrypt(suite, &msg, chunk, max, None),
                (None, pt.clone()),
                "{suite}"
            );
        }
        // A message of the one-shot API.
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(FRAME);
        let mut msg = vec![0u8; 4096];
        let n = esdk_core::encrypt(
            &cfg,
            &provider(),
            &keyring(),
            &opts,
            &mut [("x", "y")],
            &pt,
            &mut msg,
        )
        .unwrap();
        assert_eq!(
            decrypt(suite, &msg[..n], 1, 1, None),
            (None, pt.clone()),
            "{suite}"
        );
    }
}

#[test]
fn truncation_trailing_bytes_and_failing_inner_io() {
    let pt = plaintext();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let msg = encrypt(suite, &pt, 64, 64, None);
    for cut in [1, 40, msg.len() / 2, msg.len() - 1] {
        let (e, out) = decrypt(suite, &msg[..cut], 50, 50, None);
        assert_eq!(e, Some(Error::Truncated { offset: cut }), "{cut}");
        // Regular frames only, never the final one.
        assert!(out.len() < pt.len() && pt.starts_with(&out), "{cut}");
    }
    let mut long = msg.clone();
    long.push(0);
    let (e, out) = decrypt(suite, &long, 50, 50, None);
    assert_eq!(e, Some(Error::TrailingBytes { offset: msg.len() }));
    assert!(out.len() < pt.len());
    for fail_at in [0, 1, 17, 300, msg.len() - 1, msg.len()] {
        let again = encrypt(suite, &pt, 50, 9, Some(fail_at));
        assert_eq!(again.len(), msg.len(), "{fail_at}");
        assert_eq!(decrypt(suite, &again, 50, 9, None), (None, pt.clone()));
        assert_eq!(
            decrypt(suite, &msg, 33, 9, Some(fail_at)),
            (None, pt.clone()),
            "{fail_at}"
        );
    }
}
