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
//! [`esdk_error`]. They are sticky: every later call returns the same error. An I/O error of
//! the inner reader or writer is passed on as it is and loses nothing: the call can be
//! retried (after `Interrupted`, which is retried internally, or `WouldBlock`), and the
//! output stays byte-exact. An inner writer that accepts nothing (`Ok(0)`) gives `WriteZero`.
//!
//! # Plaintext release
//!
//! - The **final frame** (or a non-framed body) is released only once the end of the message
//!   is confirmed: the reader first checks that its inner reader has no byte after the
//!   message, and the decrypting writer holds it until [`DecryptingWriter::finish`]. Bytes
//!   after the message are the error [`Error::TrailingBytes`] with the message length as
//!   offset, exactly as the one-shot [`decrypt`](crate::decrypt) reports them, and nothing of
//!   the final frame comes out.
//! - **Unsigned** messages: regular frames are released as soon as their tag verifies.
//! - **Signed** messages (the default suite 0x0578): the signature over the whole message
//!   is checked only at its end, so by default the decrypting reader and writer release
//!   nothing before it verified. They hold the plaintext in memory, up to
//!   [`DEFAULT_SIGNED_BUFFER_LIMIT`] bytes (`with_signed_buffer_limit` changes it); a longer
//!   message fails with [`PolicyViolation::SignedBufferLimit`]. Memory stays bounded by the
//!   limit plus one frame.
//!
//! <div class="warning">
//!
//! With `release_unverified_plaintext(true)`, the regular frames of a signed message are
//! released as soon as their tag verifies, before the signature is checked. Until the
//! stream reports its end without error, treat what you have read as unverified
//! (`has_unverified_plaintext`), and discard it if an error comes. Alternatives: refuse
//! signed messages with [`Config::unsigned_only`](esdk_core::Config), or use the one-shot
//! [`decrypt`](crate::decrypt), which releases nothing before everything is verified.
//!
//! </div>

use std::fs::File;
use std::io::{self, Read, Write};

use esdk_core::error::{ApiMisuse, Error, PolicyViolation};
use esdk_core::{
    Config, CryptoMaterialsManager, CryptoProvider, Decryptor, EncryptOptions, Encryptor, Status,
};
use zeroize::Zeroize;

use crate::parallel::oneshot::PARALLEL_MIN;
use crate::parallel::pipeline;

/// Input is read in chunks of at least this size.
const READ_CHUNK: usize = 64 * 1024;

/// How much plaintext of a signed message the decrypting reader and writer hold, by
/// default, until its signature verifies: 64 MiB.
pub const DEFAULT_SIGNED_BUFFER_LIMIT: usize = 64 << 20;

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

pub(crate) fn write_zero(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::WriteZero,
        format!("the inner writer accepted no bytes of {what}"),
    )
}

