//! tokio streams (feature `tokio`): [`AsyncEncryptingWriter`] (`AsyncWrite`) and
//! [`AsyncDecryptingReader`] (`AsyncRead`), the async counterparts of
//! [`EncryptingWriter`](crate::EncryptingWriter) and
//! [`DecryptingReader`](crate::DecryptingReader).
//!
//! They are the same state as the std streams (one implementation of the format: the core's
//! [`Encryptor`] and [`Decryptor`]; one of the buffering: `stream.rs`), polled instead of
//! blocking, with the same guarantees: memory bounded by the frame length; a signed
//! message's plaintext held until its signature verifies (up to the signed buffer limit)
//! unless `release_unverified_plaintext(true)`; the final frame released only once the inner
//! reader confirms that nothing follows (`TrailingBytes` otherwise); `Truncated` at an early
//! end; errors of the inner reader or writer passed on as they are, losing nothing (poll
//! again). ESDK errors are `io::Error`s carrying the core error
//! ([`esdk_error`](crate::stream::esdk_error)) and are sticky.
//!
//! The materials come from a sync CMM, or with feature `kms` from an
//! [`AsyncKeyring`](crate::kms::AsyncKeyring), awaited (through the code of
//! [`kms::asynch`](crate::kms::asynch)) when the header needs it.
//!
//! The encrypting writer's message is complete after `shutdown` (`AsyncWriteExt::shutdown`),
//! which writes the final frame and the footer and shuts the inner writer down.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use esdk_core::error::ApiMisuse;
use esdk_core::{
    Config, CryptoMaterialsManager, CryptoProvider, Decryptor, EncryptOptions, Encryptor,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stream::{Pump, ReadState, Sealer, Want, encryptor, reader_options, write_zero};

/// Encrypts what is written to it and writes the message to `inner`, one frame at a time.
/// `shutdown` writes the final frame and the footer; a writer dropped before leaves an
/// incomplete message that every decryptor rejects as truncated.
///
/// A sealed frame that `inner` did not take whole stays pending and goes out first at the
/// next poll: `poll_write` reports an error (or `Pending`) of `inner` only when it consumed
/// nothing of its input.
pub struct AsyncEncryptingWriter<'a, W, P: CryptoProvider> {
    inner: W,
    s: Sealer<'a, P>,
}

// No field is pinned structurally: the writer only ever pins `inner` (which is `Unpin`)
// for a call.
impl<W: Unpin, P: CryptoProvider> Unpin for AsyncEncryptingWriter<'_, W, P> {}

impl<W, P: CryptoProvider> std::fmt::Debug for AsyncEncryptingWriter<'_, W, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEncryptingWriter")
            .field("sealer", &self.s)
            .finish()
    }
}

impl<'a, W: AsyncWrite + Unpin, P: CryptoProvider> AsyncEncryptingWriter<'a, W, P> {
    /// Gets the materials from `cmm` and writes the header into the writer's buffer: it goes
    /// to `inner` at the first poll.
    ///
    /// # Errors
    /// ESDK errors (policy, keyring).
    pub fn new<M: CryptoMaterialsManager + ?Sized>(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &M,
        opts: &EncryptOptions,
        encryption_context: &[(&str, &str)],
        inner: W,
    ) -> io::Result<Self> {
        let (enc, header) = encryptor(cfg, provider, cmm, opts, encryption_context)?;
        Ok(Self::with_header(enc, opts.frame_length, header, inner))
    }

    fn with_header(enc: Encryptor<'a, P>, frame_length: u32, header: Vec<u8>, inner: W) -> Self {
        Self {
            inner,
            s: Sealer::new(enc, frame_length, header),
        }
    }

    /// Bytes of message written to the inner writer so far.
    pub fn bytes_written(&self) -> u64 {
        self.s.written
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer (after `shutdown`, it holds the whole message).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Writes the sealed bytes to `inner`.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.s.unsent().is_empty() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, self.s.unsent())) {
                Ok(0) => return Poll::Ready(Err(write_zero("the message"))),
                Ok(n) => self.s.sent(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "kms")]
