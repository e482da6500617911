//! Streaming over `std::io` in memory bounded by the frame length, not the message length.
//!
//! - [`EncryptingWriter`]: plaintext in through [`Write`], message out to an inner writer.
//! - [`DecryptingReader`]: message in from an inner reader, plaintext out through [`Read`].
//! - [`DecryptingWriter`]: message in through [`Write`], plaintext out to an inner writer.
//! - [`encrypt_stream`] / [`decrypt_stream`]: copy a whole stream.
//!
//! All of them are thin I/O loops over the core's [`Encryptor`] and [`Decryptor`]: there is
//! one implementation of the format.
//!
//! Errors from the ESDK come back as [`io::Error`]s of kind `InvalidData` (or
//! `UnexpectedEof` for a truncated message) carrying the core [`Error`]; get it back with
//! [`esdk_error`].
//!
//! <div class="warning">
//!
//! With a **signed** suite (the default 0x0578), regular frames are released as soon as their
//! tag verifies, but the signature over the whole message is checked only at the end (the
//! final frame is released only after it). Until the stream reports its end without error,
//! treat what you have read as unverified, and discard it if an error comes. Use
//! [`Config::unsigned_only`](esdk_core::Config) to refuse signed messages, or the one-shot
//! [`decrypt`](crate::decrypt), which releases nothing before everything is verified.
//!
//! </div>

use std::io::{self, Read, Write};

use esdk_core::error::Error;
use esdk_core::{
    Config, CryptoMaterialsManager, CryptoProvider, Decryptor, EncryptOptions, Encryptor, Status,
};

/// Input is read in chunks of at least this size.
const READ_CHUNK: usize = 64 * 1024;

/// Converts a core error into an `io::Error` that carries it.
pub fn io_error(e: Error) -> io::Error {
    let kind = match e {
        Error::Truncated { .. } => io::ErrorKind::UnexpectedEof,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

/// The ESDK error inside an `io::Error` produced by this module, if any.
pub fn esdk_error(e: &io::Error) -> Option<Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .copied()
}

/// Encrypts what is written to it and writes the message to `inner`, one frame at a time.
///
/// The header is written when the writer is created. Call [`finish`](Self::finish) at the
/// end: it writes the final frame and the footer. A writer dropped without `finish` leaves an
/// incomplete message that every decryptor rejects as truncated (never a shorter valid one).
pub struct EncryptingWriter<'a, W: Write, P: CryptoProvider> {
    inner: W,
    enc: Encryptor<'a, P>,
    frame_len: usize,
    pending: Vec<u8>,
    out: Vec<u8>,
    written: u64,
}

impl<W: Write, P: CryptoProvider> std::fmt::Debug for EncryptingWriter<'_, W, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("encryptor", &self.enc)
            .field("buffered", &self.pending.len())
            .field("written", &self.written)
            .finish()
    }
}

impl<'a, W: Write, P: CryptoProvider> EncryptingWriter<'a, W, P> {
    /// Gets the materials from `cmm`, writes the header to `inner`, and returns the writer.
    ///
    /// # Errors
    /// ESDK errors (policy, keyring) and I/O errors of `inner`.
    pub fn new<M: CryptoMaterialsManager + ?Sized>(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &M,
        opts: &EncryptOptions,
        encryption_context: &[(&str, &str)],
        mut inner: W,
    ) -> io::Result<Self> {
        let mut enc = Encryptor::new(cfg, provider, opts).map_err(io_error)?;
        let mut ec: Vec<(&str, &str)> = encryption_context.to_vec();
        // Size the header buffer up front (exactly when the keyring can tell its EDK sizes):
        // a retry after `BufferTooSmall` runs the CMM again (a second KMS call, a second
        // cache use, a second data key) and draws a second message id.
        let ec_estimate = encryption_context.iter().fold(2 + 128, |n: usize, (k, v)| {
            n.saturating_add(4 + k.len() + v.len())
        });
        let first = esdk_core::encrypted_len(cfg, opts, cmm, encryption_context, 0)
            .unwrap_or(0)
            .max(4096usize.saturating_add(ec_estimate));
        let mut out = vec![0u8; first];
        let n = loop {
            match enc.write_header(cmm, &mut ec, &mut out) {
                Ok(n) => break n,
                Err(Error::BufferTooSmall { required }) => {
                    let grow = required.max(out.len() * 2);
                    out.resize(grow, 0);
                }
                Err(e) => return Err(io_error(e)),
            }
        };
        inner.write_all(&out[..n])?;
        let frame_len = opts.frame_length as usize;
        let out_len = enc
            .finish_len(frame_len)
            .max(frame_len + esdk_core::body::REGULAR_FRAME_OVERHEAD);
        out.clear();
        out.resize(out_len, 0);
        Ok(Self {
            inner,
            enc,
            frame_len,
            pending: Vec::with_capacity(frame_len),
            out,
            written: n as u64,
        })
    }

