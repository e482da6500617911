//! `embedded-io` adapters (feature `embedded-io`): stream a message through fixed caller
//! buffers, with no heap. Thin I/O loops over [`Encryptor`] and [`Decryptor`].
//!
//! Buffer sizes: the encrypting writer needs one frame of plaintext and one frame plus 32
//! bytes (plus the footer for signing suites) of output, and an output buffer that can hold
//! the header; the decrypting reader needs an input buffer that can hold the header and one
//! whole frame (with the footer for signing suites), and an output buffer of one frame.
//! A buffer that is too small gives [`Error::BufferTooSmall`] with the size needed.
//!
//! Plaintext release by the decrypting reader (there is no heap to hold more than a frame):
//! - the final frame (or a non-framed body) comes out only once the end of the message is
//!   confirmed: the reader checks that its inner reader has no byte after the message, and
//!   bytes after it are the error [`Error::TrailingBytes`] with the message length as
//!   offset, as the one-shot [`decrypt`](fn@crate::decrypt) reports them, with nothing of the
//!   final frame released;
//! - with a signed suite, plaintext of regular frames is released before the signature over
//!   the whole message is checked at the end: treat it as unverified until `read` returns
//!   `Ok(0)` ([`DecryptingReader::has_unverified_plaintext`]), or refuse signed messages
//!   with [`Config::unsigned_only`](crate::Config).
//!
//! I/O errors: an error of the inner reader or writer is passed on and loses nothing (the
//! call can be retried; `Interrupted` is retried internally). ESDK errors are sticky. An
//! inner writer that accepts nothing (`Ok(0)`) gives [`StreamError::WriteZero`].

use core::fmt;

use embedded_io::{ErrorKind, ErrorType, Read, Write};

use crate::config::{Config, EncryptOptions};
use crate::decrypt::{Decryptor, Status};
use crate::encrypt::Encryptor;
use crate::error::{ApiMisuse, Error};
use crate::keyring::CryptoMaterialsManager;
use crate::provider::CryptoProvider;
use zeroize::Zeroize;

/// An I/O error of the inner reader or writer, or an ESDK error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError<E> {
    /// The inner reader or writer failed.
    Io(E),
    /// The message or the configuration failed a check.
    Esdk(Error),
    /// The inner writer accepted no bytes (`Ok(0)`) of a non-empty write.
    WriteZero,
}

impl<E: fmt::Debug> fmt::Display for StreamError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Io(e) => write!(f, "I/O error: {e:?}"),
            StreamError::Esdk(e) => write!(f, "{e}"),
            StreamError::WriteZero => f.write_str("the inner writer accepted no bytes"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for StreamError<E> {}

impl<E: embedded_io::Error> embedded_io::Error for StreamError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            StreamError::Io(e) => e.kind(),
            StreamError::Esdk(_) => ErrorKind::InvalidData,
            StreamError::WriteZero => ErrorKind::WriteZero,
        }
    }
}

/// Writes `buf[*pos..]` to `w`, advancing `*pos` by what was accepted. `Interrupted` is
/// retried; any other error leaves the rest in place for the next call.
fn push<W: Write>(w: &mut W, buf: &[u8], pos: &mut usize) -> Result<(), StreamError<W::Error>> {
    while *pos < buf.len() {
        match w.write(&buf[*pos..]) {
            Ok(0) => return Err(StreamError::WriteZero),
            Ok(n) => *pos += n.min(buf.len() - *pos),
            Err(e) if embedded_io::Error::kind(&e) == ErrorKind::Interrupted => {}
            Err(e) => return Err(StreamError::Io(e)),
        }
    }
    Ok(())
}