/// Writes `buf[*pos..]` to `w`, advancing `*pos` by what was accepted. `Interrupted` is
/// retried; any other error leaves the rest in place for the next call.
fn push(w: &mut impl Write, buf: &[u8], pos: &mut usize, what: &str) -> io::Result<()> {
    while *pos < buf.len() {
        match w.write(&buf[*pos..]) {
            Ok(0) => return Err(write_zero(what)),
            Ok(n) => *pos += n.min(buf.len() - *pos),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The sealing state of an encrypting writer, shared by [`EncryptingWriter`] and the tokio
/// writer: plaintext buffered up to a frame, sealed bytes waiting for the inner writer.
pub(crate) struct Sealer<'a, P: CryptoProvider> {
    enc: Encryptor<'a, P>,
    frame_len: usize,
    pending: Vec<u8>,
    out: Vec<u8>,
    /// `out[out_pos..out_len]` is sealed but not yet written to the inner writer.
    out_pos: usize,
    out_len: usize,
    /// The final frame and footer are sealed (into `out`).
    sealed_final: bool,
    pub(crate) failed: Option<Error>,
    pub(crate) written: u64,
}

impl<'a, P: CryptoProvider> Sealer<'a, P> {
    /// A sealer after the header, which `enc` wrote into `header`: the header goes out first.
    pub(crate) fn new(enc: Encryptor<'a, P>, frame_length: u32, mut header: Vec<u8>) -> Self {
        let n = header.len();
        let frame_len = frame_length as usize;
        let out_len = enc
            .finish_len(frame_len)
            .max(frame_len + esdk_core::body::REGULAR_FRAME_OVERHEAD);
        header.resize(out_len.max(n), 0);
        Self {
            enc,
            frame_len,
            pending: Vec::with_capacity(frame_len),
            out: header,
            out_pos: 0,
            out_len: n,
            sealed_final: false,
            failed: None,
            written: 0,
        }
    }

    pub(crate) fn fail(&mut self, e: Error) -> io::Error {
        self.failed = Some(e);
        self.pending.zeroize();
        io_error(e)
    }

    /// The sticky error, if any.
    pub(crate) fn check(&self) -> io::Result<()> {
        match self.failed {
            Some(e) => Err(io_error(e)),
            None => Ok(()),
        }
    }

    /// Sealed bytes not yet taken by the inner writer.
    pub(crate) fn unsent(&self) -> &[u8] {
        &self.out[self.out_pos..self.out_len]
    }

    /// The inner writer took `n` bytes of [`unsent`](Self::unsent).
    pub(crate) fn sent(&mut self, n: usize) {
        let n = n.min(self.out_len - self.out_pos);
        self.out_pos += n;
        self.written += n as u64;
        if self.out_pos == self.out_len {
            self.out_pos = 0;
            self.out_len = 0;
        }
    }

    /// Before taking plaintext: the final frame must not be sealed yet.
    pub(crate) fn open(&self) -> io::Result<()> {
        if self.sealed_final {
            return Err(io_error(ApiMisuse::WrongState.into()));
        }
        Ok(())
    }

    fn seal(&mut self, from_pending: bool, data: &[u8]) -> io::Result<()> {
        let chunk = if from_pending {
            &self.pending[..]
        } else {
            data
        };
        match self.enc.seal_frame(chunk, &mut self.out) {
            Ok(n) => {
                self.out_pos = 0;
                self.out_len = n;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Takes plaintext from non-empty `data` while nothing is unsent: buffers it, or seals
    /// one frame (from the buffer or straight from `data`); returns the bytes taken. A full
    /// buffered frame is sealed only when more data follows: the last frame is always the
    /// final frame, full when the plaintext is an exact multiple.
    pub(crate) fn absorb(&mut self, data: &[u8]) -> io::Result<usize> {
        let f = self.frame_len;
        if self.pending.len() == f {
            self.seal(true, &[])?;
            self.pending.clear();
            Ok(0)
        } else if self.pending.is_empty() && data.len() > f {
            // Straight from the caller's slice: no copy into the buffer.
            self.seal(false, &data[..f])?;
            Ok(f)
        } else {
            let take = (f - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            Ok(take)
        }
    }

    /// Seals the final frame and the footer (once, when nothing is unsent).
    pub(crate) fn seal_final(&mut self) -> io::Result<()> {
        if !self.sealed_final {
            match self.enc.finish(&self.pending, &mut self.out) {
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

impl<P: CryptoProvider> std::fmt::Debug for Sealer<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("encryptor", &self.enc)
            .field("buffered", &self.pending.len())
            .field("written", &self.written)
            .finish()
    }
}

/// An encryptor with its header written (into the returned `Vec`) with materials from
/// `cmm`, for the encrypting writers. The CMM runs once (one KMS call, one cache use, one
/// data key), whatever the header's size.
pub(crate) fn encryptor<'a, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &'a Config,
    provider: &'a P,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
) -> io::Result<(Encryptor<'a, P>, Vec<u8>)> {
    let mut enc = Encryptor::new(cfg, provider, opts).map_err(io_error)?;
    let mut header = Vec::new();
    crate::header::write_header(&mut enc, cmm, encryption_context, &mut header)
        .map_err(io_error)?;
    Ok((enc, header))
}

/// Encrypts what is written to it and writes the message to `inner`, one frame at a time.
///
/// The header is written when the writer is created. Call [`finish`](Self::finish) at the
/// end: it writes the final frame and the footer. A writer dropped without `finish` leaves an
/// incomplete message that every decryptor rejects as truncated (never a shorter valid one).
///
/// A sealed frame that the inner writer did not take whole stays pending and goes out first
/// at the next call, so a failed or short write of `inner` loses nothing: `write` returns
/// the error only when it consumed nothing of its input, and otherwise the count consumed.
pub struct EncryptingWriter<'a, W: Write, P: CryptoProvider> {
    inner: W,
    s: Sealer<'a, P>,
}

impl<W: Write, P: CryptoProvider> std::fmt::Debug for EncryptingWriter<'_, W, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("sealer", &self.s)
            .finish()
    }
}

impl<'a, W: Write, P: CryptoProvider> EncryptingWriter<'a, W, P> {
    /// Gets the materials from `cmm`, writes the header to `inner`, and returns the writer.
    ///
    /// # Errors
    /// ESDK errors (policy, keyring) and I/O errors of `inner`. After an I/O error `inner`
    /// may hold part of a header: discard it (no plaintext was taken yet).
    pub fn new<M: CryptoMaterialsManager + ?Sized>(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &M,
        opts: &EncryptOptions,
        encryption_context: &[(&str, &str)],
        inner: W,
    ) -> io::Result<Self> {
        let (enc, header) = encryptor(cfg, provider, cmm, opts, encryption_context)?;
        Self::with_header(enc, opts.frame_length, header, inner)
    }

    /// Writes `header` (which `enc` wrote) to `inner` and returns the writer.
    pub(crate) fn with_header(
        enc: Encryptor<'a, P>,
        frame_length: u32,
        header: Vec<u8>,
        inner: W,
    ) -> io::Result<Self> {
        let mut w = Self {
            inner,
            s: Sealer::new(enc, frame_length, header),
        };
        w.push_out()?;
        Ok(w)
    }

    /// Writes the pending sealed bytes to `inner`.
    fn push_out(&mut self) -> io::Result<()> {
        let mut pos = 0;
        let r = push(&mut self.inner, self.s.unsent(), &mut pos, "the message");
        self.s.sent(pos);
        r
    }

    /// Writes the final frame and the footer, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// ESDK errors (signing) and I/O errors of `inner` (use [`try_finish`](Self::try_finish)
    /// to be able to retry after one).
    pub fn finish(mut self) -> io::Result<W> {
        self.try_finish()?;
        Ok(self.inner)
    }

    /// As [`finish`](Self::finish), but keeps the writer: after an I/O error of `inner`
    /// (`WouldBlock`, ...), call it again; it goes on where it stopped.
    ///
    /// # Errors
    /// ESDK errors (signing, sticky) and I/O errors of `inner`.
    pub fn try_finish(&mut self) -> io::Result<()> {
        self.s.check()?;
        self.push_out()?;
        self.s.seal_final()?;
        self.push_out()?;
        self.inner.flush()
    }

    /// Bytes of message written to the inner writer so far.
    pub fn bytes_written(&self) -> u64 {
        self.s.written
    }
}

impl<W: Write, P: CryptoProvider> Write for EncryptingWriter<'_, W, P> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.s.check()?;
        // What an earlier call sealed goes out first; an error here consumed nothing.
        self.push_out()?;
        if data.is_empty() {
            return Ok(0);
        }
        self.s.open()?;
        let mut used = 0;
        while used < data.len() {
            used += self.s.absorb(&data[used..])?;
            // A sealed frame: hand it on. On an error it stays pending; report the error
            // only if nothing of `data` was consumed (else the next call reports it).
            if !self.s.unsent().is_empty()
                && let Err(e) = self.push_out()
            {
                return if used == 0 { Err(e) } else { Ok(used) };
            }
        }
        Ok(used)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.s.check()?;
        self.push_out()?;
        self.inner.flush()
    }
}

/// Plaintext produced but not yet handed on: `buf[pos..len]` (`buf` beyond `len` is room).
#[derive(Default)]
pub(crate) struct Plain {
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
    pub(crate) pos: usize,
}

impl Plain {
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.len
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let end = self.len + data.len();
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf[self.len..end].copy_from_slice(data);
        self.len = end;
    }

    /// Drops everything, zeroizing it (plaintext that must not come out).
    pub(crate) fn wipe(&mut self) {
        self.buf.zeroize();
        self.buf = Vec::new();
        self.len = 0;
        self.pos = 0;
    }
}

/// Input buffering and stepping shared by [`DecryptingReader`], [`DecryptingWriter`] and
/// the tokio streams. Without a CMM, the data key is the caller's business:
/// [`Event::NeedKey`] hands the decryptor over (an async keyring is awaited there).
pub(crate) struct Pump<'a, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    cmm: Option<&'a M>,
    pub(crate) dec: Decryptor<'a, P>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Input length the decryptor needs before its next step.
    need: usize,
    /// Output room the decryptor asked for last (`BufferTooSmall`).
    pub(crate) room: usize,
    pub(crate) unverified: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    NeedInput,
    /// The header is complete and there is no CMM: get the data key for the buffered input
    /// and give it to the decryptor (`Decryptor::set_data_key`).
    NeedKey,
    /// The header was processed (the suite is known now).
    Header,
    /// Plaintext of a regular frame.
    Plaintext(usize),
    /// The message is complete and verified; the final frame's plaintext.
    Done(usize),
}