    fn seal(&mut self, chunk_from_pending: bool, data: &[u8]) -> io::Result<()> {
        let chunk = if chunk_from_pending {
            &self.pending[..]
        } else {
            data
        };
        let n = self
            .enc
            .seal_frame(chunk, &mut self.out)
            .map_err(io_error)?;
        self.inner.write_all(&self.out[..n])?;
        self.written += n as u64;
        Ok(())
    }

    /// Writes the final frame and the footer, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// ESDK errors (signing) and I/O errors of `inner`.
    pub fn finish(mut self) -> io::Result<W> {
        self.finish_in_place()?;
        Ok(self.inner)
    }

    fn finish_in_place(&mut self) -> io::Result<()> {
        let n = self
            .enc
            .finish(&self.pending, &mut self.out)
            .map_err(io_error)?;
        self.inner.write_all(&self.out[..n])?;
        self.written += n as u64;
        self.inner.flush()
    }

    /// Bytes of message written to the inner writer so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }
}

impl<W: Write, P: CryptoProvider> Write for EncryptingWriter<'_, W, P> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        let f = self.frame_len;
        // A full buffered frame is sealed only when more data follows: the last frame is
        // always the final frame, full when the plaintext is an exact multiple.
        while !data.is_empty() {
            if self.pending.len() == f {
                self.seal(true, &[])?;
                self.pending.clear();
            }
            if self.pending.is_empty() && data.len() > f {
                // Straight from the caller's slice: no copy into the buffer.
                self.seal(false, &data[..f])?;
                data = &data[f..];
                continue;
            }
            let take = (f - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Input buffering and stepping shared by [`DecryptingReader`] and [`DecryptingWriter`].
struct Pump<'a, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    dec: Decryptor<'a, P, M>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Input length the decryptor needs before its next step.
    need: usize,
    unverified: bool,
}

enum Event {
    NeedInput,
    /// Plaintext of a regular frame.
    Plaintext(usize),
    /// The message is complete; the final frame's plaintext.
    Done(usize),
}

impl<'a, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> Pump<'a, P, M> {
    fn new(dec: Decryptor<'a, P, M>) -> Self {
        Self {
            dec,
            buf: Vec::new(),
            start: 0,
            end: 0,
            need: 1,
            unverified: false,
        }
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    /// How many more bytes of input to accept next: at least [`READ_CHUNK`] (fewer reads),
    /// more when the decryptor asks for more, but never more than the bytes already
    /// buffered, so the buffer at most doubles per step. Memory is thus bounded by what
    /// actually arrived, never by a length the message claims (a header claiming a 4 GiB
    /// frame or a 64 GiB non-framed body, followed by a few bytes, costs a few KiB), and a
    /// long header or frame is taken in geometrically growing pieces (linear time).
    fn next_room(&self) -> usize {
        let avail = self.available();
        let missing = self.need.saturating_sub(avail);
        missing.min(avail).max(READ_CHUNK)
    }

    /// Room to append at least `extra` bytes of input; compacts and grows as needed.
    fn space(&mut self, extra: usize) -> &mut [u8] {
        if self.start > 0 && self.buf.len() - self.end < extra {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.end + extra;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        &mut self.buf[self.end..]
    }

    fn commit(&mut self, n: usize) {
        self.end += n;
    }

    /// One step of the decryptor on the buffered input, writing plaintext to `out`.
    fn step(&mut self, out: &mut [u8]) -> Result<Event, Error> {
        loop {
            if self.available() < self.need {
                return Ok(Event::NeedInput);
            }
            let p = self.dec.process(&self.buf[self.start..self.end], out)?;
            self.start += p.consumed;
            match p.status {
                Status::NeedInput { min } => {
                    self.need = min;
                    return Ok(Event::NeedInput);
                }
                Status::Header => self.need = 1,
                Status::Plaintext { verified } => {
                    self.need = 1;
                    self.unverified = !verified;
                    return Ok(Event::Plaintext(p.written));
                }
                Status::Done => {
                    self.unverified = false;
                    return Ok(Event::Done(p.written));
                }
            }
        }
    }

    fn truncated(&self) -> Error {
        Error::Truncated {
            offset: self.dec.offset() + self.available(),
        }
    }
}

/// Decrypts a message read from `inner`; read the plaintext from it.
///
/// Memory is bounded by the frame length (plus the header): one frame of input and one of
/// output. Reading returns `Ok(0)` only once the whole message, footer included, verified and
/// the inner reader is exhausted; bytes after the message are an error. See the module's
/// warning about signed messages.
pub struct DecryptingReader<'a, R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    inner: R,
    pump: Pump<'a, P, M>,
    out: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    done: bool,
    failed: Option<Error>,
}

impl<R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> std::fmt::Debug
    for DecryptingReader<'_, R, P, M>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("decryptor", &self.pump.dec)
            .field("done", &self.done)
            .finish()
    }
}