/// The sealing state of an encrypting writer over caller buffers, shared by
/// [`EncryptingWriter`] and the `embedded-io-async` writer: the frame buffered in
/// `pending`, sealed bytes in `out` waiting for the inner writer.
pub(crate) struct Sealer<'a, 'b, P: CryptoProvider> {
    enc: Encryptor<'a, P>,
    pending: &'b mut [u8],
    filled: usize,
    out: &'b mut [u8],
    /// `out[out_pos..out_len]` is sealed but not yet written to the inner writer.
    out_pos: usize,
    out_len: usize,
    sealed_final: bool,
    failed: Option<Error>,
}

impl<'a, 'b, P: CryptoProvider> Sealer<'a, 'b, P> {
    /// Checks the buffers, gets the materials and writes the header into `out_buf`: it is
    /// the first thing [`unsent`](Self::unsent).
    pub(crate) fn new<M: CryptoMaterialsManager + ?Sized>(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &M,
        opts: &EncryptOptions,
        encryption_context: &mut [(&str, &str)],
        frame_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Result<Self, Error> {
        let mut s = Self::start(cfg, provider, opts, frame_buf, out_buf)?;
        s.write_header(cmm, encryption_context)?;
        Ok(s)
    }

    /// Checks the buffers; the header is not written yet
    /// ([`write_header`](Self::write_header)).
    fn start(
        cfg: &'a Config,
        provider: &'a P,
        opts: &EncryptOptions,
        frame_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Result<Self, Error> {
        let enc = Encryptor::new(cfg, provider, opts)?;
        let f = opts.frame_length as usize;
        let need_out = enc
            .finish_len(f)
            .max(f + crate::body::REGULAR_FRAME_OVERHEAD);
        if out_buf.len() < need_out {
            return Err(Error::BufferTooSmall { required: need_out });
        }
        let Some(pending) = frame_buf.get_mut(..f) else {
            return Err(Error::BufferTooSmall { required: f });
        };
        Ok(Self {
            enc,
            pending,
            filled: 0,
            out: out_buf,
            out_pos: 0,
            out_len: 0,
            sealed_final: false,
            failed: None,
        })
    }

    /// Gets the materials and writes the header into the output buffer: it is the first
    /// thing [`unsent`](Self::unsent).
    fn write_header<M: CryptoMaterialsManager + ?Sized>(
        &mut self,
        cmm: &M,
        encryption_context: &mut [(&str, &str)],
    ) -> Result<(), Error> {
        let n = self.enc.write_header(cmm, encryption_context, self.out)?;
        self.out_pos = 0;
        self.out_len = n;
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e);
        self.pending.zeroize();
        e
    }

    /// The sticky error, if any.
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.failed.map_or(Ok(()), Err)
    }

    /// Sealed bytes not yet taken by the inner writer.
    pub(crate) fn unsent(&self) -> &[u8] {
        &self.out[self.out_pos..self.out_len]
    }

    /// The inner writer took `n` bytes of [`unsent`](Self::unsent).
    pub(crate) fn sent(&mut self, n: usize) {
        self.out_pos += n.min(self.out_len - self.out_pos);
        if self.out_pos == self.out_len {
            self.out_pos = 0;
            self.out_len = 0;
        }
    }

    /// Takes plaintext from non-empty `data` while nothing is unsent: seals the buffered
    /// frame when it is full (a full frame is sealed only once more data follows: the last
    /// frame is the final one) and takes nothing, or buffers what fits.
    pub(crate) fn absorb(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.sealed_final {
            return Err(ApiMisuse::WrongState.into());
        }
        let f = self.pending.len();
        if self.filled == f {
            match self.enc.seal_frame(self.pending, self.out) {
                Ok(n) => {
                    self.out_pos = 0;
                    self.out_len = n;
                    self.filled = 0;
                }
                Err(e) => return Err(self.fail(e)),
            }
            return Ok(0);
        }
        let take = (f - self.filled).min(data.len());
        self.pending[self.filled..self.filled + take].copy_from_slice(&data[..take]);
        self.filled += take;
        Ok(take)
    }