impl<'a, W: AsyncWrite + Unpin> AsyncEncryptingWriter<'a, W, crate::DefaultProvider> {
    /// Awaits `keyring` for the data key (as [`kms::asynch::encrypt`](crate::kms::asynch)
    /// does: the core checks the options and the context before any KMS call) and writes
    /// the header into the writer's buffer.
    ///
    /// # Errors
    /// As [`prepare_encrypt`](crate::kms::asynch::prepare_encrypt).
    pub async fn with_keyring(
        cfg: &'a Config,
        keyring: &(dyn crate::kms::AsyncKeyring + '_),
        opts: &EncryptOptions,
        encryption_context: &[(&str, &str)],
        inner: W,
    ) -> Result<Self, crate::kms::Error> {
        let (enc, header) =
            crate::kms::asynch::encryptor(cfg, keyring, opts, encryption_context).await?;
        Ok(Self::with_header(enc, opts.frame_length, header, inner))
    }
}

impl<W: AsyncWrite + Unpin, P: CryptoProvider> AsyncWrite for AsyncEncryptingWriter<'_, W, P> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.s.check()?;
        // What an earlier call sealed goes out first; an error here consumed nothing.
        ready!(this.poll_push(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.s.open()?;
        let mut used = 0;
        while used < data.len() {
            used += this.s.absorb(&data[used..])?;
            if !this.s.unsent().is_empty() {
                match this.poll_push(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) if used == 0 => return Poll::Ready(Err(e)),
                    Poll::Pending if used == 0 => return Poll::Pending,
                    // The sealed frame stays pending; the next call reports or sends it.
                    _ => return Poll::Ready(Ok(used)),
                }
            }
        }
        Poll::Ready(Ok(used))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.s.check()?;
        ready!(this.poll_push(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.s.check()?;
        ready!(this.poll_push(cx))?;
        this.s.seal_final()?;
        ready!(this.poll_push(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(feature = "kms")]
type KeyFuture<'a> = Pin<
    Box<
        dyn std::future::Future<Output = Result<esdk_core::materials::DataKey, crate::kms::Error>>
            + Send
            + 'a,
    >,
>;

/// Decrypts a message read from `inner`; read the plaintext from it. As
/// [`DecryptingReader`](crate::DecryptingReader): memory bounded by the frame length (and
/// the signed buffer limit), nothing of a signed message before its signature verified
/// (by default), end of input only once the message verified and `inner` has nothing more.
pub struct AsyncDecryptingReader<'a, R, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    inner: R,
    st: ReadState<'a, P, M>,
    #[cfg(feature = "kms")]
    keyring: Option<&'a (dyn crate::kms::AsyncKeyring + 'a)>,
    /// The keyring's pending answer.
    #[cfg(feature = "kms")]
    key: Option<KeyFuture<'a>>,
}

// No field is pinned structurally (the key future is boxed).
impl<R: Unpin, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> Unpin
    for AsyncDecryptingReader<'_, R, P, M>
{
}

impl<R, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> std::fmt::Debug
    for AsyncDecryptingReader<'_, R, P, M>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDecryptingReader")
            .field("decryptor", &self.st.pump.dec)
            .field("held", &self.st.held())
            .finish()
    }
}

impl<'a, R: AsyncRead + Unpin, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>
    AsyncDecryptingReader<'a, R, P, M>
{
    fn from_pump(pump: Pump<'a, P, M>, inner: R) -> Self {
        Self {
            inner,
            st: ReadState::new(pump),
            #[cfg(feature = "kms")]
            keyring: None,
            #[cfg(feature = "kms")]
            key: None,
        }
    }

    /// A reader decrypting the message that `inner` yields, with the data key from `cmm`.
    /// `reproduced_context` as in [`Decryptor::new`].
    pub fn new(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &'a M,
        reproduced_context: &'a [(&'a str, &'a str)],
        inner: R,
    ) -> Self {
        let dec = Decryptor::new(cfg, provider, reproduced_context);
        Self::from_pump(Pump::new(Some(cmm), dec), inner)
    }

    reader_options!();

    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Polls `inner` for bytes into `space`: their count (0 at its end).
    fn poll_inner(
        inner: &mut R,
        cx: &mut Context<'_>,
        space: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(space);
        loop {
            match ready!(Pin::new(&mut *inner).poll_read(cx, &mut rb)) {
                Ok(()) => return Poll::Ready(Ok(rb.filled().len())),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The decryptor waits for its key: starts the keyring's call, or polls it.
    #[cfg(feature = "kms")]
    fn poll_key(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        use crate::kms::asynch;
        let Some(keyring) = self.keyring else {
            return Poll::Ready(Err(self.st.fail(ApiMisuse::WrongState.into())));
        };
        if self.key.is_none() {
            let (dec, input) = self.st.pump.parts();
            let needs = match asynch::decrypt_needs(dec, input, &mut Vec::new()) {
                Ok(n) => n,
                Err(e) => return Poll::Ready(Err(self.fail_kms(e))),
            };
            self.key = Some(Box::pin(asynch::unwrap_key(keyring, needs)));
        }
        let Some(fut) = self.key.as_mut() else {
            return Poll::Ready(Err(self.st.fail(ApiMisuse::WrongState.into())));
        };
        let r = ready!(fut.as_mut().poll(cx));
        self.key = None;
        match r {
            Ok(k) => match self.st.pump.dec.set_data_key(k) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(e) => Poll::Ready(Err(self.st.fail(e))),
            },
            Err(e) => Poll::Ready(Err(self.fail_kms(e))),
        }
    }

    #[cfg(not(feature = "kms"))]
    fn poll_key(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.st.fail(ApiMisuse::WrongState.into())))
    }

    /// Records the keyring's error (sticky as its core error) and passes it on whole.
    #[cfg(feature = "kms")]
    fn fail_kms(&mut self, e: crate::kms::Error) -> io::Error {
        let core = self.st.fail(e.core().unwrap_or(esdk_core::Error::Keyring(
            esdk_core::error::KeyringError::NoDataKeyDecrypted(Default::default()),
        )));
        match e {
            crate::kms::Error::Core(_) => core,
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

#[cfg(feature = "kms")]
impl<'a, R: AsyncRead + Unpin>
    AsyncDecryptingReader<'a, R, crate::DefaultProvider, dyn CryptoMaterialsManager>
{
    /// A reader decrypting the message that `inner` yields, awaiting `keyring` for the data
    /// key once the core parsed and checked the header (as
    /// [`kms::asynch::decrypt`](crate::kms::asynch::decrypt) does).
    pub fn with_keyring(
        cfg: &'a Config,
        keyring: &'a (dyn crate::kms::AsyncKeyring + 'a),
        reproduced_context: &'a [(&'a str, &'a str)],
        inner: R,
    ) -> Self {
        let dec = Decryptor::new(cfg, &crate::DEFAULT_PROVIDER, reproduced_context);
        let mut r = Self::from_pump(Pump::new(None, dec), inner);
        r.keyring = Some(keyring);
        r
    }
}

impl<R: AsyncRead + Unpin, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> AsyncRead
    for AsyncDecryptingReader<'_, R, P, M>
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let dst = buf.initialize_unfilled();
            // An error or `Pending` of the inner reader loses nothing: the next poll reads
            // again.
            match this.st.advance(dst)? {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(Want::Input) => {
                    let got = ready!(Self::poll_inner(&mut this.inner, cx, this.st.read_space()))?;
                    this.st.filled(got)?;
                }
                Err(Want::EndCheck) => {
                    let got = ready!(Self::poll_inner(&mut this.inner, cx, &mut [0u8; 1]))?;
                    this.st.probed(got)?;
                }
                Err(Want::Key) => ready!(this.poll_key(cx))?,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::Waker;

    use esdk_core::error::Error;
    use esdk_core::{AlgorithmSuite, CommitmentPolicy};
    use esdk_raw::RawAesKeyring;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::stream::esdk_error;

    /// Polls `f` to completion with a waker that does nothing: the test readers and writers
    /// wake themselves before they return `Pending`.
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

    /// An in-memory `AsyncRead`: at most `max` bytes per poll, `Pending` every other poll,
    /// and one error when it reaches `fail_at`.
    struct Flaky {
        data: Vec<u8>,
        pos: usize,
        max: usize,
        fail_at: Option<usize>,
        pend: bool,
        sink: Vec<u8>,
    }

    impl Flaky {
        fn new(data: &[u8], max: usize, fail_at: Option<usize>) -> Self {
            Self {
                data: data.to_vec(),
                pos: 0,
                max,
                fail_at,
                pend: false,
                sink: Vec::new(),
            }
        }

        /// `Pending` every other poll; the planned error once.
        fn gate(&mut self, cx: &mut Context<'_>, at: usize) -> Option<Poll<io::Error>> {
            self.pend = !self.pend;
            if self.pend {
                cx.waker().wake_by_ref();
                return Some(Poll::Pending);
            }
            if self.fail_at.is_some_and(|f| at >= f) {
                self.fail_at = None;
                return Some(Poll::Ready(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "planned",
                )));
            }
            None
        }
    }

    impl AsyncRead for Flaky {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            match this.gate(cx, this.pos) {
                Some(Poll::Pending) => return Poll::Pending,
                Some(Poll::Ready(e)) => return Poll::Ready(Err(e)),
                None => {}
            }
            let n = this
                .max
                .min(this.data.len() - this.pos)
                .min(buf.remaining());
            buf.put_slice(&this.data[this.pos..this.pos + n]);
            this.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Flaky {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            match this.gate(cx, this.sink.len()) {
                Some(Poll::Pending) => return Poll::Pending,
                Some(Poll::Ready(e)) => return Poll::Ready(Err(e)),
                None => {}
            }
            let n = this.max.min(data.len());
            this.sink.extend_from_slice(&data[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn keyring() -> RawAesKeyring<'static> {
        RawAesKeyring::new("t", "k", &[7u8; 32]).unwrap()
    }

    fn cfg_for(suite: AlgorithmSuite) -> Config {
        use CommitmentPolicy::{ForbidEncryptAllowDecrypt, RequireEncryptRequireDecrypt};
        let policies = [ForbidEncryptAllowDecrypt, RequireEncryptRequireDecrypt];
        Config::new().with_commitment_policy(policies[usize::from(suite.is_committing())])
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 13 % 251) as u8).collect()
    }

    /// Encrypts `pt` through the async writer in `chunk`-byte writes into a `Flaky` sink.
    fn encrypt_async(
        cfg: &Config,
        suite: AlgorithmSuite,
        pt: &[u8],
        chunk: usize,
        max: usize,
        fail_at: Option<usize>,
    ) -> Vec<u8> {
        let kr = keyring();
        let opts = EncryptOptions::new()
            .with_suite(suite)
            .with_frame_length(100);
        let sink = Flaky::new(&[], max, fail_at);
        let mut w = AsyncEncryptingWriter::new(
            cfg,
            &crate::DEFAULT_PROVIDER,
            &kr,
            &opts,
            &[("a", "b")],
            sink,
        )
        .unwrap();
        block_on(async {
            let mut at = 0;
            while at < pt.len() {
                let end = (at + chunk).min(pt.len());
                match w.write(&pt[at..end]).await {
                    Ok(n) => at += n,
                    Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
                }
            }
            loop {
                match w.shutdown().await {
                    Ok(()) => break,
                    Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
                }
            }
        });
        let n = w.bytes_written();
        let out = w.into_inner().sink;
        assert_eq!(n, out.len() as u64);
        out
    }

    /// Reads everything through the async reader with `chunk`-byte reads, retrying the
    /// planned error; returns the plaintext, or the first ESDK error with what was read.
    fn decrypt_async(
        cfg: &Config,
        msg: &[u8],
        chunk: usize,
        max: usize,
        fail_at: Option<usize>,
    ) -> (Result<(), Error>, Vec<u8>) {
        let kr = keyring();
        let src = Flaky::new(msg, max, fail_at);
        let mut r = AsyncDecryptingReader::new(cfg, &crate::DEFAULT_PROVIDER, &kr, &[], src);
        let mut out = Vec::new();
        let res = block_on(async {
            let mut buf = vec![0u8; chunk];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                    Err(e) => return Err(esdk_error(&e).expect("an ESDK error")),
                }
            }
        });
        (res, out)
    }

    #[test]
    fn round_trip_every_suite_with_one_byte_io_and_pending() {
        let pt = data(1000);
        for suite in AlgorithmSuite::ALL {
            let cfg = cfg_for(suite);
            for (chunk, max) in [(1, 1), (4096, 4096), (333, 7)] {
                let msg = encrypt_async(&cfg, suite, &pt, chunk, max, None);
                let sync = crate::decrypt(&cfg, &keyring(), &[], &msg).unwrap();
                assert_eq!(sync.plaintext, pt, "{suite:?}");
                let (r, out) = decrypt_async(&cfg, &msg, chunk, max, None);
                assert_eq!(r, Ok(()), "{suite:?}");
                assert_eq!(out, pt, "{suite:?} {chunk}");
            }
            // A message of the one-shot API.
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(64);
            let msg = crate::encrypt(&cfg, &keyring(), &opts, &[("x", "y")], &pt).unwrap();
            let (r, out) = decrypt_async(&cfg, &msg, 1, 1, None);
            assert_eq!((r, out), (Ok(()), pt.clone()), "{suite:?}");
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_release_nothing_unverified() {
        let pt = data(1000);
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        ] {
            let cfg = cfg_for(suite);
            let signed = suite.signature().is_some();
            let msg = encrypt_async(&cfg, suite, &pt, 4096, 4096, None);
            for cut in [1, 30, msg.len() / 2, msg.len() - 1] {
                let (r, out) = decrypt_async(&cfg, &msg[..cut], 64, 64, None);
                assert_eq!(r, Err(Error::Truncated { offset: cut }), "{suite:?} {cut}");
                // Regular frames only, and none of a signed message.
                assert!(out.len() < pt.len() && (!signed || out.is_empty()), "{cut}");
                assert_eq!(out, pt[..out.len()]);
            }
            let mut long = msg.clone();
            long.push(0);
            let (r, out) = decrypt_async(&cfg, &long, 64, 64, None);
            assert_eq!(r, Err(Error::TrailingBytes { offset: msg.len() }));
            // The final frame never comes out.
            assert!(out.len() < pt.len() && (!signed || out.is_empty()));
        }
    }

    #[test]
    fn failing_inner_reader_and_writer_lose_nothing() {
        let pt = data(1000);
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
        let cfg = cfg_for(suite);
        let clean = encrypt_async(&cfg, suite, &pt, 50, 9, None);
        for fail_at in [0, 1, 17, 200, 500, clean.len() - 1, clean.len()] {
            // The writer: the planned error is retried; the message is whole and valid.
            let msg = encrypt_async(&cfg, suite, &pt, 50, 9, Some(fail_at));
            assert_eq!(msg.len(), clean.len(), "{fail_at}");
            assert_eq!(
                crate::decrypt(&cfg, &keyring(), &[], &msg)
                    .unwrap()
                    .plaintext,
                pt
            );
            // The reader: the planned error reaches the caller; reading on completes.
            let (r, out) = decrypt_async(&cfg, &clean, 33, 9, Some(fail_at));
            assert_eq!((r, out), (Ok(()), pt.clone()), "{fail_at}");
        }
        // Nothing of a signed message is released before the error that ends it.
        let kr = keyring();
        let mut tampered = clean.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let mut r = AsyncDecryptingReader::new(
            &cfg,
            &crate::DEFAULT_PROVIDER,
            &kr,
            &[],
            Flaky::new(&tampered, 5, Some(300)),
        );
        let mut buf = [0u8; 16];
        let mut got = 0;
        let err = block_on(async {
            loop {
                match r.read(&mut buf).await {
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                    Err(e) => return e,
                }
            }
        });
        assert!(esdk_error(&err).is_some(), "{err}");
        assert_eq!(got, 0);
    }

    #[cfg(feature = "kms")]
    #[test]
    fn async_keyring_streams_round_trip_and_fail_before_any_call() {
        use crate::kms::test_keyring::TestAsyncKeyring;
        let kr = TestAsyncKeyring::default();
        let pt = data(3000);
        for suite in AlgorithmSuite::ALL {
            let cfg = cfg_for(suite);
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(256);
            let msg = block_on(async {
                let mut w = AsyncEncryptingWriter::with_keyring(
                    &cfg,
                    &kr,
                    &opts,
                    &[("k", "v")],
                    Vec::new(),
                )
                .await
                .unwrap();
                w.write_all(&pt).await.unwrap();
                w.shutdown().await.unwrap();
                w.into_inner()
            });
            let mut r =
                AsyncDecryptingReader::with_keyring(&cfg, &kr, &[], Flaky::new(&msg, 3, Some(100)));
            let mut out = Vec::new();
            block_on(async {
                let mut buf = [0u8; 1];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
                    }
                }
            });
            assert_eq!(out, pt, "{suite:?}");
            // Same bytes as the one-shot async front end decrypts.
            let back = block_on(crate::kms::asynch::decrypt(&cfg, &kr, &[], &msg)).unwrap();
            assert_eq!(back.plaintext, pt);
        }
        // A policy error of the header comes before any keyring call.
        let legacy = AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384;
        let lcfg = cfg_for(legacy);
        let opts = EncryptOptions::new().with_suite(legacy);
        let msg = block_on(crate::kms::asynch::encrypt(&lcfg, &kr, &opts, &[], b"x")).unwrap();
        let calls = kr.calls();
        let strict = Config::new();
        let mut r = AsyncDecryptingReader::with_keyring(&strict, &kr, &[], &msg[..]);
        let e = block_on(async { r.read(&mut [0u8; 8]).await }).unwrap_err();
        assert_eq!(
            esdk_error(&e),
            Some(esdk_core::error::PolicyViolation::SuiteNotAllowed { suite: 0x0378 }.into())
        );
        // A keyring that cannot decrypt: its error, with its details.
        let mut r = AsyncDecryptingReader::with_keyring(&lcfg, &kr, &[("extra", "pair")], &msg[..]);
        let e = block_on(async { r.read(&mut [0u8; 8]).await }).unwrap_err();
        assert!(e.to_string().contains("decrypt"), "{e}");
        assert_eq!(kr.calls(), calls + 1);
        let block = block_on(async {
            AsyncEncryptingWriter::with_keyring(&strict, &kr, &opts, &[], Vec::new()).await
        });
        assert!(block.is_err());
        assert_eq!(kr.calls(), calls + 1);
    }
}