impl<'a, R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>
    DecryptingReader<'a, R, P, M>
{
    /// A reader decrypting the message that `inner` yields. `reproduced_context` as in
    /// [`Decryptor::new`].
    pub fn new(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &'a M,
        reproduced_context: &'a [(&'a str, &'a str)],
        inner: R,
    ) -> Self {
        Self {
            inner,
            pump: Pump::new(Decryptor::new(cfg, provider, cmm, reproduced_context)),
            out: Vec::new(),
            out_pos: 0,
            out_len: 0,
            done: false,
            failed: None,
        }
    }

    /// Whether plaintext already returned is not yet covered by a verified signature.
    pub fn has_unverified_plaintext(&self) -> bool {
        self.pump.unverified && !self.done
    }

    /// The suite of the message, once its header was read.
    pub fn suite(&self) -> Option<esdk_core::AlgorithmSuite> {
        self.pump.dec.suite()
    }

    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&mut self, e: Error) -> io::Error {
        self.failed = Some(e);
        io_error(e)
    }

    fn check_end(&mut self) -> io::Result<()> {
        let offset = self.pump.dec.offset();
        if self.pump.available() > 0 {
            return Err(self.fail(Error::TrailingBytes { offset }));
        }
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(self.fail(Error::TrailingBytes { offset })),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> Read
    for DecryptingReader<'_, R, P, M>
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.failed {
            return Err(io_error(e));
        }
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
            // Decrypt straight into the caller's buffer when the frame fits, else into ours.
            let direct = self.pump.step(buf);
            let ev = match direct {
                Err(Error::BufferTooSmall { required }) => {
                    if self.out.len() < required {
                        self.out.resize(required, 0);
                    }
                    match self.pump.step(&mut self.out) {
                        Ok(Event::Plaintext(n)) => {
                            self.out_pos = 0;
                            self.out_len = n;
                            continue;
                        }
                        Ok(Event::Done(n)) => {
                            self.out_pos = 0;
                            self.out_len = n;
                            self.done = true;
                            self.check_end()?;
                            continue;
                        }
                        other => other,
                    }
                }
                other => other,
            };
            match ev {
                Ok(Event::Plaintext(0)) => continue,
                Ok(Event::Plaintext(n)) => return Ok(n),
                Ok(Event::Done(n)) => {
                    self.done = true;
                    self.check_end()?;
                    return Ok(n);
                }
                Ok(Event::NeedInput) => {
                    let room = self.pump.next_room();
                    let space = self.pump.space(room);
                    let n = match self.inner.read(space) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    if n == 0 {
                        let e = self.pump.truncated();
                        return Err(self.fail(e));
                    }
                    self.pump.commit(n);
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }
}

/// Decrypts a message written to it and writes the plaintext to `inner`. Call
/// [`finish`](Self::finish) at the end: it fails if the message was incomplete. See the
/// module's warning about signed messages.
pub struct DecryptingWriter<'a, W: Write, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    inner: W,
    pump: Pump<'a, P, M>,
    out: Vec<u8>,
    done: bool,
    failed: Option<Error>,
}