impl Event {
    fn written(self) -> usize {
        match self {
            Event::Plaintext(n) | Event::Done(n) => n,
            Event::NeedInput | Event::NeedKey | Event::Header => 0,
        }
    }
}

impl<'a, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> Pump<'a, P, M> {
    pub(crate) fn new(cmm: Option<&'a M>, dec: Decryptor<'a, P>) -> Self {
        Self {
            cmm,
            dec,
            buf: Vec::new(),
            start: 0,
            end: 0,
            need: 1,
            room: 0,
            unverified: false,
        }
    }

    pub(crate) fn available(&self) -> usize {
        self.end - self.start
    }

    /// The decryptor and the buffered input it works on (for the materials step).
    #[cfg_attr(not(all(feature = "tokio", feature = "kms")), allow(dead_code))]
    pub(crate) fn parts(&mut self) -> (&mut Decryptor<'a, P>, &[u8]) {
        (&mut self.dec, &self.buf[self.start..self.end])
    }

    /// Whether the message is signed (known once the header is processed).
    pub(crate) fn signed(&self) -> bool {
        self.dec.suite().is_some_and(|s| s.signature().is_some())
    }

    /// How many more bytes of input to accept next: at least [`READ_CHUNK`] (fewer reads),
    /// more when the decryptor asks for more, but never more than the bytes already
    /// buffered, so the buffer at most doubles per step. Memory is thus bounded by what
    /// actually arrived, never by a length the message claims (a header claiming a 4 GiB
    /// frame or a 64 GiB non-framed body, followed by a few bytes, costs a few KiB), and a
    /// long header or frame is taken in geometrically growing pieces (linear time).
    pub(crate) fn next_room(&self) -> usize {
        let avail = self.available();
        let missing = self.need.saturating_sub(avail);
        missing.min(avail).max(READ_CHUNK)
    }