    /// Seals the final frame and the footer (once, when nothing is unsent).
    pub(crate) fn seal_final(&mut self) -> Result<(), Error> {
        if !self.sealed_final {
            match self.enc.finish(&self.pending[..self.filled], self.out) {
                Ok(n) => {
                    self.out_pos = 0;
                    self.out_len = n;
                    self.sealed_final = true;
                    self.pending.zeroize();
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }
}

impl<P: CryptoProvider> fmt::Debug for Sealer<'_, '_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("encryptor", &self.enc)
            .field("buffered", &self.filled)
            .finish()
    }
}

/// Encrypts what is written to it into `inner`, through caller buffers. Call
/// [`finish`](Self::finish) at the end.
///
/// A sealed frame that `inner` did not take whole stays pending and goes out first at the
/// next call: `write` returns an I/O error only when it consumed nothing of its input.
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
    /// ESDK errors (including [`Error::BufferTooSmall`]) and I/O errors (after which
    /// `inner` may hold part of a header: discard it).
    #[allow(clippy::too_many_arguments)]
    pub fn new<M: CryptoMaterialsManager + ?Sized>(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &M,
        opts: &EncryptOptions,
        encryption_context: &mut [(&str, &str)],
        inner: W,
        frame_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Result<Self, StreamError<W::Error>> {
        let s = Sealer::new(
            cfg,
            provider,
            cmm,
            opts,
            encryption_context,
            frame_buf,
            out_buf,
        )
        .map_err(StreamError::Esdk)?;
        let mut w = Self { inner, s };
        w.push_out()?;
        Ok(w)
    }

    /// As [`new`](Self::new), but builds the writer in `slot` and returns it there: a
    /// caller's `static` or a local of the frame that uses the writer. The writer's state
    /// (the encryptor's: the key schedule and, for signing suites, the message hash and the
    /// signing key) is then never moved, and no copy of it sits in the frames the header's
    /// and the footer's computations run under (firmware stacks). On error `slot` is left
    /// `None`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    #[allow(clippy::too_many_arguments)]
    pub fn new_in<'s, M: CryptoMaterialsManager + ?Sized>(
        slot: &'s mut Option<Self>,
        cfg: &'a Config,
        provider: &'a P,
        cmm: &M,
        opts: &EncryptOptions,
        encryption_context: &mut [(&str, &str)],
        inner: W,
        frame_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Result<&'s mut Self, StreamError<W::Error>> {
        Self::place(slot, cfg, provider, opts, inner, frame_buf, out_buf)
            .map_err(StreamError::Esdk)?;
        let r = match slot.as_mut() {
            Some(w) => w.s.write_header(cmm, encryption_context),
            None => Err(ApiMisuse::WrongState.into()),
        };
        if let Err(e) = r {
            *slot = None;
            return Err(StreamError::Esdk(e));
        }
        // The header goes out now, as `new` sends it; a writer whose header could not be
        // sent is not left behind (as `new` drops it).
        let pushed = match slot.as_mut() {
            Some(w) => w.push_out(),
            None => return Err(StreamError::Esdk(ApiMisuse::WrongState.into())),
        };
        if let Err(e) = pushed {
            *slot = None;
            return Err(e);
        }
        slot.as_mut()
            .ok_or(StreamError::Esdk(ApiMisuse::WrongState.into()))
    }

