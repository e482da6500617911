//! `embedded-io-async` adapters (feature `embedded-io-async`): the async counterparts of the
//! [`eio`](crate::eio) adapters, through fixed caller buffers, with no heap. They share the
//! state of the blocking adapters (the sealer and the read state of `eio.rs`) and differ
//! only in awaiting the inner reader or writer; buffer sizes, plaintext release, end check
//! and error handling are those of [`eio`](crate::eio) (the final frame only after the end
//! of the message is confirmed; `TrailingBytes`, `Truncated`; an error of the inner reader
//! or writer passed on, losing nothing; ESDK errors sticky).
//!
//! The materials come from a synchronous CMM (firmware keyrings are local).

use core::fmt;

use embedded_io::{ErrorKind, ErrorType};
use embedded_io_async::{Read, Write};

use crate::config::{Config, EncryptOptions};
use crate::eio::{ReadState, Sealer, StreamError, Want};
use crate::keyring::CryptoMaterialsManager;
use crate::provider::CryptoProvider;

/// Writes `s`'s unsent bytes to `w`. `Interrupted` is retried; any other error leaves the
/// rest for the next call.
async fn push<W: Write, P: CryptoProvider>(
    w: &mut W,
    s: &mut Sealer<'_, '_, P>,
) -> Result<(), StreamError<W::Error>> {
    while !s.unsent().is_empty() {
        match w.write(s.unsent()).await {
            Ok(0) => return Err(StreamError::WriteZero),
            Ok(n) => s.sent(n),
            Err(e) if embedded_io::Error::kind(&e) == ErrorKind::Interrupted => {}
            Err(e) => return Err(StreamError::Io(e)),
        }
    }
    Ok(())
}

/// Encrypts what is written to it into `inner`, through caller buffers (as
/// [`eio::EncryptingWriter`](crate::eio::EncryptingWriter)). Call [`finish`](Self::finish)
/// at the end.
pub struct EncryptingWriter<'a, 'b, W: Write, P: CryptoProvider> {
    inner: W,
    s: Sealer<'a, 'b, P>,
}

impl<W: Write, P: CryptoProvider> fmt::Debug for EncryptingWriter<'_, '_, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("sealer", &self.s)
            .finish()
    }
}

impl<'a, 'b, W: Write, P: CryptoProvider> EncryptingWriter<'a, 'b, W, P> {
    /// Gets the materials, writes the header to `inner` and returns the writer.
    /// `frame_buf` must hold one frame; `out_buf` the header, and one frame plus overhead.
    ///
    /// # Errors
    /// ESDK errors (including [`Error::BufferTooSmall`](crate::Error::BufferTooSmall)) and
    /// I/O errors (after which `inner` may hold part of a header: discard it).
    #[allow(clippy::too_many_arguments)]
    pub async fn new<M: CryptoMaterialsManager + ?Sized>(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &M,
        opts: &EncryptOptions,
        encryption_context: &mut [(&str, &str)],
        mut inner: W,
        frame_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Result<Self, StreamError<W::Error>> {
        let mut s = Sealer::new(
            cfg,
            provider,
            cmm,
            opts,
            encryption_context,
            frame_buf,
            out_buf,
        )
        .map_err(StreamError::Esdk)?;
        push(&mut inner, &mut s).await?;
        Ok(Self { inner, s })
    }

    /// Writes the final frame and the footer, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// ESDK and I/O errors (use [`try_finish`](Self::try_finish) to be able to retry after
    /// an I/O error).
    pub async fn finish(mut self) -> Result<W, StreamError<W::Error>> {
        self.try_finish().await?;
        Ok(self.inner)
    }

    /// As [`finish`](Self::finish), but keeps the writer: after an I/O error of `inner`,
    /// call it again; it goes on where it stopped.
    ///
    /// # Errors
    /// ESDK errors (sticky) and I/O errors.
    pub async fn try_finish(&mut self) -> Result<(), StreamError<W::Error>> {
        self.s.check().map_err(StreamError::Esdk)?;
        push(&mut self.inner, &mut self.s).await?;
        self.s.seal_final().map_err(StreamError::Esdk)?;
        push(&mut self.inner, &mut self.s).await?;
        self.inner.flush().await.map_err(StreamError::Io)
    }
}

impl<W: Write, P: CryptoProvider> ErrorType for EncryptingWriter<'_, '_, W, P> {
    type Error = StreamError<W::Error>;
}

impl<W: Write, P: CryptoProvider> Write for EncryptingWriter<'_, '_, W, P> {
    async fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        self.s.check().map_err(StreamError::Esdk)?;
        // What an earlier call sealed goes out first; an error here consumed nothing.
        push(&mut self.inner, &mut self.s).await?;
        if data.is_empty() {
            return Ok(0);
        }
        let mut n = self.s.absorb(data).map_err(StreamError::Esdk)?;
        if n == 0 {
            // A frame was sealed: on an error it stays pending and nothing of `data` was
            // taken.
            push(&mut self.inner, &mut self.s).await?;
            n = self.s.absorb(data).map_err(StreamError::Esdk)?;
        }
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.s.check().map_err(StreamError::Esdk)?;
        push(&mut self.inner, &mut self.s).await?;
        self.inner.flush().await.map_err(StreamError::Io)
    }
}