    /// Room to append at least `extra` bytes of input; compacts and grows as needed.
    pub(crate) fn space(&mut self, extra: usize) -> &mut [u8] {
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

    pub(crate) fn commit(&mut self, n: usize) {
        self.end += n;
    }

    /// One step of the decryptor on the buffered input, writing plaintext to `out`.
    pub(crate) fn step(&mut self, out: &mut [u8]) -> Result<Event, Error> {
        if self.available() < self.need {
            return Ok(Event::NeedInput);
        }
        let input = &self.buf[self.start..self.end];
        let p = match self.cmm {
            Some(cmm) => self.dec.process_with(cmm, input, out)?,
            None => self.dec.process(input, out)?,
        };
        self.start += p.consumed;
        match p.status {
            Status::NeedInput { min } => {
                self.need = min;
                Ok(Event::NeedInput)
            }
            Status::NeedDataKey if self.cmm.is_none() => Ok(Event::NeedKey),
            // `process_with` resolves `NeedDataKey` itself.
            Status::Header | Status::NeedDataKey => {
                self.need = 1;
                Ok(Event::Header)
            }
            Status::Plaintext { verified } => {
                self.need = 1;
                self.unverified = !verified;
                Ok(Event::Plaintext(p.written))
            }
            Status::Done => {
                self.unverified = false;
                Ok(Event::Done(p.written))
            }
        }
    }

    /// One step, appending its plaintext to `plain` (grown as the decryptor asks, with its
    /// capacity doubling up to `cap_hint`, then exactly).
    pub(crate) fn step_append(
        &mut self,
        plain: &mut Plain,
        cap_hint: usize,
    ) -> Result<Event, Error> {
        if self.available() < self.need {
            return Ok(Event::NeedInput);
        }
        loop {
            let want = plain.len + self.room;
            if plain.buf.len() < want {
                let cap = plain.buf.capacity();
                if want > cap {
                    let target = want.max(cap.saturating_mul(2).min(cap_hint));
                    plain.buf.reserve_exact(target - plain.buf.len());
                }
                plain.buf.resize(want, 0);
            }
            let space = &mut plain.buf[plain.len..];
            let tried = space.len();
            match self.step(space) {
                Ok(ev) => {
                    plain.len += ev.written();
                    return Ok(ev);
                }
                Err(Error::BufferTooSmall { required }) if required > tried => {
                    self.room = required;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn truncated(&self) -> Error {
        Error::Truncated {
            offset: self.dec.offset() + self.available(),
        }
    }

    /// Right after the header step of a fresh pump: the decryptor and the buffered bytes
    /// after the header.
    fn after_header(&mut self) -> (&mut Decryptor<'a, P>, &[u8]) {
        (&mut self.dec, &self.buf[self.start..self.end])
    }
}

/// Where a decrypting reader stands with the end of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Frames are coming.
    Running,
    /// The message verified; its final plaintext waits until the inner reader confirms
    /// that nothing follows.
    Check,
    /// The end is confirmed: what is left in the buffer may go out.
    Confirmed,
}

/// What a decrypting reader needs from its inner reader (or its keyring) before it can go
/// on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Input: read into [`ReadState::read_space`], then call [`ReadState::filled`].
    Input,
    /// The end check: read one byte, then call [`ReadState::probed`].
    EndCheck,
    /// The data key (no CMM): the decryptor waits in `Status::NeedDataKey`.
    Key,
}

/// The state of a decrypting reader without its inner reader, shared by
/// [`DecryptingReader`] and the tokio reader: they differ only in how they read.
pub(crate) struct ReadState<'a, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    pub(crate) pump: Pump<'a, P, M>,
    plain: Plain,
    end: End,
    pub(crate) failed: Option<Error>,
    release_unverified: bool,
    limit: usize,
    released_unverified: bool,
}

impl<'a, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> ReadState<'a, P, M> {
    pub(crate) fn new(pump: Pump<'a, P, M>) -> Self {
        Self {
            pump,
            plain: Plain::default(),
            end: End::Running,
            failed: None,
            release_unverified: false,
            limit: DEFAULT_SIGNED_BUFFER_LIMIT,
            released_unverified: false,
        }
    }

    pub(crate) fn set_release_unverified(&mut self, yes: bool) {
        self.release_unverified = yes;
    }

    pub(crate) fn set_limit(&mut self, bytes: usize) {
        self.limit = bytes;
    }

    pub(crate) fn has_unverified_plaintext(&self) -> bool {
        self.released_unverified && self.pump.unverified
    }

    pub(crate) fn held(&self) -> usize {
        self.plain.len - self.plain.pos
    }

    /// Whether plaintext is held back until the signature verifies.
    fn holding(&self) -> bool {
        !self.release_unverified && self.pump.signed()
    }

    pub(crate) fn fail(&mut self, e: Error) -> io::Error {
        self.failed = Some(e);
        self.plain.wipe();
        io_error(e)
    }

    /// Room to read input into.
    pub(crate) fn read_space(&mut self) -> &mut [u8] {
        let room = self.pump.next_room();
        self.pump.space(room)
    }

    /// The inner reader put `got` bytes into [`read_space`](Self::read_space); 0 is the end
    /// of input, inside the message: the error `Truncated`.
    pub(crate) fn filled(&mut self, got: usize) -> io::Result<()> {
        if got == 0 {
            let e = self.pump.truncated();
            return Err(self.fail(e));
        }
        self.pump.commit(got);
        Ok(())
    }

    /// The inner reader gave `got` bytes (0 or 1) after the message: 0 confirms the end.
    pub(crate) fn probed(&mut self, got: usize) -> io::Result<()> {
        if got > 0 {
            let offset = self.pump.dec.offset();
            return Err(self.fail(Error::TrailingBytes { offset }));
        }
        self.end = End::Confirmed;
        Ok(())
    }

    fn hand_out(&mut self, buf: &mut [u8]) -> usize {
        if self.pump.unverified {
            self.released_unverified = true;
        }
        let p = self.plain.pending();
        let n = p.len().min(buf.len());
        buf[..n].copy_from_slice(&p[..n]);
        self.plain.consume(n);
        n
    }

    /// Decrypts what is buffered into `buf` (directly when it can) or the plaintext buffer:
    /// `Ok(n)` with `n` bytes of plaintext for the caller (0 at the confirmed end, or for an
    /// empty `buf`), or what is needed first.
    pub(crate) fn advance(&mut self, buf: &mut [u8]) -> io::Result<Result<usize, Want>> {
        loop {
            if let Some(e) = self.failed {
                return Err(io_error(e));
            }
            if buf.is_empty() {
                return Ok(Ok(0));
            }
            let holding = self.holding();
            let releasable = match self.end {
                End::Running => !holding,
                End::Check => false,
                End::Confirmed => true,
            };
            if releasable && !self.plain.is_empty() {
                return Ok(Ok(self.hand_out(buf)));
            }
            match self.end {
                End::Confirmed => return Ok(Ok(0)),
                End::Check if self.pump.available() > 0 => {
                    let offset = self.pump.dec.offset();
                    return Err(self.fail(Error::TrailingBytes { offset }));
                }
                End::Check => return Ok(Err(Want::EndCheck)),
                End::Running => {}
            }
            let direct = !holding && self.plain.is_empty() && buf.len() >= self.pump.room;
            let ev = if direct {
                // Straight into the caller's buffer when the frame fits.
                match self.pump.step(buf) {
                    Err(Error::BufferTooSmall { required }) if required > buf.len() => {
                        self.pump.room = required;
                        continue;
                    }
                    Ok(Event::Done(n)) => {
                        // Not released before the end is confirmed.
                        self.plain.push(&buf[..n]);
                        buf[..n].zeroize();
                        Ok(Event::Done(n))
                    }
                    r => r,
                }
            } else {
                let hint = if holding {
                    self.limit.saturating_add(self.pump.room)
                } else {
                    0
                };
                self.pump.step_append(&mut self.plain, hint)
            };
            match ev {
                Ok(Event::Header) | Ok(Event::Plaintext(0)) => {}
                Ok(Event::Plaintext(n)) if direct => {
                    if self.pump.unverified {
                        self.released_unverified = true;
                    }
                    return Ok(Ok(n));
                }
                Ok(Event::Plaintext(_)) => {
                    if holding && self.plain.len > self.limit {
                        let limit = self.limit as u64;
                        return Err(self.fail(PolicyViolation::SignedBufferLimit { limit }.into()));
                    }
                }
                Ok(Event::Done(_)) => self.end = End::Check,
                Ok(Event::NeedInput) => return Ok(Err(Want::Input)),
                Ok(Event::NeedKey) => return Ok(Err(Want::Key)),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }
}

/// The options and queries of a decrypting reader with a [`ReadState`] in field `st`,
/// shared by [`DecryptingReader`] and the tokio reader.
macro_rules! reader_options {
    () => {
        /// With `true`, the regular frames of a signed message are released as soon as their
        /// tag verifies, before the signature over the message is checked (streaming in memory
        /// bounded by the frame length). Default `false`: nothing of a signed message comes out
        /// before its signature verified. See the warning of [`stream`](crate::stream).
        pub fn release_unverified_plaintext(mut self, yes: bool) -> Self {
            self.st.set_release_unverified(yes);
            self
        }

        /// How many bytes of a signed message's plaintext to hold until its signature verifies
        /// (default [`DEFAULT_SIGNED_BUFFER_LIMIT`](crate::DEFAULT_SIGNED_BUFFER_LIMIT)); beyond, reading fails with
        /// [`PolicyViolation::SignedBufferLimit`](esdk_core::error::PolicyViolation::SignedBufferLimit). The final frame, which verifies with the
        /// signature, does not count.
        pub fn with_signed_buffer_limit(mut self, bytes: usize) -> Self {
            self.st.set_limit(bytes);
            self
        }

        /// Whether plaintext already returned is not yet covered by a verified signature (only
        /// possible with [`release_unverified_plaintext`](Self::release_unverified_plaintext)).
        pub fn has_unverified_plaintext(&self) -> bool {
            self.st.has_unverified_plaintext()
        }

        /// The suite of the message, once its header was read.
        pub fn suite(&self) -> Option<esdk_core::AlgorithmSuite> {
            self.st.pump.dec.suite()
        }
    };
}
#[cfg_attr(not(feature = "tokio"), allow(unused_imports))]
pub(crate) use reader_options;

/// Decrypts a message read from `inner`; read the plaintext from it.
///
/// Memory is bounded by the frame length (plus the header): one frame of input and one of
/// output; for a signed message, plus the plaintext held until the signature verifies (at
/// most the signed buffer limit, see the [module docs](self)). Reading returns `Ok(0)` only
/// once the whole message, footer included, verified and the inner reader is exhausted;
/// bytes after the message are an error and the final frame then never comes out.
///
/// It reads in order and does not seek. Over a seekable source (`Read + Seek`), the
/// seekable decrypting reader is [`RangeReader`](crate::RangeReader): `Read` and `Seek`
/// over the plaintext of a framed message, reading only the frames it needs.
pub struct DecryptingReader<'a, R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    inner: R,
    st: ReadState<'a, P, M>,
    /// `read` was called: [`decrypt_to`](Self::decrypt_to) goes on sequentially.
    started: bool,
}

impl<R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> std::fmt::Debug
    for DecryptingReader<'_, R, P, M>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("decryptor", &self.st.pump.dec)
            .field("end", &self.st.end)
            .field("held", &self.st.held())
            .finish()
    }
}

impl<'a, R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>
    DecryptingReader<'a, R, P, M>
{
    /// A reader decrypting the message that `inner` yields. `reproduced_context` as in
    /// [`Decryptor::new`]. A signed message's plaintext is held until its signature
    /// verifies (see [`release_unverified_plaintext`](Self::release_unverified_plaintext)).
    pub fn new(
        cfg: &'a Config,
        provider: &'a P,
        cmm: &'a M,
        reproduced_context: &'a [(&'a str, &'a str)],
        inner: R,
    ) -> Self {
        let dec = Decryptor::new(cfg, provider, reproduced_context);
        Self {
            inner,
            st: ReadState::new(Pump::new(Some(cmm), dec)),
            started: false,
        }
    }

    /// A reader that goes on with `dec`, which already has its data key (an async keyring
    /// gave it), over `buffered` (the unconsumed input `dec` was given, the header) and then
    /// `inner`.
    #[cfg_attr(not(feature = "kms"), allow(dead_code))]
    pub(crate) fn resume(dec: Decryptor<'a, P>, buffered: &[u8], inner: R) -> Self {
        let mut pump = Pump::new(None, dec);
        pump.space(buffered.len())[..buffered.len()].copy_from_slice(buffered);
        pump.commit(buffered.len());
        Self {
            inner,
            st: ReadState::new(pump),
            started: false,
        }
    }

    reader_options!();

    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Reads from `r` into `buf`, retrying `Interrupted`; other errors are passed on.
fn read_retrying(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n.min(buf.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl<R: Read, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> Read
    for DecryptingReader<'_, R, P, M>
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.started = true;
        loop {
            // An I/O error of the inner reader is passed on and loses nothing: the next call
            // reads again.
            match self.st.advance(buf)? {
                Ok(n) => return Ok(n),
                Err(Want::Input) => {
                    let got = read_retrying(&mut self.inner, self.st.read_space())?;
                    self.st.filled(got)?;
                }
                Err(Want::EndCheck) => {
                    let got = read_retrying(&mut self.inner, &mut [0u8; 1])?;
                    self.st.probed(got)?;
                }
                // A decryptor without its key and no CMM: not what `resume` takes.
                Err(Want::Key) => return Err(self.st.fail(ApiMisuse::WrongState.into())),
            }
        }
    }
}

/// Decrypts a message written to it and writes the plaintext to `inner`. Call
/// [`finish`](Self::finish) at the end: it fails if the message was incomplete, and it
/// writes the final frame's plaintext (held until then, so that bytes written after the
/// message fail before any of it comes out). A signed message's plaintext is held until its
/// signature verifies; see the [module docs](self).
///
/// Plaintext that the inner writer did not take stays pending and goes out first at the
/// next call: `write` reports an I/O error of `inner` only when it consumed nothing of its
/// input (else the next call reports it), so nothing is lost or duplicated.
pub struct DecryptingWriter<'a, W: Write, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> {
    inner: W,
    pump: Pump<'a, P, M>,
    plain: Plain,
    /// The message verified; `plain` holds its last plaintext until `finish`.
    done: bool,
    /// `finish` confirmed the end: `plain` may go out.
    confirmed: bool,
    failed: Option<Error>,
    release_unverified: bool,
    limit: usize,
    released_unverified: bool,
}

impl<W: Write, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized> std::fmt::Debug
    for DecryptingWriter<'_, W, P, M>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingWriter")
            .field("decryptor", &self.pump.dec)
            .field("done", &self.done)
            .field("held", &(self.plain.len - self.plain.pos))
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
            pump: Pump::new(Some(cmm), Decryptor::new(cfg, provider, reproduced_context)),
            plain: Plain::default(),
            done: false,
            confirmed: false,
            failed: None,
            release_unverified: false,
            limit: DEFAULT_SIGNED_BUFFER_LIMIT,
            released_unverified: false,
        }
    }

    /// As [`DecryptingReader::release_unverified_plaintext`]: with `true`, the regular
    /// frames of a signed message go to `inner` before the signature is checked.
    pub fn release_unverified_plaintext(mut self, yes: bool) -> Self {
        self.release_unverified = yes;
        self
    }

    /// As [`DecryptingReader::with_signed_buffer_limit`].
    pub fn with_signed_buffer_limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }

    /// Whether plaintext already written to `inner` is not yet covered by a verified
    /// signature (only possible with
    /// [`release_unverified_plaintext`](Self::release_unverified_plaintext)).
    pub fn has_unverified_plaintext(&self) -> bool {
        self.released_unverified && self.pump.unverified
    }

    /// Checks that the whole message arrived and verified, writes the last plaintext,
    /// flushes, and returns the inner writer.
    ///
    /// # Errors
    /// A truncated message, or the error that stopped decryption earlier; I/O errors of
    /// `inner` (use [`try_finish`](Self::try_finish) to be able to retry after one).
    pub fn finish(mut self) -> io::Result<W> {
        self.try_finish()?;
        Ok(self.inner)
    }

    /// As [`finish`](Self::finish), but keeps the writer: after an I/O error of `inner`,
    /// call it again; it goes on where it stopped.
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn try_finish(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed {
            return Err(io_error(e));
        }
        self.drain()?;
        if !self.done {
            let e = self.pump.truncated();
            return Err(self.fail(e));
        }
        self.confirmed = true;
        self.push_out()?;
        self.inner.flush()
    }

    fn holding(&self) -> bool {
        !self.release_unverified && self.pump.signed()
    }

    fn fail(&mut self, e: Error) -> io::Error {
        self.failed = Some(e);
        self.plain.wipe();
        io_error(e)
    }

    /// Writes the pending plaintext to `inner`.
    fn push_out(&mut self) -> io::Result<()> {
        if self.pump.unverified && !self.plain.is_empty() {
            self.released_unverified = true;
        }
        let mut pos = self.plain.pos;
        let r = push(
            &mut self.inner,
            &self.plain.buf[..self.plain.len],
            &mut pos,
            "the plaintext",
        );
        self.plain.consume(pos - self.plain.pos);
        r
    }

    /// Hands on what may go out and decrypts the buffered input until more is needed.
    fn drain(&mut self) -> io::Result<()> {
        loop {
            let holding = self.holding();
            if self.confirmed || (!self.done && !holding) {
                self.push_out()?;
            }
            if self.done {
                if self.pump.available() > 0 {
                    let offset = self.pump.dec.offset();
                    return Err(self.fail(Error::TrailingBytes { offset }));
                }
                return Ok(());
            }
            let hint = if holding {
                self.limit.saturating_add(self.pump.room)
            } else {
                0
            };
            match self.pump.step_append(&mut self.plain, hint) {
                Ok(Event::Header) => {}
                Ok(Event::Plaintext(_)) => {
                    if holding && self.plain.len > self.limit {
                        let limit = self.limit as u64;
                        return Err(self.fail(PolicyViolation::SignedBufferLimit { limit }.into()));
                    }
                }
                Ok(Event::Done(_)) => self.done = true,
                Ok(Event::NeedInput) => return Ok(()),
                Ok(Event::NeedKey) => return Err(self.fail(ApiMisuse::WrongState.into())),
                Err(e) => return Err(self.fail(e)),
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
        // Hand on what is pending and decrypt what is buffered before taking more: memory
        // stays bounded, and an error here consumed nothing of `data`.
        self.drain()?;
        if data.is_empty() {
            return Ok(0);
        }
        if self.done {
            let offset = self.pump.dec.offset() + self.pump.available();
            return Err(self.fail(Error::TrailingBytes { offset }));
        }
        // Accept no more than `next_room` (one read chunk, or what the next step needs but
        // at most doubling the buffer), so memory stays bounded by the frame length and by
        // what actually arrived, whatever the caller's write size or the claimed lengths.
        let take = data.len().min(self.pump.next_room());
        let space = self.pump.space(take);
        space[..take].copy_from_slice(&data[..take]);
        self.pump.commit(take);
        match self.drain() {
            Err(e) if self.failed.is_some() => Err(e),
            // An I/O error of `inner` after `data` was taken: the plaintext stays pending
            // and the next call hands it on or reports the error again.
            _ => Ok(take),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed {
            return Err(io_error(e));
        }
        self.drain()?;
        self.inner.flush()
    }
}

/// Where [`EncryptingWriter::encrypt_from`] and [`encrypt_file`] read the plaintext.
#[derive(Debug)]
pub enum Plaintext<'f, R: Read> {
    /// Any reader, read in order (by the calling thread).
    Reader(R),
    /// A regular file, from its current position to the end it has when the encryption
    /// starts. With more than one thread the workers read it with positional reads
    /// (`pread`), straight into the buffers the frames are sealed from: the plaintext is
    /// copied once, by the kernel, and the kernel's copy runs in parallel too. The file
    /// position is not moved. A file that becomes shorter meanwhile fails with
    /// `UnexpectedEof`; bytes appended meanwhile are not encrypted.
    File(&'f File),
    /// Plaintext in memory, such as a memory-mapped file (the `esdk` tool maps regular
    /// input files): with more than one thread the workers seal straight from it, so the
    /// plaintext is not copied at all before the cipher reads it.
    Bytes(&'f [u8]),
}

/// A progress callback: bytes of input consumed (plaintext on encryption, message bytes
/// on decryption), called from the calling thread as the output is written.
pub type ProgressFn<'p> = &'p mut dyn FnMut(u64);

/// Resolves a thread count: 0 is the available parallelism.
fn resolve_threads(threads: usize) -> usize {
    crate::parallel::threads(&Config::new().with_threads(threads))
}

impl<'a, W: Write, P: CryptoProvider + Sync> EncryptingWriter<'a, W, P>
where
    P::Aead: Send,
    Encryptor<'a, P>: Send,
{
    /// Encrypts everything `input` yields, finishes the message and returns the inner
    /// writer: the whole body in one call, its frames sealed on `threads` threads (0: the
    /// available parallelism, as [`Config::threads`]; 1: this thread, exactly as
    /// [`write`](Write::write) and [`finish`](Self::finish)).
    ///
    /// With more threads the message is the same, byte for byte: the calling thread reads
    /// batches of frames (about 1 MiB) and writes the sealed ones in order, each in one
    /// write; workers, each with its own copy of the frame key, seal batches; for the
    /// signed suites the message hash runs on a thread of its own. Memory is bounded by
    /// (threads + 4) × 2 batches. Call it before any `write` (else it goes on with one
    /// thread). `progress` gets the plaintext bytes of each batch written.
    ///
    /// # Errors
    /// As [`write`](Write::write) and [`finish`](Self::finish): the first ESDK error in
    /// message order, or the I/O error of `input` or of the inner writer. After an error the
    /// inner writer holds an incomplete message (discard it).
    pub fn encrypt_from<R: Read>(
        mut self,
        input: Plaintext<'_, R>,
        threads: usize,
        progress: ProgressFn<'_>,
    ) -> io::Result<W> {
        let threads = resolve_threads(threads);
        self.s.check()?;
        let source = match input {
            #[cfg(unix)]
            Plaintext::File(file) => {
                use std::io::Seek;
                let at = (&*file).stream_position()?;
                let len = file.metadata()?.len().saturating_sub(at);
                pipeline::Source::File { file, at, len }
            }
            #[cfg(not(unix))]
            Plaintext::File(file) => {
                return self.encrypt_sequentially(pipeline::Source::Reader(file), progress);
            }
            Plaintext::Reader(r) => pipeline::Source::Reader(r),
            Plaintext::Bytes(bytes) => pipeline::Source::Bytes(bytes),
        };
        // A small input of known length stays on this thread, as the one-shot calls do:
        // starting threads would cost more than its frames.
        let known_small = match &source {
            pipeline::Source::File { len, .. } => *len < PARALLEL_MIN as u64,
            pipeline::Source::Bytes(bytes) => bytes.len() < PARALLEL_MIN,
            pipeline::Source::Reader(_) => false,
        };
        if threads <= 1 || known_small || !self.s.pending.is_empty() || self.s.sealed_final {
            return self.encrypt_sequentially(source, progress);
        }
        self.push_out()?;
        let r = pipeline::encrypt_body(&mut self.s.enc, threads, source, &mut self.inner, progress);
        match r {
            Ok(n) => {
                self.s.written += n;
                self.s.sealed_final = true;
                self.inner.flush()?;
                Ok(self.inner)
            }
            Err(e) => {
                if let Some(err) = esdk_error(&e) {
                    self.s.failed = Some(err);
                }
                Err(e)
            }
        }
    }

    /// [`encrypt_from`](Self::encrypt_from) on this thread.
    fn encrypt_sequentially<R: Read>(
        mut self,
        source: pipeline::Source<'_, R>,
        progress: ProgressFn<'_>,
    ) -> io::Result<W> {
        // The read buffer: no bigger than the input when its length is known (plus one byte,
        // so that the end is seen in the same read), and only the bytes a read filled are
        // wiped after: a 100-byte file neither faults in nor wipes a whole 1 MiB.
        let cap = |len: u64| (len.saturating_add(1)).min((READ_CHUNK * 16) as u64) as usize;
        let mut copy = |r: &mut dyn Read, w: &mut Self, len: Option<u64>| -> io::Result<()> {
            let mut buf = vec![0u8; len.map_or(READ_CHUNK * 16, cap)];
            let mut filled = 0;
            let r = loop {
                let n = match read_retrying(r, &mut buf) {
                    Ok(n) => n,
                    Err(e) => break Err(e),
                };
                filled = filled.max(n);
                if n == 0 {
                    break Ok(());
                }
                if let Err(e) = w.write_all(&buf[..n]) {
                    break Err(e);
                }
                progress(n as u64);
            };
            buf[..filled].zeroize();
            r
        };
        match source {
            pipeline::Source::Reader(mut r) => copy(&mut r, &mut self, None)?,
            #[cfg(unix)]
            pipeline::Source::File { file, at, len } => {
                copy(&mut PositionalReader { file, at }, &mut self, Some(len))?;
            }
            // Never made off unix (files are read as readers there).
            #[cfg(not(unix))]
            pipeline::Source::File { file, len, .. } => copy(&mut &*file, &mut self, Some(len))?,
            pipeline::Source::Bytes(bytes) => {
                for chunk in bytes.chunks(READ_CHUNK * 16) {
                    self.write_all(chunk)?;
                    progress(chunk.len() as u64);
                }
            }
        }
        self.finish()
    }
}

impl<'a, R: Read, P: CryptoProvider + Sync, M: CryptoMaterialsManager + ?Sized>
    DecryptingReader<'a, R, P, M>
where
    P::Aead: Send,
    Decryptor<'a, P>: Send,
{
    /// Decrypts the whole message into `writer` and returns the plaintext length: the
    /// frames opened on `threads` threads (0: the available parallelism, as
    /// [`Config::threads`]; 1: this thread, exactly as reading this reader to its end).
    ///
    /// The release rules are this reader's (see the [module docs](self)): nothing before
    /// its frame's tag verified; the final frame only once the end of the message is
    /// confirmed (nothing after it); a signed message's plaintext held until its signature
    /// verifies, up to the signed buffer limit, unless
    /// [`release_unverified_plaintext`](Self::release_unverified_plaintext). With more
    /// threads the calling thread reads batches of whole frames (about 1 MiB) straight into
    /// the buffers the frames are opened in, and writes the plaintext from there with
    /// vectored writes; workers open batches; for the signed suites the message hash (over
    /// the ciphertext) runs on a thread of its own. Memory is bounded by (threads + 3)
    /// batches, plus what a signed message holds. Call it before any `read` (else it goes on
    /// with one thread). Non-framed messages are decrypted on this thread. `progress` gets
    /// the message bytes read.
    ///
    /// # Errors
    /// As [`read`](Read::read), the first failing check in message order; I/O errors of
    /// the inner reader and of `writer`. After an error, discard what `writer` received.
    pub fn decrypt_to<W: Write>(
        mut self,
        mut writer: W,
        threads: usize,
        progress: ProgressFn<'_>,
    ) -> io::Result<u64> {
        let threads = resolve_threads(threads);
        if threads <= 1 || self.started {
            return self.decrypt_sequentially(writer, progress, 0);
        }
        // The header, as `read` takes it.
        let mut seen = self.st.pump.available() as u64;
        let mut scratch = Plain::default();
        loop {
            match self.st.pump.step_append(&mut scratch, 0) {
                Ok(Event::Header) => break,
                Ok(Event::NeedInput) => {
                    let got = read_retrying(&mut self.inner, self.st.read_space())?;
                    self.st.filled(got)?;
                    seen += got as u64;
                }
                Ok(_) => return Err(self.st.fail(ApiMisuse::WrongState.into())),
                Err(e) => return Err(self.st.fail(e)),
            }
        }
        scratch.wipe();
        let release = pipeline::Release {
            unverified: self.st.release_unverified,
            limit: self.st.limit,
        };
        let (dec, rest) = self.st.pump.after_header();
        // The decryptor's own record of the authenticated header (no second parse).
        let Some(frame_len) = dec.frame_length().map(|f| f as usize) else {
            // Non-framed: one unit, nothing to share out.
            self.started = true;
            progress(seen);
            return self.decrypt_sequentially(writer, progress, seen);
        };
        progress(seen);
        let rest = rest.to_vec();
        let n = pipeline::decrypt_body(
            dec,
            frame_len,
            threads,
            &rest,
            &mut self.inner,
            &mut writer,
            release,
            progress,
        )?;
        Ok(n)
    }

    /// [`decrypt_to`](Self::decrypt_to) on this thread.
    /// `reported`: message bytes already given to `progress`.
    fn decrypt_sequentially<W: Write>(
        mut self,
        mut writer: W,
        progress: ProgressFn<'_>,
        mut reported: u64,
    ) -> io::Result<u64> {
        let received = |r: &Self| (r.st.pump.dec.offset() + r.st.pump.available()) as u64;
        let mut buf = vec![0u8; READ_CHUNK * 16];
        // Only the bytes a read filled are wiped after (the rest of the buffer was never
        // touched: a small message faults in and wipes a page, not 1 MiB).
        let mut filled = 0;
        let mut total = 0u64;
        let r = loop {
            let n = match self.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            filled = filled.max(n);
            if let Err(e) = pipeline::write_all(&mut writer, &buf[..n]) {
                break Err(e);
            }
            total += n as u64;
            let now = received(&self);
            progress(now.saturating_sub(reported));
            reported = now;
        };
        buf[..filled].zeroize();
        r?;
        let now = received(&self);
        progress(now.saturating_sub(reported));
        writer.flush()?;
        Ok(total)
    }
}

/// Encrypts the rest of `file` (from its position to its end) into `writer` with the
/// default provider on [`Config::threads`] threads; returns the message length. When
/// `opts` declares no plaintext length, the file's is declared (the CMM sees it, the
/// encryptor holds to it). See [`Plaintext::File`] and [`EncryptingWriter::encrypt_from`].
///
/// # Errors
/// ESDK and I/O errors; `UnexpectedEof` when the file becomes shorter meanwhile.
pub fn encrypt_file<M: CryptoMaterialsManager + ?Sized, W: Write>(
    cfg: &Config,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    file: &File,
    writer: W,
) -> io::Result<u64> {
    use std::io::Seek;
    let mut opts = *opts;
    if opts.plaintext_len.is_none() {
        let at = (&*file).stream_position()?;
        opts.plaintext_len = Some(file.metadata()?.len().saturating_sub(at));
    }
    let w = EncryptingWriter::new(
        cfg,
        &crate::DEFAULT_PROVIDER,
        cmm,
        &opts,
        encryption_context,
        Counted::new(writer),
    )?;
    let c = w.encrypt_from(Plaintext::<io::Empty>::File(file), cfg.threads, &mut |_| {})?;
    Ok(c.count)
}

/// Reads a file from an offset with positional reads: its position does not move.
#[cfg(unix)]
struct PositionalReader<'f> {
    file: &'f File,
    at: u64,
}

#[cfg(unix)]
impl Read for PositionalReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// A writer counting what it passes on.
struct Counted<W> {
    inner: W,
    count: u64,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Self {
        Self { inner, count: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypts everything `reader` yields into `writer` with the default provider, on
/// [`Config::threads`] threads (see [`EncryptingWriter::encrypt_from`]; 1: sequentially);
/// returns the message length. The message is the same for every thread count.
///
/// # Errors
/// ESDK and I/O errors.
pub fn encrypt_stream<M: CryptoMaterialsManager + ?Sized, R: Read, W: Write>(
    cfg: &Config,
    cmm: &M,
    opts: &EncryptOptions,
    encryption_context: &[(&str, &str)],
    reader: R,
    writer: W,
) -> io::Result<u64> {
    let w = EncryptingWriter::new(
        cfg,
        &crate::DEFAULT_PROVIDER,
        cmm,
        opts,
        encryption_context,
        Counted::new(writer),
    )?;
    let c = w.encrypt_from(Plaintext::Reader(reader), cfg.threads, &mut |_| {})?;
    Ok(c.count)
}

/// Decrypts the message `reader` yields into `writer` with the default provider, on
/// [`Config::threads`] threads (see [`DecryptingReader::decrypt_to`]; 1: sequentially);
/// returns the plaintext length. A signed message's plaintext is held (up to
/// [`DEFAULT_SIGNED_BUFFER_LIMIT`]) until its signature verified, so nothing unverified
/// reaches `writer`; an unsigned message's regular frames are written as they verify (on an
/// error, discard what was written: write to a temporary file and rename on success).
///
/// # Errors
/// ESDK and I/O errors.
pub fn decrypt_stream<M: CryptoMaterialsManager + ?Sized, R: Read, W: Write>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    reader: R,
    writer: W,
) -> io::Result<u64> {
    DecryptingReader::new(
        cfg,
        &crate::DEFAULT_PROVIDER,
        cmm,
        reproduced_context,
        reader,
    )
    .decrypt_to(writer, cfg.threads, &mut |_| {})
}