    /// The writer with its buffers checked, before the header, into `slot`. Never
    /// inlined: the temporaries of its construction are gone when the header is written.
    #[inline(never)]
    fn place(
        slot: &mut Option<Self>,
        cfg: &'a Config,
        provider: &'a P,
        opts: &EncryptOptions,
        inner: W,
        frame_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Result<(), Error> {
        let s = Sealer::start(cfg, provider, opts, frame_buf, out_buf)?;
        *slot = Some(Self { inner, s });
        Ok(())
    }

    fn push_out(&mut self) -> Result<(), StreamError<W::Error>> {
        let mut pos = 0;
        let r = push(&mut self.inner, self.s.unsent(), &mut pos);
        self.s.sent(pos);
        r
    }

    /// Writes the final frame and the footer, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// ESDK and I/O errors (use [`try_finish`](Self::try_finish) to be able to retry after
    /// an I/O error).
    pub fn finish(mut self) -> Result<W, StreamError<W::Error>> {
        self.try_finish()?;
        Ok(self.inner)
    }

    /// As [`finish`](Self::finish), but keeps the writer: after an I/O error of `inner`,
    /// call it again; it goes on where it stopped.
    ///
    /// # Errors
    /// ESDK errors (sticky) and I/O errors.
    pub fn try_finish(&mut self) -> Result<(), StreamError<W::Error>> {
        self.s.check().map_err(StreamError::Esdk)?;
        self.push_out()?;
        self.s.seal_final().map_err(StreamError::Esdk)?;
        self.push_out()?;
        self.inner.flush().map_err(StreamError::Io)
    }
}

impl<W: Write, P: CryptoProvider> ErrorType for EncryptingWriter<'_, '_, W, P> {
    type Error = StreamError<W::Error>;
}

impl<W: Write, P: CryptoProvider> Write for EncryptingWriter<'_, '_, W, P> {
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        self.s.check().map_err(StreamError::Esdk)?;
        // What an earlier call sealed goes out first; an error here consumed nothing.
        self.push_out()?;
        if data.is_empty() {
            return Ok(0);
        }
        let mut n = self.s.absorb(data).map_err(StreamError::Esdk)?;
        if n == 0 {
            // A frame was sealed: on an error it stays pending and nothing of `data` was
            // taken.
            self.push_out()?;
            n = self.s.absorb(data).map_err(StreamError::Esdk)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.s.check().map_err(StreamError::Esdk)?;
        self.push_out()?;
        self.inner.flush().map_err(StreamError::Io)
    }
}

/// Where a decrypting reader stands with the end of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Running,
    /// The message verified; its final plaintext waits until the inner reader confirms
    /// that nothing follows.
    Check,
    Confirmed,
}

/// What a decrypting reader needs from its inner reader before it can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Input: read into [`ReadState::read_space`], then call [`ReadState::filled`].
    Input,
    /// The end check: read one byte, then call [`ReadState::probed`].
    EndCheck,
}

/// The state of a decrypting reader over caller buffers without its inner reader, shared by
/// [`DecryptingReader`] and the `embedded-io-async` reader.
pub(crate) struct ReadState<'a, 'b, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    cmm: &'a M,
    dec: Decryptor<'a, P>,
    inbuf: &'b mut [u8],
    start: usize,
    end: usize,
    need: usize,
    out: &'b mut [u8],
    out_pos: usize,
    out_len: usize,
    state: End,
    failed: Option<Error>,
    unverified: bool,
}

impl<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> fmt::Debug for ReadState<'_, '_, P, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadState")
            .field("decryptor", &self.dec)
            .field("state", &self.state)
            .finish()
    }
}

impl<'a, 'b, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> ReadState<'a, 'b, P, M> {
    pub(crate) fn new(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &'a M,
        reproduced_context: &'a [(&'a str, &'a str)],
        in_buf: &'b mut [u8],
        out_buf: &'b mut [u8],
    ) -> Self {
        Self {
            cmm,
            dec: Decryptor::new(cfg, provider, reproduced_context),
            inbuf: in_buf,
            start: 0,
            end: 0,
            need: 1,
            out: out_buf,
            out_pos: 0,
            out_len: 0,
            state: End::Running,
            failed: None,
            unverified: false,
        }
    }