impl<W: Write, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> std::fmt::Debug
    for DecryptingWriter<'_, W, P, M>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingWriter")
            .field("decryptor", &self.pump.dec)
            .field("done", &self.done)
            .finish()
    }
}

impl<'a, W: Write, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>
    DecryptingWriter<'a, W, P, M>
{
    /// A writer decrypting into `inner`.
    pub fn new(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &'a M,
        reproduced_context: &'a [(&'a str, &'a str)],
        inner: W,
    ) -> Self {
        Self {
            inner,
            pump: Pump::new(Decryptor::new(cfg, provider, cmm, reproduced_context)),
            out: Vec::new(),
            done: false,
            failed: None,
        }
    }

    /// Checks that the whole message arrived and verified; returns the inner writer.
    ///
    /// # Errors
    /// A truncated message, or the error that stopped decryption earlier.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.failed {
            return Err(io_error(e));
        }
        if !self.done {
            return Err(io_error(self.pump.truncated()));
        }
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn drain(&mut self) -> io::Result<()> {
        loop {
            match self.pump.step(&mut self.out) {
                Ok(Event::Plaintext(n)) => self.inner.write_all(&self.out[..n])?,
                Ok(Event::Done(n)) => {
                    self.inner.write_all(&self.out[..n])?;
                    self.done = true;
                    return Ok(());
                }
                Ok(Event::NeedInput) => return Ok(()),
                Err(Error::BufferTooSmall { required }) => self.out.resize(required, 0),
                Err(e) => {
                    self.failed = Some(e);
                    return Err(io_error(e));
                }
            }
        }
    }
}

impl<W: Write, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> Write
    for DecryptingWriter<'_, W, P, M>
{
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.failed {
            return Err(io_error(e));
        }
        if self.done {
            if data.is_empty() {
                return Ok(0);
            }
            let e = Error::TrailingBytes {
                offset: self.pump.dec.offset() + self.pump.available(),
            };
            self.failed = Some(e);
            return Err(io_error(e));
        }
        // Accept no more than `next_room` (one read chunk, or what the next step needs but
        // at most doubling the buffer), so memory stays bounded by the frame length and by
        // what actually arrived, whatever the caller's write size or the claimed lengths.
        let take = data.len().min(self.pump.next_room());
        let space = self.pump.space(take);
        space[..take].copy_from_slice(&data[..take]);
        self.pump.commit(take);
        self.drain()?;
        if self.done && self.pump.available() > 0 {
            let e = Error::TrailingBytes {
                offset: self.pump.dec.offset(),
            };
            self.failed = Some(e);
            return Err(io_error(e));
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypts everything `reader` yields into `writer` with the default provider; returns the
/// message length.
///
/// # Errors
/// ESDK and I/O errors.
pub fn encrypt_stream<M: CryptoMaterialsManager + ?Sized, R: Read, W: Write>(
    cfg: &Config,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    mut reader: R,
    writer: W,
) -> io::Result<u64> {
    let mut w = EncryptingWriter::new(
        cfg,
        &crate::DEFAULT_PROVIDER,
        cmm,
        opts,
        encryption_context,
        writer,
    )?;
    io::copy(&mut reader, &mut w)?;
    w.finish_in_place()?;
    Ok(w.written)
}

/// Decrypts the message `reader` yields into `writer` with the default provider; returns the
/// plaintext length. With a signed message, what was written before an error is unverified:
/// discard it (write to a temporary file and rename on success).
///
/// # Errors
/// ESDK and I/O errors.
pub fn decrypt_stream<M: CryptoMaterialsManager + ?Sized, R: Read, W: Write>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    reader: R,
    mut writer: W,
) -> io::Result<u64> {
    let mut r = DecryptingReader::new(
        cfg,
        &crate::DEFAULT_PROVIDER,
        cmm,
        reproduced_context,
        reader,
    );
    let n = io::copy(&mut r, &mut writer)?;
    writer.flush()?;
    Ok(n)
}
