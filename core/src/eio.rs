//! `embedded-io` adapters (feature `embedded-io`): stream a message through fixed caller
//! buffers, with no heap. Thin I/O loops over [`Encryptor`] and [`Decryptor`].
//!
//! Buffer sizes: the encrypting writer needs one frame of plaintext and one frame plus 32
//! bytes (plus the footer for signing suites) of output, and an output buffer that can hold
//! the header; the decrypting reader needs an input buffer that can hold the header and one
//! whole frame (with the footer for signing suites), and an output buffer of one frame.
//! A buffer that is too small gives [`Error::BufferTooSmall`] with the size needed.
//!
//! With a signed suite, plaintext of regular frames is released before the signature over
//! the whole message is checked at the end: treat it as unverified until `read` returns
//! `Ok(0)`.

use core::fmt;

use embedded_io::{ErrorKind, ErrorType, Read, Write};

use crate::config::{Config, EncryptOptions};
use crate::decrypt::{Decryptor, Status};
use crate::encrypt::Encryptor;
use crate::error::Error;
use crate::keyring::CryptoMaterialsManager;
use crate::provider::CryptoProvider;

/// An I/O error of the inner reader or writer, or an ESDK error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError<E> {
    /// The inner reader or writer failed.
    Io(E),
    /// The message or the configuration failed a check.
    Esdk(Error),
}

impl<E: fmt::Debug> fmt::Display for StreamError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Io(e) => write!(f, "I/O error: {e:?}"),
            StreamError::Esdk(e) => write!(f, "{e}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for StreamError<E> {}

impl<E: embedded_io::Error> embedded_io::Error for StreamError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            StreamError::Io(e) => e.kind(),
            StreamError::Esdk(_) => ErrorKind::InvalidData,
        }
    }
}

/// Encrypts what is written to it into `inner`, through caller buffers. Call
/// [`finish`](Self::finish) at the end.
pub struct EncryptingWriter<'a, 'b, W: Write, P: CryptoProvider> {
    inner: W,
    enc: Encryptor<'a, P>,
    pending: &'b mut [u8],
    filled: usize,
    out: &'b mut [u8],
}

impl<W: Write, P: CryptoProvider> fmt::Debug for EncryptingWriter<'_, '_, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("encryptor", &self.enc)
            .field("buffered", &self.filled)
            .finish()
    }
}

impl<'a, 'b, W: Write, P: CryptoProvider> EncryptingWriter<'a, 'b, W, P> {
    /// Gets the materials, writes the header to `inner` and returns the writer.
    /// `frame_buf` must hold one frame; `out_buf` the header, and one frame plus overhead.
    ///
    /// # Errors
    /// ESDK errors (including [`Error::BufferTooSmall`]) and I/O errors.
    #[allow(clippy::too_many_arguments)]
    pub fn new<M: CryptoMaterialsManager + ?Sized>(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &M,
        opts: &EncryptOptions,
        encryption_context: &mut [(&str, &str)],
        mut inner: W,
        frame_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Result<Self, StreamError<W::Error>> {
        let mut enc = Encryptor::new(cfg, provider, opts).map_err(StreamError::Esdk)?;
        let f = opts.frame_length as usize;
        let need_out = enc
            .finish_len(f)
            .max(f + crate::body::REGULAR_FRAME_OVERHEAD);
        if out_buf.len() < need_out {
            return Err(StreamError::Esdk(Error::BufferTooSmall {
                required: need_out,
            }));
        }
        let Some(pending) = frame_buf.get_mut(..f) else {
            return Err(StreamError::Esdk(Error::BufferTooSmall { required: f }));
        };
        let n = enc
            .write_header(cmm, encryption_context, out_buf)
            .map_err(StreamError::Esdk)?;
        inner.write_all(&out_buf[..n]).map_err(StreamError::Io)?;
        Ok(Self {
            inner,
            enc,
            pending,
            filled: 0,
            out: out_buf,
        })
    }

    /// Writes the final frame and the footer, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// ESDK and I/O errors.
    pub fn finish(mut self) -> Result<W, StreamError<W::Error>> {
        let n = self
            .enc
            .finish(&self.pending[..self.filled], self.out)
            .map_err(StreamError::Esdk)?;
        self.inner
            .write_all(&self.out[..n])
            .map_err(StreamError::Io)?;
        self.inner.flush().map_err(StreamError::Io)?;
        Ok(self.inner)
    }
}

impl<W: Write, P: CryptoProvider> ErrorType for EncryptingWriter<'_, '_, W, P> {
    type Error = StreamError<W::Error>;
}

impl<W: Write, P: CryptoProvider> Write for EncryptingWriter<'_, '_, W, P> {
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        let f = self.pending.len();
        if self.filled == f && !data.is_empty() {
            // A full frame is sealed only once more data follows: the last frame is the final one.
            let n = self
                .enc
                .seal_frame(self.pending, self.out)
                .map_err(StreamError::Esdk)?;
            self.inner
                .write_all(&self.out[..n])
                .map_err(StreamError::Io)?;
            self.filled = 0;
        }
        let take = (f - self.filled).min(data.len());
        self.pending[self.filled..self.filled + take].copy_from_slice(&data[..take]);
        self.filled += take;
        Ok(take)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().map_err(StreamError::Io)
    }
}

/// Decrypts the message `inner` yields, through caller buffers; read the plaintext from it.
/// `read` returns `Ok(0)` once the whole message verified.
pub struct DecryptingReader<'a, 'b, R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>
{
    inner: R,
    dec: Decryptor<'a, P, M>,
    inbuf: &'b mut [u8],
    start: usize,
    end: usize,
    need: usize,
    out: &'b mut [u8],
    out_pos: usize,
    out_len: usize,
    done: bool,
}

impl<R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> fmt::Debug
    for DecryptingReader<'_, '_, R, P, M>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("decryptor", &self.dec)
            .field("done", &self.done)
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
        Self {
            inner,
            dec: Decryptor::new(cfg, provider, cmm, reproduced_context),
            inbuf: in_buf,
            start: 0,
            end: 0,
            need: 1,
            out: out_buf,
            out_pos: 0,
            out_len: 0,
            done: false,
        }
    }

    fn fill(&mut self) -> Result<(), StreamError<R::Error>> {
        if self.need > self.inbuf.len() {
            return Err(StreamError::Esdk(Error::BufferTooSmall {
                required: self.need,
            }));
        }
        if self.start + self.need > self.inbuf.len() {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self
            .inner
            .read(&mut self.inbuf[self.end..])
            .map_err(StreamError::Io)?;
        if n == 0 {
            let offset = self.dec.offset() + (self.end - self.start);
            return Err(StreamError::Esdk(Error::Truncated { offset }));
        }
        self.end += n;
        Ok(())
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
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            if self.out_pos < self.out_len {
                let n = (self.out_len - self.out_pos).min(buf.len());
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if self.end - self.start < self.need {
                self.fill()?;
                continue;
            }
            let p = self
                .dec
                .process(&self.inbuf[self.start..self.end], self.out)
                .map_err(StreamError::Esdk)?;
            self.start += p.consumed;
            self.out_pos = 0;
            self.out_len = p.written;
            match p.status {
                Status::NeedInput { min } => self.need = min,
                Status::Done => {
                    self.done = true;
                    if self.end > self.start {
                        let offset = self.dec.offset();
                        return Err(StreamError::Esdk(Error::TrailingBytes { offset }));
                    }
                }
                Status::Header | Status::Plaintext { .. } => self.need = 1,
            }
        }
    }
}