    pub(crate) fn has_unverified_plaintext(&self) -> bool {
        self.unverified
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e);
        self.out.zeroize();
        self.out_pos = 0;
        self.out_len = 0;
        e
    }

    /// Room to read input into (the buffered input moved to the front when needed).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when the input buffer cannot hold the next step.
    pub(crate) fn read_space(&mut self) -> Result<&mut [u8], Error> {
        if self.need > self.inbuf.len() {
            return Err(Error::BufferTooSmall {
                required: self.need,
            });
        }
        if self.start + self.need > self.inbuf.len() {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        Ok(&mut self.inbuf[self.end..])
    }

    /// The inner reader put `n` bytes into [`read_space`](Self::read_space); 0 is the end
    /// of input inside the message: `Truncated`.
    pub(crate) fn filled(&mut self, n: usize) -> Result<(), Error> {
        if n == 0 {
            let offset = self.dec.offset() + (self.end - self.start);
            return Err(self.fail(Error::Truncated { offset }));
        }
        self.end += n.min(self.inbuf.len() - self.end);
        Ok(())
    }

    /// The inner reader gave `n` bytes (0 or 1) after the message: 0 confirms the end.
    pub(crate) fn probed(&mut self, n: usize) -> Result<(), Error> {
        if n > 0 {
            let offset = self.dec.offset();
            return Err(self.fail(Error::TrailingBytes { offset }));
        }
        self.state = End::Confirmed;
        Ok(())
    }

    /// Hands out plaintext into `buf` (`Ok(0)` at the confirmed end or for an empty `buf`),
    /// or says what is needed first.
    pub(crate) fn advance(&mut self, buf: &mut [u8]) -> Result<Result<usize, Want>, Error> {
        loop {
            self.failed.map_or(Ok(()), Err)?;
            if buf.is_empty() {
                return Ok(Ok(0));
            }
            if self.out_pos < self.out_len && self.state != End::Check {
                let n = (self.out_len - self.out_pos).min(buf.len());
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(Ok(n));
            }
            match self.state {
                End::Confirmed => return Ok(Ok(0)),
                End::Check if self.end > self.start => {
                    let offset = self.dec.offset();
                    return Err(self.fail(Error::TrailingBytes { offset }));
                }
                End::Check => return Ok(Err(Want::EndCheck)),
                End::Running => {}
            }
            if self.end - self.start < self.need {
                return Ok(Err(Want::Input));
            }
            let p =
                match self
                    .dec
                    .process_with(self.cmm, &self.inbuf[self.start..self.end], self.out)
                {
                    Ok(p) => p,
                    // The caller's buffers are too small: nothing changed.
                    Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                    Err(e) => return Err(self.fail(e)),
                };
            self.start += p.consumed;
            self.out_pos = 0;
            self.out_len = p.written;
            match p.status {
                Status::NeedInput { min } => self.need = min,
                Status::Done => {
                    self.unverified = false;
                    self.state = End::Check;
                }
                // `process_with` resolves `NeedDataKey` itself.
                Status::Header | Status::NeedDataKey => self.need = 1,
                Status::Plaintext { verified } => {
                    self.need = 1;
                    self.unverified = !verified;
                }
            }
        }
    }
}

/// Decrypts the message `inner` yields, through caller buffers; read the plaintext from it.
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
fn read_retrying<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, StreamError<R::Error>> {
    loop {
        match r.read(buf) {
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
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            // An I/O error of the inner reader is passed on and loses nothing.
            match self.st.advance(buf).map_err(StreamError::Esdk)? {
                Ok(n) => return Ok(n),
                Err(Want::Input) => {
                    let space = self.st.read_space().map_err(StreamError::Esdk)?;
                    let n = read_retrying(&mut self.inner, space)?;
                    self.st.filled(n).map_err(StreamError::Esdk)?;
                }
                Err(Want::EndCheck) => {
                    let n = read_retrying(&mut self.inner, &mut [0u8; 1])?;
                    self.st.probed(n).map_err(StreamError::Esdk)?;
                }
            }
        }
    }
}