/// Decrypts the message `inner` yields, through caller buffers (as
/// [`eio::DecryptingReader`](crate::eio::DecryptingReader)); read the plaintext from it.
/// `read` returns `Ok(0)` once the whole message verified and the inner reader confirmed
/// its end.
pub struct DecryptingReader<'a, 'b, R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>
{
    inner: R,
    st: ReadState<'a, 'b, P, M>,
}

impl<R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> fmt::Debug
    for DecryptingReader<'_, '_, R, P, M>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("state", &self.st)
            .finish()
    }
}

impl<'a, 'b, R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>
    DecryptingReader<'a, 'b, R, P, M>
{
    /// A reader over `inner` with an input buffer (header, then one frame) and an output
    /// buffer (one frame).
    pub fn new(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &'a M,
        reproduced_context: &'a [(&'a str, &'a str)],
        inner: R,
        in_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Self {
        let st = ReadState::new(cfg, provider, cmm, reproduced_context, in_buf, out_buf);
        Self { inner, st }
    }

    /// Whether plaintext already returned belongs to a signed message whose signature has
    /// not verified yet (it verifies with the last frame; discard it on an error).
    pub fn has_unverified_plaintext(&self) -> bool {
        self.st.has_unverified_plaintext()
    }
}

/// Reads from `r` into `buf`, retrying `Interrupted`; other errors are passed on.
async fn read_retrying<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, StreamError<R::Error>> {
    loop {
        match r.read(buf).await {
            Ok(n) => return Ok(n.min(buf.len())),
            Err(e) if embedded_io::Error::kind(&e) == ErrorKind::Interrupted => {}
            Err(e) => return Err(StreamError::Io(e)),
        }
    }
}

impl<R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> ErrorType
    for DecryptingReader<'_, '_, R, P, M>
{
    type Error = StreamError<R::Error>;
}

impl<R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> Read
    for DecryptingReader<'_, '_, R, P, M>
{
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            // An I/O error of the inner reader is passed on and loses nothing.
            match self.st.advance(buf).map_err(StreamError::Esdk)? {
                Ok(n) => return Ok(n),
                Err(Want::Input) => {
                    let space = self.st.read_space().map_err(StreamError::Esdk)?;
                    let n = read_retrying(&mut self.inner, space).await?;
                    self.st.filled(n).map_err(StreamError::Esdk)?;
                }
                Err(Want::EndCheck) => {
                    let n = read_retrying(&mut self.inner, &mut [0u8; 1]).await?;
                    self.st.probed(n).map_err(StreamError::Esdk)?;
                }
            }
        }
    }
}
